r"""Tests of the per-group barrier likelihood with the degrees integrated out on grids
(``degree_integration = "quadrature"``, :mod:`bayes_nsum.estimators.barrier_grid`).

References are independent of the grid rule: ``scipy.integrate.quad`` over the product of
``scipy.stats.nbinom`` probabilities (relative accuracy about 1e-12), and the adaptive
64-node Gauss-Hermite quadrature of :class:`~bayes_nsum.estimators.latent.LatentModel` (error
about 1e-10 per respondent for these integrands, checked against ``quad`` in
test_shared_barrier.py). Tolerances: 1e-8 per respondent at the parameters the grids are
planned for and within a factor 3 of them (the rule's error there is below 1e-10, see the
module docstring), 1e-6 per respondent at prior draws.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytest

from bayes_nsum.errors import BayesNsumError
from bayes_nsum.estimators import MODELS
from bayes_nsum.estimators.barrier_grid import grid_loglik_numpy, plan_grids
from bayes_nsum.estimators.latent import LatentModel
from test_shared_barrier import brute_force

N = 1_000_000.0
SHARES = np.array([0.002, 0.005, 0.01, 0.02, 0.04, 0.08])  # 6 known groups
HIDDEN = np.array([0.003, 0.0008])
RHO = np.array([0.01, 0.05, 0.02, 0.1, 0.03, 0.08, 0.05, 0.05])


def simulate(n: int, seed: int = 1, mu: float = 5.0, sigma: float = 0.9) -> np.ndarray:
    """NB2 answers of n respondents (6 known, 2 hidden groups), a few answers missing."""
    rng = np.random.default_rng(seed)
    rates = np.concatenate([SHARES, HIDDEN])
    shape = rates * (1 / RHO - 1)
    d = np.exp(rng.normal(mu, sigma, n))[:, None]
    y = rng.poisson(rng.gamma(shape, d * rates / shape)).astype(float)
    y[rng.random(y.shape) < 0.03] = np.nan
    return y


def reference(y, rates, shape, mu, sigma, nodes=64):
    lm = LatentModel(
        family="negbin",
        log_rate=np.log(rates)[None, None, :],
        shape=shape[None, None, :],
        prior="normal",
        prior_a=np.array([mu]),
        prior_b=np.array([sigma]),
        groups=[str(i) for i in range(len(rates))],
        nodes=nodes,
    )
    return lm.loglik(y)[0]


@pytest.fixture(scope="module")
def survey():
    y = simulate(3000)
    return y, plan_grids(y, np.log(SHARES))


def test_plan_summarises_every_respondent_with_weights():
    y = simulate(400, seed=2)
    y = np.vstack([y, y[:50]])  # 50 repeated rows
    plan = plan_grids(y, np.log(SHARES))
    assert plan.count.sum() == pytest.approx(len(y))
    assert len(plan.count) == len(np.unique(np.nan_to_num(y, nan=-1), axis=0))
    # every row in exactly one bucket, buckets contiguous
    assert plan.bounds[0][0] == 0 and plan.bounds[-1][1] == len(plan.count)
    assert all(a[1] == b[0] for a, b in zip(plan.bounds, plan.bounds[1:], strict=False))
    # the chunk layout of the batched product: every row once, in a chunk of its own bucket,
    # padding rows empty with weight 0
    data = plan.data_dict()
    take, bucket = plan.chunks()
    real = take[take >= 0]
    np.testing.assert_array_equal(real, np.arange(len(plan.count)))
    row_bucket = np.repeat(bucket, plan.chunk_rows)[take >= 0]
    for b, (a0, b0) in enumerate(plan.bounds):
        assert set(row_bucket[a0:b0]) == {b}
    assert data["ard_row_count"].sum() == pytest.approx(len(y))
    pad = take < 0
    assert not data["ard_row_obs"][pad].any() and not data["ard_row_count"][pad].any()
    np.testing.assert_array_equal(
        data["ard_row_y"][data["ard_middle_slot"]], plan.y[plan.middle_rows()]
    )
    assert len(take) % plan.chunk_rows == 0 and plan.grids.shape == (len(plan.bounds), 4)
    w = np.linspace(0.5, 2.0, len(y))
    weighted = plan_grids(y, np.log(SHARES), w / w.mean())
    assert weighted.count.sum() == pytest.approx(len(y))


def test_grid_rule_matches_quad_for_single_respondents(survey):
    y, plan = survey
    rates = np.concatenate([SHARES, HIDDEN])
    shape = rates * (1 / RHO - 1)
    got = grid_loglik_numpy(plan, np.log(rates), shape, 5.0, 0.9)
    # the largest, a zero, and a few other rows, each against scipy's quad
    rows = [int(np.argmax(plan.y.sum(1))), int(np.argmin(plan.y.sum(1))), 5, 700, 2100]
    for r in rows:
        row = np.where(plan.observed[r] > 0, plan.y[r], np.nan)[None, :]
        want = brute_force(row, rates, shape, 5.0, 0.9)
        assert got[r] == pytest.approx(want, abs=1e-8)


@pytest.mark.parametrize(
    "rho_factor, mu, sigma",
    [(1.0, 5.0, 0.9), (3.0, 5.0, 0.9), (1 / 3, 5.0, 0.9), (1.0, 4.6, 0.6), (1.0, 5.3, 1.3)],
)
def test_grid_rule_matches_gauss_hermite_near_the_data(survey, rho_factor, mu, sigma):
    y, plan = survey
    rates = np.concatenate([SHARES, HIDDEN])
    rho = np.clip(RHO * rho_factor, 1e-4, 0.9)
    shape = rates * (1 / rho - 1)
    got = grid_loglik_numpy(plan, np.log(rates), shape, mu, sigma)
    rows = np.where(plan.observed > 0, plan.y, np.nan)
    want = reference(rows, rates, shape, mu, sigma)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


def _ard(y: np.ndarray):
    """The module's design (6 known groups of shares SHARES, 2 hidden) with answers ``y``."""
    import pandas as pd

    from bayes_nsum.data import ARD

    groups = [f"k{i}" for i in range(6)] + ["h1", "h2"]
    return ARD(
        counts=pd.DataFrame(y, columns=groups, index=[str(i) for i in range(len(y))]),
        known=tuple(groups[:6]),
        hidden=("h1", "h2"),
        known_sizes=pd.Series(SHARES * N, index=groups[:6]),
        total_population=N,
    )


