"""Tests of scenario sweeps, prior-set comparisons and prior checks.

Fast tier: grid expansion, scenario ids, bad keys, skip / retry logic and failure capture run
with the in-process :class:`~bayes_nsum.sweep.SyncExecutor` and classical (Killworth)
scenarios, which cost a fraction of a second each; prior densities, prior predictive draws and
the log-likelihood evaluation used by power-scaling need no sampling. Slow tier: a small sweep
on a local Dask cluster (2 workers) with two tiny Bayesian fits, checked number for number
against the same scenarios fitted one by one, and ``compare-priors`` end to end.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum.errors import SpecError
from bayes_nsum.priors import Prior, load_prior_set
from bayes_nsum.result import SUMMARY_COLUMNS
from bayes_nsum.sweep import (
    FAILED,
    KEEP,
    MARKER,
    NONE_DROPPED,
    UNSET,
    SyncExecutor,
    compare_priors,
    expand_grid,
    factor_effects,
    gather_sweep,
    load_sweep,
    run_scenario,
    run_sweep,
    scenario_id,
    scenario_state,
)

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "models" / "rwanda_example.toml"
HIDDEN = ["sex.workers", "msm", "idu", "clients"]
#: cheap classical scenarios: few bootstrap replicates
CHEAP = {"model.n_boot": 10}


def _sweep(grid, **extra):
    return load_sweep({"grid": grid, "set": dict(CHEAP), **extra}, SPEC)


# ---------------------------------------------------------------------------------------------
# grid expansion and ids
# ---------------------------------------------------------------------------------------------


def test_expand_grid_product_and_one_at_a_time():
    grid = {"a.x": [1, 2, 3], "b.y": ["p", "q"]}
    prod = expand_grid(grid, "product")
    assert len(prod) == 6
    assert prod[0] == {"a.x": 1, "b.y": "p"}  # baseline first
    assert {(d["a.x"], d["b.y"]) for d in prod} == {(a, b) for a in (1, 2, 3) for b in "pq"}
    oat = expand_grid(grid, "one_at_a_time")
    # baseline + 2 other levels of a.x + 1 other level of b.y
    assert oat == [
        {"a.x": 1, "b.y": "p"},
        {"a.x": 2, "b.y": "p"},
        {"a.x": 3, "b.y": "p"},
        {"a.x": 1, "b.y": "q"},
    ]
    with pytest.raises(SpecError, match="design"):
        expand_grid(grid, "latin")


def test_drop_known_each_adds_baseline_and_drops_one_group_per_scenario():
    sw = _sweep({"drop_known": "each", "preprocess.topcode": [30, 20]})
    known = sw.known
    assert len(known) == 22
    assert sw.grid["drop_known"] == [NONE_DROPPED, *known]
    scen = sw.scenarios()
    assert len(scen) == 2 * (len(known) + 1)
    seen = set()
    for s in scen:
        spec = sw.spec_for(s)
        drop = s.overrides["drop_known"]
        if drop == NONE_DROPPED:
            assert "known" not in spec.raw["groups"]  # the spec's own (all known groups)
        else:
            assert spec.raw["groups"]["known"] == [k for k in known if k != drop]
            seen.add(drop)
        assert spec.raw["preprocess"]["topcode"] == s.overrides["preprocess.topcode"]
        assert spec.raw["model"]["n_boot"] == CHEAP["model.n_boot"]  # [set] applies to all
    assert seen == set(known)


def test_drop_known_list_and_unknown_group():
    sw = _sweep({"drop_known": ["priest", "teacher"]})
    assert sw.grid["drop_known"] == [NONE_DROPPED, "priest", "teacher"]
    with pytest.raises(SpecError, match="drop_known.*plumber"):
        _sweep({"drop_known": ["priest", "plumber"]})
    with pytest.raises(SpecError, match="drop_known"):
        _sweep({"drop_known": "all"})


def test_scenario_ids_stable_and_distinct():
    a = {
        "preprocess.topcode": 30,
        "model.name": "degree",
        "priors.tau.msm": {"dist": "Beta", "mean": 0.5, "concentration": 9},
    }
    reordered = dict(reversed(list(a.items())))
    reordered["priors.tau.msm"] = dict(reversed(list(a["priors.tau.msm"].items())))
    assert scenario_id(a) == scenario_id(reordered)
    assert scenario_id(a) != scenario_id({**a, "preprocess.topcode": 20})
    assert scenario_id({"x.y": 1}) != scenario_id({"x.y": "1"})
    # a hash of the JSON text, not Python's (per-process salted) hash(): 12 hex digits
    assert len(scenario_id(a)) == 12 and int(scenario_id(a), 16) >= 0
    # ids are what the plan's folders are named by, and they are unique within a plan
    sw = _sweep({"preprocess.topcode": [30, 20], "preprocess.missing": ["drop", "zero"]})
    ids = [s.id for s in sw.scenarios()]
    assert len(set(ids)) == 4
    assert ids == [scenario_id(s.overrides) for s in sw.scenarios()]


# ---------------------------------------------------------------------------------------------
# checking sweep files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grid, named",
    [
        ({"preprocess.topcod": [20, 30]}, "preprocess.topcod"),
        ({"modell.name": ["degree"]}, "modell.name"),
        ({"topcode": [20]}, "topcode"),
        ({"model.name": ["degree", "bayesian"]}, "model.name"),
        ({"model.prior_set": ["maltiel2015", "no_such_set"]}, "model.prior_set"),
        ({"model.name": ["degree"], "priors.tua.msm": [0.5]}, "priors.tua.msm"),
        ({"model.name": ["transmission"], "priors.tau.plumbers": [0.5]}, "priors.tau.plumbers"),
        ({"priors.tau.msm": [0.5]}, "priors.tau.msm"),  # killworth only: no priors
        ({"preprocess.missing": []}, "preprocess.missing"),
        ({"preprocess.missing": "zero"}, "preprocess.missing"),
        ({"preprocess.missing": ["zero", "zero"]}, "preprocess.missing"),
    ],
)
def test_bad_grid_key_names_it(grid, named):
    with pytest.raises(SpecError) as err:
        load_sweep({"grid": grid}, SPEC)
    assert f"'{named}'" in str(err.value)


def test_bad_sweep_file_keys(tmp_path):
    with pytest.raises(SpecError, match="unknown key 'grids'"):
        load_sweep({"grids": {"model.name": ["degree"]}}, SPEC)
    with pytest.raises(SpecError, match="non-empty \\[grid\\]"):
        load_sweep({"description": "x"}, SPEC)
    with pytest.raises(SpecError, match="\\[options\\]"):
        load_sweep({"grid": {"model.name": ["degree"]}, "options": {"sensitive": True}}, SPEC)
    with pytest.raises(SpecError, match="\\[set\\] key 'sampler.draw'"):
        load_sweep({"grid": {"model.name": ["degree"]}, "set": {"sampler.draw": 5}}, SPEC)
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_sweep(bad, SPEC)


def test_keep_and_unset_tokens():
    sw = _sweep({"preprocess.topcode": [KEEP, UNSET, 50]})
    specs = [sw.spec_for(s) for s in sw.scenarios()]
    assert specs[0].raw["preprocess"]["topcode"] == {"known": 30}  # the spec's own
    assert "topcode" not in specs[1].raw["preprocess"]  # removed: no top-coding
    assert specs[2].raw["preprocess"]["topcode"] == 50


def test_bundled_prior_sets():
    maltiel = load_prior_set("maltiel2015")
    assert maltiel["mu"] == Prior("Uniform", {"lower": 3, "upper": 8})
    assert maltiel["sigma"] == Prior("Uniform", {"lower": 0.25, "upper": 2})
    assert maltiel["rho"] == Prior("Uniform", {"lower": 0, "upper": 1})
    assert maltiel["tau"].canonical() == {"alpha": 1, "beta": 1}
    tau = load_prior_set("informative_transmission")["tau"].canonical()
    assert tau["alpha"] / (tau["alpha"] + tau["beta"]) == pytest.approx(0.54)
    assert tau["alpha"] + tau["beta"] == pytest.approx(20)
    # the copies for users match the bundled sets
    for name in ("maltiel2015", "weakly_informative", "informative_transmission"):
        assert load_prior_set(ROOT / "models" / "priors" / f"{name}.toml") == load_prior_set(name)


def test_example_sweep_file_loads():
    sw = load_sweep(ROOT / "models" / "sweeps" / "rwanda_sweep.toml", SPEC)
    scen = sw.scenarios()
    assert sw.design == "one_at_a_time"
    assert scen[0].overrides["model.name"] == "transmission"
    # baseline + other levels of each factor
    assert len(scen) == 1 + sum(len(v) - 1 for v in sw.grid.values())


# ---------------------------------------------------------------------------------------------
# running: skip, retry, failures, gathered files
# ---------------------------------------------------------------------------------------------


class CountingRunner:
    """Wraps run_scenario and records which scenarios were run."""

    def __init__(self, fail: set[str] | None = None):
        self.calls: list[str] = []
        self.fail = fail or set()

    def __call__(self, spec, sid, overrides, folder, options):
        self.calls.append(sid)
        if sid in self.fail:
            raise RuntimeError(f"boom in {sid}")
        return run_scenario(spec, sid, overrides, folder, options)


def test_run_gather_skip_and_rerun(tmp_path):
    sw = _sweep({"preprocess.topcode": [30, 20], "preprocess.missing": ["drop", "zero"]})
    ids = [s.id for s in sw.scenarios()]
    runner = CountingRunner()
    res = run_sweep(sw, tmp_path, executor=SyncExecutor(), runner=runner)
    assert sorted(runner.calls) == sorted(ids)
    assert res.complete and res.n_complete == 4 and res.n_failed == 0
    for sid in ids:
        assert scenario_state(tmp_path / "scenarios" / sid) == "complete"

    table = pd.read_csv(tmp_path / "sweep.csv", keep_default_na=False, na_values=["", "nan"])
    assert list(table.columns) == [
        "scenario",
        "status",
        "error",
        "preprocess.topcode",
        "preprocess.missing",
        *SUMMARY_COLUMNS,
        "converged",
    ]
    assert set(table["status"]) == {"complete"}
    # each scenario's rows are its own summary.csv
    for sid in ids:
        own = pd.read_csv(
            tmp_path / "scenarios" / sid / "summary.csv",
            keep_default_na=False,
            na_values=["", "nan"],
        )
        rows = table[table["scenario"] == sid]
        np.testing.assert_array_equal(rows["estimate"].to_numpy(), own["estimate"].to_numpy())
    ds = xr.open_dataset(tmp_path / "sweep.nc", engine="h5netcdf").load()
    assert ds.attrs["complete"] == 1 and ds.attrs["n_complete"] == 4
    assert list(ds["scenario"].values) == ids
    for r in table[table["quantity"] == "size"].itertuples():
        assert (
            ds["estimate"].sel(scenario=r.scenario, quantity="size", group=r.group).item()
            == r.estimate
        )
    assert list(ds["preprocess.topcode"].values) == ["30", "30", "20", "20"]
    assert (tmp_path / "tornado.png").is_file()
    effects = pd.read_csv(tmp_path / "tornado.csv")
    assert set(effects["factor"]) == {"preprocess.topcode", "preprocess.missing"}
    assert set(effects["group"]) == set(HIDDEN)
    # the paper-ready table: one column block per scenario, labelled by its levels
    wide = pd.read_csv(tmp_path / "sweep_wide.csv")
    assert "topcode=20; missing=zero: estimate" in wide.columns
    size = table[(table["quantity"] == "size") & (table["group"] == HIDDEN[0])]
    own = size[(size["preprocess.topcode"] == 20) & (size["preprocess.missing"] == "zero")]
    row = wide[(wide["group"] == HIDDEN[0]) & (wide["quantity"] == "size")]
    assert row["topcode=20; missing=zero: estimate"].item() == own["estimate"].item()
    assert "topcode" in (tmp_path / "sweep_wide.tex").read_text()

    # a rerun skips every finished scenario
    again = CountingRunner()
    res2 = run_sweep(sw, tmp_path, executor=SyncExecutor(), runner=again)
    assert again.calls == [] and res2.n_skipped == 4 and res2.complete

    # an interrupted scenario (no marker) is not counted, then re-run
    (tmp_path / "scenarios" / ids[2] / MARKER).unlink()
    partial = gather_sweep(sw, tmp_path, write=False)
    assert not partial.complete and partial.n_complete == 3
    assert partial.dataset.attrs["complete"] == 0
    row = partial.table[partial.table["scenario"] == ids[2]]
    assert list(row["status"]) == ["not run"] and np.isnan(row["estimate"]).all()
    assert np.isnan(partial.dataset["estimate"].sel(scenario=ids[2])).all()
    third = CountingRunner()
    res3 = run_sweep(sw, tmp_path, executor=SyncExecutor(), runner=third)
    assert third.calls == [ids[2]] and res3.complete

    # a changed spec ([set]) makes every old result stale: all are re-run
    sw2 = load_sweep(
        {
            "grid": {"preprocess.topcode": [30, 20], "preprocess.missing": ["drop", "zero"]},
            "set": {"model.n_boot": 11},
        },
        SPEC,
    )
    assert [s.id for s in sw2.scenarios()] == ids  # same overrides, same ids
    assert (
        scenario_state(tmp_path / "scenarios" / ids[0], sw2.spec_for(sw2.scenarios()[0]).digest())
        == "stale"
    )
    fourth = []
    run_sweep(
        sw2,
        tmp_path,
        executor=SyncExecutor(),
        runner=lambda spec, sid, *rest: fourth.append(sid) or {"status": "failed"},
    )
    assert sorted(fourth) == sorted(ids)


def test_progress_lines_when_each_scenario_starts_and_ends(tmp_path):
    sw = _sweep({"preprocess.topcode": [30, 20]})
    ids = [s.id for s in sw.scenarios()]
    lines: list[str] = []
    run_sweep(sw, tmp_path, executor=SyncExecutor(), echo=lines.append)
    assert len(lines) == 4
    for k, sid in enumerate(ids):
        start, end = lines[2 * k], lines[2 * k + 1]
        assert start.startswith(f"[start] {sid} (preprocess.topcode=") and "elapsed" in start
        assert end.startswith(f"[{k + 1}/2] {sid} complete in ") and "; elapsed " in end
    from bayes_nsum.sweep.run import _LOCAL_START, _duration

    assert _LOCAL_START == []  # the in-process callback is removed after the sweep
    assert (_duration(5.2), _duration(125), _duration(3725)) == ("5 s", "2 min 05 s", "1 h 02 min")


def test_failures_are_captured_and_do_not_stop_others(tmp_path):
    # one scenario fails inside the analysis (a value the pre-processing rejects) and one
    # because its runner raises
    sw = _sweep({"preprocess.missing": ["drop", "bogus", "zero"]})
    ids = [s.id for s in sw.scenarios()]
    runner = CountingRunner(fail={ids[2]})
    res = run_sweep(sw, tmp_path, executor=SyncExecutor(), runner=runner)
    assert len(runner.calls) == 3
    assert res.n_complete == 1 and res.n_failed == 2 and not res.complete
    status = res.table.drop_duplicates("scenario").set_index("scenario")
    assert status.loc[ids[0], "status"] == "complete"
    assert status.loc[ids[1], "status"] == "failed"
    assert "SpecError" in status.loc[ids[1], "error"] and "bogus" in status.loc[ids[1], "error"]
    assert status.loc[ids[2], "status"] == "failed"
    assert f"RuntimeError: boom in {ids[2]}" in status.loc[ids[2], "error"]
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert {f["scenario"] for f in failures} == {ids[1], ids[2]}
    assert not (tmp_path / "scenarios" / ids[1] / MARKER).exists()
    assert (tmp_path / "scenarios" / ids[1] / FAILED).exists()
    ds = xr.open_dataset(tmp_path / "sweep.nc", engine="h5netcdf").load()
    assert ds.attrs["n_failed"] == 2 and ds.attrs["complete"] == 0
    assert list(ds["status"].values) == ["complete", "failed", "failed"]
    csv = pd.read_csv(tmp_path / "sweep.csv", keep_default_na=False)
    assert "boom" in csv.loc[csv["scenario"] == ids[2], "error"].iloc[0]

    # failed scenarios are retried by default, skipped with retry_failed = false
    retry = CountingRunner()
    run_sweep(sw, tmp_path, executor=SyncExecutor(), runner=retry)
    assert sorted(retry.calls) == sorted(ids[1:])
    keep = load_sweep(
        {
            "grid": {"preprocess.missing": ["drop", "bogus", "zero"]},
            "set": dict(CHEAP),
            "options": {"retry_failed": False},
        },
        SPEC,
    )
    none = CountingRunner()
    res3 = run_sweep(keep, tmp_path, executor=SyncExecutor(), runner=none)
    # ids[2] completed on the retry; ids[1] failed again and is now left alone
    assert none.calls == [] and res3.n_failed == 1 and res3.n_complete == 2


def test_factor_effects_one_at_a_time_slice():
    # two factors; estimates chosen so that each factor's effect is known
    rows = []
    est = {
        ("30", "drop"): 100.0,
        ("20", "drop"): 90.0,
        ("50", "drop"): 130.0,
        ("30", "zero"): 80.0,
        ("20", "zero"): 1.0,
        ("50", "zero"): 1000.0,
    }
    for i, ((tc, miss), v) in enumerate(est.items()):
        for g, scale in (("a", 1.0), ("b", 2.0)):
            rows.append(
                {
                    "scenario": f"s{i}",
                    "status": "complete",
                    "area": "",
                    "group": g,
                    "quantity": "size",
                    "estimate": v * scale,
                    "topcode": tc,
                    "missing": miss,
                }
            )
    table = pd.DataFrame(rows)
    eff = factor_effects(table, {"topcode": "30", "missing": "drop"})
    a = eff[eff["group"] == "a"].set_index("factor")
    # topcode: only scenarios with missing at baseline ("drop"): 90, 100, 130
    assert a.loc["topcode", ["low", "high", "baseline"]].tolist() == [90.0, 130.0, 100.0]
    assert (a.loc["topcode", "low_level"], a.loc["topcode", "high_level"]) == ("20", "50")
    # missing: only scenarios with topcode at baseline ("30"): 100 and 80
    assert a.loc["missing", ["low", "high"]].tolist() == [80.0, 100.0]
    assert a.loc["missing", "low_ratio"] == pytest.approx(0.8)
    # the larger range comes first
    assert list(a.index) == ["topcode", "missing"]
    b = eff[eff["group"] == "b"].set_index("factor")
    assert b.loc["topcode", "high_ratio"] == pytest.approx(1.3)


# ---------------------------------------------------------------------------------------------
# compare-priors (fits replaced by a stub that writes what a fit writes)
# ---------------------------------------------------------------------------------------------


def test_compare_priors_assembles_one_table(tmp_path, monkeypatch):
    import bayes_nsum.sweep.run as sweep_mod
    from bayes_nsum.io import write_csv, write_json

    def fake_fit(spec, folder, options):
        # a "fit" whose size estimate is the inverse of the prior set's mean tau
        c = load_prior_set(spec.raw["model"]["prior_set"])["tau"].canonical()
        mean_tau = c["alpha"] / (c["alpha"] + c["beta"])  # Beta priors in both sets
        rows = [
            {
                "area": "",
                "group": h,
                "quantity": "size",
                "estimate": 1000 / mean_tau,
                "mean": 1000 / mean_tau,
                "lower": 500.0,
                "upper": 4000.0,
                "interval_prob": 0.9,
                "r_hat": 1.0,
                "ess_bulk": 500.0,
                "ess_tail": 450.0,
                "converged": True,
            }
            for h in HIDDEN
        ]
        write_csv(pd.DataFrame(rows), folder / "summary.csv")
        write_json(
            {"passed": True, "max_r_hat": 1.0, "min_ess_bulk": 500.0, "divergences": 0},
            folder / "diagnostics.json",
        )
        assert options["sensitivity"]
        write_csv(
            pd.DataFrame(
                {
                    "variable": ["tau"],
                    "group": ["msm"],
                    "prior": [0.2],
                    "likelihood": [0.01],
                    "diagnosis": ["strong prior / weak likelihood"],
                }
            ),
            folder / "sensitivity.csv",
        )
        return {"kind": "bayesian", "converged": True}

    monkeypatch.setattr(sweep_mod, "_fit_scenario", fake_fit)
    sets = ["maltiel2015", "informative_transmission"]
    res = compare_priors(
        SPEC,
        sets,
        out=tmp_path,
        model="transmission",
        executor=SyncExecutor(),
        prior_predictive_draws=50,
    )
    t = res.table
    sizes = t[t["quantity"] == "size"]
    assert set(sizes["prior_set"]) == set(sets)
    for name in sets:
        c = load_prior_set(name)["tau"].canonical()  # Beta priors in both sets
        mean_tau = c["alpha"] / (c["alpha"] + c["beta"])
        got = sizes.loc[sizes["prior_set"] == name, "estimate"].to_numpy()
        np.testing.assert_allclose(got, 1000 / mean_tau)
    assert {"max_r_hat", "min_ess_bulk", "divergences", "converged"} <= set(t.columns)
    assert set(res.sensitivity["prior_set"]) == set(sets)
    assert set(res.prior_predictive["prior_set"]) == set(sets)
    for f in (
        "comparison.csv",
        "comparison_wide.csv",
        "comparison_wide.md",
        "comparison_wide.tex",
        "comparison.png",
        "sensitivity.csv",
        "prior_predictive.csv",
        "prior_predictive.png",
    ):
        assert (tmp_path / f).is_file(), f
    with pytest.raises(SpecError, match="Bayesian model"):
        compare_priors(SPEC, sets, out=tmp_path / "x", executor=SyncExecutor())


# ---------------------------------------------------------------------------------------------
# prior checks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prior",
    [
        Prior("Beta", {"mean": 0.3, "concentration": 7}),
        Prior("Beta", {"lower": 0.3, "upper": 0.8}),
        Prior("Uniform", {"lower": 0, "upper": 2}),
        Prior("Normal", {"mu": 1, "sigma": 2}),
        Prior("HalfNormal", {"sigma": 1.5}),
        Prior("LogNormal", {"mu": 0.2, "sigma": 0.7}),
        Prior("Gamma", {"mu": 1, "sigma": 0.5}),
        Prior("Exponential", {"lam": 2}),
        Prior("HalfCauchy", {"beta": 0.8}),
    ],
    ids=lambda p: p.describe(),
)
def test_prior_logp_matches_scipy(prior):

    from scipy import stats

    x = np.array([0.1, 0.5, 0.9, 1.7])
    c = prior.canonical()
    ref = {  # scipy's densities, an implementation independent of PyMC's
        "Beta": lambda: stats.beta.logpdf(x, c.get("alpha"), c.get("beta")),
        "Uniform": lambda: stats.uniform.logpdf(
            x, c.get("lower"), c.get("upper", 0) - c.get("lower", 0)
        ),
        "Normal": lambda: stats.norm.logpdf(x, c.get("mu"), c.get("sigma")),
        "HalfNormal": lambda: stats.halfnorm.logpdf(x, scale=c.get("sigma")),
        "LogNormal": lambda: stats.lognorm.logpdf(x, c.get("sigma"), scale=np.exp(c.get("mu", 0))),
        "Gamma": lambda: stats.gamma.logpdf(x, c.get("alpha"), scale=1 / c.get("beta", 1)),
        "Exponential": lambda: stats.expon.logpdf(x, scale=1 / c.get("lam", 1)),
        "HalfCauchy": lambda: stats.halfcauchy.logpdf(x, scale=c.get("beta")),
    }[prior.dist]()
    # the family table's PyMC log density against scipy: equal up to float64 rounding
    np.testing.assert_allclose(prior.logp(x), ref, atol=1e-6)


@pytest.fixture(scope="module")
def rwanda_prep():
    from bayes_nsum.analysis import prepare

    return prepare(SPEC)


def _model(prep, name, **kw):
    from bayes_nsum.analysis import Prepared, build_model

    spec = prep.spec.with_value("model.name", name)
    return build_model(Prepared(spec=spec, raw=prep.raw, ard=prep.ard, log=prep.log), **kw)


def test_prior_predictive_matches_generative_maths(rwanda_prep):
    from bayes_nsum.checks.prior_predictive import prior_predictive_table, sample_prior_predictive

    ard = rwanda_prep.ard
    priors = {"mu": 5.0, "sigma": 0.5, "log_visible": -7.0, "tau": 0.5}
    m = _model(rwanda_prep, "transmission", priors=priors)
    ds = sample_prior_predictive(m, draws=200, respondents=200, seed=3)
    again = sample_prior_predictive(m, draws=200, respondents=200, seed=3)
    xr.testing.assert_identical(ds, again)
    # fixed parameters: sizes are exact, N exp(log_visible) / tau
    np.testing.assert_allclose(ds["size"].values, ard.total_population * np.exp(-7.0) / 0.5)
    # mean answer to known group k: E[y] = E[d] m_k with E[d] = exp(mu + sigma^2/2), m_k = N_k/N;
    # Var(y) = E[d] m_k + Var(d) m_k^2 (Poisson given d). The average over 200 draws x 200
    # respondents (all parameters fixed, so 40,000 independent answers) must lie within 4
    # standard errors (a false alarm about once in 16,000 groups).
    m_k = (ard.known_sizes / ard.total_population).to_numpy()
    e_d = np.exp(5.0 + 0.125)
    var_d = (np.exp(0.25) - 1) * np.exp(10.0 + 0.25)
    se = np.sqrt((e_d * m_k + var_d * m_k**2) / 40_000)
    got = ds["mean_answer"].sel(group=list(ard.known)).mean("draw").to_numpy()
    assert np.all(np.abs(got - e_d * m_k) < 4 * se)
    table = prior_predictive_table(ds, ard)
    obs = table[(table["quantity"] == "mean_answer") & (table["group"] == "widower")].iloc[0]
    assert obs["observed"] == pytest.approx(ard.counts["widower"].mean())
    assert 0 <= obs["observed_percentile"] <= 100
    sizes = table[table["quantity"] == "size"]
    assert set(sizes["group"]) == set(HIDDEN) and sizes["observed"].isna().all()


def test_prior_predictive_barrier_and_overdispersed_run(rwanda_prep, tmp_path):
    from bayes_nsum.checks.prior_predictive import (
        observed_stats,
        prior_predictive_table,
        sample_prior_predictive,
    )
    from bayes_nsum.report.figures import plot_prior_predictive

    out = {}
    for name in ("combined", "overdispersed", "barrier"):
        ds = sample_prior_predictive(_model(rwanda_prep, name), draws=50, respondents=50, seed=1)
        assert np.isfinite(ds["mean_answer"]).all() and (ds["size"] > 0).all()
        table = prior_predictive_table(ds, rwanda_prep.ard)
        assert table["q05"].le(table["q95"]).all()
        out[name] = ds
    observed = observed_stats(rwanda_prep.ard)
    assert plot_prior_predictive(out, tmp_path / "pp.png", observed).is_file()


def test_log_likelihood_draws_match_pointwise_evaluation(rwanda_prep):
    import pytensor
    from pytensor.graph.replace import graph_replace

    from bayes_nsum.checks.sensitivity import log_likelihood_draws, log_prior_draws

    m = _model(rwanda_prep, "transmission", prior_set="weakly_informative")
    rng = np.random.default_rng(0)
    shape = (2, 3)
    post = xr.Dataset(
        {
            "mu": (("chain", "draw"), rng.normal(4.0, 0.05, shape)),
            "sigma": (("chain", "draw"), rng.uniform(1.1, 1.3, shape)),
            "log_visible": (
                ("chain", "draw", "hidden"),
                rng.normal(-6.5, 0.3, (*shape, len(HIDDEN))),
            ),
            "tau": (("chain", "draw", "hidden"), rng.uniform(0.3, 0.9, (*shape, len(HIDDEN)))),
        },
        coords={"chain": [0, 1], "draw": [0, 1, 2], "hidden": HIDDEN},
    )
    # tiny chunks: exercises evaluation in several batches
    ll = log_likelihood_draws(m, post, max_cells=2 * m.data.n * len(m.data.groups))
    pm_model = m.model
    rvs = list(pm_model.free_RVs)
    inputs = [rv.type(name=rv.name) for rv in rvs]
    expr = graph_replace([pm_model["loglik"]], dict(zip(rvs, inputs, strict=True)), strict=False)[0]
    fn = pytensor.function(inputs, expr, on_unused_input="ignore", mode="FAST_COMPILE")
    for c in range(2):
        for d in range(3):
            point = [post[rv.name].isel(chain=c, draw=d).values for rv in rvs]
            assert ll.isel(chain=c, draw=d).item() == pytest.approx(float(fn(*point)), rel=1e-10)
    lp = log_prior_draws(m, post)
    import pymc as pm

    mu_ref = pm.logp(pm.Normal.dist(5.5, 1.0), post["mu"].values).eval(mode="FAST_COMPILE")
    np.testing.assert_allclose(lp["mu"].values, mu_ref, atol=1e-6)
    assert "mu" not in lp.attrs["flat"] and "tau" not in lp.attrs["flat"]


def test_power_scaling_sensitivity_table(rwanda_prep):
    from bayes_nsum.checks.sensitivity import SENSITIVITY_COLUMNS, power_scaling_sensitivity
    from bayes_nsum.result import NSUMResult

    m = _model(rwanda_prep, "transmission")  # default priors: tau Beta(6, 4), others uniform
    rng = np.random.default_rng(1)
    shape = (2, 200)
    post = xr.Dataset(
        {
            "mu": (("chain", "draw"), rng.normal(4.05, 0.02, shape)),
            "sigma": (("chain", "draw"), rng.normal(1.19, 0.02, shape)),
            "log_visible": (
                ("chain", "draw", "hidden"),
                np.array([-5.6, -8.1, -9.0, -5.5]) + rng.normal(0, 0.05, (*shape, 4)),
            ),
            # tau's posterior is its prior: the data do not inform it
            "tau": (("chain", "draw", "hidden"), rng.beta(6, 4, (*shape, 4))),
        },
        coords={"chain": [0, 1], "draw": np.arange(200), "hidden": HIDDEN},
    )
    post = m.derive(post)
    tree = xr.DataTree.from_dict({"posterior": post})
    table = power_scaling_sensitivity(NSUMResult(tree=tree, model=m))
    assert list(table.columns) == SENSITIVITY_COLUMNS
    assert set(table["variable"]) == {"mu", "sigma", "log_visible", "tau", "size"}
    assert set(table.loc[table["variable"] == "tau", "group"]) == set(HIDDEN)
    # only tau's prior is not flat; sizes inherit tau's prior, so they are prior-sensitive
    assert "flat" in table.attrs["note"] and "priors scaled: tau" in table.attrs["note"]
    # Power-scaling Beta(6, 4) draws by 1 +- 0.01 gives a sensitivity near 0.085; over seeds the
    # average of 4 such values from 400 draws stays above 0.06 (checked on 30 seeds), so the
    # average must clear the 0.05 threshold, and flat-prior mu must be less sensitive
    tau = table[table["variable"] == "tau"]
    assert tau["prior"].mean() > 0.05
    assert table.loc[table["variable"] == "mu", "prior"].iloc[0] < tau["prior"].mean()
    th = table.attrs["threshold"]
    for r in table.itertuples():
        expect = (
            "prior-dominated (not identified by the data)"
            if r.variable == "tau"  # never a conflict: the data carry nothing on it
            else "prior-data conflict"
            if r.prior >= th and r.likelihood >= th
            else "strong prior / weak likelihood"
            if r.prior >= th
            else "weak likelihood"
            if r.likelihood < th
            else "ok"
        )
        assert r.diagnosis == expect


# ---------------------------------------------------------------------------------------------
# slow tier: Dask and real fits
# ---------------------------------------------------------------------------------------------

TINY = {
    "sampler.draws": 100,
    "sampler.tune": 100,
    "sampler.chains": 2,
    "sampler.cores": 1,
    "model.n_boot": 20,
}


def _cli(argv):
    from bayes_nsum.cli import compare_priors, sweep

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sweep.add_parser(sub)
    compare_priors.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.slow
def test_dask_sweep_matches_scenarios_fitted_one_by_one(tmp_path):
    from bayes_nsum.analysis import build_model, classical_estimates, prepare

    sweep_file = tmp_path / "sweep.toml"
    set_lines = "\n".join(f'"{k}" = {v}' for k, v in TINY.items())
    sweep_file.write_text(
        f'[set]\n{set_lines}\n[grid]\n"model.name" = ["killworth", "degree"]\n'
        '"preprocess.topcode" = [30, 20]\n'
    )
    out = tmp_path / "out"
    # the command line, on a local Dask cluster with 2 worker processes
    rc = _cli(
        ["sweep", str(SPEC), str(sweep_file), "--out", str(out), "--workers", "2", "--quiet",
         "--allow-unconverged"]  # tiny chains: the gate is not the point here
    )  # fmt: skip
    assert rc == 0
    plan = load_sweep(sweep_file, SPEC)
    table = pd.read_csv(out / "sweep.csv", keep_default_na=False, na_values=["", "nan"])
    ds = xr.open_dataset(out / "sweep.nc", engine="h5netcdf").load()
    assert ds.attrs["complete"] == 1 and ds.attrs["n_complete"] == 4
    for s in plan.scenarios():
        spec = plan.spec_for(s)
        prep = prepare(spec)
        if spec.model_name == "killworth":
            alone = classical_estimates(prep)
        else:
            alone = (
                build_model(prep)
                .fit(**{**spec.sampler, "progress": False})
                .summary(spec.interval_prob, spec.interval_kind)
            )
        alone = alone[alone["quantity"] == "size"].set_index("group")
        got = table[(table["scenario"] == s.id) & (table["quantity"] == "size")]
        got = got.set_index("group").loc[alone.index]
        # same spec and seed: identical numbers (CSV keeps 17 significant digits)
        for col in ("estimate", "lower", "upper"):
            np.testing.assert_allclose(got[col].to_numpy(), alone[col].to_numpy(), rtol=1e-13)
            np.testing.assert_allclose(
                ds[col].sel(scenario=s.id, quantity="size", group=list(alone.index)).values,
                alone[col].to_numpy(),
                rtol=1e-13,
            )
    # a rerun finds everything done and runs nothing
    res = run_sweep(
        plan,
        out,
        executor=SyncExecutor(),
        runner=CountingRunner(fail=set(s.id for s in plan.scenarios())),
    )
    assert res.n_skipped == 4 and res.complete


@pytest.mark.slow
def test_sweep_on_an_existing_scheduler(tmp_path):
    from distributed import LocalCluster

    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text('[set]\n"model.n_boot" = 10\n[grid]\ndrop_known = ["priest"]\n')
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        rc = _cli(
            [
                "sweep",
                str(SPEC),
                str(sweep_file),
                "--out",
                str(tmp_path / "o"),
                "--quiet",
                "--scheduler",
                cluster.scheduler_address,
            ]
        )
    assert rc == 0
    ds = xr.open_dataset(tmp_path / "o" / "sweep.nc", engine="h5netcdf").load()
    assert ds.attrs["complete"] == 1 and list(ds["drop_known"].values) == ["(none)", "priest"]


@pytest.mark.slow
def test_compare_priors_command(tmp_path):
    out = tmp_path / "cmp"
    rc = _cli(
        [
            "compare-priors",
            str(SPEC),
            "--model",
            "transmission",
            "--prior-sets",
            "maltiel2015,informative_transmission",
            "--out",
            str(out),
            "--draws",
            "100",
            "--tune",
            "100",
            "--chains",
            "2",
            "--workers",
            "2",
            "--quiet",
            "--prior-predictive-draws",
            "100",
            "--allow-unconverged",
        ]
    )
    assert rc == 0
    t = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=["", "nan"])
    sizes = t[t["quantity"] == "size"]
    assert set(sizes["prior_set"]) == {"maltiel2015", "informative_transmission"}
    assert (sizes["status"] == "complete").all()
    assert np.isfinite(sizes[["estimate", "lower", "upper", "max_r_hat"]]).all().all()
    # tau is not identified: the uniform tau of maltiel2015 gives much wider size intervals
    width = (sizes["upper"] / sizes["lower"]).groupby(sizes["prior_set"]).median()
    assert width["maltiel2015"] > width["informative_transmission"]
    sens = pd.read_csv(out / "sensitivity.csv", keep_default_na=False)
    informative = sens[
        (sens["prior_set"] == "informative_transmission") & (sens["variable"] == "tau")
    ]
    assert len(informative) == len(HIDDEN)
    assert (out / "comparison.png").is_file() and (out / "prior_predictive.csv").is_file()
