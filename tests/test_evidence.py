"""Secondary data on hidden-group sizes ([evidence]): spec, checks, model terms, contributions.

The fast tier never samples: models are built and their evidence terms evaluated at chosen
points (FAST_COMPILE graphs); fits use the ``fake_sampling`` prior-draw stand-in. The slow test
fits the transmission model with and without a count source.
"""

from __future__ import annotations

import math
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bayes_nsum.analysis import build_model, fit_and_check, prepare, write_fit
from bayes_nsum.errors import BayesNsumError, SpecError
from bayes_nsum.estimators.base import NSUMModel
from bayes_nsum.estimators.evidence import LOWER_BOUND_SOFTNESS, parse_evidence
from bayes_nsum.simulate import simulate_ard, simulate_pooled
from bayes_nsum.spec import Spec

SIZES = {"victims": 5_000.0, "offenders": 2_000.0}
POLICE = {
    "kind": "count",
    "value": 30,
    "detection": {"dist": "Beta", "mean": 0.3, "concentration": 50},
}


def _spec_with(path: Path, evidence: dict, model: str | None = None) -> dict:
    raw = tomllib.loads(path.read_text())
    raw["evidence"] = evidence
    if model:
        raw.setdefault("model", {})["name"] = model
    return raw


def _prep(small_spec_path, evidence, model=None):
    return prepare(
        Spec.from_dict(_spec_with(small_spec_path, evidence, model), small_spec_path.parent)
    )


