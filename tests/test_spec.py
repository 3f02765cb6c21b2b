"""Tests of analysis specs (bayes_nsum.spec): checking, suggestions, overrides, paths, digest."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bayes_nsum.errors import SpecError
from bayes_nsum.spec import DIAGNOSTIC_DEFAULTS, SAMPLER_DEFAULTS, SCHEMA, Spec, load_spec

BASE = {
    "data": {"survey": "survey.csv", "known_sizes": "known.csv", "total_population": 1000},
    "groups": {"hidden": ["victims"]},
}


def raw(**sections) -> dict:
    """BASE with some sections replaced or added (deep copies)."""
    out = copy.deepcopy(BASE)
    out.update(copy.deepcopy(sections))
    return out


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- unknown and missing keys ----------------------------------------------------------------
def test_unknown_section_suggests_the_close_one():
    with pytest.raises(SpecError, match=r"unknown section \[sampeler\].*did you mean 'sampler'"):
        Spec.from_dict(raw(sampeler={"draws": 10}))


def test_unknown_key_names_section_and_suggests():
    with pytest.raises(SpecError, match=r"unknown key 'drafts' in \[sampler\].*'draws'"):
        Spec.from_dict(raw(sampler={"drafts": 10}))
    with pytest.raises(SpecError, match=r"unknown key 'hiden' in \[groups\].*'hidden'"):
        Spec.from_dict(raw(groups={"hidden": ["v"], "hiden": ["w"]}))


def test_unknown_key_without_close_match_has_no_suggestion():
    with pytest.raises(SpecError) as info:
        Spec.from_dict(raw(model={"zzzzqqq": 1}))
    assert "zzzzqqq" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_every_schema_key_is_accepted():
    # one spec holding every key of the closed sections must pass the key check
    spec_raw = raw()
    for section, keys in SCHEMA.items():
        if "*" in keys:
            continue
        body = spec_raw.setdefault(section, {})
        for key in keys:
            body.setdefault(key, None)
    values = {
        ("groups", "hidden"): ["victims"],
        ("groups", "known"): ["a"],
        ("data", "total_population"): 1000,
        ("sampler", "draws"): 10,
        ("sampler", "tune"): 10,
        ("sampler", "chains"): 2,
        ("sampler", "cores"): 1,
        ("sampler", "seed"): 3,
        ("sampler", "backend"): "pymc",
        ("sampler", "target_accept"): 0.8,
        ("sampler", "progress"): False,
        ("output", "interval_prob"): 0.8,
        ("output", "interval"): "hdi",
        ("model", "degree"): "gamma",
        ("model", "recall_calibration"): True,
        ("model", "barrier_dispersion"): "shared",
        ("model", "degree_integration"): "auto",
        ("model", "anchor"): "posthoc",
        ("model", "correlated"): False,
        ("model", "zero_inflation"): True,
        ("model", "transmission_by_area"): True,
        ("model", "survey_weights"): False,
        ("model", "method"): "pimle",
        ("model", "n_boot"): 10,
        ("model", "degree_ratio"): {"victims": 1.5},
        ("model", "transmission"): {"victims": 0.5},
        ("model", "name"): "degree",
        ("model", "area_effects"): "auto",
        ("model", "known_shares"): "roster",
        ("data", "covariates"): ["c"],
        ("model", "bias_covariates"): ["c"],
        ("data", "max_answer"): 100,
        ("groups", "denominators"): {"victims": "children"},
        ("output", "report"): True,
        ("output", "respondent_level"): True,
        ("output", "min_area_respondents"): 5,
    }
    for section, body in spec_raw.items():
        for key in list(body):
            if (section, key) in values:
                body[key] = values[section, key]
            elif body[key] is None:
                body[key] = 1 if section == "diagnostics" else "x"
    # covariates are read by the correlated model only: checked in its own spec below
    covariates = {"data": {"covariates": spec_raw["data"].pop("covariates")}}
    covariates["model"] = {"bias_covariates": spec_raw["model"].pop("bias_covariates")}
    # the hidden-population sample is read by the generalized NSUM models only: its own spec
    keys = ("hidden_sample", "hidden_sample_group", "hidden_sample_aware_suffix")
    hidden = {k: spec_raw["data"].pop(k) for k in keys}
    Spec.from_dict(raw(data={**BASE["data"], **hidden}, model={"name": "gnsum_bayes"}))
    Spec.from_dict(spec_raw)
    spec = raw(data={**BASE["data"], **covariates["data"]})
    spec["model"] = {"name": "correlated", **covariates["model"]}
    Spec.from_dict(spec)


def test_covariates_are_refused_by_models_that_do_not_read_them():
    with_cov = {**BASE["data"], "covariates": ["age"]}
    with pytest.raises(SpecError, match=r"\[data\] covariates are not used by the degree model"):
        Spec.from_dict(raw(data=with_cov, model={"name": "degree"}))
    with pytest.raises(SpecError, match="not used by the killworth model"):
        Spec.from_dict(raw(data=with_cov))
    with pytest.raises(SpecError, match="bias_covariates 'sex' is not one of"):
        Spec.from_dict(raw(data=with_cov, model={"name": "correlated", "bias_covariates": ["sex"]}))
    with pytest.raises(SpecError, match="bias_covariates must be a list"):
        Spec.from_dict(raw(data=with_cov, model={"name": "correlated", "bias_covariates": "age"}))
    Spec.from_dict(raw(data=with_cov, model={"name": "correlated", "bias_covariates": ["age"]}))


@pytest.mark.parametrize(
    "section, key",
    [("data", "survey"), ("groups", "hidden")],
)
def test_missing_required_key(section, key):
    bad = raw()
    del bad[section][key]
    with pytest.raises(SpecError, match=rf"missing required key '{key}' in \[{section}\]"):
        Spec.from_dict(bad)


def test_missing_sizes_and_bad_population():
    bad = raw()
    del bad["data"]["known_sizes"]
    with pytest.raises(SpecError, match="known_sizes"):
        Spec.from_dict(bad)
    with pytest.raises(SpecError, match="total_population"):
        Spec.from_dict(raw(data={**BASE["data"], "total_population": -5}))


def test_hidden_string_becomes_list_and_empty_list_fails():
    assert Spec.from_dict(raw(groups={"hidden": "victims"})).hidden == ["victims"]
    with pytest.raises(SpecError, match="hidden"):
        Spec.from_dict(raw(groups={"hidden": []}))


def test_section_must_be_a_table():
    with pytest.raises(SpecError, match=r"\[model\] must be a table"):
        Spec.from_dict(raw(model="degree"))


# -- sampler, output and diagnostics values --------------------------------------------------
@pytest.mark.parametrize(
    "key, value",
    [
        ("draws", 0),
        ("draws", 10.5),
        ("draws", "100"),
        ("draws", True),
        ("tune", -1),
        ("tune", "long"),
        ("chains", 0),
        ("cores", 0),
        ("backend", "stan"),
        ("seed", "abc"),
        ("seed", -1),
        ("seed", 1.5),
        ("target_accept", 1.5),
        ("target_accept", 0),
        ("target_accept", "high"),
        ("progress", "yes"),
    ],
)
def test_bad_sampler_values(key, value):
    with pytest.raises(SpecError, match=rf"\[sampler\] {key}"):
        Spec.from_dict(raw(sampler={key: value}))


def test_good_sampler_values_and_defaults():
    spec = Spec.from_dict(raw(sampler={"draws": 50, "backend": "pymc", "target_accept": 0.95}))
    s = spec.sampler
    assert s["draws"] == 50 and s["backend"] == "pymc" and s["target_accept"] == 0.95
    assert s["tune"] == SAMPLER_DEFAULTS["tune"] and s["chains"] == SAMPLER_DEFAULTS["chains"]
    assert spec.diagnostics == DIAGNOSTIC_DEFAULTS
    assert SAMPLER_DEFAULTS["tune"] == "auto"  # each model's own number (tests/test_pooled.py)
    assert Spec.from_dict(raw(sampler={"tune": "auto"})).sampler["tune"] == "auto"


@pytest.mark.parametrize(
    "section, body, word",
    [
        ("output", {"interval_prob": 1.5}, "interval_prob"),
        ("output", {"interval": "wide"}, "interval"),
        ("diagnostics", {"max_r_hat": -1}, "max_r_hat"),
        ("diagnostics", {"min_ess_bulk": "many"}, "min_ess_bulk"),
    ],
)
def test_bad_output_and_diagnostics_values(section, body, word):
    with pytest.raises(SpecError, match=word):
        Spec.from_dict(raw(**{section: body}))


# -- with_value ------------------------------------------------------------------------------
def test_with_value_sets_nested_path_and_leaves_original():
    spec = Spec.from_dict(raw(model={"name": "degree"}))
    before = spec.to_dict()
    new = spec.with_value("priors.tau.victims", 0.6)
    assert new.raw["priors"]["tau"]["victims"] == 0.6
    assert spec.to_dict() == before and "priors" not in spec.raw
    assert spec.with_value("model.name", "combined").model_name == "combined"
    assert spec.model_name == "degree"
    assert new.with_value("sampler.draws", 12).sampler["draws"] == 12


def test_with_value_copies_the_value():
    spec = Spec.from_dict(raw())
    value = ["victims", "offenders"]
    new = spec.with_value("groups.hidden", value)
    value.append("x")
    assert new.hidden == ["victims", "offenders"]


def test_with_value_checks_again():
    spec = Spec.from_dict(raw())
    with pytest.raises(SpecError, match="unknown key 'nmae'.*'name'"):
        spec.with_value("model.nmae", "degree")
    with pytest.raises(SpecError, match="unknown section"):
        spec.with_value("modle.name", "degree")
    with pytest.raises(SpecError, match=r"\[sampler\] draws"):
        spec.with_value("sampler.draws", 0)
    with pytest.raises(SpecError, match="section and a key"):
        spec.with_value("model", {"name": "degree"})
    with pytest.raises(SpecError, match="is a value, not a table"):
        spec.with_value("data.survey.x", 1)


# -- files and paths -------------------------------------------------------------------------
def test_relative_paths_resolve_against_the_spec_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "specs"
    folder.mkdir(parents=True)
    write_toml(
        folder / "a.toml",
        '[data]\nsurvey = "../data/s.csv"\nknown_sizes = "k.csv"\ntotal_population = 100\n'
        '[groups]\nhidden = ["h"]\n[output]\ndir = "out"\n',
    )
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    spec = Spec.from_file(Path("project/specs/a.toml"))
    assert spec.resolve(spec.raw["data"]["survey"]).resolve() == tmp_path / "project/data/s.csv"
    assert spec.resolve("k.csv") == folder / "k.csv"
    assert spec.output_dir() == folder / "out"
    assert spec.output_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    absolute = tmp_path / "abs.csv"
    assert spec.resolve(absolute) == absolute


def test_from_dict_resolves_against_base_dir(tmp_path):
    spec = Spec.from_dict(raw(), base_dir=tmp_path)
    assert spec.resolve("survey.csv") == tmp_path / "survey.csv"


def test_from_file_errors(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        Spec.from_file(tmp_path / "none.toml")
    bad = write_toml(tmp_path / "bad.toml", "[data\nsurvey = 1\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        Spec.from_file(bad)
    typo = write_toml(
        tmp_path / "typo.toml",
        '[data]\nsurvey = "s.csv"\nknown_size = "k.csv"\n[groups]\nhidden = ["h"]\n',
    )
    with pytest.raises(SpecError, match=r"typo\.toml.*unknown key 'known_size'.*'known_sizes'"):
        Spec.from_file(typo)


def test_from_dict_does_not_keep_the_callers_dict():
    source = raw()
    spec = Spec.from_dict(source)
    source["groups"]["hidden"].append("other")
    assert spec.hidden == ["victims"]
    section = spec.section("groups")
    section["hidden"].append("x")
    assert spec.hidden == ["victims"]


def test_load_spec_accepts_path_dict_and_spec(tmp_path):
    path = write_toml(
        tmp_path / "s.toml",
        '[data]\nsurvey = "s.csv"\nknown_sizes = "k.csv"\n[groups]\nhidden = ["h"]\n',
    )
    a = load_spec(path)
    assert load_spec(a) is a
    assert load_spec(str(path)).hidden == ["h"]
    assert load_spec(raw()).hidden == ["victims"]


# -- digest ----------------------------------------------------------------------------------
def test_digest_stable_across_key_order_and_sensitive_to_values(tmp_path):
    a = Spec.from_dict(raw(model={"name": "degree", "degree": "gamma"}))
    reordered = {
        "model": {"degree": "gamma", "name": "degree"},
        "groups": copy.deepcopy(BASE["groups"]),
        "data": dict(reversed(list(BASE["data"].items()))),
    }
    b = Spec.from_dict(reordered, base_dir=tmp_path)
    assert a.digest() == b.digest()
    assert len(a.digest()) == 16
    assert a.digest() == a.copy().digest()
    assert a.with_value("model.degree", "lognormal").digest() != a.digest()


def test_digest_same_for_same_file_read_twice(tmp_path):
    text = '[data]\nsurvey = "s.csv"\nknown_sizes = "k.csv"\n[groups]\nhidden = ["h"]\n'
    p1 = write_toml(tmp_path / "one.toml", text)
    p2 = write_toml(tmp_path / "two.toml", text)
    assert Spec.from_file(p1).digest() == Spec.from_file(p2).digest()
