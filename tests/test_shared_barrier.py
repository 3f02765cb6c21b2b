r"""Tests of the shared-dispersion barrier likelihood (``barrier_dispersion = "shared"``).

The reference is computed independently: for each respondent, the product over answered groups
of ``scipy.stats.nbinom`` probabilities given the degree, integrated over the log-degree with
``scipy.integrate.quad`` (relative accuracy about 1e-12, far below the tolerances).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_nsum.errors import BayesNsumError, PriorError
from bayes_nsum.estimators import MODELS
from bayes_nsum.estimators.components import CountStats, negbin_shared_collapsed_loglik
from quadrature_ref import log_integral

FAST_MODE = "FAST_COMPILE"

# 3 known groups then 2 hidden groups; missing answers in both kinds of column
Y = np.array(
    [
        [0, 2, 1, 0, 0],
        [3, 0, 5, 1, 0],
        [0, 2, 1, 0, 0],  # same key as row 0
        [7, 1, np.nan, 0, 2],
        [np.nan, np.nan, 4, np.nan, 0],
        [1, 0, 0, 0, 0],
        [2, 1, 0, 0, 0],  # same key as row 0 too: same known sum (3), split differently
        [40, 22, 31, 3, 1],
    ]
)
NK = 3


def brute_force(y, rates, shapes, mu, sigma):
    """Sum over respondents of log \\int prod_k NB(y_ik; shape_k, mean d r_k) LN(d) dd."""
    total = 0.0
    for row in y:
        obs = ~np.isnan(row)
        yy, rr, aa = row[obs], rates[obs], shapes[obs]

        def logf(x, yy=yy, rr=rr, aa=aa):
            m = np.exp(x) * rr
            return np.sum(stats.nbinom.logpmf(yy, aa, aa / (aa + m))) + stats.norm.logpdf(
                x, mu, sigma
            )

        total += log_integral(logf, mu - 12 * sigma, mu + 12 * sigma)
    return total


def test_keys_summarise_every_respondent():
    st = CountStats.from_matrix(Y, n_known=NK)
    assert st.key_count.sum() == len(Y)
    assert len(st.key_count) == len(Y) - 2  # rows 0, 2 and 6 share a key
    assert st.key_count.max() == 3
    y0 = np.nan_to_num(Y)
    for i, row in enumerate(y0):
        hit = (
            (st.key_known_sum == row[:NK].sum())
            & (st.key_pattern == st.pattern_of[i])
            & np.all(st.key_hidden == row[NK:], axis=1)
        )
        assert hit.sum() == 1
    # default: every column is a known group, no hidden columns
    all_known = CountStats.from_matrix(Y)
    assert all_known.key_hidden.shape == (len(all_known.uniq_s), 0)


@pytest.mark.parametrize(
    "mu, sigma, rho, hidden_shape",
    [(4.5, 0.8, 0.3, (0.05, 0.6)), (6.0, 1.8, 0.7, (0.01, 2.0)), (3.5, 0.4, 0.01, (5.0, 0.2))],
)
def test_shared_loglik_equals_brute_force(mu, sigma, rho, hidden_shape):
    rates = np.array([0.004, 0.02, 0.01, 0.003, 0.0007])
    b = 1 / rho - 1
    shapes = np.concatenate([b * rates[:NK], hidden_shape])
    st = CountStats.from_matrix(Y, n_known=NK)
    lr, lb, hs = pt.dvector("lr"), pt.dscalar("lb"), pt.dvector("hs")
    f = pytensor.function(
        [lr, lb, hs],
        negbin_shared_collapsed_loglik(st, NK, 2, lr, lb, hs, mu, sigma),
        mode=FAST_MODE,
    )
    got = float(f(np.log(rates), np.log(b), np.array(hidden_shape)))
    want = brute_force(Y, rates, shapes, mu, sigma)
    # eight respondents, each integral accurate to ~1e-8 relative (32-node Gauss-Hermite)
    assert got == pytest.approx(want, rel=0, abs=1e-6)


def test_shared_loglik_gradient_matches_finite_differences():
    st = CountStats.from_matrix(Y, n_known=NK)
    th = pt.dvector("th")
    lr = pt.concatenate([pt.as_tensor(np.log([0.004, 0.02, 0.01])), th[:2]])
    ll = negbin_shared_collapsed_loglik(st, NK, 2, lr, th[2], pt.exp(th[3:5]), th[5], th[6])
    f = pytensor.function([th], ll, mode=FAST_MODE)
    g = pytensor.function([th], pt.grad(ll, th), mode=FAST_MODE)
    x0 = np.array([np.log(0.003), np.log(0.0007), np.log(2.0), np.log(0.05), 0.0, 4.5, 1.1])
    eps = 1e-6
    fd = [(f(x0 + eps * e) - f(x0 - eps * e)) / (2 * eps) for e in np.eye(len(x0))]
    # the quadrature's centre and scale are held fixed in the gradient; the derivative of the
    # quadrature then matches the derivative of the integral to the quadrature's accuracy
    np.testing.assert_allclose(g(x0), fd, rtol=1e-5, atol=1e-5)


def _point(model):
    pm_model = model.model
    return pm_model, pm_model.initial_point()


def test_shared_model_variables_and_likelihood_wiring(small_prep):
    ard = small_prep.ard
    model = MODELS["combined"](ard, barrier_dispersion="shared")
    pm_model, point = _point(model)
    free = {v.name: tuple(pm_model.named_vars_to_dims.get(v.name) or ()) for v in pm_model.free_RVs}
    assert free == {
        "mu": (),
        "sigma": (),
        "log_visible": ("hidden",),
        "tau": ("hidden",),
        "rho_known": (),
        "rho": ("hidden",),
    }
    # move away from the initial point so that every parameter matters
    point = {**point, "mu_interval__": np.array(0.3), "sigma_interval__": np.array(-0.5)}
    names = ["loglik", "log_rate", "barrier_shape", "mu", "sigma", "rho_known"]
    outs = pm_model.replace_rvs_by_values([pm_model[n] for n in names])
    fn = pytensor.function(pm_model.value_vars, outs, mode=FAST_MODE, on_unused_input="ignore")
    loglik, log_rate, shape, mu, sigma, rho_known = fn(**point)
    nk = len(ard.known)
    np.testing.assert_allclose(shape[:nk], (1 / rho_known - 1) * np.exp(log_rate[:nk]))
    y = ard.counts[ard.groups].to_numpy(float)
    want = brute_force(y, np.exp(log_rate), shape, float(mu), float(sigma))
    # 50 respondents at ~1e-8 relative each
    assert float(loglik) == pytest.approx(want, rel=0, abs=1e-5)


def test_shared_option_errors_and_priors(small_prep):
    ard = small_prep.ard
    with pytest.raises(BayesNsumError, match="barrier_dispersion must be"):
        MODELS["combined"](ard, barrier_dispersion="pooled")
    with pytest.raises(
        BayesNsumError, match="model 'transmission' has no option.*barrier_dispersion"
    ):
        MODELS["transmission"](ard, barrier_dispersion="shared")
    with pytest.raises(BayesNsumError, match="needs degree = 'lognormal'"):
        MODELS["barrier"](ard, barrier_dispersion="shared", degree="gamma")
    known = ard.known[0]
    with pytest.raises(PriorError, match="not among its groups"):
        MODELS["combined"](ard, barrier_dispersion="shared", priors={"rho": {known: 0.2}})
    with pytest.raises(PriorError, match="did you mean 'rho_known'"):
        MODELS["combined"](ard, barrier_dispersion="shared", priors={"rho_knwon": 0.2})
    m = MODELS["combined"](
        ard,
        barrier_dispersion="shared",
        priors={"rho_known": {"dist": "Beta", "alpha": 1, "beta": 9}, "rho": 0.1},
    )
    assert m.priors["rho_known"].dist == "Beta"
    assert {p.params["value"] for p in m.priors["rho"].values()} == {0.1}
    assert "rho_known" in {v.name for v in m.model.free_RVs}
    assert "rho" not in {v.name for v in m.model.free_RVs}  # fixed at 0.1: a constant
    # per-group barrier keeps one rho per group and has no rho_known
    g = MODELS["combined"](ard)
    with pytest.raises(PriorError, match="matches no parameter"):
        MODELS["combined"](ard, priors={"rho_known": 0.2})
    assert set(g.priors["rho"]) == set(ard.groups)


def test_per_group_barrier_warns_at_large_n(small_prep, monkeypatch):
    cls = MODELS["combined"]
    monkeypatch.setattr(cls, "LARGE_N", 10)
    with pytest.warns(UserWarning, match="latent degrees"):
        cls(small_prep.ard, degree_integration="latent")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(small_prep.ard)  # "auto": above LARGE_N the lognormal degree is integrated out
        cls(small_prep.ard, barrier_dispersion="shared")
        MODELS["degree"](small_prep.ard)


def test_shared_model_fits_with_fake_sampling(small_prep, fake_sampling):
    fake_sampling(seed=5)
    model = MODELS["barrier"](small_prep.ard, barrier_dispersion="shared")
    result = model.fit(draws=30, chains=2, progress=False)
    summary = result.summary()
    assert "log_degree" not in result.posterior
    rows = summary[summary.quantity == "rho_known"]
    assert len(rows) == 1 and np.isfinite(rows["estimate"]).all()
    assert set(summary[summary.quantity == "rho"].group) == {"victims", "offenders"}
    assert result.model.config()["options"]["barrier_dispersion"] == "shared"