def _term(model, name: str, point: dict) -> float:
    """A potential of the PyMC model at ``point`` (values of the free variables), FAST_COMPILE."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    m = model.model
    pot = next(p for p in m.potentials if p.name == name)
    reps = {rv: pt.as_tensor(np.asarray(point[rv.name])) for rv in m.free_RVs}
    expr = graph_replace(pot, reps, strict=False)
    return float(pytensor.function([], expr, mode="FAST_COMPILE")())


# -- spec and checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        ({"nobody": {"x": {"kind": "lower_bound", "value": 5}}}, "not a hidden group"),
        ({"victims": {"x": {"kind": "upper_bound", "value": 5}}}, "kind must be one of"),
        ({"victims": {"x": {"kind": "count", "value": 5}}}, "needs a detection prior"),
        ({"victims": {"x": {"kind": "lower_bound", "value": -1}}}, "lower bound must be > 0"),
        ({"victims": {"x": {"kind": "count", "value": 2.5, "detection": 0.5}}}, "whole number"),
        ({"victims": {"x": {"kind": "lower_bound", "value": 5, "file": "a.csv"}}}, "not both"),
        ({"victims": {"x": {"kind": "lower_bound", "valu": 5}}}, "unknown key 'valu'"),
        (
            {"victims": {"x": {"kind": "lower_bound", "value": 5, "detection": 0.5}}},
            "for kind = 'count' only",
        ),
        (
            {
                "victims": {
                    "x": {
                        **POLICE,
                        "observation": "binomial",
                        "detection": {"dist": "Gamma", "mu": 0.2, "sigma": 0.1},
                    }
                }
            },
            "must lie in (0, 1)",
        ),
        (
            {"victims": {"x": {**POLICE, "detection": {"dist": "Normal", "mu": 0.2, "sigma": 1}}}},
            "cannot take",
        ),
        ({"victims": {"x": {**POLICE, "observation": "negbin"}}}, "observation must be one of"),
        (
            {"victims": {"x": {"kind": "count", "file": "missing.csv", "detection": 0.5}}},
            "not found",
        ),
        ({"contribution": "sometimes", "victims": {"x": POLICE}}, "contribution must be one of"),
        ({"victims": {}}, "one table per source"),
    ],
)
def test_bad_evidence_is_one_line_before_data(small_spec_path, evidence, message):
    raw = _spec_with(small_spec_path, evidence)
    with pytest.raises(BayesNsumError) as err:
        prepare(Spec.from_dict(raw, small_spec_path.parent))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_per_area_evidence_refused_for_a_national_model(small_spec_path, tmp_path):
    (tmp_path / "by_area.csv").write_text("area,value\nA,3\nB,4\n")
    ev = {"victims": {"reg": {"kind": "lower_bound", "file": str(tmp_path / "by_area.csv")}}}
    prep = _prep(small_spec_path, ev)
    with pytest.raises(SpecError, match="values per area need a model with areas"):
        build_model(prep)


def test_models_without_evidence_terms_and_options_refused(small_spec_path):
    prep = _prep(small_spec_path, {"victims": {"police": POLICE}})
    model = build_model(prep)
    assert model.config()["evidence"][0]["group"] == "victims"
    # [priors] detection is a parameter only with a count source
    raw = tomllib.loads(small_spec_path.read_text())
    raw["priors"] = {"detection": 0.4}
    with pytest.raises(BayesNsumError, match="detection"):
        build_model(prepare(Spec.from_dict(raw, small_spec_path.parent)))
    # [priors] detection overrides a source's prior, and is checked like it
    binom = {"victims": {"police": {**POLICE, "observation": "binomial"}}}
    raw = _spec_with(small_spec_path, binom)
    raw["priors"] = {"detection": {"victims.police": 0.2}}
    model = build_model(prepare(Spec.from_dict(raw, small_spec_path.parent)))
    assert model.priors["detection"]["victims.police"].is_fixed
    raw["priors"] = {"detection": {"victims.police": 1.0}}
    with pytest.raises(SpecError, match="must lie in"):
        build_model(prepare(Spec.from_dict(raw, small_spec_path.parent)))


def test_spec_reference_lists_evidence():
    from bayes_nsum.spec import SCHEMA

    assert "evidence" in SCHEMA


# -- the model terms ------------------------------------------------------------------------------


def test_terms_match_their_formulas(small_spec_path):
    """Each evidence term at a chosen point equals its closed form (numpy/scipy), so the
    PyTensor graph is the stated likelihood; tolerance 1e-8 relative (float64 rounding)."""
    ev = {
        "victims": {
            "police": POLICE,
            "confirmed": {"kind": "lower_bound", "value": 4000},
        },
        "offenders": {
            "courts": {
                "kind": "count",
                "observation": "binomial",
                "value": 400,
                "detection": {"dist": "Beta", "mean": 0.2, "concentration": 30},
            }
        },
    }
    model = build_model(_prep(small_spec_path, ev, "transmission"))
    assert model.coords["source"] == ["victims.police", "offenders.courts"]
    assert "tau" not in model.not_identified  # a count informs tau
    n = model.data.total_population
    point = {
        "mu": 5.0,
        "sigma": 1.0,
        "log_visible": np.log([3000.0, 1000.0]) - np.log(n),
        "tau": np.array([0.6, 0.5]),
        "detection": np.array([0.01, 0.2]),
    }
    size = np.exp(point["log_visible"]) * n / point["tau"]  # delta fixed at 1
    pois = stats.poisson.logpmf(30, 0.01 * size[0])
    assert _term(model, "evidence_loglik__victims.police", point) == pytest.approx(pois, rel=1e-8)
    bound = stats.norm.logcdf((np.log(size[0]) - np.log(4000)) / LOWER_BOUND_SOFTNESS)
    assert _term(model, "evidence_loglik__victims.confirmed", point) == pytest.approx(
        bound, rel=1e-8
    )
    binom = (
        math.lgamma(size[1] + 1)
        - math.lgamma(401)
        - math.lgamma(size[1] - 399)
        + 400 * np.log(0.2)
        + (size[1] - 400) * np.log(0.8)
        + stats.norm.logcdf((np.log(size[1]) - np.log(400)) / LOWER_BOUND_SOFTNESS)
    )
    assert _term(model, "evidence_loglik__offenders.courts", point) == pytest.approx(
        binom, rel=1e-8
    )


def test_lower_bound_is_steep_but_smooth():
    """The stated barrier: nothing 3% above the bound, about -1.8 at 1% below, -16 at 5%."""
    z = lambda r: stats.norm.logcdf(np.log(r) / LOWER_BOUND_SOFTNESS)  # noqa: E731
    assert z(1.03) > -0.002
    assert -2.0 < z(0.99) < -1.7
    assert -17 < z(0.95) < -15


def test_overdispersed_and_pooled_take_evidence(small_spec_path, tmp_path):
    model = build_model(_prep(small_spec_path, {"offenders": {"police": POLICE}}, "overdispersed"))
    assert "evidence_loglik__offenders.police" in [p.name for p in model.model.potentials]
    sim = simulate_pooled(n_areas=6, respondents_per_area=5, seed=2)
    paths = sim.write(tmp_path / "pooled", model="pooled")
    raw = tomllib.loads(paths["spec"].read_text())
    hidden = raw["groups"]["hidden"][0]
    (tmp_path / "reg.csv").write_text("area,value\nA001,2\nA002,1\nA003,4\n")
    raw["evidence"] = {
        hidden: {
            "registry": {"kind": "lower_bound", "file": str(tmp_path / "reg.csv")},
            "survey": {**POLICE, "value": 12},
        }
    }
    pooled = build_model(prepare(Spec.from_dict(raw, paths["spec"].parent)))
    names = [p.name for p in pooled.model.potentials]
    assert f"evidence_loglik__{hidden}.registry" in names
    _, per_area = pooled.log_hidden_size(pooled.model)
    assert per_area.type.ndim == 2
    raw["model"]["anchor"] = "posthoc"
    with pytest.raises(BayesNsumError, match="anchor = 'likelihood'"):
        build_model(prepare(Spec.from_dict(raw, paths["spec"].parent)))
    (tmp_path / "reg.csv").write_text("area,value\nZ999,2\n")
    raw["model"]["anchor"] = "likelihood"
    with pytest.raises(SpecError, match="Z999 are not in the area table"):
        build_model(prepare(Spec.from_dict(raw, paths["spec"].parent)))


def test_parse_round_trip():
    ev = {"victims": {"police": POLICE}, "contribution": "reweight"}
    [src] = parse_evidence(ev, ["victims"])
    assert parse_evidence([src.to_dict()], ["victims"]) == (src,)


# -- fits (fake sampling) -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reweight", "refit"])
def test_contribution_table_report_and_round_trip(small_spec_path, fake_sampling, mode, tmp_path):
    fake_sampling()
    ev = {
        "contribution": mode,
        "victims": {"police": POLICE, "confirmed": {"kind": "lower_bound", "value": 100}},
    }
    prep = _prep(small_spec_path, ev)
    model = build_model(prep)
    settings = {
        "draws": 40,
        "tune": 10,
        "chains": 2,
        "seed": 1,
        "backend": "pymc",
        "progress": False,
    }
    fit = fit_and_check(model, settings, ("evidence",))
    assert not fit.problems, fit.problems
    table = fit.tables["evidence_contribution"]
    assert list(table["source"]) == ["victims.police", "victims.confirmed", "all evidence"]
    assert (table["method"] == mode).all()
    assert np.all(table["lower_with"] <= table["upper_with"])
    assert np.all(table["width_ratio"] > 0)
    if mode == "refit":  # the power containers are back at 1 afterwards
        assert all(
            float(v.get_value()) == 1.0 for v in model.model.data_vars if "evidence_power" in v.name
        )
    write_fit(fit, prep, tmp_path, baseline=False)
    assert (tmp_path / "evidence_contribution.csv").is_file()
    assert "each source&#x27;s contribution" in (tmp_path / "report.html").read_text()
    tree = fit.result.tree
    assert "detection" in tree["posterior"]
    rebuilt = NSUMModel.from_tree(tree)
    assert rebuilt.evidence == model.evidence
    assert rebuilt.evidence_contribution == mode
    assert rebuilt.structure_key() == model.structure_key()


# -- slow: a real fit -----------------------------------------------------------------------------


@pytest.mark.slow
def test_count_narrows_the_interval_and_keeps_the_truth():
    """One survey (300 respondents, true victims 5,000 seen at tau = 0.6), a police count of
    1,500 with detection prior Beta(mean 0.3, concentration 50). The same compiled model is
    sampled with the count's term on and off (power 1 / 0). Expected: the 90% interval of the
    size narrows (precision algebra: tau's prior gives the NSUM-only size a log-sd of about 0.25,
    the count about 0.21, so the combined interval is about 0.65 as wide); asserted ratio < 0.8,
    a margin for the Monte Carlo error of 2 x 300 draws' interval ends (about 5% each). Both
    intervals cover the truth."""
    from bayes_nsum.estimators.maltiel import TransmissionModel
    from bayes_nsum.fit import compile_nutpie

    sim = simulate_ard(n_respondents=300, hidden_sizes=SIZES, total_population=1e6, tau=0.6, seed=3)
    with tempfile.TemporaryDirectory() as d:
        ard = prepare(sim.write(Path(d), model="transmission")["spec"]).ard
    model = TransmissionModel(ard, evidence={"victims": {"police": {**POLICE, "value": 1500}}})
    compiled = compile_nutpie(model.model)
    settings = {"draws": 300, "tune": 300, "chains": 2, "seed": 5, "progress": False}
    widths = {}
    for power in (1.0, 0.0):
        swapped = compiled.with_data(**{"evidence_power__victims.police": np.asarray(power)})
        fit = model.fit(compiled=swapped, with_prior=False, **settings)
        size = fit.tree["posterior"]["size"].sel(hidden="victims").values.ravel()
        lo, hi = np.quantile(size, [0.05, 0.95])
        assert lo <= SIZES["victims"] <= hi
        widths[power] = hi - lo
    assert widths[1.0] / widths[0.0] < 0.8, widths


def _size_at(model, draws, i: int):
    """The model's symbolic log true sizes (national, per area) at draw ``i`` of ``draws``."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    m = model.model
    national, per_area = model.log_hidden_size(m)
    reps = {
        rv: pt.as_tensor(np.asarray(draws[rv.name].isel(chain=0, draw=i).values))
        for rv in m.free_RVs
    }
    outs = [e for e in (national, per_area) if e is not None]
    outs = graph_replace(outs, reps, strict=False)
    values = pytensor.function([], outs, mode="FAST_COMPILE")()
    return (values[0], None) if national is not None else (None, values[0])


