"""Tests of the partially pooled multi-area model (bayes_nsum.estimators.pooled).

Fast tier: building, coords/dims, priors, log density, the likelihood against scipy, derived
quantities on hand-made posterior draws (no sampling). Slow tier: one small recovery fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from scipy import stats as sps

from bayes_nsum.analysis import prepare
from bayes_nsum.errors import BayesNsumError, DataError, PriorError
from bayes_nsum.estimators.pooled import PooledModel
from bayes_nsum.result import summarize_posterior
from bayes_nsum.simulate import simulate_pooled


@pytest.fixture(scope="module")
def ard(tmp_path_factory):
    """12 areas in the area table, respondents in the first 10 only (A011, A012 empty)."""
    n_per = np.array([6] * 10 + [1, 1])
    sim = simulate_pooled(
        n_areas=12,
        respondents_per_area=n_per,
        denominators={"hidden_1": "children", "hidden_2": "adults"},
        seed=3,
    )
    sim.survey = sim.survey[~sim.survey["area"].isin(["A011", "A012"])]
    paths = sim.write(tmp_path_factory.mktemp("pooled"), model="pooled")
    return prepare(paths["spec"]).ard


def _fake_posterior(model: PooledModel, chains: int = 2, draws: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    dim = model.pooled_dim
    groups = model.pooled_groups
    J = len(model.data.areas)
    c = {"chain": np.arange(chains), "draw": np.arange(draws)}
    return xr.Dataset(
        {
            "log_prev_mean": (
                ("chain", "draw", dim),
                rng.normal(-5, 0.5, (chains, draws, len(groups))),
            ),
            "sigma_area": (
                ("chain", "draw", dim),
                rng.uniform(0.1, 0.5, (chains, draws, len(groups))),
            ),
            "z_area": (
                ("chain", "draw", dim, "area"),
                rng.normal(size=(chains, draws, len(groups), J)),
            ),
        },
        coords={**c, dim: groups, "area": model.data.areas},
    )


# -- building --------------------------------------------------------------------------------
def test_builds_with_area_coords_and_dims(ard):
    m = PooledModel(ard)
    assert m.coords["area"] == ard.areas and len(ard.areas) == 12
    pm_model = m.model
    assert pm_model.named_vars_to_dims["z_area"] == ("hidden", "area")
    assert pm_model.named_vars_to_dims["log_degree"] == ("respondent",)
    assert pm_model.named_vars_to_dims["nb_shape"] == ("group",)
    post = PooledModel(ard, anchor="posthoc").model
    assert post.named_vars_to_dims["z_area"] == ("group", "area")
    assert "mu" not in post.named_vars  # fixed location with the post-hoc anchor


@pytest.mark.parametrize("options", [{}, {"anchor": "posthoc"}, {"correlated": True}])
def test_logp_finite_at_initial_point(ard, options):
    pm_model = PooledModel(ard, **options).model
    lp = pm_model.compile_logp(mode="FAST_COMPILE")(pm_model.initial_point())
    assert np.isfinite(lp)


def test_likelihood_matches_scipy_negative_binomial(ard):
    """The Potential equals the sum of scipy NB2 log-pmfs at a random point (to 1e-8)."""
    m = PooledModel(ard)
    pm_model = m.model
    rng = np.random.default_rng(5)
    point = pm_model.initial_point()
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    names = ["log_degree", "nb_shape", "log_prev_mean", "sigma_area", "z_area"]
    outs = pm_model.replace_rvs_by_values([pm_model.potentials[0]] + [pm_model[v] for v in names])
    fn = pm_model.compile_fn(
        outs, inputs=pm_model.value_vars, mode="FAST_COMPILE", on_unused_input="ignore"
    )
    lp_pot, *vals = fn(point)
    x, w, mh, sh, z = vals
    log_r = np.concatenate([m.known_log_rate(), (mh[:, None] + sh[:, None] * z).T], axis=1)
    mean = np.exp(x[:, None] + log_r[m.area_index])
    y = ard.counts[ard.groups].to_numpy()
    expected = sps.nbinom.logpmf(y, w[None, :], w[None, :] / (w[None, :] + mean)).sum()
    assert lp_pot == pytest.approx(expected, rel=1e-8)


# -- options and priors ----------------------------------------------------------------------
def test_prior_override_by_name_and_typo_errors(ard):
    override = {"hidden_1": {"dist": "Gamma", "alpha": 2.0, "beta": 5.0}}
    m = PooledModel(ard, priors={"sigma_area": override})
    assert m.priors["sigma_area"]["hidden_1"].params == {"alpha": 2.0, "beta": 5.0}
    assert m.priors["sigma_area"]["hidden_2"].params == {"alpha": 2.0, "beta": 3.0}
    assert "sigma_area_hidden_1" not in m.model.named_vars  # same family: one vector variable
    with pytest.raises(PriorError, match="sigma_area"):
        PooledModel(ard, priors={"sigma_aera": 0.3})
    with pytest.raises(PriorError, match="known_01"):
        PooledModel(ard, priors={"sigma_area": {"known_01": 0.3}})  # not pooled (likelihood)
    PooledModel(ard, anchor="posthoc", priors={"sigma_area": {"known_01": 0.3}})


def test_bad_options_and_data(ard):
    with pytest.raises(BayesNsumError, match="anchor"):
        PooledModel(ard, anchor="post-hoc")
    with pytest.raises(BayesNsumError, match="no option"):
        PooledModel(ard, pooling=True)
    from dataclasses import replace

    with pytest.raises(DataError, match="area"):
        PooledModel(replace(ard, area=None))
    with pytest.raises(DataError, match="known_02"):
        PooledModel(replace(ard, area_table=ard.area_table.drop(columns="known_02")))


# -- derived quantities ----------------------------------------------------------------------
@pytest.mark.parametrize("anchor", ["likelihood", "posthoc"])
def test_derived_national_is_sum_over_all_areas(ard, anchor):
    m = PooledModel(ard, anchor=anchor)
    post = m.derive(_fake_posterior(m))
    assert post["size_area"].dims == ("chain", "draw", "hidden", "area")
    assert post["size"].dims == ("chain", "draw", "hidden")
    assert list(post["size_area"]["area"].values) == ard.areas
    np.testing.assert_allclose(post["size"], post["size_area"].sum("area"), rtol=1e-12)
    den = np.array([ard.denominator(h) for h in ard.hidden])
    np.testing.assert_allclose(post["prevalence"], post["size"] / den, rtol=1e-12)
    np.testing.assert_allclose(post["one_in_x"] * post["prevalence"], 1.0, rtol=1e-12)
    a = ard.areas[3]
    np.testing.assert_allclose(
        post["prevalence_area"].sel(hidden="hidden_1", area=a),
        post["size_area"].sel(hidden="hidden_1", area=a) / ard.area_table.loc[a, "children"],
    )


@pytest.mark.parametrize("effects", ["non-centred", "centred"])
def test_derived_values_likelihood_anchor(ard, effects):
    m = PooledModel(ard, area_effects=effects)
    fake = _fake_posterior(m)
    post = m.derive(fake)
    pop = ard.area_table["population"].to_numpy()
    mean, sd, z = fake["log_prev_mean"], fake["sigma_area"], fake["z_area"]
    # non-centred: log rate = m + s z; centred: z is the log rate itself
    log_rate = mean + sd * z if effects == "non-centred" else z
    expected = np.exp(log_rate) * pop
    np.testing.assert_allclose(post["size_area"].transpose(*expected.dims), expected)


def test_area_effects_auto_centres_informative_groups(ard):
    """Centred where each area's answers pin its rate, non-centred where the pooling prior does;
    the two parametrisations give the same log rates from matching draws."""
    assert set(PooledModel(ard).centring) <= {0.0, 1.0}
    sparse = replace(ard, counts=ard.counts.assign(hidden_1=0.0))  # no information at all
    assert PooledModel(sparse).centring[0] == 0.0
    rng = np.random.default_rng(0)
    # about 120 answers per area, near Poisson, and areas far apart (log sd 1): each area's
    # answers pin its rate far more tightly than the spread between areas
    effect = dict(zip(ard.areas, np.exp(rng.normal(0.0, 1.0, len(ard.areas))), strict=True))
    many = rng.poisson(20.0 * ard.area.map(effect).to_numpy()).astype(float)
    dense = replace(ard, counts=ard.counts.assign(hidden_2=many))
    assert PooledModel(dense).centring[1] == 1.0
    m, s, z = -5.0, 0.7, np.array([-1.0, 0.3])
    np.testing.assert_allclose(
        PooledModel.area_log_rate(m, s, m + s * z, 1.0), PooledModel.area_log_rate(m, s, z, 0.0)
    )


def test_posthoc_scaling_matches_known_sizes(ard):
    """Scaled post-hoc rates reproduce the known groups' total share in every area."""
    m = PooledModel(ard, anchor="posthoc", area_effects="non-centred")
    fake = _fake_posterior(m)
    post = m.derive(fake)
    log_r = (fake["log_prev_mean"] + fake["sigma_area"] * fake["z_area"]).sel(group=list(ard.known))
    scaled = (np.exp(log_r + post["log_scale_area"])).sum("group")
    at = ard.area_table
    target = at[list(ard.known)].sum(axis=1) / at["population"]
    np.testing.assert_allclose(scaled, np.broadcast_to(target.to_numpy(), scaled.shape))