@pytest.mark.slow  # compiles the model's logp and gradient with numba (minutes under load)
def test_model_likelihood_is_the_grid_rule_and_its_gradient_is_right(survey):
    y, plan = survey
    y = y[:300]
    ard = _ard(y)
    model = MODELS["barrier"](ard, degree_integration="quadrature")
    assert model.grid_degrees and "log_degree" not in model.model.named_vars
    pm_model = model.model
    point = pm_model.initial_point()
    point = {**point, "mu_interval__": np.array(0.2), "sigma_interval__": np.array(-0.4)}
    names = ["loglik", "log_rate", "barrier_shape", "mu", "sigma"]
    outs = pm_model.replace_rvs_by_values([pm_model[n] for n in names])
    fn = pytensor.function(pm_model.value_vars, outs, mode="FAST_COMPILE", on_unused_input="ignore")
    loglik, log_rate, shape, mu, sigma = fn(**point)
    want = reference(y, np.exp(log_rate), shape, float(mu), float(sigma)).sum()
    assert float(loglik) == pytest.approx(want, abs=1e-6 * len(y))
    # gradient (the grids' centres held fixed) against central differences of the logp
    logp = pm_model.compile_logp(jacobian=True, mode="NUMBA")
    dlogp = pm_model.compile_dlogp(jacobian=True, mode="NUMBA")
    x0 = {k: np.asarray(v, float) for k, v in point.items()}
    g = dlogp(x0)
    eps = 1e-5
    k = 0
    for name, v in x0.items():
        for idx in np.ndindex(v.shape):
            up = {**x0, name: v.copy()}
            dn = {**x0, name: v.copy()}
            up[name][idx] += eps
            dn[name][idx] -= eps
            fd = (logp(up) - logp(dn)) / (2 * eps)
            assert g[k] == pytest.approx(fd, rel=1e-4, abs=1e-3), (name, idx)
            k += 1


