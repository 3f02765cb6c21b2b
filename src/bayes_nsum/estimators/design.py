r"""Survey weights in the Bayesian models: the design adjustment of the pseudo-posterior.

With weights, a model's likelihood is the weighted pseudo-likelihood
:math:`\sum_i \tilde w_i \log p(y_i \mid \theta)`, :math:`\tilde w_i = w_i n / \sum_j w_j`
(:class:`~bayes_nsum.estimators.components.CountStats` weights every statistic; a latent effect's
density is weighted like its respondent's answers). Its posterior centres on the
design-consistent value, but its spread is not the design's: Williams and Savitsky (2021,
Bayesian Analysis 16(1), "Uncertainty estimation for pseudo-Bayesian inference under complex
sampling") rescale the draws,

.. math::
    \theta^{a}_s = \bar\theta + R\,(\theta_s - \bar\theta), \qquad
    R = L_V L_\Sigma^{-1},

where :math:`\Sigma = L_\Sigma L_\Sigma^\top` is the pseudo-posterior covariance (an estimate of
:math:`H^{-1}`) and :math:`V = L_V L_V^\top = \Sigma J \Sigma` the sandwich covariance, with
:math:`J` the design-based variance of the weighted score: per stratum h with :math:`n_h`
primary sampling units c, :math:`J = \sum_h \frac{n_h}{n_h - 1}\sum_{c \in h}
(z_{c} - \bar z_h)(z_{c} - \bar z_h)^\top`, :math:`z_c = \sum_{i \in c} \tilde w_i
\nabla_\theta \log p(y_i \mid \bar\theta)`. The adjusted draws then have covariance :math:`V`.

Here :math:`\theta` is every free parameter of the PyMC model on its unconstrained scale except
the respondent- and area-level effects (latent degrees, area effects), which keep their draws;
each respondent's score is the central finite difference of its log-likelihood with the latent
degree integrated out (:meth:`~bayes_nsum.estimators.base.NSUMModel.pointwise_loglik`), at the
posterior means of the area effects. Parameters the data do not inform (a transmission rate,
whose score is zero) are left as they are. Without strata every respondent's stratum is the
same; without clusters every respondent is its own sampling unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import BayesNsumError

#: finite-difference step on the unconstrained scale
STEP = 1e-4
LOCAL_DIMS = ("respondent", "area")


def _functions(pm_model, rvs):
    """Compiled maps (batched over a leading draw axis): constrained values -> unconstrained,
    unconstrained -> constrained, and every free variable -> the deterministics."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    def batched(v, name):
        return pt.tensor(name=name, shape=(None, *v.type.shape), dtype=v.type.dtype)

    fwd_in, fwd_out, back_in, back_out = [], [], [], []
    for rv in rvs:
        tr = pm_model.rvs_to_transforms.get(rv)
        x, u = batched(rv, f"{rv.name}_x"), batched(rv, f"{rv.name}_u")
        fwd_in.append(x)
        back_in.append(u)
        fwd_out.append(x if tr is None else tr.forward(x, *rv.owner.inputs))
        back_out.append(u if tr is None else tr.backward(u, *rv.owner.inputs))
    mode = "FAST_COMPILE"
    forward = pytensor.function(fwd_in, fwd_out, mode=mode, on_unused_input="ignore")
    backward = pytensor.function(back_in, back_out, mode=mode, on_unused_input="ignore")
    free = list(pm_model.free_RVs)
    dets = list(pm_model.deterministics)
    inputs = {rv: batched(rv, rv.name) for rv in free}
    det_fn = None
    if dets:
        det_fn = pytensor.function(
            list(inputs.values()),
            vectorize_graph(dets, replace=inputs),
            mode=mode,
            on_unused_input="ignore",
        )
    return forward, backward, det_fn, free, dets


def _stack(post: xr.Dataset, name: str) -> np.ndarray:
    da = post[name]
    return np.asarray(da.transpose("chain", "draw", ...).values, float).reshape(
        post.sizes["chain"] * post.sizes["draw"], *da.shape[2:]
    )


def design_variance(scores: np.ndarray, strata=None, cluster=None) -> np.ndarray:
    """:math:`J`: the with-replacement design variance of the total of per-respondent scores
    (n, P), primary sampling units within strata."""
    n = scores.shape[0]
    strata = np.zeros(n, int) if strata is None else np.unique(strata, return_inverse=True)[1]
    psu = np.arange(n) if cluster is None else np.unique(cluster, return_inverse=True)[1]
    p = scores.shape[1]
    J = np.zeros((p, p))
    for h in np.unique(strata):
        rows = strata == h
        units, inv = np.unique(psu[rows], return_inverse=True)
        if len(units) < 2:
            continue  # a stratum with one unit gives no variance estimate
        z = np.zeros((len(units), p))
        np.add.at(z, inv, scores[rows])
        dz = z - z.mean(axis=0)
        J += len(units) / (len(units) - 1) * dz.T @ dz
    return J


