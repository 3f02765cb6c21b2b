r"""Prior checks: what a prior set implies before the data, and how much it matters after.

Two tools:

**Prior predictive checks** (:func:`sample_prior_predictive`, :func:`prior_predictive_table`,
:func:`plot_prior_predictive`). Parameters are drawn from a model's merged priors with
:meth:`~bayes_nsum.priors.Prior.sample` and pushed through the model's generative structure
(numpy, no PyMC, no sampling of the posterior): respondents' degrees, their answers to every
group and the hidden groups' sizes. The table sets the prior predictive distribution of simple
statistics of the answers (mean answer and share of zeros per group, median degree) beside the
same statistics of the survey, with the survey's percentile inside the prior predictive
distribution: a percentile near 0 or 100 means the priors put almost no mass on surveys like this
one. Generative structures implemented: the Maltiel et al. (2015) family (``degree``,
``barrier``, ``transmission``, ``combined``, recall calibration, log-normal or gamma degree) and
the Zheng et al. (2006) ``overdispersed`` model.

**Power-scaling sensitivity** (:func:`power_scaling_sensitivity`). Following Kallioinen et al.
(2024, Stat Comput 34:57), the prior (or the likelihood) is raised to a power
:math:`\alpha \in \{0.99, 1.01\}`; the posterior under the scaled prior is approximated by
Pareto-smoothed importance weights :math:`p(\theta)^{\alpha-1}` on the existing draws and its
distance from the posterior (cumulative Jensen-Shannon distance divided by
:math:`|\log_2\alpha|`) is the sensitivity. The computation is ArviZ's
:func:`arviz.psense` (arviz 1.3); this module supplies the two groups it needs, which the fit does
not store because the likelihood is a ``pm.Potential``:

* ``log_prior`` -- the log density of every *model prior* (the :class:`~bayes_nsum.priors.Prior`
  objects of the merged prior config, per parameter and group), evaluated with scipy at the
  posterior draws. Hierarchical terms (a latent log-degree's Normal(mu, sigma), Zheng et al.'s
  standardised effects) are part of the model, not of the prior, and are not scaled;
* ``log_likelihood`` -- the model's likelihood terms (``pm.Potential`` terms whose name contains
  ``loglik``, plus any observed variables), evaluated at each posterior draw.

Caveat, stated in every table's ``attrs["note"]``: a uniform prior has a constant log density, so
power-scaling cannot detect sensitivity to its *bounds*; with the Maltiel et al. priors (all
uniform except tau) only tau's prior is scaled. Compare prior sets (``bayes-nsum compare-priors``)
to see the effect of bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import BayesNsumError
from .priors import Prior

__all__ = [
    "prior_logpdf",
    "log_prior_draws",
    "log_likelihood_draws",
    "power_scaling_sensitivity",
    "sample_prior_predictive",
    "prior_predictive_table",
    "plot_prior_predictive",
    "PRIOR_PREDICTIVE_COLUMNS",
    "SENSITIVITY_COLUMNS",
]

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
SENSITIVITY_COLUMNS = ["variable", "group", "prior", "likelihood", "diagnosis"]

#: posterior variables examined by default (those present and not constant are used)
SENSITIVITY_VARS = (
    "mu",
    "sigma",
    "gamma",
    "sigma_alpha",
    "mu_beta",
    "sigma_beta",
    "log_visible",
    "tau",
    "delta",
    "rho",
    "rho_known",
    "omega",
    "size",
)
_MAX_LAMBDA = 1e12  # cap on Poisson means in prior predictive draws (extreme priors)
_SAMPLE_DIMS = ("chain", "draw")


# ---------------------------------------------------------------------------------------------
# prior densities
# ---------------------------------------------------------------------------------------------


def prior_logpdf(prior: Prior, x: Any) -> np.ndarray:
    """Log density of a :class:`~bayes_nsum.priors.Prior` at ``x`` (scipy; 0 for ``Fixed``).

    Parameters
    ----------
    prior : Prior
        The prior; its :meth:`~bayes_nsum.priors.Prior.canonical` parameters are used, so Beta
        priors written by mean/concentration or by a range give the same density as PyMC's.
    x : array_like
        Points (any shape).

    Returns
    -------
    numpy.ndarray
        ``log p(x)`` with the shape of ``x`` (``-inf`` outside the support).
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    p = prior.canonical()
    d = prior.dist
    if d == "Fixed":
        return np.zeros_like(x)
    if d == "Beta":
        return stats.beta.logpdf(x, p["alpha"], p["beta"])
    if d == "Uniform":
        return stats.uniform.logpdf(x, loc=p["lower"], scale=p["upper"] - p["lower"])
    if d == "Normal":
        return stats.norm.logpdf(x, loc=p["mu"], scale=p["sigma"])
    if d == "HalfNormal":
        return stats.halfnorm.logpdf(x, scale=p["sigma"])
    if d == "LogNormal":
        return stats.lognorm.logpdf(x, s=p["sigma"], scale=np.exp(p["mu"]))
    if d == "Gamma":
        return stats.gamma.logpdf(x, a=p["alpha"], scale=1 / p["beta"])
    if d == "Exponential":
        return stats.expon.logpdf(x, scale=1 / p["lam"])
    if d == "HalfCauchy":
        return stats.halfcauchy.logpdf(x, scale=p["beta"])
    raise BayesNsumError(f"no log density for prior family '{d}'")  # pragma: no cover