def test_options_and_their_errors(small_prep, monkeypatch):
    ard = small_prep.ard
    assert not MODELS["combined"](ard).grid_degrees  # "auto": latent up to LARGE_N respondents
    assert MODELS["combined"](ard, degree_integration="quadrature").grid_degrees
    assert not MODELS["combined"](ard, degree="gamma").grid_degrees
    assert not MODELS["combined"](ard, degree_integration="latent").grid_degrees
    assert not MODELS["combined"](ard, barrier_dispersion="shared").grid_degrees
    with pytest.raises(BayesNsumError, match="'quadrature' needs degree = 'lognormal'"):
        MODELS["barrier"](ard, degree="gamma", degree_integration="quadrature")
    with pytest.raises(BayesNsumError, match="'latent' needs barrier_dispersion = 'group'"):
        MODELS["barrier"](ard, barrier_dispersion="shared", degree_integration="latent")
    with pytest.raises(BayesNsumError, match="model 'degree' has no option"):
        MODELS["degree"](ard, degree_integration="latent")
    with pytest.raises(BayesNsumError, match="degree_integration must be"):
        MODELS["barrier"](ard, degree_integration="laplace")
    # a grid model cannot swap in other answers (its grids are planned from these)
    model = MODELS["barrier"](ard, degree_integration="quadrature")
    with pytest.raises(BayesNsumError, match="cannot swap in new answers"):
        model.data_arrays(model.answers())
    other = model.answers().copy()
    other[0, 0] += 1
    changed = MODELS["barrier"](
        type(ard)(**{**ard.__dict__, "counts": ard.counts.assign(**{ard.groups[0]: other[:, 0]})}),
        degree_integration="quadrature",
    )
    assert changed.structure_key() != model.structure_key()
    # the large-n warning concerns latent degrees only
    monkeypatch.setattr(MODELS["combined"], "LARGE_N", 10)
    with pytest.warns(UserWarning, match="degree_integration = 'quadrature'"):
        MODELS["combined"](ard, degree_integration="latent")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MODELS["combined"](ard)


def test_grid_model_fits_with_fake_sampling_and_has_degrees(small_prep, fake_sampling):
    from bayes_nsum.checks.degrees import respondent_degrees

    fake_sampling(seed=5)
    model = MODELS["barrier"](small_prep.ard, degree_integration="quadrature")
    result = model.fit(draws=30, chains=2, progress=False)
    assert "log_degree" not in result.posterior
    assert result.model.config()["options"]["degree_integration"] == "quadrature"
    deg = respondent_degrees(model, result.posterior, max_draws=20)
    assert len(deg) == small_prep.ard.n and np.isfinite(deg["mean"]).all()
    assert set(deg["method"]) == {"quadrature"}


@pytest.mark.slow
def test_quadrature_and_latent_forms_give_the_same_posterior():
    """Both forms of the per-group barrier model sample the same posterior: on 150 simulated
    respondents (6 known, 2 hidden groups) the posterior means of mu, sigma, the hidden groups'
    log visible prevalences and every rho agree within 4.5 combined Monte Carlo standard errors
    (for 12 quantities a false alarm in about one run in 10,000, if the MCSEs are right)."""
    from bayes_nsum.result import array_diagnostics

    y = simulate(150, seed=4)
    ard = _ard(y)
    settings = {"draws": 300, "tune": 300, "chains": 2, "seed": 11, "progress": False}
    fits = {
        form: MODELS["barrier"](ard, degree_integration=form).fit(**settings).posterior
        for form in ("quadrature", "latent")
    }
    for name in ("mu", "sigma", "log_visible", "rho"):
        a, b = (fits[f][name].transpose("chain", "draw", ...).values for f in fits)
        mean_a, mean_b = a.mean(axis=(0, 1)), b.mean(axis=(0, 1))
        se = np.hypot(array_diagnostics(a)["mcse_mean"], array_diagnostics(b)["mcse_mean"])
        assert np.all(np.abs(mean_a - mean_b) <= 4.5 * se), (name, mean_a, mean_b, se)
