r"""Per-group barrier likelihood with every respondent's log-degree integrated out on grids.

The barrier-effects model of Maltiel et al. (2015) with one dispersion per group: given the
log-degree :math:`x_i = \log d_i \sim N(\mu, \sigma)`, the answers are independent negative
binomials, :math:`y_{ik} \mid x_i \sim \mathrm{NegBin}(\text{mean } e^{x_i} r_k,
\text{shape } \alpha_k)` (NB2: a Poisson whose share of the network is Gamma distributed across
respondents). Written for one respondent,

.. math::
    \log p(y_i) = \sum_k o_{ik}\Big[\log\frac{\Gamma(y_{ik}+\alpha_k)}{\Gamma(\alpha_k)\,
        y_{ik}!} + y_{ik} c_k\Big] + \log \int e^{F_i(x)}\,\mathrm{d}x,

.. math::
    F_i(x) = s_i x - \sum_k A_{ik}\,\mathrm{sp}(x + c_k) - \frac{(x-\mu)^2}{2\sigma^2}
        - \log\sigma - \tfrac12\log 2\pi,

with :math:`c_k = \log r_k - \log\alpha_k`, :math:`A_{ik} = o_{ik}(\alpha_k + y_{ik})`,
:math:`o_{ik}` = 1 for an answered cell, :math:`s_i` the row sum and
:math:`\mathrm{sp}(z) = \log(1 + e^z)`.

The integral is taken by the trapezoid rule on a uniform grid :math:`x_j = x_0 + jh` that a
*bucket* of respondents shares. Then :math:`\mathrm{sp}(x_j + c_k)` is needed at the J x G
grid points only, :math:`\sum_k A_{ik}\,\mathrm{sp}(x_j + c_k)` is one matrix product (A times
the transposed grid table), and the per-respondent work is J multiply-adds per group plus J
exponentials in a log-sum-exp: no transcendental function per respondent and group. (Adaptive
Gauss-Hermite per respondent, as in the shared-dispersion form, needs one ``log1p`` per
respondent, node and group; with 22 groups and answer vectors that are almost all distinct, that
is 15 times slower per gradient at n = 100,000.)

For an integrand analytic in a strip, the trapezoid rule converges geometrically; for a Gaussian
of standard deviation :math:`s` the relative error is about :math:`2e^{-2\pi^2 s^2/h^2}`
(Trefethen & Weideman 2014, SIAM Review 56:385): 6e-18 at :math:`h = 0.7 s`. The grids are
planned once from the data (:func:`plan_grids`): the answer rows are made distinct (full vector,
missingness included; a row's weight is the number, or the summed normalised survey weights, of
the respondents giving it), and at pilot parameters (log-degrees from the known answers,
moment estimates of the rates and shapes) each row's mode and curvature scale of :math:`F_i`
are found by Newton steps, and the range where :math:`F_i` is within :data:`TAIL_DROP` of its
maximum. Rows are sorted by scale class and location and grouped into *buckets* whose union
range, at a spacing of :data:`SPACING` times their smallest scale, needs at most
:data:`MAX_NODES` nodes; every grid is then extended to exactly that many nodes at its
spacing (more of the tails), so that all grids have one size. While sampling, every bucket's
grid is moved and stretched with the mode and scale of its middle row at the current parameters
(:func:`bucket_nodes`; a few Newton steps per bucket, held constant in the gradient like the
shared form's quadrature centre), so the grids follow the integrands when the parameters move
away from the pilot.

The buckets' rows are cut into chunks of equal size (the last chunk of a bucket padded with
empty rows of weight 0), so that the products of all buckets are one batched matrix product
(chunk x rows x groups times chunk x groups x nodes) and the model's graph has the same size
for any number of buckets. (Written bucket by bucket, the graph grew with the number of buckets,
and PyTensor's rewriting of it for nutpie did not finish in 8 minutes at n = 100,000.)

Accuracy (checked in ``tests/test_barrier_grid.py`` against adaptive Gauss-Hermite quadrature
and ``scipy.integrate.quad``): on 10,000 simulated respondents of the Curitiba design the error
per respondent was at most 1e-12 at the true parameters, 2e-11 with every dispersion 3 times
larger or smaller, 1e-5 with every dispersion 10 times smaller (a posterior that far from the
data's pilot is not one the sampler visits at such n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logsumexp

#: nodes of every bucket's grid (each grid is extended to this many at its spacing)
MAX_NODES = 32
#: a grid covers where the log-integrand lies within this of its maximum
TAIL_DROP = 25.0
#: grid spacing as a share of the smallest curvature scale of the bucket's rows
SPACING = 0.7
#: Newton steps for the middle rows' modes while sampling
NEWTON_STEPS = 8
#: most rows per chunk: a bucket's rows are cut into chunks (the last one padded with empty rows
#: of weight 0), so that all buckets are one batched matrix product; fewer rows per chunk where
#: buckets are small, so that padding stays below about a fifth of the rows
CHUNK_ROWS = 64
_TAIL_STEPS = np.array([4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0])


@dataclass(frozen=True)
class GridPlan:
    """Distinct answer rows, sorted by bucket, and each bucket's grid.

    Attributes
    ----------
    y : (U, G) answers of the distinct rows (0 where missing)
    observed : (U, G) 1.0 where answered
    count : (U,) number of respondents (or summed normalised weights) giving each row
    bounds : list of (start, stop) row slices of the buckets
    grids : (B, 4) array: per bucket the first node x0 and spacing h of its grid of
        :data:`MAX_NODES` nodes at the pilot parameters, and the mode m0 and scale s0 there of
        its middle row (the grid follows that row's mode and scale at other parameter values:
        :func:`bucket_nodes`)
    start_mu : pilot mu (where the Newton steps for the middle rows start)
    chunk_rows : rows per chunk (at most :data:`CHUNK_ROWS`)
    """

    y: np.ndarray
    observed: np.ndarray
    count: np.ndarray
    bounds: list[tuple[int, int]]
    grids: np.ndarray
    start_mu: float = 0.0
    chunk_rows: int = CHUNK_ROWS

    def middle_rows(self) -> np.ndarray:
        return np.array([(a + b) // 2 for a, b in self.bounds])

    def chunks(self) -> tuple[np.ndarray, np.ndarray]:
        """Row of every chunk slot ((C * chunk_rows,), -1 for padding) and bucket of every
        chunk (C,)."""
        take, bucket = [], []
        r = self.chunk_rows
        for b, (a0, b0) in enumerate(self.bounds):
            k = -(-(b0 - a0) // r)
            slots = np.full(k * r, -1)
            slots[: b0 - a0] = np.arange(a0, b0)
            take.append(slots)
            bucket.extend([b] * k)
        return np.concatenate(take), np.asarray(bucket)

    def data_dict(self) -> dict[str, np.ndarray]:
        """The rows laid out in chunks (padding: no answer, weight 0), their row sums, the
        bucket of every chunk and the chunk slot of every bucket's middle row."""
        take, bucket = self.chunks()
        pad = take < 0
        slot = np.empty(len(self.count), dtype=int)
        slot[take[~pad]] = np.flatnonzero(~pad)
        safe = np.where(pad, 0, take)
        return {
            "ard_row_y": np.where(pad[:, None], 0.0, self.y[safe]),
            "ard_row_obs": np.where(pad[:, None], 0.0, self.observed[safe]),
            "ard_row_count": np.where(pad, 0.0, self.count[safe]),
            "ard_row_total": np.where(pad, 0.0, self.y[safe].sum(axis=1)),
            "ard_chunk_bucket": bucket,
            "ard_middle_slot": slot[self.middle_rows()],
        }

    @property
    def nodes(self) -> int:
        """Grid points over all rows (the size of the per-gradient work, times G)."""
        return int(len(self.chunks()[0]) * MAX_NODES)