def _is_flat(prior: Prior) -> bool:
    """True when the log density is constant on the support (power-scaling sees nothing)."""
    if prior.dist in ("Uniform", "Fixed"):
        return True
    if prior.dist == "Beta":
        c = prior.canonical()
        return bool(np.isclose(c["alpha"], 1.0) and np.isclose(c["beta"], 1.0))
    return False


def _param_draws(post: xr.Dataset, name: str, group: str | None) -> xr.DataArray:
    """Posterior draws of one parameter (one group of a per-group parameter)."""
    if group is None:
        if name not in post:
            raise BayesNsumError(f"the posterior has no variable '{name}'")
        return post[name]
    if name in post:
        da = post[name]
        extra = [d for d in da.dims if d not in _SAMPLE_DIMS]
        if len(extra) == 1 and group in [str(v) for v in da[extra[0]].values]:
            labels = [str(v) for v in da[extra[0]].values]
            return da.isel({extra[0]: labels.index(group)}, drop=True)
    key = f"{name}_{group}"
    if key in post:
        return post[key]
    raise BayesNsumError(f"the posterior has no draws of '{name}' for group '{group}'")


def log_prior_draws(model, posterior: xr.Dataset) -> xr.Dataset:
    """Log prior density of each model parameter at each posterior draw.

    Parameters
    ----------
    model : NSUMModel
        The fitted model (its merged :attr:`priors` are used).
    posterior : xarray.Dataset
        Posterior draws with dims ``chain``, ``draw``.

    Returns
    -------
    xarray.Dataset
        One variable per parameter with a non-fixed prior (summed over its groups), dims
        ``(chain, draw)``; ``attrs["flat"]`` lists the parameters whose priors are flat
        (uniform) and so cannot be power-scaled.
    """
    out: dict[str, xr.DataArray] = {}
    flat: list[str] = []
    for name, value in model.priors.items():
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        total = None
        all_flat = True
        for group, prior in items:
            if prior.is_fixed:
                continue
            all_flat = all_flat and _is_flat(prior)
            x = _param_draws(posterior, name, group).transpose(*_SAMPLE_DIMS)
            lp = xr.DataArray(prior_logpdf(prior, x.values), dims=_SAMPLE_DIMS)
            total = lp if total is None else total + lp
        if total is None:
            continue
        out[name] = total.assign_coords(
            {d: posterior[d].values for d in _SAMPLE_DIMS if d in posterior.coords}
        )
        if all_flat:
            flat.append(name)
    ds = xr.Dataset(out)
    ds.attrs["flat"] = flat
    return ds