def test_areas_without_respondents_are_predicted(ard):
    m = PooledModel(ard)
    assert {"A011", "A012"} <= set(ard.areas) and not {"A011", "A012"} & set(ard.area)
    post = m.derive(_fake_posterior(m))
    empty = post["size_area"].sel(area=["A011", "A012"])
    assert np.all(np.isfinite(empty)) and np.all(empty > 0)
    # the model has pooling draws z for empty areas (they see only the pooling distribution)
    ip = m.model.initial_point()
    assert ip["z_area"].shape == (len(ard.hidden), 12)
    summary_areas = set(summarize_posterior(post).query("quantity == 'size'").area)
    assert {"", "A011", "A012"} <= summary_areas


def test_summary_has_area_rows(ard):
    m = PooledModel(ard)
    s = summarize_posterior(m.derive(_fake_posterior(m, draws=20)))
    per_area = s[(s.area != "") & (s.quantity == "prevalence")]
    assert len(per_area) == len(ard.hidden) * len(ard.areas)
    assert set(s[s.area == ""].query("quantity == 'size'").group) == set(ard.hidden)


def test_summary_reuses_the_gates_diagnostics_unchanged(ard):
    """``NSUMResult.summary`` after ``diagnostics`` takes R-hat and ESS from the gate's cache:
    the table equals the one computed from scratch, and the cache was used."""
    from bayes_nsum.result import NSUMResult

    m = PooledModel(ard)
    post = m.derive(_fake_posterior(m, chains=4, draws=30))
    res = NSUMResult(tree=xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset()}))
    fresh = res.summary()
    res.diagnostics()
    assert {"size_area", "z_area", "sigma_area"} <= set(res.__dict__["_var_diag"])
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(res.summary(), fresh)
    # a poisoned cache shows that the summary reads it
    res.__dict__["_var_diag"]["size_area"] = {
        k: v * 0 + 7.0 for k, v in res.__dict__["_var_diag"]["size_area"].items()
    }
    area = res.summary().query("quantity == 'size' and area != ''")
    assert (area["r_hat"] == 7.0).all() and (area["ess_bulk"] == 7.0).all()