def _mode_scale(y0, obs, lr, shape, mu, sigma, steps: int = 40, start=None):
    """Mode and curvature scale of F_i (numpy, safeguarded Newton) for every row; the numpy
    twin of the steps in :func:`grid_loglik` (given its ``start`` and ``steps``)."""
    c = lr - np.log(shape)
    a = obs * (shape + y0)
    s = y0.sum(1)
    rsum = (obs * np.exp(lr)).sum(1)
    if start is None:
        x = np.clip(np.log(np.maximum(s, 0.5) / rsum), mu - 4 * sigma, mu + 4 * sigma)
    else:
        x = np.asarray(start, float)
    for _ in range(steps):
        sg = expit(x[:, None] + c)
        d1 = s - (a * sg).sum(1) - (x - mu) / sigma**2
        d2 = -(a * sg * (1 - sg)).sum(1) - 1 / sigma**2
        x = x + np.clip(-d1 / d2, -1.5, 1.5)
    sg = expit(x[:, None] + c)
    d2 = -(a * sg * (1 - sg)).sum(1) - 1 / sigma**2
    return x, 1 / np.sqrt(-d2), a, c, s


def _log_integrand(x, a, c, s, mu, sigma):
    """F_i at points x (U, m), up to the constant in x."""
    sp = np.logaddexp(0.0, x[:, :, None] + c)
    return s[:, None] * x - (a[:, None, :] * sp).sum(-1) - (x - mu) ** 2 / (2 * sigma**2)


