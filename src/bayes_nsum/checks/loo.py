r"""Per-respondent log-likelihood and model comparison by PSIS-LOO, for every model.

Each respondent is one observation. Its log-likelihood at a posterior draw is the probability of
all of its answers with its latent effect (degree, or Zheng et al.'s respondent effect)
integrated out (:meth:`~bayes_nsum.estimators.base.NSUMModel.pointwise_loglik`): exactly the
term the collapsed models' likelihood sums, and the marginal (not the conditional given the
fitted effect) for the models that sample a latent degree, so that every model is scored on the
same thing -- predicting a new respondent's answers -- and the importance weights stay stable.

:func:`log_likelihood` computes it at up to ``max_draws`` posterior draws (every k-th draw of
each chain) as the fit's ``log_likelihood`` group, so ``arviz.loo(tree)`` works on the saved
file alone. When the draws are thinned, ArviZ's default relative efficiency (posterior ESS over
the number of log-likelihood draws) overstates it; :func:`loo_of_fit` passes the relative
efficiency of the thinned draws instead. Models are ranked with ``arviz.compare``; Pareto
:math:`\hat k` above the threshold ArviZ reports marks respondents whose LOO estimate is
unreliable, and they are counted in the table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesNsumError
from .predictive import thin_draws

#: posterior draws at which the per-respondent log-likelihood is stored: at most 1000, at least
#: 200, and otherwise about LOO_CELLS respondent x group x quadrature-node evaluations in all
LOO_DRAWS, MIN_LOO_DRAWS, LOO_CELLS = 1000, 200, 300_000_000


def loo_draws(model) -> int:
    """Draws for the stored log-likelihood of a model (see :data:`LOO_CELLS`)."""
    n, g = model.answers().shape
    per_draw = n * g * 32
    return int(min(LOO_DRAWS, max(MIN_LOO_DRAWS, LOO_CELLS // max(per_draw, 1))))


def log_likelihood(model, posterior: xr.Dataset, max_draws: int | None = None) -> xr.Dataset:
    """The ``log_likelihood`` group: ``y`` (chain, draw, respondent) at thinned draws (default
    :func:`loo_draws`)."""
    sub = thin_draws(posterior, loo_draws(model) if max_draws is None else max_draws)
    ll = model.pointwise_loglik(sub)
    if not np.all(np.isfinite(ll)):
        bad = np.unique(np.nonzero(~np.isfinite(ll))[1])
        raise BayesNsumError(
            f"log-likelihood is not finite for {len(bad)} respondent(s) (first at row "
            f"position {int(bad[0])})"
        )
    nc, nd = sub.sizes["chain"], sub.sizes["draw"]
    return xr.Dataset(
        {"y": (("chain", "draw", "respondent"), ll.reshape(nc, nd, -1))},
        coords={
            "chain": sub["chain"].values,
            "draw": sub["draw"].values,
            "respondent": np.arange(ll.shape[1]),
        },
    )


def _reff(log_lik: xr.DataArray) -> float:
    """Relative efficiency of the log-likelihood draws (mean over respondents, capped at 1)."""
    import arviz as az

    if log_lik.sizes["chain"] < 2:
        return 1.0
    n = log_lik.sizes["chain"] * log_lik.sizes["draw"]
    with np.errstate(all="ignore"):
        ess = np.asarray(az.ess(log_lik.values, method="mean"), float)
    return float(np.clip(np.nanmean(ess) / n, 0.05, 1.0))


def loo_of_fit(tree: xr.DataTree, model=None, max_draws: int | None = LOO_DRAWS):
    """PSIS-LOO (``arviz.loo``, pointwise) of a fit: from its ``log_likelihood`` group, or
    computed with ``model`` (default: rebuilt from the tree) when the group is absent."""
    import arviz as az

    if "log_likelihood" in tree.children:
        ll = tree["log_likelihood"].to_dataset()
    else:
        if model is None:
            from ..estimators.base import NSUMModel

            model = NSUMModel.from_tree(tree)
        ll = log_likelihood(model, tree["posterior"].to_dataset(), max_draws)
    post = tree["posterior"].to_dataset()
    scalars = [v for v in post.data_vars if set(post[v].dims) <= {"chain", "draw"}]
    small = xr.DataTree.from_dict(
        {"posterior": post[scalars].sel(draw=ll["draw"].values), "log_likelihood": ll}
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto distribution.*")
        return az.loo(small, pointwise=True, var_name="y", reff=_reff(ll["y"]))


def _same_observations(trees: dict[str, xr.DataTree]) -> None:
    ref_name, ref = None, None
    for name, tree in trees.items():
        y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
        if ref is None:
            ref_name, ref = name, y
            continue
        same = (
            y.shape == ref.shape
            and list(y["group"].values) == list(ref["group"].values)
            and np.array_equal(y.values, ref.values, equal_nan=True)
        )
        if not same:
            raise BayesNsumError(
                f"models '{ref_name}' and '{name}' were fitted to different answers (respondents, "
                "groups or pre-processing differ); LOO can only compare fits of the same data"
            )


def compare_fits(
    fits: dict[str, xr.DataTree], max_draws: int | None = LOO_DRAWS
) -> tuple[pd.DataFrame, dict]:
    """Rank fits of the same data by PSIS-LOO.

    Returns
    -------
    table : pandas.DataFrame
        One row per model, best first: ``model``, ``rank``, ``elpd_loo``, ``se``, ``p_loo``,
        ``elpd_diff``, ``dse``, ``weight`` (stacking), ``n_bad_k`` (respondents with Pareto k
        above ``k_threshold``), ``max_k``, ``k_threshold``, ``warning``.
    loos : dict
        Label -> ``ELPDData``.
    """
    import arviz as az

    if len(fits) < 2:
        raise BayesNsumError("model comparison needs at least two fits")
    _same_observations(fits)
    loos = {name: loo_of_fit(tree, max_draws=max_draws) for name, tree in fits.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto distribution.*")
        cmp = az.compare(loos, round_to="none")
    rows = []
    for name, r in cmp.iterrows():
        lo = loos[name]
        k = np.asarray(lo.pareto_k)
        thr = float(lo.good_k)
        n_bad = int(np.sum(k > thr))
        warn = []
        if n_bad:
            warn.append(f"{n_bad} respondent(s) with Pareto k > {thr:.2f}: LOO unreliable for them")
        if float(np.max(k)) > 1:
            warn.append("some Pareto k > 1")
        rows.append(
            {
                "model": name,
                "rank": int(r["rank"]),
                "elpd_loo": float(r["elpd"]),
                "se": float(r["se"]),
                "p_loo": float(r["p"]),
                "elpd_diff": float(r["elpd_diff"]),
                "dse": float(r["dse"]),
                "weight": float(r["weight"]),
                "n_bad_k": n_bad,
                "max_k": float(np.max(k)),
                "k_threshold": thr,
                "warning": "; ".join(warn),
            }
        )
    return pd.DataFrame(rows).sort_values("rank").reset_index(drop=True), loos
