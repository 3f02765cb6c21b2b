r"""Every model at a set of parameter draws, as answers given one latent effect per respondent.

Once its parameters are fixed, each Bayesian model of the package says the same thing about a
respondent i: a scalar latent effect :math:`z_i` (the log-degree, or Zheng et al.'s respondent
effect) is drawn from a population distribution, and the answers are independent counts given
:math:`z_i` with log-mean :math:`z_i + \ell_{ik}`. A model's :meth:`~.base.NSUMModel.latent`
returns this form as a :class:`LatentModel`; everything that needs the model's generative story
after (or before) the fit uses it:

* :meth:`LatentModel.simulate` draws answers (prior predictive, posterior predictive, SBC);
* :meth:`LatentModel.loglik` is each respondent's log-likelihood with the latent effect
  integrated out (PSIS-LOO), and :meth:`LatentModel.moments` the posterior moments of
  :math:`e^{z_i}` given the answers (respondents' network sizes, internal consistency).

Count families: ``poisson``; ``negbin`` (NB2, variance :math:`m + m^2/\alpha_k`, shape
``shape``); ``zheng`` (NB with variance :math:`\omega_k` times the mean, ``shape`` =
:math:`\omega_k`). Population distributions: ``normal`` (:math:`z \sim N(a, b)`) or ``gamma``
(:math:`e^z \sim \mathrm{Gamma}(a, b)`).

Integration: around the mode of the integrand (safeguarded Newton steps), Gauss-Hermite with
``nodes`` points (the model's own quadrature setting, the one its likelihood uses while
sampling where it integrates the degree out) for a normal latent effect with Poisson or NB2
answers; for the gamma degree and Zheng's NB, whose integrands are skewed, the trapezoid rule
on 64 nodes in sinh-stretched coordinates (accuracy checked against adaptive integration in
the tests).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit, gammaln, polygamma, psi

from .latent_bias import BIAS_SAMPLES, draw_bias, integrate_bias

NEWTON_MAX_STEPS = 60
NEWTON_MAX_STEP = 1.0
#: Newton stops when no step exceeds this: the quadrature is centred at the mode, and against a
#: 1e-9 stop no log-likelihood of a 150 x 30 pooled fit moved by more than 1e-12
NEWTON_TOL = 1e-6
TRAPEZOID_NODES = 64
FAMILIES = ("poisson", "negbin", "zheng")
#: array cells per chunk of draws in the integrals: about 8 MB per temporary array; chunks of
#: this size ran about 15% faster than chunks three times larger (150 x 30 pooled fit, LOO)
CHUNK_CELLS = 1e6
#: threads over chunks of draws (NumPy releases the GIL in its array loops): at most this many,
#: and no more than the cores this process may use
MAX_THREADS = 4


def _threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def _map_chunks(fn, chunks: list) -> list:
    """``[fn(c) for c in chunks]``, on up to :func:`_threads` threads. Each chunk of draws is
    computed alone, so the result is the same for any number of threads."""
    if len(chunks) < 2 or _threads() < 2:
        return [fn(c) for c in chunks]
    with ThreadPoolExecutor(min(_threads(), len(chunks))) as pool:
        return list(pool.map(fn, chunks))


@dataclass
class LatentModel:
    r"""A model at S parameter draws, in latent-effect form (see the module docstring).

    Attributes
    ----------
    family : {"poisson", "negbin", "zheng"}
    log_rate : (S, J, G) array
        :math:`\ell` per draw, row and group; respondent i uses row ``row_index[i]`` (J = 1 and
        ``row_index`` None when every respondent shares it).
    shape : (S, 1 or J, G) array or None
        NB2 shape (negbin) or :math:`\omega` (zheng).
    prior : {"normal", "gamma"}
    prior_a, prior_b : (S,) arrays
        Normal(a, b) for z, or Gamma(shape a, rate b) for :math:`e^z`.
    groups : list of str
    row_index : (n,) int array or None
    z_fitted : (S, n) array or None
        The fitted per-respondent effects, where the model samples them.
    nodes : int
        Gauss-Hermite nodes (the model's quadrature setting).
    log_degree_shift : (S,) array or None
        Network size is :math:`e^{z - \text{shift}}` (Zheng et al.'s scaling); 0 if None.
    zero_prob : (S, 1, G) array or None
        Zero inflation (negbin only): an answer is a structural zero with probability
        :math:`\theta_k`, otherwise NB2.
    bias_chol : (S, G, G) array or None
        Correlated respondent-by-group biases (poisson only): the answers' log-mean gains
        :math:`\epsilon_{ik}`, :math:`\epsilon_i \sim MVN(-\operatorname{diag}\Sigma/2, \Sigma)`,
        :math:`\Sigma = LL^\top` with L this lower Cholesky factor; integrated out by
        :mod:`.latent_bias`. ``log_degree_shift`` may then be (S, n): per respondent.
    bias_fitted : (S, n, G) array or None
        The fitted biases, where the model samples them (with ``z_fitted``).
    bias_samples : int
        Importance samples of the bias integral (:data:`.latent_bias.BIAS_SAMPLES`).
    """

    family: str
    log_rate: np.ndarray
    shape: np.ndarray | None
    prior: str
    prior_a: np.ndarray
    prior_b: np.ndarray
    groups: list[str]
    row_index: np.ndarray | None = None
    z_fitted: np.ndarray | None = None
    nodes: int = 32
    log_degree_shift: np.ndarray | None = None
    zero_prob: np.ndarray | None = None
    bias_chol: np.ndarray | None = None
    bias_fitted: np.ndarray | None = None
    bias_samples: int = BIAS_SAMPLES

    @property
    def n_draws(self) -> int:
        return int(self.prior_a.shape[0])

    def take(self, sl) -> LatentModel:
        """The same model at a subset of the draws."""

        def cut(a):
            return None if a is None else a[sl]

        return replace(
            self,
            log_rate=self.log_rate[sl],
            shape=cut(self.shape),
            prior_a=self.prior_a[sl],
            prior_b=self.prior_b[sl],
            z_fitted=cut(self.z_fitted),
            log_degree_shift=cut(self.log_degree_shift),
            zero_prob=cut(self.zero_prob),
            bias_chol=cut(self.bias_chol),
            bias_fitted=cut(self.bias_fitted),
        )

    def rates(self, rows: np.ndarray | None = None) -> np.ndarray:
        """:math:`\\ell` as (S, n or 1, G) for the respondents ``rows`` (default: all)."""
        if self.row_index is None:
            return self.log_rate
        idx = self.row_index if rows is None else self.row_index[rows]
        return self.log_rate[:, idx, :]

    def draw_latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Fresh latent effects (S, n) from the population distribution."""
        s = self.n_draws
        if self.prior == "normal":
            return rng.normal(self.prior_a[:, None], self.prior_b[:, None], size=(s, n))
        with np.errstate(divide="ignore"):
            return np.log(rng.gamma(self.prior_a[:, None], 1 / self.prior_b[:, None], size=(s, n)))

    def log_degree(self, z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Log network size from latent effects z (S, n) of the respondents ``rows``."""
        shift = self.log_degree_shift
        if shift is None:
            return z
        if shift.ndim == 2:  # per respondent
            return z - (shift if rows is None else shift[:, rows])
        return z - shift[:, None]

    # -- simulation ------------------------------------------------------------------------
    def simulate(
        self,
        rng: np.random.Generator,
        rows: np.ndarray | None = None,
        fitted: bool = False,
        missing: np.ndarray | None = None,
        topcode: dict[str, float] | None = None,
        return_log_degree: bool = False,
    ):
        """One answer matrix per draw: (S, n, G).

        Parameters
        ----------
        rng : numpy Generator
        rows : int array, optional
            Respondents (positions) to simulate; default all (``row_index`` or ``z_fitted``
            fixes n; a shared-rate model without either needs ``rows``).
        fitted : bool
            Use the fitted latent effects (only where the model samples them) instead of
            fresh draws from the population distribution.
        missing : (n, G) bool array, optional
            Cells left missing (NaN) in the replicate, as in the data.
        topcode : dict, optional
            Group -> cap applied to the replicated answers, as the data were capped.
        return_log_degree : bool
            Also return the log network sizes of the simulated respondents (S, n).
        """
        if rows is None:
            if self.row_index is not None:
                rows = np.arange(len(self.row_index))
            elif self.z_fitted is not None:
                rows = np.arange(self.z_fitted.shape[1])
            else:
                raise ValueError("rows is needed when the model has no per-respondent layout")
        rows = np.asarray(rows)
        if fitted:
            if self.z_fitted is None:
                raise ValueError(
                    "this model has no per-respondent latent effects in its posterior (degrees "
                    "integrated out); simulate fresh respondents instead"
                )
            z = self.z_fitted[:, rows]
        else:
            z = self.draw_latent(len(rows), rng)
        log_mean = z[:, :, None] + self.rates(rows)
        if self.bias_chol is not None:
            if fitted and self.bias_fitted is not None:
                log_mean = log_mean + self.bias_fitted[:, rows]
            else:
                log_mean = log_mean + draw_bias(rng, self.bias_chol, len(rows))
        with np.errstate(over="ignore"):
            mean = np.exp(np.minimum(log_mean, 35.0))
        if self.family == "poisson":
            y = rng.poisson(mean).astype(float)
        elif self.family == "negbin":
            y = negbin_draw(rng, mean, np.broadcast_to(self.shape, mean.shape)).astype(float)
        else:  # zheng: NB2 with shape mean / (omega - 1); Poisson where omega = 1
            excess = np.broadcast_to(self.shape - 1.0, mean.shape)
            pois = excess < 1e-10
            nb = negbin_draw(rng, mean, np.where(pois, 1.0, mean / np.where(pois, 1.0, excess)))
            y = np.where(pois, rng.poisson(mean), nb).astype(float)
        if self.zero_prob is not None:
            y[rng.random(y.shape) < np.broadcast_to(self.zero_prob, y.shape)] = 0.0
        if topcode:
            for j, grp in enumerate(self.groups):
                if grp in topcode:
                    np.minimum(y[:, :, j], topcode[grp], out=y[:, :, j])
        if missing is not None:
            y[:, np.asarray(missing)[rows]] = np.nan
        return (y, self.log_degree(z, rows)) if return_log_degree else y

    # -- latent effect integrated out -------------------------------------------------------
    def loglik(self, observed: np.ndarray) -> np.ndarray:
        """Log-likelihood (S, n) of each respondent's answers, latent effect integrated out.

        ``observed`` is (n, G) with NaN for a missing answer (left out of the respondent's
        likelihood); row i belongs to respondent i (``row_index`` order).
        """
        y = np.asarray(observed, float)
        obs = ~np.isnan(y)

        def one(sl: slice) -> np.ndarray:
            with np.errstate(over="ignore", under="ignore"):
                return _integrate(self.take(sl), y, obs)[0]

        return np.concatenate(_map_chunks(one, list(self._chunks(*y.shape))), axis=0)

    def moments(self, observed: np.ndarray, exclude: list[str] | None = None) -> tuple:
        """Posterior moments of the latent effect given each respondent's answers.

        Returns four (S, n) arrays: :math:`E[e^z]`, :math:`E[e^{2z}]`, :math:`E[z]`,
        :math:`E[z^2]` (at each draw), the answers to the groups in ``exclude`` left out.
        """
        y = np.asarray(observed, float)
        obs = ~np.isnan(y)
        if exclude:
            obs = obs.copy()
            for g in exclude:
                obs[:, self.groups.index(g)] = False

        def one(sl: slice) -> tuple:
            with np.errstate(over="ignore", under="ignore"):
                return _integrate(self.take(sl), y, obs, want_moments=True)[1]

        parts = _map_chunks(one, list(self._chunks(*y.shape)))
        return tuple(np.concatenate([p[i] for p in parts], axis=0) for i in range(4))

    def _chunks(self, n: int, g: int, budget: float = CHUNK_CELLS):
        if self.bias_chol is not None:  # (S, n, samples, G) importance draws
            size = max(1, int(budget // max(n * g * (self.bias_samples + g), 1)))
            for start in range(0, self.n_draws, size):
                yield slice(start, start + size)
            return
        gh = self.prior == "normal" and self.family != "zheng"
        nodes = self.nodes if gh else TRAPEZOID_NODES
        per_draw = n * (g if self.family != "poisson" else 1) * nodes
        size = max(1, int(budget // max(per_draw, 1)))
        for start in range(0, self.n_draws, size):
            yield slice(start, start + size)


def negbin_draw(rng: np.random.Generator, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """NB2 draws (variance mean + mean^2 / shape) as a gamma-Poisson mixture."""
    mean = np.asarray(mean, float)
    safe = np.where(np.broadcast_to(shape, mean.shape) > 0, shape, 1.0)
    lam = np.where(mean > 0, rng.gamma(safe, mean / safe), 0.0)
    return rng.poisson(np.minimum(lam, 1e15))


# ---------------------------------------------------------------------------------------------
# integration
# ---------------------------------------------------------------------------------------------


def _prior_terms(lm: LatentModel, z: np.ndarray):
    """log p(z), d/dz and d2/dz2 of the population distribution at z (S, n[, Q])."""
    extra = (slice(None),) + (None,) * (z.ndim - 1)
    a, b = lm.prior_a[extra], lm.prior_b[extra]
    if lm.prior == "normal":
        u = (z - a) / b
        return -0.5 * u**2 - np.log(b) - 0.5 * np.log(2 * np.pi), -u / b, -1 / b**2 + 0 * z
    ez = np.exp(z)
    return a * np.log(b) - gammaln(a) + a * z - b * ez, a - b * ez, -b * ez


def _negbin_cells(z, y, obs, lr, shape, derivs: bool, zero_prob=None, value: bool = True):
    r"""z-dependent part of the NB2 answers' log-likelihood summed over groups.

    z: (S, n) or (S, n, Q); y, obs: (n, G); lr, shape, zero_prob: (S, n|1, G). With zero
    inflation an answered zero contributes :math:`\log(\theta + (1-\theta) p_0(z))`.
    ``value=False`` (Newton steps, which need the derivatives only) returns 0 for the value
    unless zero inflation needs it for the derivatives.
    """
    if z.ndim == 3:  # add the node axis before the group axis
        y, obs = y[:, None, :], obs[:, None, :]
        lr = lr[:, :, None, :]
        shape = shape[:, :, None, :]
        zero_prob = None if zero_prob is None else zero_prob[:, :, None, :]
    zz = z[..., None]
    u = zz + lr - np.log(shape)
    need_f = value or not derivs or zero_prob is not None
    f = obs * (y * zz - (shape + y) * np.logaddexp(0.0, u)) if need_f else np.zeros(1)
    sig = expit(u)
    g = obs * (y - (shape + y) * sig)
    h = -obs * (shape + y) * sig * (1 - sig)
    if zero_prob is not None:  # f = log p0 on zero cells: mix with the structural zero
        zc = obs * (y == 0)
        mixed = np.logaddexp(np.log(zero_prob), np.log1p(-zero_prob) + f)
        p = np.exp(np.log1p(-zero_prob) + f - mixed)  # P(not structural | zero, z)
        f = np.where(zc > 0, mixed, f)
        h = np.where(zc > 0, p * h + p * (1 - p) * g**2, h)
        g = np.where(zc > 0, p * g, g)
    if not derivs:
        return f.sum(-1)
    return f.sum(-1), g.sum(-1), h.sum(-1)


class _ZhengCells:
    r"""Zheng et al.'s NB terms of a respondent's answers as functions of its effect z.

    With :math:`\xi = e^{z} q_k`, :math:`q_k = e^{\ell_k}/(\omega_k - 1)`, the z-dependent part
    of an answered cell is :math:`\log\Gamma(y+\xi) - \log\Gamma(\xi) - \xi\log\omega_k`.
    The last term sums over cells to :math:`-e^z C_i`; the gamma-function difference is 0 for
    :math:`y = 0` (most answers) and :math:`\sum_{j<y}\log(\xi + j)` for small y, so only the
    positive answers are visited and the large ones alone need :math:`\log\Gamma`.
    """

    SMALL = 16

    def __init__(self, y0: np.ndarray, obs: np.ndarray, lr: np.ndarray, omega: np.ndarray):
        n = y0.shape[0]
        s = lr.shape[0]
        q = np.exp(lr) / (omega - 1)  # (S, n|1, G)
        self.c = np.broadcast_to((obs[None] * q * np.log(omega)).sum(-1), (s, n))
        ii, kk = np.nonzero(obs & (y0 > 0))
        self.ii = ii
        self.y = y0[ii, kk]
        self.q = np.broadcast_to(q, (s, n, q.shape[-1]))[:, ii, kk]  # (S, nnz)
        self.resp, self.starts = np.unique(ii, return_index=True)
        small = np.nonzero(self.y <= self.SMALL)[0]
        self.levels = [small[self.y[small] > j] for j in range(self.SMALL)]
        self.large = np.nonzero(self.y > self.SMALL)[0]

    def __call__(self, z: np.ndarray, derivs: bool):
        ez = np.exp(np.minimum(z, 700.0))
        if z.ndim == 3:
            xi = ez[:, self.ii, :] * self.q[..., None]
            c = self.c[..., None]
            yl = self.y[self.large][:, None]
        else:
            xi = ez[:, self.ii] * self.q
            c = self.c
            yl = self.y[self.large]
        f = np.zeros_like(xi)
        g = np.zeros_like(xi) if derivs else None
        h = np.zeros_like(xi) if derivs else None
        for j, idx in enumerate(self.levels):
            if len(idx) == 0:
                break
            x = xi[:, idx]
            f[:, idx] += np.log(x + j)
            if derivs:
                g[:, idx] += x / (x + j)
                h[:, idx] += x * j / (x + j) ** 2
        if len(self.large):
            x = xi[:, self.large]
            f[:, self.large] = gammaln(yl + x) - gammaln(x)
            if derivs:
                d1 = x * (psi(yl + x) - psi(x))
                g[:, self.large] = d1
                h[:, self.large] = d1 + x**2 * (polygamma(1, yl + x) - polygamma(1, x))

        def per_respondent(a):
            out = np.zeros(z.shape)
            if len(self.resp):
                out[:, self.resp] = np.add.reduceat(a, self.starts, axis=1)
            return out

        base = -ez * c
        if not derivs:
            return per_respondent(f) + base
        return per_respondent(f) + base, per_respondent(g) + base, per_respondent(h) + base


def _integrate(lm: LatentModel, y: np.ndarray, obs: np.ndarray, want_moments: bool = False):
    """Integrate the latent effect out for every draw and respondent.

    Returns ``(log_marginal, moments)``: (S, n) log of :math:`\\int p(y_i \\mid z) p(z)\\,dz`
    over the answered cells (z-free terms included) and, if ``want_moments``, the posterior
    moments of :meth:`LatentModel.moments`.
    """
    if lm.bias_chol is not None:
        return integrate_bias(lm, y, obs, want_moments)
    y0 = np.where(obs, y, 0.0)
    obsf = obs.astype(float)
    lr = lm.rates()
    shape = lm.shape
    s_count = y0.sum(axis=1)[None, :]  # (1, n)
    if lm.family == "poisson":
        const = (y0[None] * lr).sum(-1) - gammaln(y0 + 1).sum(-1)[None, :]
        rsum = (obsf[None] * np.exp(lr)).sum(-1)  # (S, n)
    elif lm.family == "negbin":
        const = (
            obsf[None]
            * (gammaln(y0 + shape) - gammaln(shape) - gammaln(y0 + 1) + y0 * (lr - np.log(shape)))
        ).sum(-1)
        if lm.zero_prob is not None:  # log(1 - theta) of each positive answer
            const = const + ((obsf * (y0 > 0))[None] * np.log1p(-lm.zero_prob)).sum(-1)
    else:
        with np.errstate(divide="ignore"):
            const = (obsf[None] * (y0 * np.log1p(-1 / shape) - gammaln(y0 + 1))).sum(-1)
        const = np.where(np.isfinite(const), const, -np.inf)
    zheng = _ZhengCells(y0, obs, lr, shape) if lm.family == "zheng" else None

    def terms(z, derivs=True, value=True):
        lp = _prior_terms(lm, z)
        if zheng is not None:
            if not derivs:
                return zheng(z, False) + lp[0]
            f, g, h = zheng(z, True)
            return f + lp[0], g + lp[1], h + lp[2]
        if lm.family == "poisson":
            ez = np.exp(z)
            if z.ndim == 3:
                return s_count[..., None] * z - rsum[..., None] * ez + lp[0]
            f = s_count * z - rsum * ez
            if not derivs:
                return f + lp[0]
            return f + lp[0], s_count - rsum * ez + lp[1], -rsum * ez + lp[2]
        zp = lm.zero_prob
        if not derivs:
            return _negbin_cells(z, y0, obsf, lr, shape, False, zp) + lp[0]
        f, g, h = _negbin_cells(z, y0, obsf, lr, shape, True, zp, value)
        return f + lp[0], g + lp[1], h + lp[2]

    # mode of the integrand (safeguarded Newton; log-concave for Poisson and NB2)
    n = y.shape[0]
    if lm.prior == "normal":
        z = np.broadcast_to(lm.prior_a[:, None], (lm.n_draws, n)).copy()
    else:
        z = np.broadcast_to(np.log(lm.prior_a / lm.prior_b)[:, None], (lm.n_draws, n)).copy()
    if lm.family == "negbin" and lm.z_fitted is not None and lm.z_fitted.shape == z.shape:
        # the fitted effects at the same draws lie near the mode of this log-concave
        # integrand: fewer Newton steps to the same mode
        z = np.where(np.isfinite(lm.z_fitted), lm.z_fitted, z)
    if lm.family == "poisson":
        # start right of the mode: Newton then converges monotonically (concave derivative)
        safe = np.where(rsum > 0, rsum, 1.0)
        z = np.where(rsum > 0, np.maximum(z, np.log(np.maximum(s_count, 0.5) / safe)), z)
    for _ in range(NEWTON_MAX_STEPS):
        _, g, h = terms(z, value=False)
        step = np.clip(-g / np.minimum(h, -1e-6), -NEWTON_MAX_STEP, NEWTON_MAX_STEP)
        z = z + step
        if np.nanmax(np.abs(step)) < NEWTON_TOL:
            break
    _, _, h = terms(z, value=False)
    scale = 1 / np.sqrt(np.maximum(-h, 1e-8))
    if lm.prior == "normal" and lm.family != "zheng":
        gh_x, gh_w = np.polynomial.hermite.hermgauss(lm.nodes)
        nodes = z[..., None] + np.sqrt(2) * scale[..., None] * gh_x
        logw = terms(nodes, derivs=False) + gh_x**2 + np.log(gh_w)
        log_h = np.log(np.sqrt(2) * scale)
    else:
        # gamma degree: the integrand decays only like exp((a + s) z) to the left; Zheng's NB:
        # the likelihood of a positive answer turns from linear to flat in z. The trapezoid
        # rule in t with z = mode + scale * sinh(t) converges geometrically for these.
        if lm.prior == "normal":
            t_left = -np.arcsinh(np.full(z.shape, 30.0))
        else:
            rate = lm.prior_a[:, None] + s_count
            t_left = -np.arcsinh(np.maximum(8.0, 40 / (rate * scale)))
        t_right = np.arcsinh(30.0 if lm.prior == "normal" else 8.0)
        h_step = (t_right - t_left) / (TRAPEZOID_NODES - 1)
        t = t_left[..., None] + h_step[..., None] * np.arange(TRAPEZOID_NODES)
        nodes = z[..., None] + scale[..., None] * np.sinh(t)
        logw = terms(nodes, derivs=False) + np.log(scale[..., None] * np.cosh(t))
        log_h = np.log(h_step)
    top = logw.max(axis=-1, keepdims=True)
    w = np.exp(logw - top)
    total = w.sum(axis=-1)
    log_int = np.log(total) + top[..., 0] + log_h
    if not want_moments:
        return const + log_int, None
    e_d = (w * np.exp(nodes)).sum(axis=-1) / total
    moments = (
        e_d,
        (w * np.exp(2 * nodes)).sum(axis=-1) / total,
        (w * nodes).sum(axis=-1) / total,
        (w * nodes**2).sum(axis=-1) / total,
    )
    return const + log_int, moments
