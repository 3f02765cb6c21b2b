r"""Posterior predictive checks, for every model.

:func:`posterior_predictive` replicates the survey from the model at a subset of posterior draws
(:meth:`~bayes_nsum.estimators.base.NSUMModel.simulate`): by default every replicated
respondent gets a *fresh* latent effect drawn from the fitted population distribution (a "mixed"
predictive check, testing the degree distribution as well as the count distribution; the only
option for models that integrate the degrees out); ``fitted=True`` keeps the fitted
per-respondent effects where the model samples them. Replicated answers are top-coded at the
caps the pre-processing applied and missing where the data are, so observed and replicated
statistics are computed on the same scale. The replicates are stored in the fit as its
``posterior_predictive`` group (variable ``y``, like ``observed_data``), so ArviZ's predictive
plots work on the saved file.

:func:`ppc_table` compares, per group, the observed mean, standard deviation, share of zeros,
90th percentile and distribution of answers with their replicated distribution, with a mid-p
posterior predictive p-value (``ppc.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

#: Summary statistics checked per group (besides the distribution bins).
STATISTICS = ("mean", "sd", "share_zero", "p90")
#: Answer bins of the distribution check: (label, lowest, highest) answers included.
DIST_BINS = (
    ("0", 0, 0),
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21+", 21, np.inf),
)
PPC_COLUMNS = ["group", "statistic", "observed", "replicated_mean", "lower", "upper", "p_value"]
#: replicated surveys stored per fit: at most 200, at least 20, and otherwise about 10 million
#: answers in all
MAX_REPLICATES, MIN_REPLICATES, REPLICATE_CELLS = 200, 20, 10_000_000


def topcode_caps(steps: list[dict]) -> dict[str, float]:
    """Caps of the ``topcode`` steps of a pre-processing record (``PreprocessLog.to_dict()``)."""
    caps: dict[str, float] = {}
    for step in steps or []:
        if step.get("rule") == "topcode":
            for g, cap in (step.get("settings", {}).get("caps") or {}).items():
                caps[str(g)] = float(cap) if g not in caps else min(caps[g], float(cap))
    return caps


def replicate_count(n: int, g: int) -> int:
    """Number of replicated surveys stored for n respondents and g groups."""
    return int(np.clip(REPLICATE_CELLS // max(n * g, 1), MIN_REPLICATES, MAX_REPLICATES))


def thin_draws(posterior: xr.Dataset, max_draws: int | None) -> xr.Dataset:
    """Every k-th draw of each chain so that at most ``max_draws`` draws remain in all."""
    if max_draws is None:
        return posterior
    total = posterior.sizes["chain"] * posterior.sizes["draw"]
    step = int(np.ceil(total / max(int(max_draws), 1)))
    return posterior.isel(draw=slice(None, None, step)) if step > 1 else posterior


def posterior_predictive(
    model,
    posterior: xr.Dataset,
    n_rep: int | None = None,
    seed: int = 0,
    topcode: dict[str, float] | None = None,
    fitted: bool = False,
) -> xr.Dataset:
    """Replicated surveys from the model at (thinned) posterior draws.

    Parameters
    ----------
    model : NSUMModel
        The fitted model (its data fix the respondents, their areas and missing answers).
    posterior : xarray.Dataset
        Posterior draws (chain, draw, ...).
    n_rep : int, optional
        Replicates (default :func:`replicate_count`); draws are thinned evenly in each chain.
    seed : int
    topcode : dict, optional
        Group -> cap applied to the replicates.
    fitted : bool
        Keep the fitted latent effects (where the model samples them).

    Returns
    -------
    xarray.Dataset
        ``y`` (chain, draw, respondent, group), float32, NaN where the answer is missing.
    """
    y = model.answers()
    n, g = y.shape
    n_rep = replicate_count(n, g) if n_rep is None else int(n_rep)
    sub = thin_draws(posterior, n_rep)
    rng = np.random.default_rng(seed)
    rep = model.simulate(sub, rng, fitted=fitted, missing=np.isnan(y), topcode=topcode)
    nc, nd = sub.sizes["chain"], sub.sizes["draw"]
    return xr.Dataset(
        {"y": (("chain", "draw", "respondent", "group"), rep.reshape(nc, nd, n, g).astype("f4"))},
        coords={
            "chain": sub["chain"].values,
            "draw": sub["draw"].values,
            "respondent": np.arange(n),
            "group": model.data.groups,
        },
    )


def answer_statistics(y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group statistics of answer matrices (..., n, G), missing answers (NaN) ignored.

    Returns ``mean``, ``sd``, ``share_zero``, ``p90`` and ``dist:<bin>`` (share of answers in
    each bin of :data:`DIST_BINS`), each shaped (..., G).
    """
    y = np.asarray(y, float)
    obs = ~np.isnan(y)
    count = obs.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(y, axis=-2) / count
        dev = np.where(obs, y - np.expand_dims(mean, -2), 0.0)
        sd = np.sqrt((dev**2).sum(axis=-2) / (count - 1))
        out = {
            "mean": mean,
            "sd": sd,
            "share_zero": (y == 0).sum(axis=-2) / count,
            "p90": np.nanquantile(y, 0.9, axis=-2) if obs.any() else np.full(mean.shape, np.nan),
        }
        for label, lo, hi in DIST_BINS:
            out[f"dist:{label}"] = ((y >= lo) & (y <= hi)).sum(axis=-2) / count
    return out


