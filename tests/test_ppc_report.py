"""Posterior predictive checks, per-respondent likelihoods, LOO comparison, internal consistency,
headline rounding and the HTML report.

The fast tier never samples: fits are fake DataTrees whose posterior draws sit (with a little
jitter) at the parameters that generated the data, so the predictive distribution is known.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum import ppc as P
from bayes_nsum.errors import BayesNsumError

N = 1_000_000.0
KNOWN = {"k1": 2000.0, "k2": 5000.0, "k3": 10000.0, "k4": 20000.0, "k5": 40000.0}
HIDDEN = {"h1": 6000.0}
GROUPS = list(KNOWN) + list(HIDDEN)
RATES = np.array([*KNOWN.values(), *HIDDEN.values()]) / N
GH_T, GH_W = np.polynomial.hermite.hermgauss(80)


# ---------------------------------------------------------------------------------------------
# fake fits
# ---------------------------------------------------------------------------------------------


def simulate(rng, n, rates=RATES, mu=5.0, sigma=0.8, shape=None, kind="lognormal"):
    """Answers from the Maltiel degree (Poisson) or barrier (NB2, ``shape``) model."""
    if kind == "gamma":
        a, b = P._gamma_degree(np.array(mu), np.array(sigma))
        d = rng.gamma(a, 1 / b, size=n)
    else:
        d = np.exp(rng.normal(mu, sigma, size=n))
    m = d[:, None] * rates[None, :]
    if shape is None:
        return rng.poisson(m).astype(float)
    return rng.poisson(rng.gamma(shape, m / shape)).astype(float)


def _jit(rng, value, shape=(), sd=0.005, chains=2, draws=300):
    value = np.asarray(value, float)
    return value + sd * rng.normal(size=(chains, draws, *shape))


def maltiel_posterior(rng, mu=5.0, sigma=0.8, rates=RATES, shape=None, draws=300, sd=0.005):
    lr = _jit(rng, np.log(rates), (len(rates),), sd, draws=draws)
    post = {
        "mu": (("chain", "draw"), _jit(rng, mu, sd=sd, draws=draws)),
        "sigma": (("chain", "draw"), _jit(rng, sigma, sd=sd, draws=draws)),
        "log_rate": (("chain", "draw", "group"), lr),
        "log_visible": (("chain", "draw", "hidden"), lr[..., len(KNOWN) :]),
    }
    if shape is not None:
        post["barrier_shape"] = (
            ("chain", "draw", "group"),
            np.exp(_jit(rng, np.log(shape), (len(rates),), sd, draws=draws)),
        )
    size = np.exp(lr[..., len(KNOWN) :]) * N
    post.update(
        {
            "size": (("chain", "draw", "hidden"), size),
            "prevalence": (("chain", "draw", "hidden"), size / N),
            "one_in_x": (("chain", "draw", "hidden"), N / size),
        }
    )
    return xr.Dataset(post, coords={"group": GROUPS, "hidden": list(HIDDEN)})


def make_tree(post: xr.Dataset, y: np.ndarray, model: str, options=None, caps=None, ids=None):
    rng = np.random.default_rng(99)
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    ids = ids if ids is not None else [f"R{i:04d}" for i in range(y.shape[0])]
    observed = xr.Dataset(
        {"y": (("respondent", "group"), y)}, coords={"respondent": ids, "group": GROUPS}
    )
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((nc, nd), bool)),
            "energy": (("chain", "draw"), rng.normal(size=(nc, nd))),
        }
    )
    steps = [{"rule": "missing_drop", "settings": {"policy": "drop"}, "counts": {"k1": 0}}]
    if caps:
        steps.append(
            {
                "rule": "topcode",
                "settings": {"threshold": 30, "caps": caps},
                "counts": dict.fromkeys(caps, 1),
            }
        )
    prov = {
        "versions": {"python": "3.12", "bayes_nsum": "0.1.0"},
        "spec": {
            "data": {"survey": "survey.csv", "total_population": N},
            "groups": {"hidden": list(HIDDEN)},
            "model": {"name": model},
            "output": {"interval_prob": 0.9},
        },
        "spec_hash": "abc123",
        "data_hash": "def456",
        "n_respondents": int(y.shape[0]),
        "n_respondents_raw": int(y.shape[0]) + 3,
        "preprocess": {"steps": steps},
        "sampler": {"seed": 7, "draws": nd, "chains": nc},
        "model": {
            "model": model,
            "options": options or {},
            "known": list(KNOWN),
            "hidden": list(HIDDEN),
            "prior_set": None,
            "priors": {
                "mu": {"dist": "Uniform", "lower": 3.0, "upper": 8.0},
                "delta": {"h1": {"dist": "Fixed", "value": 1.0}},
            },
        },
        "command": "fit",
    }
    tree = xr.DataTree.from_dict(
        {"posterior": post, "sample_stats": stats, "observed_data": observed}
    )
    tree.attrs = {"model": model, "provenance": json.dumps(prov)}
    return tree, prov


def write_results(d: Path, tree, prov, passed: bool = True, areas: bool = False) -> Path:
    from bayes_nsum.result import compute_diagnostics, summarize_posterior

    d.mkdir(parents=True, exist_ok=True)
    tree.to_netcdf(d / "posterior.nc", engine="h5netcdf")
    post = tree["posterior"].to_dataset()
    summary = summarize_posterior(post, 0.9)
    if areas:
        rows = []
        for j, a in enumerate(["north", "south", "east", "west", "centre"]):
            est = 0.004 + 0.001 * j
            rows.append(
                {
                    "area": a,
                    "group": "h1",
                    "quantity": "prevalence",
                    "estimate": est,
                    "mean": est,
                    "lower": est * 0.7,
                    "upper": est * 1.4,
                    "interval_prob": 0.9,
                    "r_hat": 1.0,
                    "ess_bulk": 500.0,
                    "ess_tail": 500.0,
                }
            )
        summary = pd.concat([summary, pd.DataFrame(rows)], ignore_index=True)
    summary.to_csv(d / "summary.csv", index=False)
    diag = compute_diagnostics(tree)
    if not passed:
        diag["passed"] = False
        diag["checks"][0]["passed"] = False
        diag["advice"] = ["run longer"]
    (d / "diagnostics.json").write_text(json.dumps(diag, default=str))
    (d / "provenance.json").write_text(json.dumps(prov))
    pd.DataFrame(
        {"rule": ["missing_drop", "topcode"], "group": ["k1", "k5"], "n_changed": [0, 2]}
    ).to_csv(d / "preprocess_log.csv", index=False)
    pd.DataFrame(
        {
            "rule": ["topcode"] * 2,
            "group": ["k5", "k5"],
            "respondent": ["R1", "R2"],
            "old": [80.0, 95.0],
            "new": [30.0, 30.0],
            "detail": ["cap=30"] * 2,
        }
    ).to_csv(d / "preprocess_changes.csv", index=False)
    return d


@pytest.fixture(scope="module")
def degree_data():
    rng = np.random.default_rng(11)
    y = simulate(rng, 400)
    post = maltiel_posterior(rng)
    return y, post


# ---------------------------------------------------------------------------------------------
# replicated surveys
# ---------------------------------------------------------------------------------------------


def _lognormal_e(mu, sigma, fn):
    """E[fn(d)] for d ~ LogNormal(mu, sigma) by 80-node Gauss-Hermite (exact to ~1e-12)."""
    d = np.exp(mu + np.sqrt(2) * sigma * GH_T)
    return float(np.sum(GH_W * fn(d)) / np.sqrt(np.pi))


def test_replicate_degree_model_matches_analytic_moments(degree_data):
    y, post = degree_data
    obs = xr.Dataset({"y": (("respondent", "group"), y)}, coords={"group": GROUPS})
    rep = P.replicate_counts("degree", post, obs, 200, np.random.default_rng(1))
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
    obs = xr.Dataset(
        {"y": (("respondent", "group"), np.zeros((500, len(GROUPS))))}, coords={"group": GROUPS}
    )
    rep = P.replicate_counts("degree", post, obs, 200, rng, options={"degree": "gamma"})
    a, b = P._gamma_degree(np.array(4.0), np.array(1.2))
    p0_gamma = float((b / (b + 0.05)) ** a)
    p0_lognormal = _lognormal_e(4.0, 1.2, lambda d: np.exp(-d * 0.05))
    share = float((rep.values == 0).mean())
    se = np.sqrt(p0_gamma * (1 - p0_gamma) / rep.size)
    # replicates follow the gamma degree; the log-normal's share is far outside 5 SE
    assert abs(share - p0_gamma) < 5 * se * np.sqrt(len(GROUPS))  # groups share a degree
    assert abs(p0_gamma - p0_lognormal) > 0.05


def test_replicate_barrier_variance():
    rng = np.random.default_rng(3)
    shape = np.full(len(GROUPS), 0.5)
    post = maltiel_posterior(rng, shape=shape, sd=0.0)
    obs = xr.Dataset(
        {"y": (("respondent", "group"), np.zeros((400, len(GROUPS))))}, coords={"group": GROUPS}
    )
    rep = P.replicate_counts("barrier", post, obs, 200, rng, options={"barrier": True})
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
    obs = xr.Dataset({"y": (("respondent", "group"), np.zeros((n, 6)))}, coords={"group": GROUPS})
    rep = P.replicate_counts("overdispersed", post, obs, nd, rng, respondents="fitted").values
    mean = np.exp(0.3 + beta)
    got_mean = rep.mean(axis=(0, 1))
    got_ratio = rep.var(axis=(0, 1)) / got_mean
    cells = nd * n
    assert np.all(np.abs(got_mean - mean) < 5 * np.sqrt(omega * mean / cells))
    # variance / mean = omega (Zheng et al.); 5% relative tolerance at 60,000 cells
    assert np.all(np.abs(got_ratio / omega - 1) < 0.05)
    with pytest.raises(P.PPCUnavailable, match="latent"):
        P.replicate_counts("degree", maltiel_posterior(rng), obs, 10, rng, respondents="fitted")


class _AreaData:
    """The parts of an ARD the pooled model's simulator reads."""

    def __init__(self, n_per_area: int, shares: np.ndarray):
        self.areas = ["a1", "a2", "a3"]
        ids = [f"R{i:04d}" for i in range(n_per_area * 3)]
        self.counts = pd.DataFrame(index=ids)
        self.area = pd.Series(np.repeat(self.areas, n_per_area), index=ids)
        pop = np.array([1e5, 2e5, 4e5])
        table = {"population": pop}
        for j, g in enumerate(KNOWN):
            table[g] = shares[:, j] * pop
        self.area_table = pd.DataFrame(table, index=self.areas)
        self.known, self.hidden = tuple(KNOWN), tuple(HIDDEN)


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
    data = _AreaData(200, shares)
    nd = 100
    post = xr.Dataset(
        {
            "mu": (("chain", "draw"), np.full((1, nd), 5.0)),
            "sigma": (("chain", "draw"), np.full((1, nd), 0.6)),
            "nb_shape": (("chain", "draw", "group"), np.full((1, nd, 6), 2.0)),
            "log_rate_area": (
                ("chain", "draw", "hidden", "area"),
                np.broadcast_to(np.log(hidden_rate), (1, nd, 1, 3)).copy(),
            ),
        },
        coords={"group": GROUPS, "hidden": list(HIDDEN), "area": data.areas},
    )
    obs = xr.Dataset({"y": (("respondent", "group"), np.zeros((600, 6)))}, coords={"group": GROUPS})
    rep = P.replicate_counts("pooled", post, obs, nd, rng, data=data).values
    ed = np.exp(5.0 + 0.18)
    rates = np.column_stack([shares, hidden_rate])
    for j in range(3):
        got = rep[:, 200 * j : 200 * (j + 1), :].mean(axis=(0, 1))
        mean = ed * rates[j]
        var = mean + (np.exp(2 * 5.0 + 2 * 0.36) * rates[j] ** 2) * 1.5 - mean**2
        # each area's mean answer follows its own rates; 5 standard errors of 20,000 cells
        assert np.all(np.abs(got - mean) < 5 * np.sqrt(var / 20000))
    with pytest.raises(P.PPCUnavailable, match="correlated"):
        P.replicate_counts("pooled", post, obs, 5, rng, options={"correlated": True}, data=data)