def test_transmission_and_degree_ratio_divide_the_sizes(ard):
    """tau and delta stay out of the likelihood: sizes scale exactly as 1 / (tau delta)."""
    base = PooledModel(ard)
    fake = _fake_posterior(base)
    ref = base.derive(fake)["size"].sel(hidden="hidden_1")
    for tau in (0.4, 0.6, 0.8):
        m = PooledModel(ard, priors={"tau": {"hidden_1": tau}, "delta": {"hidden_1": 1.25}})
        got = m.derive(fake)["size"]
        np.testing.assert_allclose(got.sel(hidden="hidden_1"), ref / (tau * 1.25), rtol=1e-12)
        np.testing.assert_allclose(
            got.sel(hidden="hidden_2"), base.derive(fake)["size"].sel(hidden="hidden_2")
        )
    assert base.priors["tau"]["hidden_1"].is_fixed  # default: visible counts
    with pytest.raises(PriorError, match="tau"):
        PooledModel(ard, priors={"tau": {"victims": 0.5}})  # not a hidden group here


def test_transmission_by_area_varies_around_tau(ard):
    with pytest.raises(BayesNsumError, match="transmission_by_area"):
        PooledModel(ard, transmission_by_area=True)  # tau fixed at 1: nothing to vary
    m = PooledModel(
        ard,
        transmission_by_area=True,
        priors={"tau": {"dist": "Beta", "mean": 0.6, "concentration": 30}},
    )
    draws = m.prior_draws(400, seed=1)
    tau_area = draws["tau_area"]
    assert tau_area.dims[-2:] == ("hidden", "area") and float(tau_area.min()) > 0
    # partial pooling on the logit scale: area rates spread around each group's tau
    assert 0.4 < float(tau_area.mean()) < 0.8
    assert float(tau_area.std("area").mean()) > 0.01


def test_zero_inflation_adds_structural_zeros(ard):
    m = PooledModel(ard, zero_inflation=True, priors={"zero_prob": 0.3})
    plain = PooledModel(ard)
    draws = plain.prior_draws(1, seed=2)
    y_plain = plain.simulate(draws, np.random.default_rng(0), rows=np.zeros(20_000, int))[0]
    y_zi = m.simulate(draws, np.random.default_rng(0), rows=np.zeros(20_000, int))[0]
    # P(0) = 0.3 + 0.7 P_NB(0): 5 binomial standard errors over 20,000 answers
    p0 = (y_plain == 0).mean(axis=0)
    np.testing.assert_allclose((y_zi == 0).mean(axis=0), 0.3 + 0.7 * p0, atol=5 * 0.0035)
    assert "zero_prob" in m.param_groups() and "zero_prob" not in plain.param_groups()


