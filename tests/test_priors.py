"""Tests of priors as data (bayes_nsum.priors): parsing, conversion, merging, prior sets."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

from bayes_nsum.analysis import build_model, prepare
from bayes_nsum.errors import PriorError
from bayes_nsum.priors import (
    Prior,
    create_group_param,
    describe_priors,
    load_prior_set,
    merge_priors,
    parse_priors,
)

#: no C compilation for the few graphs compiled here
FAST_MODE = "FAST_COMPILE"


# -- single priors ---------------------------------------------------------------------------
def test_number_is_a_fixed_prior():
    p = Prior.from_spec(0.6, "tau")
    assert p.is_fixed and p.dist == "Fixed" and p.params == {"value": 0.6}
    assert p.describe() == "fixed at 0.6"
    np.testing.assert_array_equal(p.sample(np.random.default_rng(0), 3), [0.6, 0.6, 0.6])
    assert Prior.from_spec(2).params == {"value": 2.0}


def test_table_prior_and_round_trip():
    spec = {"dist": "Normal", "mu": 1.0, "sigma": 2.0}
    p = Prior.from_spec(spec)
    assert p == Prior("Normal", {"mu": 1.0, "sigma": 2.0})
    assert p.to_dict() == spec
    assert Prior.from_spec(p.to_dict()) == p
    assert Prior.from_spec(p) is p


def test_beta_mean_concentration():
    p = Prior.from_spec({"dist": "Beta", "mean": 0.6, "concentration": 20})
    c = p.canonical()
    assert c["alpha"] == pytest.approx(12.0) and c["beta"] == pytest.approx(8.0)
    assert Prior.beta_mean(0.6, 20) == p


@pytest.mark.parametrize(
    "lower, upper, prob", [(0.3, 0.8, 0.9), (0.5, 0.7, 0.9), (0.01, 0.1, 0.9), (0.2, 0.4, 0.8)]
)
def test_beta_range_has_the_asked_quantiles(lower, upper, prob):
    params = {"dist": "Beta", "lower": lower, "upper": upper}
    if prob != 0.9:
        params["prob"] = prob
    c = Prior.from_spec(params).canonical()
    tail = (1 - prob) / 2
    q = stats.beta.ppf([tail, 1 - tail], c["alpha"], c["beta"])
    np.testing.assert_allclose(q, [lower, upper], atol=1e-4)
    assert Prior.beta_range(lower, upper, prob).canonical() == pytest.approx(c)


@pytest.mark.parametrize(
    "value, match",
    [
        ({"dist": "Beta", "mean": 1.2, "concentration": 5}, "0 < mean < 1"),
        ({"dist": "Beta", "mean": 0.5, "concentration": 0}, "concentration > 0"),
        ({"dist": "Beta", "alpha": -1, "beta": 2}, "alpha > 0"),
        ({"dist": "Beta", "lower": 0.8, "upper": 0.3}, "lower < upper"),
        ({"dist": "Beta", "lower": 0.3, "upper": 1.3}, "lower < upper < 1"),
        ({"dist": "Beta", "mean": 0.5}, r"takes parameters"),
        ({"dist": "Uniform", "lower": 3, "upper": 3}, "lower < upper"),
        ({"dist": "Normal", "mu": 0, "sigma": 0}, "sigma > 0"),
        ({"dist": "Normal", "mu": 0, "sd": 1}, r"\(mu, sigma\).*got \(mu, sd\)"),
        ({"dist": "HalfNormal", "sigma": -2}, "sigma > 0"),
        ({"dist": "Gamma", "mu": -1, "sigma": 1}, "mu > 0"),
        ({"dist": "Exponential", "lam": 0}, "lam > 0"),
        ({"dist": "Normal", "mu": "zero", "sigma": 1}, "finite number"),
        ({"dist": "Normal", "mu": float("nan"), "sigma": 1}, "finite number"),
        ({"dist": "Cauchy", "alpha": 0, "beta": 1}, "unknown prior distribution 'Cauchy'"),
        ({"mean": 0.5}, "table with 'dist'"),
        ("0.6", "number or a table"),
        (True, "number or a table"),
    ],
)
def test_invalid_priors_raise(value, match):
    with pytest.raises(PriorError, match=match) as info:
        Prior.from_spec(value, "[priors] tau")
    assert "[priors] tau" in str(info.value)


@pytest.mark.parametrize(
    "prior, mean",
    [
        (Prior("Beta", {"alpha": 2.0, "beta": 5.0}), 2 / 7),
        (Prior("Beta", {"mean": 0.3, "concentration": 4.0}), 0.3),
        (Prior("Uniform", {"lower": 3.0, "upper": 8.0}), 5.5),
        (Prior("Normal", {"mu": -1.0, "sigma": 0.5}), -1.0),
        (Prior("HalfNormal", {"sigma": 2.0}), 2.0 * np.sqrt(2 / np.pi)),
        (Prior("LogNormal", {"mu": 0.5, "sigma": 0.4}), np.exp(0.5 + 0.08)),
        (Prior("Gamma", {"mu": 3.0, "sigma": 1.5}), 3.0),
        (Prior("Gamma", {"alpha": 2.0, "beta": 4.0}), 0.5),
        (Prior("Exponential", {"lam": 2.0}), 0.5),
    ],
)
def test_sample_mean_matches_mean(prior, mean):
    # 40,000 draws: the sample mean is within 5 standard errors of the analytic mean unless the
    # family table hands PyMC the wrong parameters (false alarm rate ~6e-7)
    x = prior.sample(np.random.default_rng(1), 40_000)
    assert abs(x.mean() - mean) < 5 * x.std() / np.sqrt(len(x))


def test_gamma_mu_sigma_conversion():
    c = Prior("Gamma", {"mu": 3.0, "sigma": 1.5}).canonical()
    assert c["alpha"] / c["beta"] == pytest.approx(3.0)
    assert np.sqrt(c["alpha"]) / c["beta"] == pytest.approx(1.5)


# -- parsing and merging ---------------------------------------------------------------------
def test_parse_priors_scalars_and_groups():
    raw = {
        "mu": {"dist": "Uniform", "lower": 3, "upper": 8},
        "tau": {"victims": 0.6, "offenders": {"dist": "Beta", "lower": 0.3, "upper": 0.8}},
    }
    before = copy.deepcopy(raw)
    parsed = parse_priors(raw)
    assert raw == before
    assert parsed["mu"] == Prior("Uniform", {"lower": 3, "upper": 8})
    assert parsed["tau"]["victims"] == Prior.fixed(0.6)
    assert parsed["tau"]["offenders"].dist == "Beta"
    with pytest.raises(PriorError, match=r"tau\.offenders"):
        parse_priors({"tau": {"offenders": {"dist": "Beta", "mean": 2, "concentration": 1}}})
    with pytest.raises(PriorError, match="mu: expected a prior"):
        parse_priors({"mu": "wide"})


DEFAULTS = {
    "mu": Prior("Uniform", {"lower": 3.0, "upper": 8.0}),
    "tau": Prior.beta_mean(0.6, 10),
}
GROUPS = {"mu": None, "tau": ["victims", "offenders"]}


def test_merge_precedence_user_over_set_over_default():
    prior_set = {
        "mu": Prior("Normal", {"mu": 5.0, "sigma": 1.0}),
        "tau": {"victims": Prior.beta_mean(0.5, 50)},
    }
    user = {"tau": {"victims": Prior.fixed(0.7)}, "mu": Prior.fixed(5.5)}
    merged = merge_priors(DEFAULTS, GROUPS, prior_set, None, model_name="m")
    assert merged["mu"] == prior_set["mu"]
    assert merged["tau"] == {"victims": Prior.beta_mean(0.5, 50), "offenders": DEFAULTS["tau"]}
    merged = merge_priors(DEFAULTS, GROUPS, prior_set, user, model_name="m")
    assert merged["mu"] == Prior.fixed(5.5)
    assert merged["tau"] == {"victims": Prior.fixed(0.7), "offenders": DEFAULTS["tau"]}
    # a single prior for a per-group parameter applies to every group
    merged = merge_priors(DEFAULTS, GROUPS, {"tau": Prior.fixed(0.9)})
    assert merged["tau"] == {"victims": Prior.fixed(0.9), "offenders": Prior.fixed(0.9)}
    # defaults alone: per-group defaults expand to every group
    assert merge_priors(DEFAULTS, GROUPS)["tau"] == dict.fromkeys(GROUPS["tau"], DEFAULTS["tau"])


def test_merge_never_mutates_inputs():
    defaults = copy.deepcopy(DEFAULTS)
    groups = copy.deepcopy(GROUPS)
    layer1 = {"tau": {"victims": Prior.fixed(0.5)}}
    layer2 = {"tau": {"offenders": Prior.fixed(0.4)}, "mu": Prior.fixed(4.0)}
    copies = [copy.deepcopy(x) for x in (defaults, groups, layer1, layer2)]
    merged = merge_priors(defaults, groups, layer1, layer2)
    assert [defaults, groups, layer1, layer2] == copies
    assert merged["tau"] == {"victims": Prior.fixed(0.5), "offenders": Prior.fixed(0.4)}
    merged["tau"]["victims"] = Prior.fixed(0.1)  # the result is not shared with an input
    assert layer1["tau"]["victims"] == Prior.fixed(0.5)
    assert merge_priors(defaults, groups, layer1)["tau"]["victims"] == Prior.fixed(0.5)


def test_unknown_prior_name_suggests():
    with pytest.raises(
        PriorError,
        match=r"'muu' matches no parameter of the degree model.*"
        r"did you mean 'mu'",
    ):
        merge_priors(DEFAULTS, GROUPS, {"muu": Prior.fixed(5)}, model_name="degree")


def test_unknown_group_and_scalar_given_groups_raise():
    with pytest.raises(PriorError, match=r"'tau': group\(s\) victim are not among its groups"):
        merge_priors(DEFAULTS, GROUPS, {"tau": {"victim": Prior.fixed(0.5)}})
    with pytest.raises(PriorError, match="'mu' is one parameter"):
        merge_priors(DEFAULTS, GROUPS, {"mu": {"victims": Prior.fixed(5)}})


def test_describe_priors_is_plain_data():
    out = describe_priors(merge_priors(DEFAULTS, GROUPS))
    assert out["mu"] == {"dist": "Uniform", "lower": 3.0, "upper": 8.0}
    assert out["tau"]["offenders"] == {"dist": "Beta", "mean": 0.6, "concentration": 10.0}


# -- PyMC variables --------------------------------------------------------------------------
def test_create_group_param_forms():
    import pymc as pm

    with pm.Model(coords={"hidden": ["victims", "offenders"]}) as model:
        same = create_group_param(
            "a",
            {"victims": Prior.beta_mean(0.5, 10), "offenders": Prior.beta_mean(0.7, 10)},
            "hidden",
        )
        fixed = create_group_param(
            "b", {"victims": Prior.fixed(0.2), "offenders": Prior.fixed(0.3)}, "hidden"
        )
        mixed = create_group_param(
            "c", {"victims": Prior.fixed(0.6), "offenders": Prior.beta_mean(0.5, 10)}, "hidden"
        )
    assert {v.name for v in model.free_RVs} == {"a", "c_offenders"}
    assert model.named_vars_to_dims["a"] == ("hidden",)
    assert model.named_vars_to_dims["c"] == ("hidden",)
    np.testing.assert_allclose(fixed.eval(mode=FAST_MODE), [0.2, 0.3])
    draws = pm.draw([same, mixed], draws=4000, random_seed=2, mode=FAST_MODE)
    # Beta(mean 0.5 / 0.7, concentration 10) means: 5 standard errors of 4000 draws (sd < 0.16)
    np.testing.assert_allclose(draws[0].mean(0), [0.5, 0.7], atol=5 * 0.16 / np.sqrt(4000))
    assert np.all(draws[1][:, 0] == 0.6)
    assert abs(draws[1][:, 1].mean() - 0.5) < 5 * 0.16 / np.sqrt(4000)


def test_spec_fixes_tau_for_one_group(small_prep):
    import pymc as pm

    spec = small_prep.spec.with_value("model.name", "transmission").with_value(
        "priors.tau.victims", 0.6
    )
    model = build_model(prepare(spec))
    assert model.priors["tau"]["victims"] == Prior.fixed(0.6)
    assert model.priors["tau"]["offenders"] == Prior.beta_mean(0.6, 10.0)  # default kept
    names = {v.name for v in model.model.free_RVs}
    assert "tau_offenders" in names and "tau_victims" not in names and "tau" not in names
    tau = model.model["tau"]
    assert model.model.named_vars_to_dims["tau"] == ("hidden",)
    draws = pm.draw(tau, draws=3, random_seed=1, mode=FAST_MODE)
    np.testing.assert_array_equal(draws[:, 0], 0.6)
    assert np.all((draws[:, 1] > 0) & (draws[:, 1] < 1)) and len(set(draws[:, 1])) == 3


def test_spec_prior_typo_is_an_error(small_prep):
    spec = small_prep.spec.with_value("priors.sigmaa", 1.0)
    with pytest.raises(PriorError, match="did you mean 'sigma'"):
        build_model(prepare(spec))


# -- prior sets ------------------------------------------------------------------------------
def test_load_prior_set_from_path_and_name(tmp_path):
    (tmp_path / "mine.toml").write_text(
        'description = "test set"\n[mu]\ndist = "Normal"\nmu = 5.0\nsigma = 1.0\n'
        "[tau]\nvictims = 0.5\n"
    )
    by_path = load_prior_set(tmp_path / "mine.toml")
    by_name = load_prior_set("mine", [tmp_path])
    assert by_path == by_name
    assert by_path["mu"] == Prior("Normal", {"mu": 5.0, "sigma": 1.0})
    assert by_path["tau"] == {"victims": Prior.fixed(0.5)}
    with pytest.raises(PriorError, match="prior set 'nosuch' not found.*mine"):
        load_prior_set("nosuch", [tmp_path])