def williams_savitsky(model, post: xr.Dataset) -> tuple[xr.Dataset, dict[str, Any]]:
    """Design-adjusted draws of a weighted fit (see the module docstring).

    Parameters
    ----------
    model : NSUMModel
        The fitted (weighted) model.
    post : xarray.Dataset
        Its raw posterior (chain, draw, ...): free variables and deterministics.

    Returns
    -------
    (xarray.Dataset, dict)
        The posterior with adjusted global parameters and recomputed deterministics, and a
        record of the adjustment (parameters, sampling units, strata, scale factors).
    """
    pm_model = model.model
    rvs = [
        rv
        for rv in pm_model.free_RVs
        if not set(pm_model.named_vars_to_dims.get(rv.name) or ()) & set(LOCAL_DIMS)
    ]
    forward, backward, det_fn, free, dets = _functions(pm_model, rvs)
    S = post.sizes["chain"] * post.sizes["draw"]
    shapes = [post[rv.name].shape[2:] for rv in rvs]
    sizes = [int(np.prod(sh)) for sh in shapes]
    theta = np.concatenate(
        [np.asarray(u).reshape(S, -1) for u in forward(*[_stack(post, rv.name) for rv in rvs])],
        axis=1,
    )
    mean = theta.mean(axis=0)
    P = theta.shape[1]

    def split(mat):
        parts, start = [], 0
        for sh, k in zip(shapes, sizes, strict=True):
            parts.append(mat[:, start : start + k].reshape(len(mat), *sh))
            start += k
        return parts

    def draws_of(unconstrained: np.ndarray) -> dict[str, np.ndarray]:
        """Constrained free variables and deterministics for rows of unconstrained globals;
        local effects at their posterior means."""
        m = len(unconstrained)
        values = dict(zip([rv.name for rv in rvs], backward(*split(unconstrained)), strict=True))
        for rv in free:
            if rv.name not in values:
                values[rv.name] = np.broadcast_to(
                    _stack(post, rv.name).mean(axis=0), (m, *post[rv.name].shape[2:])
                )
        if det_fn is not None:
            outs = det_fn(*[values[rv.name] for rv in free])
            values.update({d.name: np.asarray(o) for d, o in zip(dets, outs, strict=True)})
        return values

    def as_dataset(values: dict[str, np.ndarray], m: int) -> xr.Dataset:
        out = {}
        for name, arr in values.items():
            dims = post[name].dims[2:]
            out[name] = (("chain", "draw", *dims), np.asarray(arr).reshape(1, m, *arr.shape[1:]))
        coords = {
            d: post[d].values for d in post.dims if d not in ("chain", "draw") and d in post.coords
        }
        return xr.Dataset(out, coords=coords)

    # per-respondent scores at the posterior mean, by central differences
    probes = np.repeat(mean[None, :], 2 * P, axis=0)
    probes[np.arange(P), np.arange(P)] += STEP
    probes[P + np.arange(P), np.arange(P)] -= STEP
    ll = model.pointwise_loglik(as_dataset(draws_of(probes), 2 * P))
    w = model.weights
    scores = w[:, None] * ((ll[:P] - ll[P:]) / (2 * STEP)).T  # (n, P)
    data = model.data

    def design(s):
        return None if s is None else s.to_numpy()

    J = design_variance(scores, design(data.strata), design(data.cluster))
    informed = np.diag(J) > 1e-10 * max(np.max(np.diag(J)), 1e-300)
    if not informed.any():
        raise BayesNsumError("survey weights: no parameter's score varies across respondents")
    idx = np.nonzero(informed)[0]
    sigma = np.atleast_2d(np.cov(theta[:, idx], rowvar=False))
    V = sigma @ J[np.ix_(idx, idx)] @ sigma
    try:
        R = np.linalg.cholesky(V) @ np.linalg.inv(np.linalg.cholesky(sigma))
    except np.linalg.LinAlgError:
        raise BayesNsumError(
            "survey weights: the design adjustment's covariance is not positive definite "
            "(too few sampling units for the parameters?)"
        ) from None
    adjusted = theta.copy()
    adjusted[:, idx] = mean[idx] + (theta[:, idx] - mean[idx]) @ R.T
    values = dict(zip([rv.name for rv in rvs], backward(*split(adjusted)), strict=True))
    for rv in free:
        values.setdefault(rv.name, _stack(post, rv.name))
    if det_fn is not None:
        outs = det_fn(*[values[rv.name] for rv in free])
        values.update({d.name: np.asarray(o) for d, o in zip(dets, outs, strict=True)})
    new = post.copy()
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    for name, arr in values.items():
        new[name] = (post[name].dims, np.asarray(arr).reshape(nc, nd, *post[name].shape[2:]))
    labels = []
    for rv in rvs:
        da = post[rv.name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            labels.append(rv.name)
            continue
        flat = da.isel(chain=0, draw=0, drop=True).stack(_i=extra)["_i"].values
        labels += [f"{rv.name}[{', '.join(map(str, np.atleast_1d(i)))}]" for i in flat]
    sd_before = np.sqrt(np.diag(sigma))
    sd_after = np.sqrt(np.diag(V))
    info = {
        "method": "Williams-Savitsky (2021) sandwich adjustment of the weighted pseudo-posterior",
        "parameters": [labels[i] for i in idx],
        "not_informed": [labels[i] for i in np.nonzero(~informed)[0]],
        "sd_ratio": {
            labels[i]: float(a / b) for i, a, b in zip(idx, sd_after, sd_before, strict=True)
        },
        "sampling_units": int(len(np.unique(design(data.cluster))))
        if data.cluster is not None
        else data.n,
        "strata": int(len(np.unique(design(data.strata)))) if data.strata is not None else 1,
    }
    return new, info
