r"""Answers with a correlated respondent-by-group bias: simulation and integration (numpy).

A :class:`~.latent.LatentModel` with ``bias_chol`` set describes Poisson answers

.. math::
    y_{ik} \mid z_i, \epsilon_i \sim \mathrm{Poisson}\big(e^{z_i + \ell_{ik} + \epsilon_{ik}}\big),
    \quad z_i \sim N(a, b^2), \quad
    \epsilon_i \sim \mathrm{MVN}\big(-\tfrac12 \operatorname{diag}\Sigma,\ \Sigma\big),
    \quad \Sigma = L L^\top,

(the bias has mean one on the count scale, :math:`E[e^{\epsilon_{ik}}] = 1`). Given the
parameters, the log means :math:`\eta_i = z_i 1 + \ell_i + \epsilon_i` of a respondent are
multivariate normal, :math:`\eta_i \sim \mathrm{MVN}(m_i, \Omega)` with
:math:`m_{ik} = a + \ell_{ik} - \Sigma_{kk}/2` and :math:`\Omega = b^2 1 1^\top + \Sigma`, so
:math:`p(y_i) = \int \prod_k \mathrm{Poisson}(y_{ik} \mid e^{\eta_{ik}})\,
\mathrm{MVN}(\eta_i \mid m_i, \Omega)\, d\eta_i`, a multivariate Poisson-log-normal integral
with no closed form (Aitchison and Ho 1989).

It is computed by importance sampling around the Laplace approximation: Newton steps find the
mode :math:`\hat\eta_i` of the integrand (it is log-concave), and ``BIAS_SAMPLES`` fixed
standard-normal vectors (antithetic pairs, the same for every draw and respondent, so the
result is a deterministic function of the parameters) are mapped to draws from
:math:`N(\hat\eta_i, (-H_i)^{-1})`, H the Hessian at the mode. The estimate of the likelihood
is unbiased; its log has a relative error of a few parts in a thousand for surveys like the
tests' (checked against brute-force integration in ``tests/test_correlated.py``). Unanswered
cells leave their :math:`\eta_{ik}` to the normal prior, which the Gaussian proposal covers
exactly.

The posterior moments of :math:`e^{z_i}` use that :math:`z_i \mid \eta_i` is normal with mean
:math:`a + b^2 1^\top\Omega^{-1}(\eta_i - m_i)` and variance
:math:`b^2 - b^4 1^\top \Omega^{-1} 1`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp

#: importance samples per draw and respondent (antithetic pairs)
BIAS_SAMPLES = 256
NEWTON_STEPS = 50


def draw_bias(rng: np.random.Generator, chol: np.ndarray, n: int) -> np.ndarray:
    """Fresh biases (S, n, G): :math:`L e - \\operatorname{diag}(LL^\\top)/2`, e ~ N(0, I)."""
    s, g, _ = chol.shape
    e = rng.standard_normal((s, n, g))
    var = (chol**2).sum(-1)  # (S, G) diagonal of L L^T
    return np.einsum("sgh,snh->sng", chol, e) - 0.5 * var[:, None, :]


def _proposal(g: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """M fixed standard-normal proposal vectors in G dimensions and their log density:
    a scrambled Sobol' sequence (fixed seed) mapped through the normal quantile function
    (quasi-Monte Carlo: smaller error than independent draws for smooth integrands)."""
    from scipy.stats import norm, qmc

    u = qmc.Sobol(d=g, scramble=True, seed=20230417).random(m)
    e = norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))
    log_q = -0.5 * (e**2).sum(-1) - 0.5 * g * np.log(2 * np.pi)
    return e, log_q


def integrate_bias(lm, y: np.ndarray, obs: np.ndarray, want_moments: bool = False):
    """``(log_marginal (S, n), moments)`` of a bias model (see the module docstring);
    ``moments`` as :meth:`~.latent.LatentModel.moments` returns them, when asked."""
    y0 = np.where(obs, y, 0.0)
    obsf = obs.astype(float)
    s, n, g = lm.n_draws, y.shape[0], y.shape[1]
    chol = lm.bias_chol
    sigma = chol @ np.swapaxes(chol, -1, -2)  # (S, G, G)
    b2 = lm.prior_b**2
    omega = sigma + b2[:, None, None]
    prec = np.linalg.inv(omega)  # (S, G, G)
    logdet_omega = np.linalg.slogdet(omega)[1]
    mean = (
        lm.prior_a[:, None, None]
        + np.broadcast_to(lm.rates(), (s, n, g))
        - 0.5 * np.diagonal(sigma, axis1=1, axis2=2)[:, None, :]
    )
    const = -(obsf * gammaln(y0 + 1)).sum(-1)[None, :]  # (1, n)

    def log_prior(eta):  # (S, n, [M,] G) -> (S, n[, M])
        if eta.ndim == 3:
            d = eta - mean
            quad = ((d @ prec) * d).sum(-1)
            return -0.5 * (quad + logdet_omega[:, None] + g * np.log(2 * np.pi))
        d = eta - mean[:, :, None, :]
        quad = ((d @ prec[:, None]) * d).sum(-1)  # batched matrix products (BLAS)
        return -0.5 * (quad + logdet_omega[:, None, None] + g * np.log(2 * np.pi))

    def log_lik(eta):
        yy, oo = (y0, obsf) if eta.ndim == 3 else (y0[:, None, :], obsf[:, None, :])
        ex = np.exp(np.minimum(eta, 700.0))
        ex -= yy * eta
        ex *= oo
        return -ex.sum(-1)

    # mode: Newton with steps capped at 1 per coordinate (the integrand is log-concave)
    eta = np.where(obs[None], np.log(y0 + 0.5)[None], mean)
    eta = 0.5 * (eta + mean)
    for _ in range(NEWTON_STEPS):
        ex = obsf[None] * np.exp(np.minimum(eta, 700.0))
        grad = obsf[None] * y0[None] - ex - (eta - mean) @ prec
        neg_h = prec[:, None] + ex[..., None] * np.eye(g)
        step = np.linalg.solve(neg_h, grad[..., None])[..., 0]
        step = np.clip(step, -1.0, 1.0)
        eta = eta + step
        if np.nanmax(np.abs(step)) < 1e-10:
            break
    ex = obsf[None] * np.exp(np.minimum(eta, 700.0))
    neg_h = prec[:, None] + ex[..., None] * np.eye(g)
    cov = np.linalg.inv(neg_h)
    root = np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))  # (S, n, G, G)
    e, log_qe = _proposal(g, lm.bias_samples)
    draws = eta[:, :, None, :] + e @ np.swapaxes(root, -1, -2)
    log_q = log_qe[None, None, :] - np.log(np.diagonal(root, axis1=-2, axis2=-1)).sum(-1)[..., None]
    logw = log_lik(draws) + log_prior(draws) - log_q  # (S, n, M)
    log_int = logsumexp(logw, axis=-1) - np.log(logw.shape[-1])
    out = const + log_int
    if not want_moments:
        return out, None
    w = np.exp(logw - logw.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    ones = prec.sum(-1)  # (S, G): Omega^-1 1
    gain = b2[:, None] * ones  # (S, G)
    z_mean = lm.prior_a[:, None, None] + np.einsum(
        "sg,snmg->snm", gain, draws - mean[:, :, None, :]
    )
    z_var = np.maximum(b2 - b2**2 * ones.sum(-1), 0.0)[:, None, None]
    moments = (
        (w * np.exp(z_mean + 0.5 * z_var)).sum(-1),
        (w * np.exp(2 * z_mean + 2 * z_var)).sum(-1),
        (w * z_mean).sum(-1),
        (w * (z_mean**2 + z_var)).sum(-1),
    )
    return out, moments
