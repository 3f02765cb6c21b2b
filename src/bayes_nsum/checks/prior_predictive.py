r"""Prior predictive checks: what a model's priors imply before the data.

Parameters are drawn from the model's own PyMC priors
(:meth:`~bayes_nsum.estimators.base.NSUMModel.prior_draws`) and pushed through its simulator
(:meth:`~bayes_nsum.estimators.base.NSUMModel.simulate`, fresh respondents): respondents'
network sizes, their answers to every group and the hidden groups' sizes. Every model has one,
the pooled model included (its simulated respondents keep the areas of the survey's first
respondents). :func:`prior_predictive_table` sets the prior predictive distribution of simple
statistics of the answers (mean answer and share of zeros per group, median degree) beside the
same statistics of the survey, with the survey's percentile inside the prior predictive
distribution: a percentile near 0 or 100 means the priors put almost no mass on surveys like
this one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesNsumError

PRIOR_PREDICTIVE_COLUMNS = [
    "quantity",
    "group",
    "q05",
    "q25",
    "median",
    "q75",
    "q95",
    "observed",
    "observed_percentile",
]
_PARAM_DIMS = {"hidden", "group", "known"}


def sample_prior_predictive(
    model, draws: int = 500, respondents: int = 200, seed: int = 0
) -> xr.Dataset:
    """Draw from the prior predictive distribution of a model (nothing is fitted).

    Parameters
    ----------
    model : NSUMModel
        A model object (not fitted): its merged priors, options, known sizes, frame population,
        areas and denominators are used; the survey answers are not.
    draws : int
        Prior draws.
    respondents : int
        Simulated respondents per draw (at most the survey's number of respondents).
    seed : int
        The same seed gives identical draws.

    Returns
    -------
    xarray.Dataset
        Dims ``draw``, ``respondent``, ``group``, ``hidden``: the parameters (scalar or per
        group); ``degree`` (draw, respondent); per draw the statistics of the simulated answers
        ``mean_answer`` and ``share_zero`` (draw, group) and ``median_degree`` (draw); the hidden
        groups' national ``size``, ``prevalence`` and ``one_in_x`` (draw, hidden).
    """
    if draws < 1 or respondents < 1:
        raise BayesNsumError("prior predictive: draws and respondents must be >= 1")
    d = model.data
    n_resp = int(min(respondents, d.n))
    prior = model.prior_draws(draws, seed, latent=False)
    rng = np.random.default_rng(seed)
    y, log_degree = model.simulate(
        prior, rng, fitted=False, rows=np.arange(n_resp), return_log_degree=True
    )
    degree = np.exp(log_degree)
    prior = prior.isel(chain=0, drop=True)
    ds = xr.Dataset(
        {
            "degree": (("draw", "respondent"), degree),
            "median_degree": ("draw", np.median(degree, axis=1)),
            "mean_answer": (("draw", "group"), y.mean(axis=1)),
            "share_zero": (("draw", "group"), (y == 0).mean(axis=1)),
        },
        coords={
            "draw": np.arange(draws),
            "respondent": np.arange(n_resp),
            "group": d.groups,
            "hidden": list(d.hidden),
        },
    )
    for name in ("size", "prevalence", "one_in_x"):
        ds[name] = prior[name].transpose("draw", "hidden").assign_coords(draw=np.arange(draws))
    for name, da in prior.data_vars.items():
        if name in ds or not set(da.dims) - {"draw"} <= _PARAM_DIMS:
            continue
        ds[name] = da.assign_coords(draw=np.arange(draws))
    ds.attrs.update(
        {
            "model": model.name,
            "prior_set": str(getattr(model, "prior_set_name", None)),
            "seed": int(seed),
            "respondents": n_resp,
        }
    )
    return ds


def observed_stats(data) -> dict[str, Any]:
    """Survey statistics matching the prior predictive ones (NaN answers skipped)."""
    y = data.counts[data.groups].to_numpy(float)
    obs = ~np.isnan(y)
    mean_answer = np.nanmean(np.where(obs, y, np.nan), axis=0)
    share_zero = np.array(
        [np.mean(y[obs[:, k], k] == 0) if obs[:, k].any() else np.nan for k in range(y.shape[1])]
    )
    known = list(data.known)
    k_idx = [data.groups.index(k) for k in known]
    sizes = data.known_sizes.loc[known].to_numpy(float)
    yk = np.where(obs[:, k_idx], y[:, k_idx], 0.0)
    denom = (obs[:, k_idx] * sizes).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        degree = float(data.total_population) * yk.sum(axis=1) / denom
    return {
        "mean_answer": dict(zip(data.groups, mean_answer, strict=True)),
        "share_zero": dict(zip(data.groups, share_zero, strict=True)),
        "median_degree": float(np.nanmedian(degree)),
    }


def _percentile(draws: np.ndarray, value: float) -> float:
    """Mid-rank percentile (0-100) of ``value`` among ``draws``."""
    if not np.isfinite(value):
        return float("nan")
    draws = np.asarray(draws, float)
    return float(50 * (np.mean(draws < value) + np.mean(draws <= value)))


def prior_predictive_table(ds: xr.Dataset, data=None) -> pd.DataFrame:
    """Quantiles of the prior predictive statistics, beside the survey's own.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`sample_prior_predictive`.
    data : ARD, optional
        The (pre-processed) survey. When given, ``observed`` holds its mean answer and share of
        zero answers per group and its median known-population degree
        (:math:`N\\sum_k y_{ik}/\\sum_k N_k`), and ``observed_percentile`` the mid-rank
        percentile of that value among the prior predictive draws.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PRIOR_PREDICTIVE_COLUMNS`; quantities ``median_degree``,
        ``mean_answer``, ``share_zero``, ``size``, ``prevalence``.
    """
    observed = observed_stats(data) if data is not None else None
    probs = [0.05, 0.25, 0.5, 0.75, 0.95]
    rows = []

    def add(quantity: str, group: str, values: np.ndarray, obs: float = float("nan")) -> None:
        q = np.quantile(np.asarray(values, float), probs)
        rows.append([quantity, group, *map(float, q), obs, _percentile(values, obs)])

    add(
        "median_degree",
        "",
        ds["median_degree"].values,
        observed["median_degree"] if observed else float("nan"),
    )
    for quantity in ("mean_answer", "share_zero"):
        for g in ds["group"].values:
            g = str(g)
            obs = observed[quantity].get(g, float("nan")) if observed else float("nan")
            add(quantity, g, ds[quantity].sel(group=g).values, obs)
    for quantity in ("size", "prevalence"):
        for h in ds["hidden"].values:
            add(quantity, str(h), ds[quantity].sel(hidden=h).values)
    return pd.DataFrame(rows, columns=PRIOR_PREDICTIVE_COLUMNS)