# -- slow: recovery ----------------------------------------------------------------------------
@pytest.mark.slow
def test_recovery_national_sizes(tmp_path):
    """20 areas x 30 respondents, 2 chains x 300 draws (likelihood anchor).

    Tolerance: each true national hidden size must lie in its 90% interval. With 2 hidden groups
    a correct model fails this by chance with probability about 0.19 for an arbitrary seed; the
    seed is fixed, so the test is deterministic and catches a biased or mis-scaled model (a
    wrong denominator or scale moves the interval by far more than its width).
    """
    sim = simulate_pooled(n_areas=20, respondents_per_area=30, seed=11)
    ard = prepare(sim.write(tmp_path, model="pooled")["spec"]).ard
    res = PooledModel(ard).fit(chains=2, draws=300, tune=300, cores=2, progress=False, seed=2)
    s = res.summary()
    nat = s[(s.area == "") & (s.quantity == "size")].set_index("group")
    truth = sim.truth.query("area == '' and quantity == 'size'").set_index("group")["value"]
    for h in ard.hidden:
        assert nat.loc[h, "lower"] <= truth[h] <= nat.loc[h, "upper"], (h, nat.loc[h], truth[h])
    assert res.diagnostics()["divergences"] == 0


@pytest.mark.slow
def test_recovery_with_zero_inflation_and_transmission(tmp_path):
    """One draw from the prior of the zero-inflated model with visibility 0.5 (the
    ``calibration_priors``, structural-zero shares from their Beta(1, 4) default), a survey
    simulated from it, and the same model fitted: the national sizes (which divide the visible
    ones by tau) and the structural-zero shares are recovered. A draw from the prior is what
    the posterior is calibrated for: each 90% interval misses with probability 0.1 (the seed is
    fixed, so the test is deterministic). The zero shares of the 6 groups: at least 4 of 6
    intervals cover the truth (fails by chance with probability about 0.016)."""
    sim = simulate_pooled(n_areas=20, respondents_per_area=30, seed=12)
    ard = prepare(sim.write(tmp_path, model="pooled")["spec"]).ard
    priors = {**PooledModel.calibration_priors, "tau": 0.5}
    gen = PooledModel(ard, zero_inflation=True, priors=priors)
    theta = gen.prior_draws(1, seed=5)
    y = gen.simulate(theta, np.random.default_rng(4), fitted=True)[0]
    import pandas as pd

    data = replace(ard, counts=pd.DataFrame(y, index=ard.counts.index, columns=ard.groups))
    model = PooledModel(data, zero_inflation=True, priors=priors)
    res = model.fit(chains=2, draws=400, tune=400, progress=False, seed=3)
    truth = theta["size"].isel(chain=0, draw=0)
    s = res.summary().query("area == '' and quantity == 'size'").set_index("group")
    for h in ard.hidden:
        assert s.loc[h, "lower"] <= float(truth.sel(hidden=h)) <= s.loc[h, "upper"], h
    zp = res.posterior["zero_prob"].quantile([0.05, 0.95], ("chain", "draw"))
    true_zp = theta["zero_prob"].isel(chain=0, draw=0)
    covered = (zp.sel(quantile=0.05) < true_zp) & (true_zp < zp.sel(quantile=0.95))
    assert int(covered.sum()) >= covered.size - 2, (zp, true_zp)


def test_tune_auto_is_300_with_nutpie_and_recorded(ard, fake_sampling, monkeypatch):
    """``tune = "auto"`` (the default) gives the pooled model nutpie's 300 tuning steps, other
    backends and models the package's 1000; a number given wins; the fit records the number."""
    import bayes_nsum.fit as fit

    model = PooledModel(ard)
    assert model.default_tune("nutpie") == model.default_tune("nutpie-jax") == 300
    assert model.default_tune("pymc") == model.default_tune("numpyro") == fit.DEFAULT_TUNE
    assert fit.sampler_settings(model)["tune"] == 300
    assert fit.sampler_settings(model, backend="pymc")["tune"] == 1000
    assert fit.sampler_settings(model, tune=40)["tune"] == 40
    assert fit.sampler_settings()["tune"] == 1000  # no model: the package default
    seen = {}
    fake = fake_sampling()
    monkeypatch.setattr(fit, "sample", lambda m, s, t=None: seen.update(s) or fake(m, s, t))
    res = model.fit(draws=5, chains=2, progress=False)
    assert seen["tune"] == 300 and res.tree.attrs["sampler"]["tune"] == 300