def test_replicates_missing_cells_and_topcode(degree_data):
    y, post = degree_data
    y = y.copy()
    y[3, 1] = np.nan
    obs = xr.Dataset({"y": (("respondent", "group"), y)}, coords={"group": GROUPS})
    rep = P.replicate_counts("degree", post, obs, 20, np.random.default_rng(0), topcode={"k5": 3.0})
    assert np.isnan(rep.values[:, 3, 1]).all()
    assert np.isfinite(rep.values[:, 4, 1]).all()
    assert np.nanmax(rep.values[:, :, GROUPS.index("k5")]) == 3.0
    assert np.nanmax(rep.values[:, :, GROUPS.index("k4")]) > 3.0


def test_missing_posterior_variable_is_clear(degree_data):
    y, post = degree_data
    obs = xr.Dataset({"y": (("respondent", "group"), y)}, coords={"group": GROUPS})
    with pytest.raises(P.PPCUnavailable, match="barrier_shape"):
        P.replicate_counts(
            "barrier", post, obs, 10, np.random.default_rng(0), options={"barrier": True}
        )
    with pytest.raises(P.PPCUnavailable, match="no predictive simulator"):
        P.replicate_counts("mystery", post, obs, 10, np.random.default_rng(0))
    with pytest.raises(P.PPCUnavailable, match="area"):
        P.replicate_counts("pooled", post, obs, 10, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# statistics and p-values
# ---------------------------------------------------------------------------------------------


def test_answer_statistics_and_mid_p():
    y = np.array([[0, 1], [2, np.nan], [0, 5], [7, 0]], float)
    s = P.answer_statistics(y)
    np.testing.assert_allclose(s["mean"], [9 / 4, 2.0])
    np.testing.assert_allclose(s["share_zero"], [0.5, 1 / 3])
    np.testing.assert_allclose(s["sd"], [np.std([0, 2, 0, 7], ddof=1), np.std([1, 5, 0], ddof=1)])
    np.testing.assert_allclose(s["dist:6-10"], [0.25, 0.0])
    np.testing.assert_allclose(
        s["p90"], [np.quantile([0, 2, 0, 7], 0.9), np.quantile([1, 5, 0], 0.9)]
    )
    rep = np.array([[1.0], [2.0], [2.0], [3.0]])
    np.testing.assert_allclose(P.predictive_p_value(rep, np.array([2.0])), [0.25 + 0.25])


def test_ppc_calibrated_when_model_is_true(degree_data):
    y, post = degree_data
    tree, _ = make_tree(post, y, "degree", {"degree": "lognormal", "barrier": False})
    table = P.posterior_predictive_check(tree, n_rep=300, seed=3)
    assert list(table.columns) == P.PPC_COLUMNS
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
    shape = np.full(len(GROUPS), 0.3)
    y = simulate(rng, 400, shape=shape)
    post = maltiel_posterior(rng)  # Poisson degree model, true mean rates
    tree, _ = make_tree(post, y, "degree")
    table = P.posterior_predictive_check(tree, n_rep=200, seed=1).set_index(["group", "statistic"])
    for g in ("k4", "k5"):
        # barrier effects put many more zeros and a longer tail than the Poisson model
        assert table.loc[(g, "share_zero"), "p_value"] < 0.01
        assert table.loc[(g, "sd"), "p_value"] < 0.01


# ---------------------------------------------------------------------------------------------
# likelihood with the latent effect integrated out
# ---------------------------------------------------------------------------------------------


def _lm(family, prior, a, b, shape=None, rates=RATES):
    s = len(a)
    return P.LatentModel(
        family,
        np.broadcast_to(np.log(rates), (s, 1, len(rates))).copy(),
        None if shape is None else np.broadcast_to(shape, (s, 1, len(rates))).copy(),
        prior,
        np.asarray(a, float),
        np.asarray(b, float),
        GROUPS,
    )


@pytest.mark.parametrize("kind", ["lognormal", "gamma"])
def test_poisson_loglik_equals_model_likelihood(kind):
    """The sum over respondents is the Potential the degree model samples with."""
    import pytensor
    import pytensor.tensor as pt

    from bayes_nsum.estimators.components import CountStats, poisson_collapsed_loglik

    rng = np.random.default_rng(6)
    y = simulate(rng, 150)
    y[0] = 0
    y[1, 2] = np.nan
    mu, sigma = np.array([5.1, 4.7]), np.array([0.9, 1.3])
    if kind == "gamma":
        a, b = P._gamma_degree(mu, sigma)
        lm = _lm("poisson", "gamma", a, b)
    else:
        lm = _lm("poisson", "normal", mu, sigma)
    ll = P.respondent_log_likelihood(lm, y)
    stats = CountStats.from_matrix(y)
    lr, m, s = pt.dvector("lr"), pt.dscalar("m"), pt.dscalar("s")
    f = pytensor.function(
        [lr, m, s], poisson_collapsed_loglik(stats, lr, m, s, kind), mode="FAST_COMPILE"
    )
    for i in range(2):
        total = float(f(np.log(RATES), mu[i], sigma[i]))
        # the model's quadrature is accurate to ~1e-8 relative per respondent
        assert ll[i].sum() == pytest.approx(total, abs=1e-5)


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
        lm = _lm(family, "normal", [a], [b], sh)
        ll = P.respondent_log_likelihood(lm, y)[0]
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


def test_expected_degree_closed_form_and_exclusion():
    rng = np.random.default_rng(8)
    y = simulate(rng, 50, kind="gamma")
    a, b = P._gamma_degree(np.array([5.0]), np.array([1.0]))
    lm = _lm("poisson", "gamma", a, b)
    ed = P.expected_degree(lm, y)[0]
    # gamma-Poisson: E[d | y] = (a + s) / (b + sum of rates)
    np.testing.assert_allclose(ed, (a + y.sum(1)) / (b + RATES.sum()), rtol=1e-7)
    ed_minus = P.expected_degree(lm, y, exclude=["h1"])[0]
    np.testing.assert_allclose(ed_minus, (a + y[:, :-1].sum(1)) / (b + RATES[:-1].sum()), rtol=1e-7)


# ---------------------------------------------------------------------------------------------
# LOO comparison and internal consistency
# ---------------------------------------------------------------------------------------------


def test_loo_prefers_the_generating_model():
    from bayes_nsum.compare import compare_fits

    rng = np.random.default_rng(9)
    shape = np.full(len(GROUPS), 0.6)
    y = simulate(rng, 300, shape=shape)
    nb_tree, _ = make_tree(
        maltiel_posterior(rng, shape=shape, draws=100), y, "barrier", {"barrier": True}
    )
    pois_tree, _ = make_tree(maltiel_posterior(rng, sigma=1.1, draws=100), y, "degree")
    table, loos = compare_fits({"barrier": nb_tree, "degree": pois_tree})
    assert list(table["model"]) == ["barrier", "degree"]
    worse = table.set_index("model").loc["degree"]
    # NB answers: the Poisson model is far worse, beyond 4 standard errors of the difference
    assert worse["elpd_diff"] < -4 * worse["dse"]
    assert {"n_bad_k", "max_k", "warning", "weight"} <= set(table.columns)
    assert loos["barrier"].elpd_i.shape == (300,)

    other = y.copy()
    other[0, 0] += 1
    tree_b, _ = make_tree(maltiel_posterior(rng, draws=50), other, "degree")
    with pytest.raises(BayesNsumError, match="different answers"):
        compare_fits({"a": pois_tree, "b": tree_b})


class _FakeARD:
    def __init__(self, sizes=None):
        self.known = tuple(KNOWN)
        self.hidden = tuple(HIDDEN)
        self.known_sizes = pd.Series(sizes or KNOWN)
        self.total_population = N


def test_quick_internal_consistency_recovers_and_flags_sizes():
    from bayes_nsum.compare import quick_internal_consistency

    rng = np.random.default_rng(10)
    y = simulate(rng, 600)
    tree, _ = make_tree(maltiel_posterior(rng), y, "degree")
    table = quick_internal_consistency(tree, _FakeARD(), n_draws=50)
    assert list(table.columns) == [
        "group",
        "true_size",
        "estimate",
        "error",
        "relative_error",
        "lower",
        "upper",
    ]
    totals = y[:, : len(KNOWN)].sum(axis=0)
    # ratio estimator: relative sampling error about 1/sqrt(total answers) plus the degree
    # spread; allow 4 of those plus 3%
    tol = 4 * np.sqrt(1 / totals + 0.8**2 / 600) + 0.03
    assert np.all(np.abs(table["relative_error"].to_numpy()) < tol)
    # a known group whose listed size is half the truth is found about 100% too large
    wrong = dict(KNOWN, k4=KNOWN["k4"] / 2)
    t2 = quick_internal_consistency(tree, _FakeARD(wrong), n_draws=50).set_index("group")
    assert 0.7 < t2.loc["k4", "relative_error"] < 1.3


def test_quick_internal_consistency_overdispersed():
    from bayes_nsum.compare import quick_internal_consistency

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
            "sigma_alpha": (("chain", "draw"), _jit(rng, 0.7, draws=nd)),
            "beta": (("chain", "draw", "group"), _jit(rng, beta, (6,), draws=nd)),
            "omega": (("chain", "draw", "group"), _jit(rng, omega, (6,), draws=nd)),
        },
        coords={"group": GROUPS},
    )
    tree, _ = make_tree(post, y, "overdispersed")
    table = quick_internal_consistency(tree, _FakeARD(), n_draws=20)
    totals = y[:, : len(KNOWN)].sum(axis=0)
    tol = 4 * np.sqrt(2 / totals + 0.7**2 / n) + 0.05
    assert np.all(np.abs(table["relative_error"].to_numpy()) < tol)


