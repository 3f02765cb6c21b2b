"""Posterior predictive checks, per-respondent likelihoods, LOO comparison and internal
consistency: every check calls the model's own methods.

The fast tier never samples: fits are fake DataTrees whose posterior draws sit (with a little
jitter) at the parameters that generated the data, so the predictive distribution is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum.checks.predictive import (
    PPC_COLUMNS,
    answer_statistics,
    posterior_predictive,
    ppc_of_tree,
    predictive_p_value,
)
from bayes_nsum.errors import BayesNsumError
from bayes_nsum.estimators.base import NSUMModel, stack_draws
from bayes_nsum.estimators.components import gamma_shape_rate
from bayes_nsum.estimators.latent import LatentModel
from fakefit import (
    GROUPS,
    HIDDEN,
    KNOWN,
    RATES,
    ard_of,
    jit,
    make_tree,
    maltiel_posterior,
    model_of,
    simulate,
)

GH_T, GH_W = np.polynomial.hermite.hermgauss(80)


@pytest.fixture(scope="module")
def degree_data():
    rng = np.random.default_rng(11)
    y = simulate(rng, 400)
    post = maltiel_posterior(rng)
    return y, post


def _lognormal_e(mu, sigma, fn):
    """E[fn(d)] for d ~ LogNormal(mu, sigma) by 80-node Gauss-Hermite (exact to ~1e-12)."""
    d = np.exp(mu + np.sqrt(2) * sigma * GH_T)
    return float(np.sum(GH_W * fn(d)) / np.sqrt(np.pi))


def _replicate(model, post, n_rep, rng, fitted=False, topcode=None):
    sub = post.isel(draw=slice(0, int(np.ceil(n_rep / post.sizes["chain"]))))
    y = model.answers()
    rep = model.simulate(sub, rng, fitted=fitted, missing=np.isnan(y), topcode=topcode)
    return rep[:n_rep]


# ---------------------------------------------------------------------------------------------
# replicated surveys: model.simulate
# ---------------------------------------------------------------------------------------------


def test_replicate_degree_model_matches_analytic_moments(degree_data):
    y, post = degree_data
    rep = _replicate(model_of("degree", y), post, 200, np.random.default_rng(1))
    assert rep.shape == (200, y.shape[0], len(GROUPS))
    mu, sigma = 5.0, 0.8
    ed = np.exp(mu + sigma**2 / 2)
    vd = np.expm1(sigma**2) * np.exp(2 * mu + sigma**2)
    n_cells = rep.shape[0] * rep.shape[1]
    for j, r in enumerate(RATES):
        mean, var = ed * r, ed * r + vd * r**2
        # pooled over 200 x 400 independent respondents: 5 standard errors
        assert abs(float(rep[:, :, j].mean()) - mean) < 5 * np.sqrt(var / n_cells)
        p0 = _lognormal_e(mu, sigma, lambda d, r=r: np.exp(-d * r))
        share = float((rep[:, :, j] == 0).mean())
        assert abs(share - p0) < 5 * np.sqrt(p0 * (1 - p0) / n_cells)


def test_replicate_gamma_degree_uses_gamma_distribution():
    rng = np.random.default_rng(2)
    rates = np.full(len(GROUPS), 0.05)
    post = maltiel_posterior(rng, mu=4.0, sigma=1.2, rates=rates, sd=0.0)
    model = model_of("degree", np.zeros((500, len(GROUPS))), degree="gamma")
    rep = _replicate(model, post, 200, rng)
    a, b = gamma_shape_rate(np.array(4.0), np.array(1.2))
    p0_gamma = float((b / (b + 0.05)) ** a)
    p0_lognormal = _lognormal_e(4.0, 1.2, lambda d: np.exp(-d * 0.05))
    share = float((rep == 0).mean())
    se = np.sqrt(p0_gamma * (1 - p0_gamma) / rep.size)
    # replicates follow the gamma degree; the log-normal's share is far outside 5 SE
    assert abs(share - p0_gamma) < 5 * se * np.sqrt(len(GROUPS))  # groups share a degree
    assert abs(p0_gamma - p0_lognormal) > 0.05


def test_replicate_barrier_variance():
    rng = np.random.default_rng(3)
    shape = np.full(len(GROUPS), 0.5)
    post = maltiel_posterior(rng, shape=shape, sd=0.0)
    rep = _replicate(model_of("barrier", np.zeros((400, len(GROUPS)))), post, 200, rng)
    ed = np.exp(5 + 0.32)
    ed2 = np.exp(2 * 5 + 2 * 0.64)
    j = GROUPS.index("k5")
    r = RATES[j]
    var = ed * r + ed2 * r**2 / 0.5 + (ed2 - ed**2) * r**2  # NB2 mixed over the degree
    got = float(rep[:, :, j].var())
    # the variance of a heavy-tailed sample: 10% relative tolerance at 80,000 cells
    assert abs(got / var - 1) < 0.10
    poisson_var = ed * r + (ed2 - ed**2) * r**2
    assert got > 1.5 * poisson_var


def test_replicate_overdispersed_fitted_respondents():
    rng = np.random.default_rng(4)
    n, nd = 300, 200
    omega = np.array([1.5, 2.0, 3.0, 4.0, 6.0, 2.5])
    beta = np.log(np.array([0.5, 1.0, 2.0, 3.0, 4.0, 1.5]))
    post = xr.Dataset(
        {
            "sigma_alpha": (("chain", "draw"), np.full((1, nd), 0.5)),
            "beta": (("chain", "draw", "group"), np.broadcast_to(beta, (1, nd, 6)).copy()),
            "omega": (("chain", "draw", "group"), np.broadcast_to(omega, (1, nd, 6)).copy()),
            "alpha": (("chain", "draw", "respondent"), np.full((1, nd, n), 0.3)),
        },
        coords={"group": GROUPS},
    )
    model = model_of("overdispersed", np.zeros((n, 6)))
    rep = _replicate(model, post, nd, rng, fitted=True)
    mean = np.exp(0.3 + beta)
    got_mean = rep.mean(axis=(0, 1))
    got_ratio = rep.var(axis=(0, 1)) / got_mean
    cells = nd * n
    assert np.all(np.abs(got_mean - mean) < 5 * np.sqrt(omega * mean / cells))
    # variance / mean = omega (Zheng et al.); 5% relative tolerance at 60,000 cells
    assert np.all(np.abs(got_ratio / omega - 1) < 0.05)
    with pytest.raises(ValueError, match="latent"):
        _replicate(model_of("degree", np.zeros((n, 6))), maltiel_posterior(rng), 10, rng, True)


def test_replicate_pooled_model_uses_area_rates():
    rng = np.random.default_rng(14)
    shares = np.array(
        [
            [0.002, 0.005, 0.01, 0.02, 0.04],
            [0.004, 0.005, 0.02, 0.02, 0.01],
            [0.001, 0.010, 0.01, 0.05, 0.04],
        ]
    )
    hidden_rate = np.array([0.003, 0.012, 0.006])
    areas = ["a1", "a2", "a3"]
    pop = np.array([1e5, 2e5, 4e5])
    table = pd.DataFrame(
        {"population": pop, **{g: shares[:, j] * pop for j, g in enumerate(KNOWN)}},
        index=pd.Index(areas, name="area"),
    )
    ard = ard_of(np.zeros((600, 6)), area=np.repeat(areas, 200), area_table=table)
    model = NSUMModel.registry["pooled"](ard)
    nd = 100
    # log share of the hidden group per area = m + s z with m = 0, s = 1
    post = xr.Dataset(
        {
            "mu": (("chain", "draw"), np.full((1, nd), 5.0)),
            "sigma": (("chain", "draw"), np.full((1, nd), 0.6)),
            "nb_shape": (("chain", "draw", "group"), np.full((1, nd, 6), 2.0)),
            "log_prev_mean": (("chain", "draw", "hidden"), np.zeros((1, nd, 1))),
            "sigma_area": (("chain", "draw", "hidden"), np.ones((1, nd, 1))),
            "z_area": (
                ("chain", "draw", "hidden", "area"),
                np.broadcast_to(np.log(hidden_rate), (1, nd, 1, 3)).copy(),
            ),
        },
        coords={"group": GROUPS, "hidden": list(HIDDEN), "area": areas},
    )
    rep = _replicate(model, post, nd, rng)
    ed = np.exp(5.0 + 0.18)
    rates = np.column_stack([shares, hidden_rate])
    for j in range(3):
        got = rep[:, 200 * j : 200 * (j + 1), :].mean(axis=(0, 1))
        mean = ed * rates[j]
        var = mean + (np.exp(2 * 5.0 + 2 * 0.36) * rates[j] ** 2) * 1.5 - mean**2
        # each area's mean answer follows its own rates; 5 standard errors of 20,000 cells
        assert np.all(np.abs(got - mean) < 5 * np.sqrt(var / 20000))
    correlated = NSUMModel.registry["pooled"](ard, correlated=True)
    with pytest.raises(BayesNsumError, match="correlated"):
        _replicate(correlated, post, 5, rng)


def test_replicates_missing_cells_and_topcode(degree_data):
    y, post = degree_data
    y = y.copy()
    y[3, 1] = np.nan
    rep = _replicate(model_of("degree", y), post, 20, np.random.default_rng(0), topcode={"k5": 3})
    assert np.isnan(rep[:, 3, 1]).all()
    assert np.isfinite(rep[:, 4, 1]).all()
    assert np.nanmax(rep[:, :, GROUPS.index("k5")]) == 3.0
    assert np.nanmax(rep[:, :, GROUPS.index("k4")]) > 3.0


def test_missing_posterior_variable_is_clear(degree_data):
    y, post = degree_data
    with pytest.raises(BayesNsumError, match="barrier_shape"):
        _replicate(model_of("barrier", y), post, 10, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# statistics, p-values and the ppc table
# ---------------------------------------------------------------------------------------------


def test_answer_statistics_and_mid_p():
    y = np.array([[0, 1], [2, np.nan], [0, 5], [7, 0]], float)
    s = answer_statistics(y)
    np.testing.assert_allclose(s["mean"], [9 / 4, 2.0])
    np.testing.assert_allclose(s["share_zero"], [0.5, 1 / 3])
    np.testing.assert_allclose(s["sd"], [np.std([0, 2, 0, 7], ddof=1), np.std([1, 5, 0], ddof=1)])
    np.testing.assert_allclose(s["dist:6-10"], [0.25, 0.0])
    np.testing.assert_allclose(
        s["p90"], [np.quantile([0, 2, 0, 7], 0.9), np.quantile([1, 5, 0], 0.9)]
    )
    rep = np.array([[1.0], [2.0], [2.0], [3.0]])
    np.testing.assert_allclose(predictive_p_value(rep, np.array([2.0])), [0.25 + 0.25])


def _ppc(model, post, n_rep, seed):
    tree, _ = make_tree(post, model)
    tree["posterior_predictive"] = xr.DataTree(posterior_predictive(model, post, n_rep, seed))
    return ppc_of_tree(tree)


def test_ppc_calibrated_when_model_is_true(degree_data):
    y, post = degree_data
    table = _ppc(model_of("degree", y), post, 300, 3)
    assert list(table.columns) == PPC_COLUMNS
    assert set(table["statistic"]) >= {"mean", "sd", "share_zero", "p90", "dist:0", "dist:21+"}
    main = table[table["statistic"].isin(["mean", "sd", "share_zero"])]
    # data drawn from the posterior's own parameters: p-values are uniform, so about 5% fall
    # outside (0.025, 0.975); 18 checks, allow 3 (binomial tail probability < 2%)
    extreme = ((main["p_value"] < 0.025) | (main["p_value"] > 0.975)).sum()
    assert extreme <= 3
    inside = (main["observed"] >= main["lower"]) & (main["observed"] <= main["upper"])
    assert inside.mean() >= 0.75


def test_ppc_detects_overdispersion():
    rng = np.random.default_rng(5)
    y = simulate(rng, 400, shape=np.full(len(GROUPS), 0.3))
    post = maltiel_posterior(rng)  # Poisson degree model, true mean rates
    table = _ppc(model_of("degree", y), post, 200, 1).set_index(["group", "statistic"])
    for g in ("k4", "k5"):
        # barrier effects put many more zeros and a longer tail than the Poisson model: both
        # flagged at the report's threshold (p < 0.025); the share of zeros, the sharper
        # statistic, far beyond it
        assert table.loc[(g, "share_zero"), "p_value"] < 0.005
        assert table.loc[(g, "sd"), "p_value"] < 0.025


def test_posterior_predictive_group_is_arviz_shaped(degree_data):
    y, post = degree_data
    model = model_of("degree", y)
    rep = posterior_predictive(model, post, 40, seed=2)
    assert rep["y"].dims == ("chain", "draw", "respondent", "group")
    assert rep.sizes["chain"] * rep.sizes["draw"] <= 40
    assert list(rep["respondent"].values) == list(range(y.shape[0]))
    again = posterior_predictive(model, post, 40, seed=2)
    np.testing.assert_array_equal(rep["y"].values, again["y"].values)  # seeded


# ---------------------------------------------------------------------------------------------
# likelihood with the latent effect integrated out
# ---------------------------------------------------------------------------------------------


def _lm(family, prior, a, b, shape=None, rates=RATES, nodes=32):
    s = len(a)
    return LatentModel(
        family,
        np.broadcast_to(np.log(rates), (s, 1, len(rates))).copy(),
        None if shape is None else np.broadcast_to(shape, (s, 1, len(rates))).copy(),
        prior,
        np.asarray(a, float),
        np.asarray(b, float),
        GROUPS,
        nodes=nodes,
    )


def test_negbin_and_zheng_loglik_match_numerical_integration():
    from scipy import integrate, stats

    rng = np.random.default_rng(7)
    y = simulate(rng, 6, shape=np.full(6, 0.8))
    y[0] = 0
    y[1, 3] = np.nan
    shape = np.array([0.5, 2.0, 10.0, 0.2, 1.0, 3.0])
    omega = np.array([1.5, 3.0, 10.0, 1.05, 2.0, 4.0])
    cases = [("negbin", shape, 5.0, 0.8), ("zheng", omega, 0.0, 1.1)]
    for family, sh, a, b in cases:
        ll = _lm(family, "normal", [a], [b], sh).loglik(y)[0]
        for i in range(y.shape[0]):
            ok = ~np.isnan(y[i])

            def dens(z, i=i, ok=ok, family=family, sh=sh, a=a, b=b):
                m = np.exp(z) * RATES
                if family == "negbin":
                    lp = stats.nbinom.logpmf(y[i][ok], sh[ok], sh[ok] / (sh[ok] + m[ok]))
                else:
                    xi = np.exp(z) * RATES / (sh - 1)
                    lp = stats.nbinom.logpmf(y[i][ok], xi[ok], 1 / sh[ok])
                return np.exp(lp.sum() + stats.norm.logpdf(z, a, b))

            ref = integrate.quad(dens, a - 12 * b, a + 12 * b, limit=500, epsabs=0, epsrel=1e-12)[0]
            assert ll[i] == pytest.approx(np.log(ref), abs=1e-6)


def test_integrals_do_not_depend_on_threads_or_chunks(monkeypatch):
    """The draws are integrated in chunks on several threads; every chunk is computed alone, so
    one thread, four threads and one-draw chunks give the same numbers to the last bit."""
    from bayes_nsum.estimators import latent

    rng = np.random.default_rng(9)
    y = simulate(rng, 40, shape=np.full(6, 0.8))
    y[2, 1] = np.nan
    lm = _lm("negbin", "normal", rng.normal(5.0, 0.1, 12), rng.uniform(0.7, 1.0, 12), 0.8)
    runs = []
    for threads, cells in [(1, latent.CHUNK_CELLS), (1, 1.0), (4, 1.0), (4, 3e4)]:
        monkeypatch.setattr(latent, "_threads", lambda t=threads: t)
        monkeypatch.setattr(latent, "CHUNK_CELLS", cells)
        monkeypatch.setattr(LatentModel._chunks, "__defaults__", (cells,))
        runs.append((lm.loglik(y), *lm.moments(y)))
    for run in runs[1:]:
        for got, ref in zip(run, runs[0], strict=True):
            assert got.shape == ref.shape == (12, 40)
            np.testing.assert_array_equal(got, ref)


def test_expected_degree_closed_form_and_exclusion():
    rng = np.random.default_rng(8)
    y = simulate(rng, 50, kind="gamma")
    a, b = gamma_shape_rate(np.array([5.0]), np.array([1.0]))
    lm = _lm("poisson", "gamma", a, b)
    ed = lm.moments(y)[0][0]
    # gamma-Poisson: E[d | y] = (a + s) / (b + sum of rates)
    np.testing.assert_allclose(ed, (a + y.sum(1)) / (b + RATES.sum()), rtol=1e-7)
    ed_minus = lm.moments(y, exclude=["h1"])[0][0]
    np.testing.assert_allclose(ed_minus, (a + y[:, :-1].sum(1)) / (b + RATES[:-1].sum()), rtol=1e-7)


# ---------------------------------------------------------------------------------------------
# LOO comparison and internal consistency
# ---------------------------------------------------------------------------------------------


def test_loo_prefers_the_generating_model_from_the_trees_alone():
    from bayes_nsum.checks.loo import compare_fits

    rng = np.random.default_rng(9)
    shape = np.full(len(GROUPS), 0.6)
    y = simulate(rng, 300, shape=shape)
    nb_tree, _ = make_tree(maltiel_posterior(rng, shape=shape, draws=100), model_of("barrier", y))
    pois_tree, _ = make_tree(maltiel_posterior(rng, sigma=1.1, draws=100), model_of("degree", y))
    # neither tree has a log_likelihood group: compare_fits rebuilds each model from its tree
    table, loos = compare_fits({"barrier": nb_tree, "degree": pois_tree})
    assert list(table["model"]) == ["barrier", "degree"]
    worse = table.set_index("model").loc["degree"]
    # NB answers: the Poisson model is far worse, beyond 4 standard errors of the difference
    assert worse["elpd_diff"] < -4 * worse["dse"]
    assert {"n_bad_k", "max_k", "warning", "weight"} <= set(table.columns)
    assert loos["barrier"].elpd_i.shape == (300,)

    other = y.copy()
    other[0, 0] += 1
    tree_b, _ = make_tree(maltiel_posterior(rng, draws=50), model_of("degree", other))
    with pytest.raises(BayesNsumError, match="different answers"):
        compare_fits({"a": pois_tree, "b": tree_b})


def test_quick_internal_consistency_recovers_and_flags_sizes():
    from bayes_nsum.checks.consistency import IC_COLUMNS, quick_internal_consistency

    rng = np.random.default_rng(10)
    y = simulate(rng, 600)
    post = maltiel_posterior(rng)
    tree, _ = make_tree(post, model_of("degree", y))
    table = quick_internal_consistency(tree, model_of("degree", y), n_draws=50)
    assert list(table.columns) == IC_COLUMNS
    totals = y[:, : len(KNOWN)].sum(axis=0)
    # ratio estimator: relative sampling error about 1/sqrt(total answers) plus the degree
    # spread; allow 4 of those plus 3%
    tol = 4 * np.sqrt(1 / totals + 0.8**2 / 600) + 0.03
    assert np.all(np.abs(table["relative_error"].to_numpy()) < tol)
    # a known group whose listed size is half the truth is found about 100% too large
    wrong = model_of("degree", y, sizes=dict(KNOWN, k4=KNOWN["k4"] / 2))
    t2 = quick_internal_consistency(tree, wrong, n_draws=50).set_index("group")
    assert 0.7 < t2.loc["k4", "relative_error"] < 1.3


def test_quick_internal_consistency_overdispersed():
    from bayes_nsum.checks.consistency import quick_internal_consistency

    rng = np.random.default_rng(12)
    n, nd = 400, 100
    omega = np.full(len(GROUPS), 2.0)
    shift = 5.3  # beta = log(rate) + shift: the model's location is arbitrary
    beta = np.log(RATES) + shift
    alpha = rng.normal(0, 0.7, n)
    mean = np.exp(alpha[:, None] + beta[None, :])
    y = rng.poisson(rng.gamma(mean / (omega - 1), omega - 1)).astype(float)
    post = xr.Dataset(
        {
            "sigma_alpha": (("chain", "draw"), jit(rng, 0.7, draws=nd)),
            "beta": (("chain", "draw", "group"), jit(rng, beta, (6,), draws=nd)),
            "omega": (("chain", "draw", "group"), jit(rng, omega, (6,), draws=nd)),
        },
        coords={"group": GROUPS},
    )
    model = model_of("overdispersed", y)
    tree, _ = make_tree(post, model)
    table = quick_internal_consistency(tree, model, n_draws=20)
    totals = y[:, : len(KNOWN)].sum(axis=0)
    tol = 4 * np.sqrt(2 / totals + 0.7**2 / n) + 0.05
    assert np.all(np.abs(table["relative_error"].to_numpy()) < tol)


def test_degrees_by_quadrature_match_the_latent_form(degree_data):
    from bayes_nsum.checks.degrees import DEGREE_COLUMNS, respondent_degrees

    y, post = degree_data
    model = model_of("degree", y)
    table = respondent_degrees(model, post.isel(draw=slice(0, 20)))
    assert list(table.columns) == DEGREE_COLUMNS
    assert table["respondent"].tolist() == list(range(y.shape[0]))  # positions, never ids
    lm = model.latent(stack_draws(post.isel(draw=slice(0, 20))))
    np.testing.assert_allclose(table["mean"], lm.moments(y)[0].mean(axis=0), rtol=1e-12)
    assert (table["method"] == "quadrature").all()
