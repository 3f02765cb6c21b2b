"""Tests of the Bayesian models (bayes_nsum.estimators) without running a sampler.

Models are built on a 50-respondent simulated survey; their log density is compiled with
PyTensor's ``FAST_COMPILE`` mode (no C compilation). The fitting path runs with
:func:`bayes_nsum.fit.sample` replaced by prior draws shaped like a posterior (see conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum.errors import BayesNsumError, PriorError
from bayes_nsum.estimators import MODELS
from bayes_nsum.priors import Prior
from bayes_nsum.result import SUMMARY_COLUMNS, NSUMResult, load_result

FAST_MODE = "FAST_COMPILE"

#: free random variables and their dims, per model
EXPECTED_FREE = {
    "degree": {"mu": (), "sigma": (), "log_visible": ("hidden",)},
    "transmission": {"mu": (), "sigma": (), "log_visible": ("hidden",), "tau": ("hidden",)},
    "barrier": {
        "mu": (),
        "sigma": (),
        "log_visible": ("hidden",),
        "rho_known_groups": ("known",),
        "log_barrier_shape": ("hidden",),  # rho of the hidden groups: a deterministic
        "log_degree": ("respondent",),
    },
    "combined": {
        "mu": (),
        "sigma": (),
        "log_visible": ("hidden",),
        "tau": ("hidden",),
        "rho_known_groups": ("known",),
        "log_barrier_shape": ("hidden",),
        "log_degree": ("respondent",),
    },
    "overdispersed": {
        "sigma_alpha": (),
        "mu_beta": (),
        "sigma_beta": (),
        "alpha_raw": ("respondent",),
        "beta": ("group",),
        "inv_omega": ("group",),
    },
}

CONTRACT = [  # the summary.csv columns the issue fixes (written out, not imported)
    "area",
    "group",
    "quantity",
    "estimate",
    "mean",
    "lower",
    "upper",
    "interval_prob",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "denominator",  # the population a size's prevalence is relative to (issue 12)
]


def free_dims(model) -> dict[str, tuple]:
    pm_model = model.model
    return {v.name: tuple(pm_model.named_vars_to_dims.get(v.name) or ()) for v in pm_model.free_RVs}


def initial_logp(model) -> float:
    pm_model = model.model
    return float(pm_model.compile_logp(mode=FAST_MODE)(pm_model.initial_point()))


def test_registry_and_summary_contract():
    assert set(EXPECTED_FREE) <= set(MODELS)
    assert SUMMARY_COLUMNS == CONTRACT


@pytest.mark.parametrize("name", list(EXPECTED_FREE))
def test_model_builds_with_expected_variables(small_prep, name):
    ard = small_prep.ard
    model = MODELS[name](ard)
    assert model._model is None  # nothing is built in the constructor
    assert free_dims(model) == EXPECTED_FREE[name]
    coords = model.model.coords
    assert list(coords["hidden"]) == ["victims", "offenders"]
    assert list(coords["group"]) == list(ard.known) + ["victims", "offenders"]
    assert len(coords["respondent"]) == 50
    assert np.isfinite(initial_logp(model))


def test_degree_model_logp_is_priors_plus_collapsed_likelihood(small_prep):
    """The model's log density is its priors plus the collapsed Poisson likelihood of the
    answers with known-group rates N_k / N and hidden rates exp(log_visible)."""
    import pytensor.tensor as pt

    from bayes_nsum.estimators.components import CountStats, poisson_collapsed_loglik

    ard = small_prep.ard
    model = MODELS["degree"](ard)
    pm_model = model.model
    point = pm_model.initial_point()
    names = [v.name for v in pm_model.unobserved_value_vars]
    values = dict(
        zip(
            names,
            pm_model.compile_fn(pm_model.unobserved_value_vars, mode=FAST_MODE, point_fn=True)(
                point
            ),
            strict=True,
        )
    )
    log_rate = np.concatenate(
        [
            np.log(ard.known_sizes.loc[list(ard.known)].to_numpy() / ard.total_population),
            values["log_visible"],
        ]
    )
    np.testing.assert_allclose(values["log_rate"], log_rate, rtol=1e-12)
    stats = CountStats.from_matrix(ard.counts[ard.groups].to_numpy(float))
    # float64 arrays, not Python floats (PyTensor may cast those to float32)
    direct = poisson_collapsed_loglik(
        stats,
        pt.as_tensor(log_rate),
        pt.as_tensor(np.asarray(values["mu"], "float64")),
        pt.as_tensor(np.asarray(values["sigma"], "float64")),
        "lognormal",
    ).eval(mode=FAST_MODE)
    ll = float(
        pm_model.compile_logp(vars=[pm_model["loglik"]], jacobian=False, mode=FAST_MODE)(point)
    )
    assert ll == pytest.approx(float(direct), rel=1e-10)
    priors = float(
        pm_model.compile_logp(vars=pm_model.free_RVs, jacobian=False, mode=FAST_MODE)(point)
    )
    total = float(pm_model.compile_logp(jacobian=False, mode=FAST_MODE)(point))
    assert total == pytest.approx(ll + priors, rel=1e-10)
    # the uniform priors: log(1/5) + log(1/1.75) + 2 log(1/log N); PyTensor stores bounds such
    # as 0.25 and 2.0 as float32 constants, so their normalising terms carry float32 rounding
    expected_prior = -np.log(5) - np.log(1.75) - 2 * np.log(np.log(ard.total_population))
    assert priors == pytest.approx(expected_prior, rel=1e-6)


def test_prior_override_changes_the_model(small_prep):
    ard = small_prep.ard
    default = MODELS["degree"](ard)
    fixed = MODELS["degree"](ard, priors={"mu": 5.0})
    assert fixed.priors["mu"] == Prior.fixed(5.0)
    assert "mu" not in free_dims(fixed) and "mu" in free_dims(default)
    assert initial_logp(fixed) != pytest.approx(initial_logp(default))
    tight = MODELS["degree"](ard, priors={"sigma": {"dist": "Uniform", "lower": 0.5, "upper": 0.6}})
    assert tight.model["sigma"].owner is not None
    assert tight.model.initial_point()["sigma_interval__"] == pytest.approx(0.0)
    assert tight.config()["priors"]["sigma"] == {"dist": "Uniform", "lower": 0.5, "upper": 0.6}


def test_per_group_override_and_delta_prior(small_prep):
    model = MODELS["combined"](
        small_prep.ard,
        priors={
            "tau": {"victims": 0.5},
            "delta": {"offenders": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.2}},
        },
    )
    names = free_dims(model)
    assert "tau_offenders" in names and "tau_victims" not in names
    assert "delta_offenders" in names and "delta_victims" not in names
    assert np.isfinite(initial_logp(model))


@pytest.mark.parametrize("name", ["degree", "overdispersed"])
def test_prior_name_typo_raises(small_prep, name):
    with pytest.raises(PriorError, match="did you mean"):
        MODELS[name](small_prep.ard, priors={"sigmaa" if name == "degree" else "sigma_alfa": 1})


def test_prior_for_unknown_group_raises(small_prep):
    with pytest.raises(PriorError, match="victim"):
        MODELS["transmission"](small_prep.ard, priors={"tau": {"victim": 0.5}})


def test_option_typo_raises(small_prep):
    with pytest.raises(BayesNsumError, match="no option.*degre.*options: .*degree"):
        MODELS["degree"](small_prep.ard, degre="gamma")
    with pytest.raises(BayesNsumError, match="'lognormal' or 'gamma'"):
        MODELS["degree"](small_prep.ard, degree="weibull")
    with pytest.raises(BayesNsumError, match="no option"):
        MODELS["overdispersed"](small_prep.ard, degree="gamma")


def test_gamma_degree_builds(small_prep):
    for name in ("degree", "barrier"):
        model = MODELS[name](small_prep.ard, degree="gamma")
        assert np.isfinite(initial_logp(model))
        assert model.config()["options"]["degree"] == "gamma"


# -- derived quantities ----------------------------------------------------------------------
def fake_posterior(rng, hidden, chains=2, draws=30, **vars_) -> xr.Dataset:
    """Random draws: scalars (chain, draw); names in ``vars_`` map to 'hidden' or 'scalar'."""
    data = {}
    for name, kind in vars_.items():
        if kind == "hidden":
            data[name] = (
                ("chain", "draw", "hidden"),
                rng.uniform(0.2, 0.9, (chains, draws, len(hidden))),
            )
        else:
            data[name] = (("chain", "draw"), rng.uniform(0.2, 0.9, (chains, draws)))
    return xr.Dataset(data, coords={"chain": range(chains), "draw": range(draws), "hidden": hidden})


def test_derive_sizes_exactly(small_prep):
    ard = small_prep.ard
    hidden = list(ard.hidden)
    model = MODELS["transmission"](
        ard, priors={"delta": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.2}}
    )
    rng = np.random.default_rng(5)
    post = fake_posterior(rng, hidden, mu="scalar", sigma="scalar", tau="hidden", delta="hidden")
    post["log_visible"] = xr.DataArray(
        rng.uniform(-8, -4, (2, 30, 2)), dims=("chain", "draw", "hidden")
    )
    before = post.copy(deep=True)
    out = model.derive(post)
    xr.testing.assert_identical(post, before)  # derive works on a copy
    expected = ard.total_population * np.exp(post["log_visible"]) / (post["tau"] * post["delta"])
    np.testing.assert_allclose(out["size"].values, expected.values, rtol=1e-12)
    np.testing.assert_allclose(
        out["prevalence"].values, expected.values / ard.total_population, rtol=1e-12
    )
    np.testing.assert_allclose(
        out["one_in_x"].values, ard.total_population / expected.values, rtol=1e-12
    )
    assert out["size"].dims == ("chain", "draw", "hidden")


def test_derive_with_fixed_parameters(small_prep):
    """Fixed parameters are not in the posterior; derive must broadcast them (regression: it
    used the draws of 'mu' as a template and failed when mu itself was fixed)."""
    ard = small_prep.ard
    model = MODELS["transmission"](ard, priors={"mu": 5.0, "tau": {"victims": 0.5}})
    rng = np.random.default_rng(6)
    post = xr.Dataset(
        {
            "sigma": (("chain", "draw"), rng.uniform(0.5, 1, (2, 20))),
            "log_visible": (("chain", "draw", "hidden"), rng.uniform(-8, -4, (2, 20, 2))),
            "tau_offenders": (("chain", "draw"), rng.uniform(0.3, 0.9, (2, 20))),
        },
        coords={"chain": [0, 1], "draw": range(20), "hidden": list(ard.hidden)},
    )
    out = model.derive(post)
    tau = np.stack([np.full((2, 20), 0.5), post["tau_offenders"].values], axis=-1)
    expected = ard.total_population * np.exp(post["log_visible"].values) / tau  # delta fixed 1
    np.testing.assert_allclose(
        out["size"].transpose("chain", "draw", "hidden").values, expected, rtol=1e-12
    )
    np.testing.assert_array_equal(out["delta"].values, 1.0)


def test_overdispersed_derive_scales_by_known_groups(small_prep):
    ard = small_prep.ard
    model = MODELS["overdispersed"](ard, priors={"mu_beta": -5.0, "tau": 0.5})
    groups = ard.groups
    rng = np.random.default_rng(7)
    beta = rng.normal(-5, 1, (2, 10, len(groups)))
    post = xr.Dataset(
        {
            "beta": (("chain", "draw", "group"), beta),
            "alpha": (("chain", "draw", "respondent"), rng.normal(0, 1, (2, 10, ard.n))),
        },
        coords={"chain": [0, 1], "draw": range(10), "group": groups},
    )
    out = model.derive(post)
    m_known = ard.known_sizes.loc[list(ard.known)].to_numpy() / ard.total_population
    k = len(ard.known)
    c = np.log(m_known.sum()) - np.log(np.exp(beta[..., :k]).sum(-1))
    expected = ard.total_population * np.exp(beta[..., k:] + c[..., None]) / 0.5
    np.testing.assert_allclose(
        out["size"].transpose("chain", "draw", "hidden").values, expected, rtol=1e-12
    )
    # the scaled known groups reproduce their total share exactly
    known_share = np.exp(beta[..., :k] + c[..., None]).sum(-1)
    np.testing.assert_allclose(known_share, m_known.sum(), rtol=1e-12)


# -- the fitting path with sampling mocked ---------------------------------------------------
def _fit(small_prep, fake_sampling, **kw) -> NSUMResult:
    """Fit the transmission model (mu fixed) through model.fit() with fake sampling."""
    fake_sampling(**kw)
    model = MODELS["transmission"](small_prep.ard, priors={"mu": 5.0})
    return model.fit(draws=100, chains=2, seed=3, progress=False)


def test_fit_returns_result_with_contract_summary(small_prep, fake_sampling, tmp_path):
    result = _fit(small_prep, fake_sampling)
    assert isinstance(result, NSUMResult)
    assert set(result.tree.children) >= {"posterior", "sample_stats", "prior", "observed_data"}
    post = result.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 100
    # sizes are derived from the (fake) draws exactly
    expected = (
        small_prep.ard.total_population
        * np.exp(post["log_visible"])
        / (post["tau"] * post["delta"])
    )
    np.testing.assert_allclose(post["size"].values, expected.values, rtol=1e-12)
    summary = result.summary()
    assert list(summary.columns) == CONTRACT
    sizes = summary[summary.quantity == "size"].set_index("group")
    assert list(sizes.index) == ["victims", "offenders"]
    for g in sizes.index:
        draws = post["size"].sel(hidden=g).values.ravel()
        assert sizes.loc[g, "estimate"] == pytest.approx(np.median(draws))
        lo, hi = np.quantile(draws, [0.05, 0.95])
        assert sizes.loc[g, "lower"] == pytest.approx(lo)
        assert sizes.loc[g, "upper"] == pytest.approx(hi)
    assert set(summary.quantity) >= {"size", "prevalence", "one_in_x", "tau", "sigma"}
    assert "mu" not in set(summary.quantity)  # fixed: no draws to summarise
    assert (summary.interval_prob == 0.9).all()
    # prior draws were derived too
    assert "size" in result.tree["prior"].to_dataset()

    paths = result.save(tmp_path / "out")
    for name in ("posterior.nc", "summary.csv", "diagnostics.json"):
        assert (tmp_path / "out" / name).is_file()
    assert set(paths) >= {"posterior", "summary", "diagnostics"}
    diag = json.loads((tmp_path / "out" / "diagnostics.json").read_text())
    assert {"max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences", "passed"} <= set(diag)
    saved = pd.read_csv(tmp_path / "out" / "summary.csv", keep_default_na=False)
    assert list(saved.columns[: len(CONTRACT)]) == CONTRACT
    back = load_result(tmp_path / "out")
    np.testing.assert_allclose(back.posterior["size"].values, post["size"].values)


def test_fake_iid_draws_pass_and_shifted_chains_fail(small_prep, fake_sampling):
    good = _fit(small_prep, fake_sampling).diagnostics({"min_ess_bulk": 50, "min_ess_tail": 50})
    assert good["passed"] and good["divergences"] == 0 and good["max_r_hat"] < 1.05
    bad = _fit(small_prep, fake_sampling, chain_shift=5.0, divergences=3).diagnostics()
    assert not bad["passed"] and bad["divergences"] == 3 and bad["max_r_hat"] > 1.5
    failed = {c["check"] for c in bad["checks"] if not c["passed"]}
    assert {"r_hat", "divergences"} <= failed


@pytest.mark.parametrize("name", list(EXPECTED_FREE))
def test_every_model_fits_with_fake_sampling(small_prep, fake_sampling, name):
    fake_sampling(seed=4)
    result = MODELS[name](small_prep.ard).fit(draws=40, chains=2, progress=False)
    summary = result.summary()
    assert list(summary.columns) == CONTRACT
    sizes = summary[summary.quantity == "size"]
    assert list(sizes.group) == ["victims", "offenders"]
    assert np.isfinite(sizes[["estimate", "lower", "upper"]].to_numpy()).all()
    post = result.posterior
    assert post["size"].sizes == {"chain": 2, "draw": 40, "hidden": 2}
    np.testing.assert_allclose(
        post["prevalence"].values, post["size"].values / small_prep.ard.total_population
    )


def test_recall_calibration_bends_known_rates_around_their_centre(small_prep):
    """log r_k = log m_k + gamma (log m_k - c): with gamma fixed at -0.3 the reported rates of
    the known groups are pulled towards the centre c (their mean log share)."""
    import pytensor

    from bayes_nsum.estimators import DegreeModel

    ard = small_prep.ard
    model = DegreeModel(ard, recall_calibration=True, priors={"gamma": -0.3})
    m = model.model
    assert "gamma" not in [v.name for v in m.free_RVs]  # fixed by the override
    log_m = np.log(ard.known_sizes.loc[list(ard.known)].to_numpy() / ard.total_population)
    c = log_m.mean()
    ip = m.initial_point()
    f = pytensor.function(
        m.value_vars, m["log_rate"], on_unused_input="ignore", mode="FAST_COMPILE"
    )
    log_rate = f(*[ip[v.name] for v in m.value_vars])
    np.testing.assert_allclose(log_rate[: len(log_m)], log_m - 0.3 * (log_m - c), rtol=1e-12)
    # a free slope is a parameter with the default Normal(0, 0.5) prior
    free = DegreeModel(ard, recall_calibration=True)
    assert "gamma" in [v.name for v in free.model.free_RVs]
    assert np.isfinite(free.model.compile_logp(mode="FAST_COMPILE")(free.model.initial_point()))