def _likelihood_terms(pm_model) -> list:
    import pymc as pm
    import pytensor.tensor as pt

    terms = [p for p in pm_model.potentials if p.name and "loglik" in p.name]
    for rv in pm_model.observed_RVs:
        terms.append(pt.sum(pm.logp(rv, pm_model.rvs_to_values[rv])))
    if not terms:
        raise BayesNsumError(
            "the model has no likelihood terms (no pm.Potential named '*loglik*' and no observed "
            "variables): the likelihood cannot be power-scaled"
        )
    return terms


def log_likelihood_draws(model, posterior: xr.Dataset, max_cells: int = 4_000_000) -> xr.DataArray:
    """Total log-likelihood of the data at each posterior draw.

    The model's likelihood terms are rewritten with every free random variable replaced by a
    batch of posterior draws (``pytensor`` ``vectorize_graph``) and evaluated in chunks of draws
    (at most about ``max_cells`` respondent-by-group cells per chunk).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw)``.
    """
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    pm_model = model.model
    terms = _likelihood_terms(pm_model)
    total = terms[0] if len(terms) == 1 else pt.add(*terms)
    rvs = list(pm_model.free_RVs)
    batched = {
        rv: pt.tensor(name=rv.name, shape=(None, *rv.type.shape), dtype=rv.type.dtype) for rv in rvs
    }
    out = vectorize_graph(total, replace=batched)
    fn = pytensor.function(
        list(batched.values()), out, on_unused_input="ignore", mode="FAST_COMPILE"
    )
    stacked = posterior[[rv.name for rv in rvs]].stack(_sample=_SAMPLE_DIMS)
    arrays = [
        np.ascontiguousarray(stacked[rv.name].transpose("_sample", ...).values, dtype=rv.type.dtype)
        for rv in rvs
    ]
    n_samples = stacked.sizes["_sample"]
    cells = max(1, model.data.n * len(model.data.groups))
    chunk = int(max(1, min(n_samples, max_cells // cells)))
    values = np.concatenate(
        [np.atleast_1d(fn(*[a[i : i + chunk] for a in arrays])) for i in range(0, n_samples, chunk)]
    )
    shape = tuple(posterior.sizes[d] for d in _SAMPLE_DIMS)
    return xr.DataArray(
        values.reshape(shape),
        dims=_SAMPLE_DIMS,
        coords={d: posterior[d].values for d in _SAMPLE_DIMS if d in posterior.coords},
        name="loglik",
    )


def _sensitivity_vars(post: xr.Dataset, var_names) -> list[str]:
    if var_names is not None:
        missing = [v for v in var_names if v not in post]
        if missing:
            raise BayesNsumError(f"the posterior has no variable(s) {', '.join(missing)}")
        return list(var_names)
    keep = []
    for v in SENSITIVITY_VARS:
        if v not in post:
            continue
        arr = np.asarray(post[v].values, float)
        if not np.all(np.isfinite(arr)):
            continue
        # constant variables (fixed parameters) carry no information
        flat = arr.reshape(-1) if arr.ndim else arr
        if np.ptp(flat) == 0:
            continue
        keep.append(v)
    return keep


def power_scaling_sensitivity(
    result,
    model=None,
    var_names: list[str] | None = None,
    alphas: tuple[float, float] = (0.99, 1.01),
    threshold: float = 0.05,
) -> pd.DataFrame:
    """Prior and likelihood power-scaling sensitivity of a fit (ArviZ ``psense``).

    Parameters
    ----------
    result : NSUMResult
        A fit (its ``tree`` posterior; its ``model`` unless ``model`` is given).
    model : NSUMModel, optional
        The model that produced the fit (needed for the priors and the likelihood).
    var_names : list of str, optional
        Posterior variables to examine. Default: the main parameters and the hidden sizes
        (:data:`SENSITIVITY_VARS` that are present and not constant).
    alphas : (float, float)
        Power-scaling exponents (Kallioinen et al. use 0.99 and 1.01).
    threshold : float
        Sensitivity above which a component counts as influential (0.05, as in the paper).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SENSITIVITY_COLUMNS`: one row per variable and group (``""`` for scalar
        parameters); ``prior`` and ``likelihood`` sensitivities; ``diagnosis`` is
        ``"prior-data conflict"`` (both above threshold), ``"strong prior / weak likelihood"``
        (prior above, likelihood below), ``"weak likelihood"`` (both below; the posterior is
        insensitive to both, typically a parameter the data do not inform and whose prior is
        flat) or ``"ok"``. ``attrs["note"]`` lists the flat priors that cannot be scaled.
    """
    import arviz as az

    model = model if model is not None else getattr(result, "model", None)
    if model is None:
        raise BayesNsumError(
            "power-scaling sensitivity needs the model that produced the fit (pass model=)"
        )
    post = result.tree["posterior"].to_dataset()
    names = _sensitivity_vars(post, var_names)
    if not names:
        raise BayesNsumError("no posterior variable to examine for sensitivity")
    log_prior = log_prior_draws(model, post)
    flat = list(log_prior.attrs.get("flat", []))
    log_lik = log_likelihood_draws(model, post).to_dataset(name="loglik")
    tree = xr.DataTree.from_dict(
        {"posterior": post[names], "log_prior": log_prior, "log_likelihood": log_lik}
    )
    scaled = [v for v in log_prior.data_vars if v not in flat]
    if scaled:
        prior_s = az.psense(tree, var_names=names, group="prior", alphas=alphas)
    else:  # every prior is flat: power-scaling the prior changes nothing
        prior_s = xr.zeros_like(post[names].isel(chain=0, draw=0, drop=True))
    lik_s = az.psense(tree, var_names=names, group="likelihood", alphas=alphas)
    rows = []
    for v in names:
        pa, la = prior_s[v], lik_s[v]
        extra = [d for d in pa.dims]
        if not extra:
            rows.append((v, "", float(pa), float(la)))
            continue
        st_p = pa.stack(_i=extra)
        st_l = la.stack(_i=extra)
        for j in range(st_p.sizes["_i"]):
            label = st_p["_i"].values[j]
            label = label if not isinstance(label, tuple) else ",".join(map(str, label))
            rows.append((v, str(label), float(st_p.values[j]), float(st_l.values[j])))
    table = pd.DataFrame(rows, columns=["variable", "group", "prior", "likelihood"])

    def diagnose(r) -> str:
        if r.prior >= threshold and r.likelihood >= threshold:
            return "prior-data conflict"
        if r.prior >= threshold:
            return "strong prior / weak likelihood"
        if r.likelihood < threshold:
            return "weak likelihood"
        return "ok"

    table["diagnosis"] = [diagnose(r) for r in table.itertuples()]
    table = table[SENSITIVITY_COLUMNS]
    note = (
        f"power-scaling alphas {alphas}, threshold {threshold}; priors scaled: "
        f"{', '.join(scaled) or 'none'}"
    )
    if flat:
        note += (
            f"; flat (uniform) priors that power-scaling cannot probe: {', '.join(flat)} "
            "(compare prior sets to see the effect of their bounds)"
        )
    table.attrs["note"] = note
    table.attrs["threshold"] = threshold
    return table


# ---------------------------------------------------------------------------------------------
# prior predictive
# ---------------------------------------------------------------------------------------------


def _draw_group(prior_map: Mapping[str, Prior], groups: list[str], rng, n: int) -> np.ndarray:
    """(n, len(groups)) draws of a per-group parameter."""
    return np.stack([np.broadcast_to(prior_map[g].sample(rng, n), (n,)) for g in groups], axis=1)


def _draw_scalar(prior: Prior, rng, n: int) -> np.ndarray:
    return np.broadcast_to(prior.sample(rng, n), (n,)).astype(float)


def _gamma_shape_rate(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.exp(mu + sigma**2 / 2)
    var = (np.exp(sigma**2) - 1) * np.exp(2 * mu + sigma**2)
    return mean**2 / var, mean / var


def _answers(rng, lam: np.ndarray) -> np.ndarray:
    return rng.poisson(np.clip(lam, 0.0, _MAX_LAMBDA)).astype(float)


def _maltiel_prior_predictive(model, rng, draws: int, respondents: int) -> dict[str, Any]:
    d = model.data
    pri = model.priors
    hidden, known, groups = list(d.hidden), list(d.known), d.groups
    n_pop = float(d.total_population)
    mu = _draw_scalar(pri["mu"], rng, draws)
    sigma = _draw_scalar(pri["sigma"], rng, draws)
    log_vis = _draw_group(pri["log_visible"], hidden, rng, draws)
    delta = _draw_group(pri["delta"], hidden, rng, draws)
    opts = model.options
    tau = (
        _draw_group(pri["tau"], hidden, rng, draws) if opts["transmission"] else np.ones_like(delta)
    )
    if opts["degree"] == "gamma":
        a, b = _gamma_shape_rate(mu, sigma)
        degree = rng.gamma(a[:, None], 1 / b[:, None], (draws, respondents))
    else:
        degree = np.exp(rng.normal(mu[:, None], sigma[:, None], (draws, respondents)))
    log_known = np.log(d.known_sizes.loc[known].to_numpy(float) / n_pop)
    log_v = np.concatenate([np.broadcast_to(log_known, (draws, len(known))), log_vis], axis=1)
    params: dict[str, np.ndarray] = {"mu": mu, "sigma": sigma}
    if opts["recall_calibration"]:
        gamma = _draw_scalar(pri["gamma"], rng, draws)
        params["gamma"] = gamma
        log_r = log_v + gamma[:, None] * (log_v - float(np.mean(log_known)))
    else:
        log_r = log_v
    lam = degree[:, :, None] * np.exp(log_r)[:, None, :]
    if opts["barrier"]:
        if getattr(model, "shared_barrier", False):
            # one dispersion for the known groups; every dispersion acts on the reported share
            rho_known = _draw_scalar(pri["rho_known"], rng, draws)
            rho_h = _draw_group(pri["rho"], hidden, rng, draws)
            params["rho_known"] = rho_known
            params["rho"] = rho_h
            rho = np.concatenate([np.repeat(rho_known[:, None], len(known), axis=1), rho_h], axis=1)
            log_p = log_r
        else:
            rho = _draw_group(pri["rho"], groups, rng, draws)
            params["rho"] = rho
            log_p = np.concatenate(
                [np.broadcast_to(log_known, (draws, len(known))), log_vis - np.log(tau * delta)],
                axis=1,
            )
        shape = np.clip(np.exp(log_p) * (1 / np.clip(rho, 1e-12, None) - 1), 1e-12, None)
        lam = lam * rng.gamma(shape[:, None, :], 1 / shape[:, None, :], lam.shape)
    y = _answers(rng, lam)
    log_prev = log_vis - np.log(tau) - np.log(delta)
    params.update({"log_visible": log_vis, "tau": tau, "delta": delta})
    return {"params": params, "degree": degree, "y": y, "log_prev": log_prev}


def _overdispersed_prior_predictive(model, rng, draws: int, respondents: int) -> dict[str, Any]:
    d = model.data
    pri = model.priors
    hidden, known, groups = list(d.hidden), list(d.known), d.groups
    n_pop = float(d.total_population)
    sigma_alpha = _draw_scalar(pri["sigma_alpha"], rng, draws)
    mu_beta = _draw_scalar(pri["mu_beta"], rng, draws)
    sigma_beta = _draw_scalar(pri["sigma_beta"], rng, draws)
    inv_omega = _draw_group(pri["inv_omega"], groups, rng, draws)
    tau = _draw_group(pri["tau"], hidden, rng, draws)
    delta = _draw_group(pri["delta"], hidden, rng, draws)
    alpha = rng.normal(0.0, 1.0, (draws, respondents)) * sigma_alpha[:, None]
    beta = mu_beta[:, None] + sigma_beta[:, None] * rng.normal(0.0, 1.0, (draws, len(groups)))
    omega = 1 / np.clip(inv_omega, 1e-12, None)
    log_mean = np.clip(alpha[:, :, None] + beta[:, None, :], None, np.log(_MAX_LAMBDA))
    excess = np.clip(omega - 1, 1e-9, None)[:, None, :]
    xi = np.exp(log_mean) / excess
    lam = rng.gamma(np.clip(xi, 1e-12, None), excess)
    y = _answers(rng, lam)
    m_known = d.known_sizes.loc[known].to_numpy(float) / n_pop
    k_idx = [groups.index(k) for k in known]
    h_idx = [groups.index(h) for h in hidden]
    beta_known = beta[:, k_idx]
    top = beta_known.max(axis=1, keepdims=True)
    log_sum = top[:, 0] + np.log(np.exp(beta_known - top).sum(axis=1))
    scale = np.log(m_known.sum()) - log_sum
    degree = np.exp(alpha - scale[:, None])
    log_vis = beta[:, h_idx] + scale[:, None]
    params = {
        "sigma_alpha": sigma_alpha,
        "mu_beta": mu_beta,
        "sigma_beta": sigma_beta,
        "omega": omega,
        "log_visible": log_vis,
        "tau": tau,
        "delta": delta,
    }
    return {
        "params": params,
        "degree": degree,
        "y": y,
        "log_prev": log_vis - np.log(tau) - np.log(delta),
    }


def sample_prior_predictive(
    model, draws: int = 500, respondents: int = 200, seed: int = 0
) -> xr.Dataset:
    """Draw from the prior predictive distribution of a model (numpy; nothing is fitted).

    Parameters
    ----------
    model : NSUMModel
        A model object (not fitted): its merged priors, options, known sizes, frame population
        and denominators are used; the survey answers are not.
    draws : int
        Prior draws.
    respondents : int
        Simulated respondents per draw (at most the survey's number of respondents).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives identical draws.

    Returns
    -------
    xarray.Dataset
        Dims ``draw``, ``respondent``, ``group``, ``hidden``: the parameters; ``degree``
        (draw, respondent); per draw the statistics of the simulated answers ``mean_answer`` and
        ``share_zero`` (draw, group) and ``median_degree`` (draw); the hidden groups' ``size``,
        ``prevalence`` and ``one_in_x`` (draw, hidden). ``attrs``: model, prior set, seed.
    """
    from .estimators.maltiel import MaltielModel
    from .estimators.overdispersed import OverdispersedModel

    if draws < 1 or respondents < 1:
        raise BayesNsumError("prior predictive: draws and respondents must be >= 1")
    rng = np.random.default_rng(seed)
    d = model.data
    n_resp = int(min(respondents, d.n))
    if isinstance(model, MaltielModel):
        sim = _maltiel_prior_predictive(model, rng, draws, n_resp)
    elif isinstance(model, OverdispersedModel):
        sim = _overdispersed_prior_predictive(model, rng, draws, n_resp)
    else:
        raise BayesNsumError(
            f"prior predictive checks are implemented for the Maltiel et al. models (degree, "
            f"barrier, transmission, combined) and the overdispersed model, not for "
            f"'{model.name}'"
        )
    hidden, groups = list(d.hidden), d.groups
    n_pop = float(d.total_population)
    size = n_pop * np.exp(sim["log_prev"])
    den = np.array([d.denominator(h) for h in hidden], float)
    prevalence = size / den
    y = sim["y"]
    ds = xr.Dataset(
        {
            "degree": (("draw", "respondent"), sim["degree"]),
            "median_degree": ("draw", np.median(sim["degree"], axis=1)),
            "mean_answer": (("draw", "group"), y.mean(axis=1)),
            "share_zero": (("draw", "group"), (y == 0).mean(axis=1)),
            "size": (("draw", "hidden"), size),
            "prevalence": (("draw", "hidden"), prevalence),
            "one_in_x": (("draw", "hidden"), 1 / prevalence),
        },
        coords={
            "draw": np.arange(draws),
            "respondent": np.arange(n_resp),
            "group": groups,
            "hidden": hidden,
        },
    )
    for name, value in sim["params"].items():
        if value.ndim == 1:
            ds[name] = ("draw", value)
        elif value.shape[1] == len(hidden) and (
            name in ("log_visible", "tau", "delta")
            or (name == "rho" and getattr(model, "shared_barrier", False))
        ):
            ds[name] = (("draw", "hidden"), value)
        else:
            ds[name] = (("draw", "group"), value)
    ds.attrs.update(
        {
            "model": model.name,
            "prior_set": str(getattr(model, "prior_set_name", None)),
            "seed": int(seed),
            "respondents": n_resp,
        }
    )
    return ds


def _observed_stats(data) -> dict[str, Any]:
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
    observed = _observed_stats(data) if data is not None else None
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


def plot_prior_predictive(
    sets: xr.Dataset | Mapping[str, xr.Dataset], path: str | Path, data=None
) -> Path:
    """Plot prior predictive intervals (one colour per prior set) beside the survey.

    Three panels: the per-draw median degree; the mean answer to each group (log scale, survey
    values as black dots); the hidden groups' sizes. Bars are 90% intervals with the median.

    Parameters
    ----------
    sets : Dataset or mapping label -> Dataset
        Output(s) of :func:`sample_prior_predictive`.
    path : path
        Image file to write (PNG).
    data : ARD, optional
        The survey, for the observed values.

    Returns
    -------
    Path
        The image written.
    """
    import matplotlib
    from matplotlib.figure import Figure

    from .io import atomic_write

    if isinstance(sets, xr.Dataset):
        sets = {str(sets.attrs.get("prior_set", "prior")): sets}
    labels = list(sets)
    first = sets[labels[0]]
    groups = [str(g) for g in first["group"].values]
    hidden = [str(h) for h in first["hidden"].values]
    observed = _observed_stats(data) if data is not None else None
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = Figure(figsize=(15, max(4.0, 0.28 * len(groups) + 1.5)))
    axes = fig.subplots(
        1,
        3,
        gridspec_kw={"width_ratios": [1, 2, 1.4]},
    )
    width = 0.8 / max(len(labels), 1)

    def bars(ax, values_of, names, obs=None):
        for j, lab in enumerate(labels):
            vals = [values_of(sets[lab], n) for n in names]
            q = np.array([np.quantile(v, [0.05, 0.5, 0.95]) for v in vals])
            pos = np.arange(len(names)) + (j - (len(labels) - 1) / 2) * width
            ax.errorbar(
                q[:, 1],
                pos,
                xerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]],
                fmt="o",
                ms=3,
                color=colors[j % len(colors)],
                label=lab,
            )
        if obs is not None:
            ax.plot(obs, np.arange(len(names)), "kD", ms=4, label="survey")
        ax.set_yticks(np.arange(len(names)), names)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xscale("log")

    bars(
        axes[0],
        lambda ds, _n: ds["median_degree"].values,
        ["median degree"],
        [observed["median_degree"]] if observed else None,
    )
    axes[0].set_title("degree (per-draw median)")
    bars(
        axes[1],
        lambda ds, g: np.maximum(ds["mean_answer"].sel(group=g).values, 1e-4),
        groups,
        [max(observed["mean_answer"][g], 1e-4) for g in groups] if observed else None,
    )
    axes[1].set_title("mean answer per group (floored at 1e-4)")
    bars(axes[2], lambda ds, h: ds["size"].sel(hidden=h).values, hidden)
    axes[2].set_title("hidden group size")
    handles, names = axes[1].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    fig.suptitle("Prior predictive checks (90% intervals, median)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out = atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    return out