# ---------------------------------------------------------------------------------------------
# headline numbers
# ---------------------------------------------------------------------------------------------


def test_headline_rounding():
    from bayes_nsum.report import headline, percent_headline, significant

    row = {"estimate": 34123.0, "lower": 28345.0, "upper": 40210.0, "interval_prob": 0.9}
    assert headline(row, 312.4) == "34,000 (90% CrI 28,000 to 40,000); about 1 in 310"
    # width 1,180 -> hundreds; HDI label; 1 in X from the row
    row = {
        "estimate": 5143.9,
        "lower": 4620.3,
        "upper": 5800.2,
        "interval_prob": 0.95,
        "one_in_x": 194.4,
    }
    assert headline(row, kind="hdi") == "5,100 (95% HDI 4,600 to 5,800); about 1 in 190"
    # a wide interval does not round a small bound to zero
    row = {"estimate": 480.0, "lower": 12.0, "upper": 29990.0, "interval_prob": 0.9}
    assert headline(row) == "500 (90% CrI 10 to 30,000)"
    # precise estimates keep decimals
    prev = {"estimate": 0.0051439, "lower": 0.0046203, "upper": 0.0055729, "interval_prob": 0.9}
    assert percent_headline(prev) == "0.514% (90% CrI 0.462% to 0.557%)"
    assert significant(471234) == "470,000"
    assert significant(7.64) == "7.6"


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


