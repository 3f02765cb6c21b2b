r"""Tests of the shared likelihood pieces (bayes_nsum.estimators.components).

References are computed independently: the degree integrals with ``scipy.integrate.quad`` (to a
relative accuracy of about 1e-12, far below the tolerances), the negative binomials with
``scipy.stats.nbinom`` cell by cell.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, optimize, special, stats

from bayes_nsum.estimators.components import (
    CountStats,
    gamma_shape_rate,
    log_marginal_poisson_degree,
    negbin_latent_loglik,
    negbin_overdispersed_loglik,
    poisson_collapsed_loglik,
    recall_log_rate,
)

#: no C compilation: the graphs are tiny and a cold compile cache would cost minutes
FAST_MODE = "FAST_COMPILE"


def ref_log_marginal_lognormal(s: float, rate_sum: float, mu: float, sigma: float) -> float:
    r"""log of \int d^s e^{-d R} LogNormal(d; mu, sigma) dd by quad in x = log d, centred on the
    mode of the integrand (found by root-finding) so that exp() does not overflow."""

    def h(x):
        return s * x - rate_sum * np.exp(x) + stats.norm.logpdf(x, mu, sigma)

    mode = optimize.brentq(
        lambda x: s - rate_sum * np.exp(x) - (x - mu) / sigma**2, -100, 100, xtol=1e-14
    )
    scale = 1 / np.sqrt(rate_sum * np.exp(mode) + 1 / sigma**2)
    val, _ = integrate.quad(
        lambda x: np.exp(h(x) - h(mode)),
        mode - 40 * scale,
        mode + 40 * scale,
        points=[mode],
        epsabs=0,
        epsrel=1e-13,
        limit=500,
    )
    return h(mode) + np.log(val)


def ref_log_marginal_gamma(s: float, rate_sum: float, a: float, b: float) -> float:
    """The same integral for a Gamma(shape a, rate b) degree, by quad in d around the mode of
    the integrand (a Gamma(a + s, b + R) kernel)."""

    def logf(d):
        return s * np.log(d) - rate_sum * d + stats.gamma.logpdf(d, a, scale=1 / b)

    mode = (a + s - 1) / (b + rate_sum)
    width = 40 * np.sqrt(a + s) / (b + rate_sum)
    top = logf(mode)
    val, _ = integrate.quad(
        lambda d: np.exp(logf(d) - top),
        max(mode - width, 0.0),
        mode + width,
        points=[mode],
        epsabs=0,
        epsrel=1e-12,
        limit=500,
    )
    return top + np.log(val)


def marginal_fn(kind: str):
    s, r, mu, sigma = pt.dvector("s"), pt.dvector("r"), pt.dscalar("mu"), pt.dscalar("sigma")
    out = log_marginal_poisson_degree(s, r, mu, sigma, kind)
    return pytensor.function([s, r, mu, sigma], out, mode=FAST_MODE)


S_VALUES = [0, 1, 5, 30, 200]
# (R, mu, sigma) over the default prior range mu in [3, 8], sigma in [0.25, 2] and sums of rates
# from a single rare group to many common ones
PARAMS = [
    (0.05, 5.0, 0.8),
    (0.001, 3.0, 0.25),
    (0.2, 8.0, 2.0),
    (1e-4, 6.0, 1.5),
    (0.03, 4.5, 1.0),
    (2.0, 3.0, 2.0),
    (0.001, 5.0, 2.0),
    (1e-5, 5.0, 2.0),
]


def test_lognormal_marginal_matches_quad():
    f = marginal_fn("lognormal")
    cases = list(itertools.product(PARAMS, S_VALUES))
    # one call per (R, mu, sigma), vectorised over s
    for (r, mu, sigma), group in itertools.groupby(cases, key=lambda c: c[0]):
        s = np.array([c[1] for c in group], float)
        got = f(s, np.full(len(s), r), mu, sigma)
        want = [ref_log_marginal_lognormal(si, r, mu, sigma) for si in s]
        # |log ours - log ref| < 1e-6 is a relative error of the integral below 1e-6
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{(r, mu, sigma)}")


def test_gamma_marginal_matches_closed_form_and_quad():
    f = marginal_fn("gamma")
    mu_, sigma_ = pt.dscalar("mu"), pt.dscalar("sigma")
    shape_rate = pytensor.function([mu_, sigma_], gamma_shape_rate(mu_, sigma_), mode=FAST_MODE)
    for r, mu, sigma in PARAMS:
        a, b = (float(v) for v in shape_rate(mu, sigma))
        mean = np.exp(mu + sigma**2 / 2)
        assert a / b == pytest.approx(mean, rel=1e-12)
        assert a / b**2 == pytest.approx((np.exp(sigma**2) - 1) * mean**2, rel=1e-12)
        s = np.array(S_VALUES, float)
        got = f(s, np.full(len(s), r), mu, sigma)
        closed = (
            special.gammaln(a + s) - special.gammaln(a) + a * np.log(b) - (a + s) * np.log(b + r)
        )
        np.testing.assert_allclose(got, closed, rtol=1e-12, atol=1e-10)
        if a >= 1:  # quad struggles with the integrable singularity at 0 when a < 1
            want = [ref_log_marginal_gamma(si, r, a, b) for si in s]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_unknown_degree_kind():
    with pytest.raises(ValueError):
        log_marginal_poisson_degree(pt.dvector(), pt.dvector(), 1.0, 1.0, "weibull")


# -- count statistics ------------------------------------------------------------------------
Y = np.array(
    [
        [0, 2, 1],
        [3, np.nan, 0],
        [0, 2, 1],  # same as row 0: shares its (s, pattern) pair
        [7, 1, np.nan],
        [np.nan, np.nan, 4],
        [1, 0, 0],
    ]
)


def test_count_stats():
    st = CountStats.from_matrix(Y)
    obs = ~np.isnan(Y)
    np.testing.assert_array_equal(st.observed, obs)
    np.testing.assert_array_equal(st.totals, np.nansum(Y, axis=0))
    np.testing.assert_array_equal(st.n_obs, obs.sum(axis=0))
    np.testing.assert_array_equal(st.row_sum, np.nansum(Y, axis=1))
    np.testing.assert_array_equal(st.patterns[st.pattern_of], obs.astype(float))
    assert st.uniq_count.sum() == len(Y) and len(st.uniq_s) == len(Y) - 1
    assert st.const == pytest.approx(special.gammaln(Y[obs] + 1).sum())
    # the histogram reproduces every group's answers
    for g in range(Y.shape[1]):
        sel = st.hist_group == g
        vals = np.repeat(st.hist_value[sel], st.hist_count[sel].astype(int))
        np.testing.assert_array_equal(vals, np.sort(Y[obs[:, g], g]))


# -- Poisson with the degree integrated out --------------------------------------------------
def brute_force_poisson(y, rates, mu, sigma, kind):
    """Sum over respondents of log \\int prod_k Poisson(y_ik; d r_k) p(d) dd, by quad in
    x = log d."""
    total = 0.0
    for row in y:
        obs = ~np.isnan(row)
        yy, rr = row[obs], rates[obs]

        def logf(x, yy=yy, rr=rr):
            d = np.exp(x)
            if kind == "lognormal":
                prior = stats.norm.logpdf(x, mu, sigma)
            else:
                a, b = gamma_ab(mu, sigma)
                prior = stats.gamma.logpdf(d, a, scale=1 / b) + x  # density of x = log d
            return np.sum(stats.poisson.logpmf(yy, d * rr)) + prior

        mode = optimize.minimize_scalar(lambda x: -logf(x), bounds=(-5, 15), method="bounded").x
        top = logf(mode)
        val, _ = integrate.quad(
            lambda x, top=top: np.exp(logf(x) - top),
            mode - 30,
            mode + 30,
            points=[mode],
            epsabs=0,
            epsrel=1e-12,
            limit=500,
        )
        total += top + np.log(val)
    return total


def gamma_ab(mu, sigma):
    mean = np.exp(mu + sigma**2 / 2)
    var = (np.exp(sigma**2) - 1) * np.exp(2 * mu + sigma**2)
    return mean**2 / var, mean / var


@pytest.mark.parametrize(
    "kind, mu, sigma", [("lognormal", 4.0, 0.7), ("lognormal", 3.0, 1.8), ("gamma", 4.0, 0.7)]
)
def test_poisson_collapsed_equals_brute_force(kind, mu, sigma):
    rates = np.array([0.004, 0.02, 0.01])
    st = CountStats.from_matrix(Y)
    log_rate = pt.dvector("log_rate")
    f = pytensor.function(
        [log_rate], poisson_collapsed_loglik(st, log_rate, mu, sigma, kind), mode=FAST_MODE
    )
    got = float(f(np.log(rates)))
    want = brute_force_poisson(Y, rates, mu, sigma, kind)
    # six respondents, each integral accurate to ~1e-8 relative
    assert got == pytest.approx(want, rel=0, abs=1e-6)


def test_poisson_collapsed_gradient_matches_finite_differences():
    st = CountStats.from_matrix(Y)
    lr, mu, sigma = pt.dvector("log_rate"), pt.dscalar("mu"), pt.dscalar("sigma")
    ll = poisson_collapsed_loglik(st, lr, mu, sigma, "lognormal")
    f = pytensor.function([lr, mu, sigma], ll, mode=FAST_MODE)
    g = pytensor.function([lr, mu, sigma], pt.grad(ll, [lr, mu, sigma]), mode=FAST_MODE)
    x0 = np.array([np.log(0.004), np.log(0.02), np.log(0.01), 4.0, 0.7])

    def value(x):
        return float(f(x[:3], x[3], x[4]))

    grad = np.concatenate([np.atleast_1d(v) for v in g(x0[:3], x0[3], x0[4])])
    eps = 1e-6
    fd = [(value(x0 + eps * e) - value(x0 - eps * e)) / (2 * eps) for e in np.eye(len(x0))]
    # central differences with eps = 1e-6 are accurate to ~1e-8 relative here
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


# -- negative binomials ----------------------------------------------------------------------
def test_negbin_latent_equals_scipy_cell_by_cell():
    st = CountStats.from_matrix(Y)
    x = np.log([80.0, 150.0, 40.0, 300.0, 60.0, 20.0])
    rates = np.array([0.004, 0.02, 0.01])
    shape = np.array([0.8, 3.0, 12.0])
    xv, lr, sh = pt.dvector("x"), pt.dvector("lr"), pt.dvector("shape")
    f = pytensor.function([xv, lr, sh], negbin_latent_loglik(st, xv, lr, sh), mode=FAST_MODE)
    got = float(f(x, np.log(rates), shape))
    want = 0.0
    for i, k in itertools.product(range(Y.shape[0]), range(Y.shape[1])):
        if np.isnan(Y[i, k]):
            continue
        m = np.exp(x[i]) * rates[k]
        want += stats.nbinom.logpmf(Y[i, k], shape[k], shape[k] / (shape[k] + m))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_negbin_overdispersed_equals_scipy_cell_by_cell():
    st = CountStats.from_matrix(Y)
    rng = np.random.default_rng(3)
    log_mean = rng.normal(0.0, 1.0, Y.shape)
    omega = np.array([1.5, 4.0, 20.0])
    lm, om = pt.dmatrix("lm"), pt.dvector("om")
    f = pytensor.function([lm, om], negbin_overdispersed_loglik(st, lm, om), mode=FAST_MODE)
    got = float(f(log_mean, omega))
    want = 0.0
    for i, k in itertools.product(range(Y.shape[0]), range(Y.shape[1])):
        if np.isnan(Y[i, k]):
            continue
        m = np.exp(log_mean[i, k])
        n = m / (omega[k] - 1)  # NB2 shape giving variance omega * mean
        p = n / (n + m)
        assert stats.nbinom.var(n, p) == pytest.approx(omega[k] * m)
        want += stats.nbinom.logpmf(Y[i, k], n, p)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_recall_log_rate():
    lv = np.log([0.001, 0.01, 0.1])
    out = recall_log_rate(pt.as_tensor(lv), -0.2, np.log(0.01)).eval(mode=FAST_MODE)
    np.testing.assert_allclose(out, lv - 0.2 * (lv - np.log(0.01)))
    assert out[1] == pytest.approx(lv[1])  # the centre is unchanged