def predictive_p_value(replicated: np.ndarray, observed: np.ndarray) -> np.ndarray:
    r"""Posterior predictive p-value :math:`P(T_{rep} > T_{obs}) + \tfrac12 P(T_{rep} = T_{obs})`.

    The mid-p form counts ties as half, so that discrete statistics (share of zeros, a
    percentile of counts) give p-values near 0.5 rather than 1 when replicates equal the data.
    Values near 0 mean the model replicates too small a statistic, near 1 too large.
    ``replicated`` is (R, ...) and ``observed`` (...).
    """
    rep = np.asarray(replicated, float)
    obs = np.asarray(observed, float)
    gt = np.mean(rep > obs, axis=0)
    eq = np.mean(np.isclose(rep, obs, rtol=1e-12, atol=1e-12), axis=0)
    return gt + 0.5 * eq


def ppc_table(
    observed: np.ndarray,
    replicated: np.ndarray,
    groups: list[str],
    prob: float = 0.9,
    chunk: int = 25,
) -> pd.DataFrame:
    """The ``ppc.csv`` table from observed answers (n, G) and replicates (R, n, G).

    ``prob`` is the probability of the central interval (lower, upper) of each replicated
    statistic.
    """
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, replicated.shape[0], chunk):
        for k, v in answer_statistics(replicated[start : start + chunk]).items():
            parts.setdefault(k, []).append(v)
    rep_stats = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    obs = answer_statistics(observed)
    tail = (1 - prob) / 2
    rows = []
    for stat, rep in rep_stats.items():
        p = predictive_p_value(rep, obs[stat])
        lo, hi = np.nanquantile(rep, [tail, 1 - tail], axis=0)
        for j, g in enumerate(groups):
            rows.append(
                {
                    "group": g,
                    "statistic": stat,
                    "observed": float(obs[stat][j]),
                    "replicated_mean": float(np.nanmean(rep[:, j])),
                    "lower": float(lo[j]),
                    "upper": float(hi[j]),
                    "p_value": float(p[j]),
                }
            )
    out = pd.DataFrame(rows, columns=PPC_COLUMNS)
    order = {s: i for i, s in enumerate(rep_stats)}
    gorder = {g: i for i, g in enumerate(groups)}
    out = out.sort_values(
        ["group", "statistic"], key=lambda c: c.map(gorder if c.name == "group" else order)
    )
    return out.reset_index(drop=True)


def ppc_of_tree(tree: xr.DataTree, prob: float = 0.9) -> pd.DataFrame:
    """:func:`ppc_table` of a saved fit's ``posterior_predictive`` and ``observed_data``."""
    y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
    rep = tree["posterior_predictive"].to_dataset()["y"]
    rep = rep.stack(_s=("chain", "draw")).transpose("_s", "respondent", "group")
    groups = [str(g) for g in y["group"].values]
    return ppc_table(y.values.astype(float), rep.values.astype(float), groups, prob)