class _TagChecker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if "id" in a:
            self.ids.append(a["id"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _check_html(path: Path) -> _TagChecker:
    text = path.read_text(encoding="utf-8")
    checker = _TagChecker()
    checker.feed(text)
    assert not checker.errors, checker.errors[:3]
    assert checker.stack == []
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:|//)""", text)
    for img in checker.imgs:
        assert img.get("alt")
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return checker


def test_report_of_fake_fit(tmp_path, degree_data):
    from bayes_nsum.report import write_report

    y, post = degree_data
    tree, prov = make_tree(post, y, "degree", {"degree": "lognormal"}, caps={"k5": 30.0})
    d = write_results(tmp_path / "res", tree, prov, areas=True)
    pd.DataFrame(
        {
            "group": ["k1", "k2"],
            "true_size": [2000.0, 5000.0],
            "estimate": [2300.0, 4600.0],
            "error": [300.0, -400.0],
            "relative_error": [0.15, -0.08],
            "lower": [1800.0, 3900.0],
            "upper": [2900.0, 5400.0],
        }
    ).to_csv(d / "internal_consistency.csv", index=False)
    path = write_report(d, ppc_draws=60)
    checker = _check_html(path)
    text = path.read_text()
    for sid in (
        "estimates",
        "diagnostics",
        "posteriors",
        "areas",
        "ppc",
        "consistency",
        "data",
        "model",
        "provenance",
    ):
        assert sid in checker.ids
    assert "All convergence checks passed" in text
    assert "could not be produced" not in text
    assert "FAILED" not in text
    # posterior, per-area, ppc statistics, ppc distribution, internal consistency
    assert len(checker.imgs) == 5
    assert "1 in" in text and "90% CrI" in text
    assert "Uniform(lower=3, upper=8)" in text and "fixed at 1" in text
    assert "def456" in text  # data hash
    ppc = pd.read_csv(d / "ppc.csv")
    assert list(ppc.columns) == P.PPC_COLUMNS
    assert ppc.loc[ppc["group"] == "k5", "upper"].max() <= 30.0  # replicates top-coded
    mtime = (d / "ppc.csv").stat().st_mtime_ns
    write_report(d)  # ppc.csv is up to date: reused
    assert (d / "ppc.csv").stat().st_mtime_ns == mtime


def test_report_flags_failed_fit_and_unavailable_ppc(tmp_path, degree_data):
    from bayes_nsum.report import write_report

    y, post = degree_data
    tree, prov = make_tree(post, y, "pooled", {"anchor": "likelihood"})
    d = write_results(tmp_path / "res", tree, prov, passed=False)
    path = write_report(d, ppc_draws=20)
    _check_html(path)
    text = path.read_text()
    assert "CONVERGENCE CHECKS FAILED" in text
    assert "class='banner'" in text
    assert "Posterior predictive checks not available" in text
    assert not (d / "ppc.csv").exists()


def test_report_errors_and_cli(tmp_path, degree_data, capsys):
    from bayes_nsum import cli_report

    with pytest.raises(BayesNsumError, match="not found"):
        cli_report.cmd_report(
            argparse.Namespace(
                results_dir=str(tmp_path / "nope"), ppc_draws=10, recompute_ppc=False
            )
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(BayesNsumError, match="summary.csv"):
        cli_report.cmd_report(
            argparse.Namespace(
                results_dir=str(tmp_path / "empty"), ppc_draws=10, recompute_ppc=False
            )
        )
    y, post = degree_data
    tree, prov = make_tree(post, y, "degree")
    d = write_results(tmp_path / "res", tree, prov)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_report.add_parser(sub)
    args = parser.parse_args(["report", str(d), "--ppc-draws", "30"])
    assert args.func(args) == 0
    assert "report.html" in capsys.readouterr().out
    assert (d / "report.html").is_file() and (d / "ppc.csv").is_file()


def _write_spec(d: Path, y: np.ndarray, model: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    survey = pd.DataFrame(y.astype(int), columns=GROUPS)
    survey.insert(0, "id", [f"R{i:04d}" for i in range(len(y))])
    survey.to_csv(d / "survey.csv", index=False)
    pd.DataFrame({"group": list(KNOWN), "size": list(KNOWN.values())}).to_csv(
        d / "known_sizes.csv", index=False
    )
    (d / f"{model}.toml").write_text(
        '[data]\nsurvey = "survey.csv"\nknown_sizes = "known_sizes.csv"\n'
        f'total_population = {int(N)}\n[groups]\nhidden = ["h1"]\n'
        f'[model]\nname = "{model}"\n[output]\ndir = "out_{model}"\n'
    )
    return d / f"{model}.toml"


def test_compare_cli_reuses_fits(tmp_path, capsys):
    from bayes_nsum import cli_compare
    from bayes_nsum.analysis import prepare
    from bayes_nsum.spec import load_spec

    rng = np.random.default_rng(13)
    shape = np.full(len(GROUPS), 0.7)
    y = simulate(rng, 250, shape=shape)
    posts = {
        "barrier": maltiel_posterior(rng, shape=shape, draws=100),
        "degree": maltiel_posterior(rng, sigma=1.0, draws=100),
    }
    specs = []
    for model, post in posts.items():
        spec_path = _write_spec(tmp_path, y, model)
        spec = load_spec(spec_path)
        prep = prepare(spec)
        tree, prov = make_tree(
            post, y, model, {"barrier": model == "barrier"}, ids=list(prep.ard.counts.index)
        )
        prov.update(spec_hash=spec.digest(), data_hash=prep.ard.data_hash())
        tree.attrs["provenance"] = json.dumps(prov)
        tree.attrs["converged"] = 1
        write_results(spec.output_dir(), tree, prov)
        specs.append(str(spec_path))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_compare.add_parser(sub)
    out = tmp_path / "cmp"
    args = parser.parse_args(["compare", *specs, "--reuse", "--out", str(out), "--quiet"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "barrier" in printed and "elpd_loo" in printed
    table = pd.read_csv(out / "compare.csv")
    assert table["model"].tolist()[0] == "barrier"
    assert table["reused"].all()
    assert table["ic_mean_abs_rel_error"].notna().all()
    _check_html(out / "compare.html")
    details = json.loads((out / "compare.json").read_text())
    assert set(details["internal_consistency"]) == {"barrier", "degree"}

    with pytest.raises(BayesNsumError, match="at least two"):
        parser.parse_args(["compare", specs[0], "--reuse", "--out", str(out)]).func(
            parser.parse_args(["compare", specs[0], "--reuse", "--out", str(out)])
        )


# ---------------------------------------------------------------------------------------------
# slow tier: real sampling and a real browser
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bayesian_internal_consistency_two_groups(tmp_path):
    from bayes_nsum.analysis import prepare
    from bayes_nsum.compare import IC_COLUMNS, bayesian_internal_consistency

    rng = np.random.default_rng(21)
    y = simulate(rng, 300)
    spec_path = _write_spec(tmp_path, y, "degree")
    prep = prepare(spec_path)
    table = bayesian_internal_consistency(
        prep, sampler={"draws": 150, "tune": 150, "chains": 2, "seed": 3}, groups=["k4", "k5"]
    )
    assert list(table.columns)[: len(IC_COLUMNS)] == IC_COLUMNS
    assert table["group"].tolist() == ["k4", "k5"]
    # 300 respondents, 3-4 known groups left: the held-out size is known to about 15%;
    # allow 40% for tiny chains
    assert np.all(np.abs(table["relative_error"]) < 0.4)
    assert np.all((table["lower"] < table["estimate"]) & (table["estimate"] < table["upper"]))


@pytest.mark.slow
def test_fit_report_and_compare_end_to_end(tmp_path):
    """Real fits of two model families: variable names, PPC, LOO and the report agree."""
    from bayes_nsum.analysis import run_fit
    from bayes_nsum.compare import compare_specs

    rng = np.random.default_rng(22)
    y = simulate(rng, 200, shape=np.full(len(GROUPS), 0.7))
    specs = [_write_spec(tmp_path, y, m) for m in ("degree", "overdispersed")]
    sampler = {"draws": 150, "tune": 150, "chains": 2, "seed": 1, "progress": False}
    for s in specs:
        _, _, outdir = run_fit(s, sampler=sampler)
        text = (outdir / "report.html").read_text()
        assert "could not be produced" not in text
        assert "not available" not in text
        assert (outdir / "ppc.csv").is_file()
    comp = compare_specs(specs, reuse=True, sampler=sampler)
    assert comp.table["reused"].all()
    assert set(comp.table["model"]) == {"degree", "overdispersed"}
    # NB answers: the overdispersed model predicts them better than the Poisson degree model
    assert comp.table["model"].iloc[0] == "overdispersed"


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path, degree_data):
    from bayes_nsum.report import write_report

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    y, post = degree_data
    tree, prov = make_tree(post, y, "degree")
    d = write_results(tmp_path / "res", tree, prov, areas=True)
    path = write_report(d, ppc_draws=40)
    # a test copy with a script that records whether every embedded image decoded
    probe = d / "probe.html"
    probe.write_text(
        path.read_text().replace(
            "</body>",
            "<script>window.addEventListener('load',()=>{const i=[...document.images];"
            "document.body.dataset.images=i.length;"
            "document.body.dataset.decoded=i.filter(x=>x.complete&&x.naturalWidth>0).length;});"
            "</script></body>",
        )
    )
    run = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert "Posterior predictive checks" in dom
    n_img = re.search(r'data-images="(\d+)"', dom)
    n_ok = re.search(r'data-decoded="(\d+)"', dom)
    assert n_img and n_ok, dom[-500:]
    assert int(n_img.group(1)) == 4 and n_ok.group(1) == n_img.group(1)