def test_symbolic_size_is_the_reported_size(small_spec_path, tmp_path):
    """The size the evidence terms see (``log_hidden_size``) equals the size the model reports
    (``_derive``) at prior draws, for every family: tolerance 1e-8 relative (float64)."""
    prep = _prep(small_spec_path, {})
    tau = {"dist": "Beta", "mean": 0.6, "concentration": 10}
    delta = {"dist": "LogNormal", "mu": 0.0, "sigma": 0.2}
    for name in ("transmission", "overdispersed", "correlated"):
        model = build_model(prep, priors={"tau": tau, "delta": delta}, name=name)
        draws = model.prior_draws(draws=3, seed=2)
        for i in range(3):
            national, _ = _size_at(model, draws, i)
            reported = draws["size"].isel(chain=0, draw=i).values
            np.testing.assert_allclose(national, np.log(reported), rtol=1e-8)
    sim = simulate_pooled(n_areas=5, respondents_per_area=4, seed=3)
    paths = sim.write(tmp_path / "pooled", model="pooled")
    raw = tomllib.loads(paths["spec"].read_text())
    raw["model"]["transmission_by_area"] = True
    raw["priors"] = {"tau": tau, "delta": delta}
    model = build_model(prepare(Spec.from_dict(raw, paths["spec"].parent)))
    draws = model.prior_draws(draws=2, seed=4)
    for i in range(2):
        _, per_area = _size_at(model, draws, i)
        reported = draws["size_area"].isel(chain=0, draw=i).transpose("hidden", "area").values
        np.testing.assert_allclose(per_area, np.log(reported), rtol=1e-8)
