r"""Each respondent's posterior network size (degree), for every model.

Models that sample a latent degree per respondent have the degrees in their posterior (the
derived variable ``degree``): the summary is taken from those draws (``method = "draws"``).
Models that integrate the degree out get it back from its conditional posterior given the
answers, :math:`p(d_i \mid y_i, \theta)`, computed by the model's own quadrature
(:meth:`~bayes_nsum.estimators.latent.LatentModel.moments`) at up to ``max_draws`` thinned
posterior draws: the mean and sd are exact by the laws of total expectation and variance; the
median and interval assume the posterior of the log-degree is normal with its exact mean and sd
(``method = "quadrature"``; the conditional posteriors are log-concave and close to normal
unless a respondent answers almost nothing).

Respondents are labelled by their position in the fitted data, never by id. The table is
respondent-level: a results folder holds it (``restricted/degrees.csv``) only with ``[output]
respondent_level = true``; otherwise only :func:`degree_summary` (``degrees_summary.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ..estimators.base import stack_draws
from .predictive import thin_draws

#: columns of ``degrees.csv``
DEGREE_COLUMNS = ["respondent", "mean", "sd", "median", "lower", "upper", "interval_prob", "method"]
#: quantiles of the respondents' posterior mean degrees in ``degrees_summary.csv``
SUMMARY_QUANTILES = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}


def degree_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The distribution of the respondents' posterior mean network sizes, without any
    respondent's own row (``degrees_summary.csv``): one row with ``n_respondents``, ``mean``,
    the quantiles of :data:`SUMMARY_QUANTILES` and ``method``."""
    means = table["mean"].to_numpy(dtype=float)
    row = {"n_respondents": len(means), "mean": float(np.mean(means)) if len(means) else np.nan}
    for name, q in SUMMARY_QUANTILES.items():
        row[name] = float(np.quantile(means, q)) if len(means) else np.nan
    row["method"] = ",".join(dict.fromkeys(table["method"].astype(str))) if len(table) else ""
    return pd.DataFrame([row])


def respondent_degrees(
    model,
    posterior: xr.Dataset,
    prob: float = 0.9,
    max_draws: int = 400,
    budget: float = 2e9,
) -> pd.DataFrame:
    """Posterior summary of every respondent's network size (see the module docstring)."""
    n = model.data.n
    tail = (1 - prob) / 2
    if "degree" in posterior and "respondent" in posterior["degree"].dims:
        d = posterior["degree"].stack(s=("chain", "draw")).transpose("s", "respondent").values
        lo, med, hi = np.quantile(d, [tail, 0.5, 1 - tail], axis=0)
        table = {
            "mean": d.mean(axis=0),
            "sd": d.std(axis=0),
            "median": med,
            "lower": lo,
            "upper": hi,
            "method": "draws",
        }
    else:
        y = model.answers()
        per_draw = n * y.shape[1] * 32
        draws = int(max(20, min(max_draws, budget // max(per_draw, 1))))
        lm = model.latent(stack_draws(thin_draws(posterior, draws)))
        m1, m2, mx, mx2 = lm.moments(y)  # of the latent effect z, per draw (S, n)
        c = np.zeros(lm.n_draws) if lm.log_degree_shift is None else lm.log_degree_shift
        c = c if c.ndim == 2 else c[:, None]  # log degree = z - c (c per respondent or not)
        e_d = (m1 * np.exp(-c)).mean(axis=0)
        e_d2 = (m2 * np.exp(-2 * c)).mean(axis=0)
        e_x = (mx - c).mean(axis=0)
        e_x2 = (mx2 - 2 * c * mx + c**2).mean(axis=0)
        sd_x = np.sqrt(np.maximum(e_x2 - e_x**2, 0.0))
        z = stats.norm.ppf(1 - tail)
        table = {
            "mean": e_d,
            "sd": np.sqrt(np.maximum(e_d2 - e_d**2, 0.0)),
            "median": np.exp(e_x),
            "lower": np.exp(e_x - z * sd_x),
            "upper": np.exp(e_x + z * sd_x),
            "method": "quadrature",
        }
    return pd.DataFrame({"respondent": np.arange(n), **table, "interval_prob": prob})[
        DEGREE_COLUMNS
    ]