def _pilot_rates(y0, obs, w, d):
    r"""Moment estimates of the per-group log rates and NB2 shapes from pilot degrees d.

    With :math:`y \mid d \sim \mathrm{NegBin}(d r, \alpha)`, :math:`E y = r E d` and
    :math:`\mathrm{Var}\, y = r E d + r^2 \mathrm{Var}\, d + r^2 E d^2/\alpha`; the shape is
    kept within dispersions :math:`\rho = r/(r+\alpha)` of 1e-4 to 0.9.
    """
    wo = w[:, None] * obs
    n_k = np.maximum(wo.sum(0), 1.0)
    m = (wo * y0).sum(0) / n_k
    v = (wo * (y0 - m) ** 2).sum(0) / n_k
    ed = np.average(d, weights=w)
    ed2 = np.average(d**2, weights=w)
    r = np.maximum(m / ed, 1e-9)
    excess = v - m - r**2 * (ed2 - ed**2)
    inv_shape = np.where(excess > 0, excess / (r**2 * ed2), 0.0)
    shape = np.clip(1 / np.maximum(inv_shape, 1e-300), r * (1 / 0.9 - 1), r * (1 / 1e-4 - 1))
    return np.log(r), shape


def plan_grids(
    y: np.ndarray, log_known_share: np.ndarray, weights: np.ndarray | None = None
) -> GridPlan:
    """Distinct rows, their buckets and grids (see the module docstring).

    Parameters
    ----------
    y : (n, G) answers, NaN where missing; the first ``len(log_known_share)`` columns are the
        known groups.
    log_known_share : (K,) log of the known groups' population shares.
    weights : (n,) survey weights normalised to mean 1, or None.
    """
    y = np.asarray(y, float)
    obs_n = ~np.isnan(y)
    y0n = np.where(obs_n, y, 0.0)
    ones = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    full = np.concatenate([y0n, obs_n.astype(float)], axis=1)
    rows, inv = np.unique(full, axis=0, return_inverse=True)
    count = np.bincount(inv.ravel(), weights=ones, minlength=len(rows))
    g = y.shape[1]
    y0, obs = rows[:, :g], rows[:, g:]
    nk = len(log_known_share)
    # pilot: log-degrees from the known answers, hidden rates by the moment ratio
    r_known = np.exp(np.asarray(log_known_share, float))
    t = y0n[:, :nk].sum(1)
    rk = (obs_n[:, :nk] * r_known).sum(1)
    ok = rk > 0
    xt = np.log((t[ok] + 0.5) / rk[ok])
    wt = ones[ok]
    mu0 = float(np.average(xt, weights=wt))
    sd0 = float(np.sqrt(np.average((xt - mu0) ** 2, weights=wt)))
    sd0 = max(sd0, 0.25)
    d = np.exp(xt)
    lr, shape0 = _pilot_rates(y0n[ok], obs_n[ok], wt, d)
    centre, sd, a, c, s = _mode_scale(y0, obs, lr, shape0, mu0, sd0)
    top = _log_integrand(centre[:, None], a, c, s, mu0, sd0)[:, 0]
    edges = []
    for side in (-1.0, 1.0):
        pts = centre[:, None] + side * sd[:, None] * _TAIL_STEPS
        drop = top[:, None] - _log_integrand(pts, a, c, s, mu0, sd0)
        first = np.where((drop > TAIL_DROP).any(1), np.argmax(drop > TAIL_DROP, axis=1), -1)
        edges.append(pts[np.arange(len(pts)), first])
    lo, hi = edges
    # buckets: rows sorted by scale class (factors of 2), then by the centre of their range
    cls = np.floor(np.log2(sd)).astype(int)
    order = np.lexsort(((lo + hi) / 2, cls))
    bounds, grids = [], []
    start = 0
    while start < len(order):
        idx = order[start]
        b_lo, b_hi, b_sd, b_cls = lo[idx], hi[idx], sd[idx], cls[idx]
        stop = start + 1
        while stop < len(order):
            j = order[stop]
            if cls[j] != b_cls:
                break
            n_lo, n_hi, n_sd = min(b_lo, lo[j]), max(b_hi, hi[j]), min(b_sd, sd[j])
            if (n_hi - n_lo) / (SPACING * n_sd) + 1 > MAX_NODES:
                break
            b_lo, b_hi, b_sd = n_lo, n_hi, n_sd
            stop += 1
        h = SPACING * b_sd
        # extended on both sides to MAX_NODES nodes at the same spacing (more of the tails)
        x0 = (b_lo + b_hi) / 2 - h * (MAX_NODES - 1) / 2
        bounds.append((start, stop))
        mid = order[(start + stop) // 2]
        grids.append((x0, h, centre[mid], sd[mid]))
        start = stop
    return GridPlan(
        y=y0[order],
        observed=obs[order],
        count=count[order],
        bounds=bounds,
        grids=np.asarray(grids, dtype=float),
        start_mu=float(mu0),
        chunk_rows=int(np.clip(len(rows) // (2.5 * len(bounds)), 1, CHUNK_ROWS)),
    )


def bucket_nodes(grids, mode, scale):
    """Every bucket's nodes (B, MAX_NODES) and spacing (B,), moved and stretched with its
    middle row's mode and scale (numpy or PyTensor; the pilot grids when they are the pilot's)."""
    x0, h, m0, s0 = (grids[:, i] for i in range(4))
    stretch = scale / s0
    offsets = x0 - m0
    steps = h * stretch
    return (mode + stretch * offsets)[:, None] + steps[:, None] * np.arange(MAX_NODES), steps


def _nb_constant(y0, obs, lr, shape):
    """The x-free part of each row's log-likelihood (numpy)."""
    from scipy.special import gammaln

    return (
        obs * (gammaln(y0 + shape) - gammaln(shape) - gammaln(y0 + 1) + y0 * (lr - np.log(shape)))
    ).sum(-1)


def grid_loglik_numpy(plan: GridPlan, lr, shape, mu, sigma) -> np.ndarray:
    """Each distinct row's log-likelihood (U,) by the grid rule at one parameter value (numpy;
    the same sums as :func:`grid_loglik`, bucket by bucket)."""
    c = lr - np.log(shape)
    out = np.empty(len(plan.count))
    mid = plan.middle_rows()
    start = plan.grids[:, 2] + (mu - plan.start_mu)
    m, sc, *_ = _mode_scale(
        plan.y[mid], plan.observed[mid], lr, shape, mu, sigma, NEWTON_STEPS, start
    )
    nodes, steps = bucket_nodes(plan.grids, m, sc)
    for b, (a0, b0) in enumerate(plan.bounds):
        y0, obs, x = plan.y[a0:b0], plan.observed[a0:b0], nodes[b]
        sp = np.logaddexp(0.0, x[:, None] + c)
        f = y0.sum(1)[:, None] * x - (obs * shape + y0) @ sp.T - (x - mu) ** 2 / (2 * sigma**2)
        out[a0:b0] = logsumexp(f, axis=1) + np.log(steps[b] / sigma) - 0.5 * np.log(2 * np.pi)
    return out + _nb_constant(plan.y, plan.observed, lr, shape)


def grid_loglik(stats, keys, plan: GridPlan, log_rate, shape, mu, sigma):
    r"""The per-group barrier log-likelihood of all respondents (PyTensor), degrees integrated
    out on the plan's grids (see the module docstring).

    ``stats`` are the answers' :class:`~.components.CountStats` (their weighted histograms and
    totals give the x-free part), ``keys`` the registered ``plan.data_dict()`` (distinct rows
    in chunks, their weights, each chunk's bucket), ``log_rate`` and ``shape`` (G,) tensors.
    All buckets are one batched matrix product over the chunks, so the graph's size does not
    depend on the number of buckets.
    """
    import pytensor.tensor as pt
    from pytensor.gradient import disconnected_grad

    g = stats.hist_group
    hist = pt.sum(
        stats.hist_count * (pt.gammaln(stats.hist_value + shape[g]) - pt.gammaln(shape[g]))
    )
    c = log_rate - pt.log(shape)
    total = hist - stats.const + pt.dot(stats.totals, c)
    # each bucket's grid follows the mode and scale of its middle row (Newton steps, held
    # constant in the gradient like the shared form's quadrature centre)
    ym, om = keys.row_y[keys.middle_slot], keys.row_obs[keys.middle_slot]
    a_mid = om * shape[None, :] + ym
    s_mid = pt.sum(ym, axis=1)
    xm = pt.as_tensor(plan.grids[:, 2]) + (mu - plan.start_mu)
    for _ in range(NEWTON_STEPS):
        sg = pt.sigmoid(xm[:, None] + c[None, :])
        d1 = s_mid - pt.sum(a_mid * sg, axis=1) - (xm - mu) / sigma**2
        d2 = -pt.sum(a_mid * sg * (1 - sg), axis=1) - 1 / sigma**2
        xm = xm + pt.clip(-d1 / d2, -1.5, 1.5)
    sg = pt.sigmoid(xm[:, None] + c[None, :])
    d2 = -pt.sum(a_mid * sg * (1 - sg), axis=1) - 1 / sigma**2
    nodes, steps = bucket_nodes(
        pt.as_tensor(plan.grids), disconnected_grad(xm), disconnected_grad(1 / pt.sqrt(-d2))
    )  # (B, J), (B,)
    sp = pt.softplus(c[None, :, None] + nodes[:, None, :])  # (B, G, J): the transcendental work
    n_groups = plan.y.shape[1]
    y = keys.row_y.reshape((-1, plan.chunk_rows, n_groups))  # (C, R, G)
    a = keys.row_obs.reshape((-1, plan.chunk_rows, n_groups)) * shape[None, None, :] + y
    x = nodes[keys.chunk_bucket][:, None, :]  # (C, 1, J)
    f = (
        keys.row_total.reshape((-1, plan.chunk_rows))[:, :, None] * x
        - pt.matmul(a, sp[keys.chunk_bucket])
        - (x - mu) ** 2 / (2 * sigma**2)
    )  # (C, R, J)
    top = disconnected_grad(pt.max(f, axis=2, keepdims=True))  # a shift for stability only
    log_int = pt.log(pt.sum(pt.exp(f - top), axis=2)) + top[:, :, 0]
    log_int = log_int + pt.log(steps)[keys.chunk_bucket][:, None]
    weight = keys.row_count.reshape((-1, plan.chunk_rows))
    return (
        total
        + pt.sum(weight * log_int)
        - pt.sum(keys.row_count) * (pt.log(sigma) + 0.5 * np.log(2 * np.pi))
    )
