r"""Power-scaling sensitivity of a fit: how much the prior and the likelihood matter.

Following Kallioinen et al. (2024, Stat Comput 34:57), the prior (or the likelihood) is raised to
a power :math:`\alpha \in \{0.99, 1.01\}`; the posterior under the scaled prior is approximated
by Pareto-smoothed importance weights :math:`p(\theta)^{\alpha-1}` on the existing draws and its
distance from the posterior (cumulative Jensen-Shannon distance divided by
:math:`|\log_2\alpha|`) is the sensitivity. The computation is ArviZ's :func:`arviz.psense`; this
module supplies the two groups it needs:

* ``log_prior`` -- the log density of every *model prior* (the
  :class:`~bayes_nsum.priors.Prior` objects of the merged prior config, per parameter and
  group; PyMC's ``pm.logp``) at the posterior draws. Hierarchical terms (a latent log-degree's
  Normal(mu, sigma), standardised area effects) are part of the model, not of the prior, and are
  not scaled;
* ``log_likelihood`` -- the model's likelihood terms (``pm.Potential`` terms whose name contains
  ``loglik``, plus any observed variables), evaluated at each posterior draw.

Caveat, stated in every table's ``attrs["note"]``: a uniform prior has a constant log density, so
power-scaling cannot detect sensitivity to its *bounds*; with the random-degree models'
default priors (all uniform except tau) only tau's prior is scaled. Compare prior sets (``bayes-nsum compare-priors``)
to see the effect of bounds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesNsumError

SENSITIVITY_COLUMNS = ["variable", "group", "prior", "likelihood", "diagnosis"]

_SAMPLE_DIMS = ("chain", "draw")


# ---------------------------------------------------------------------------------------------
# prior densities
# ---------------------------------------------------------------------------------------------


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
            all_flat = all_flat and prior.is_flat
            # a scalar prior of a vector parameter (e.g. one prior for every covariate's
            # effect): the log density summed over the parameter's own dims
            x = _param_draws(posterior, name, group).transpose(*_SAMPLE_DIMS, ...)
            lp = np.asarray(prior.logp(x.values))
            lp = lp.reshape(lp.shape[:2] + (-1,)).sum(axis=-1) if lp.ndim > 2 else lp
            lp = xr.DataArray(lp, dims=_SAMPLE_DIMS)
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


def log_likelihood_draws(
    model, posterior: xr.Dataset, max_cells: int = 4_000_000, terms: list | None = None
) -> xr.DataArray:
    """Total log-likelihood of the data at each posterior draw (or of the given ``terms`` of
    the PyMC model, e.g. one evidence source's).

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
    terms = _likelihood_terms(pm_model) if terms is None else terms
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


def _sensitivity_vars(post: xr.Dataset, var_names, model) -> list[str]:
    if var_names is not None:
        missing = [v for v in var_names if v not in post]
        if missing:
            raise BayesNsumError(f"the posterior has no variable(s) {', '.join(missing)}")
        return list(var_names)
    keep = []
    for v in [*model.priors, "size"]:
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
        Posterior variables to examine. Default: every parameter with a prior and the hidden
        sizes (those present in the posterior and not constant).
    alphas : (float, float)
        Power-scaling exponents (Kallioinen et al. use 0.99 and 1.01).
    threshold : float
        Sensitivity above which a component counts as influential (0.05, as in the paper).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SENSITIVITY_COLUMNS`: one row per variable and group (``""`` for scalar
        parameters); ``prior`` and ``likelihood`` sensitivities; ``diagnosis`` is
        ``"prior-dominated (not identified by the data)"`` for the parameters the model
        declares unidentified (``model.not_identified``: transmission rates and degree ratios,
        whose posteriors are their priors), ``"prior-data conflict"`` (both above threshold), ``"strong prior / weak likelihood"``
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
    names = _sensitivity_vars(post, var_names, model)
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

    prior_only = set(getattr(model, "not_identified", ()))

    def diagnose(r) -> str:
        if r.variable in prior_only:  # the answers carry no information on it: by design
            return "prior-dominated (not identified by the data)"
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
