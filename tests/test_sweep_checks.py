"""No silent no-ops in sweeps and comparisons (issue 12).

* A factor that a scenario's model does not use is an error when the sweep file is loaded
  (before anything runs), checked per scenario as the design expands it; a ``[set]`` key some
  scenarios' models do not use is a warning written to ``sweep.json``.
* Scenarios that finished but failed their convergence checks are counted and named on the
  console, in ``sweep.json`` and ``sweep.nc``, marked in the tornado plot, and make
  ``bayes-nsum sweep`` exit 3 unless ``--allow-unconverged`` (failures still exit 1).
* The compare-priors and compare plots mark unconverged fits.

Fast tier: the fitting function of a scenario is replaced by a stub that writes what a fit
writes (as in ``test_sweep.py``), and the Dask executor by the in-process one.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum.cli import EXIT_BAD_INPUT, EXIT_SCENARIOS_FAILED, EXIT_UNCONVERGED, main
from bayes_nsum.errors import SpecError
from bayes_nsum.sweep import SyncExecutor, load_sweep

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "models" / "rwanda_example.toml"  # [model] name = "killworth"
HIDDEN = ["sex.workers", "msm", "idu", "clients"]
TAU = {"dist": "Beta", "mean": 0.5, "concentration": 10}


def _load(grid, design="product", fixed=None):
    raw = {"grid": grid, "design": design}
    if fixed:
        raw["set"] = fixed
    return load_sweep(raw, SPEC)


# ---------------------------------------------------------------------------------------------
# (a) unused factors are errors at load time
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grid, key, model",
    [
        # classical-only keys of [model] with a Bayesian model: they change nothing in its summary
        ({"model.name": ["degree"], "model.transmission": [{"msm": 0.5}, {"msm": 0.7}]},
         "model.transmission", "degree"),
        ({"model.name": ["degree"], "model.degree_ratio": [{"msm": 0.5}, {"msm": 0.7}]},
         "model.degree_ratio", "degree"),
        ({"model.name": ["transmission"], "model.method": ["mle", "pimle"]},
         "model.method", "transmission"),
        ({"model.name": ["barrier"], "model.n_boot": [100, 200]}, "model.n_boot", "barrier"),
        # a Bayesian option with the classical estimator (the spec's model is killworth)
        ({"model.degree": ["lognormal", "gamma"]}, "model.degree", "killworth"),
        ({"model.anchor": ["likelihood", "posthoc"]}, "model.anchor", "killworth"),
        # an option of another Bayesian model: the fit would refuse it
        ({"model.name": ["degree"], "model.correlated": [True, False]},
         "model.correlated", "degree"),
        # a product design pairing the classical model with a prior at a non-baseline level
        ({"model.name": ["transmission", "killworth"], "priors.tau.msm": [0.4, 0.6]},
         "priors.tau.msm", "killworth"),
        # a prior of a parameter the scenario's model does not have
        ({"model.name": ["transmission", "degree"], "priors.tau.msm": [TAU, 0.6]},
         "priors.tau.msm", "degree"),
        # the sampler and the prior set with the classical estimator
        ({"model.name": ["degree", "killworth"], "sampler.draws": [200, 400]},
         "sampler.draws", "killworth"),
        ({"model.name": ["degree", "killworth"], "model.prior_set": ["maltiel2015",
          "weakly_informative"]}, "model.prior_set", "killworth"),
        # a single level that no scenario's model uses
        ({"model.name": ["degree"], "model.n_boot": [100]}, "model.n_boot", "degree"),
    ],
)  # fmt: skip
def test_unused_factor_is_an_error_naming_key_and_model(grid, key, model):
    with pytest.raises(SpecError) as err:
        _load(grid)
    msg = str(err.value)
    assert f"'{key}'" in msg and f"{model} model" in msg, msg
    assert "\n" not in msg


def test_one_at_a_time_checks_the_expanded_scenarios():
    # the factor varies only with the other factors at baseline: killworth is only paired with
    # the baseline level of the prior, so nothing repeats
    grid = {"model.name": ["transmission", "killworth"], "priors.tau.msm": [0.4, 0.6, 0.8]}
    plan = _load(grid, "one_at_a_time")
    assert len(plan.scenarios()) == 4
    assert plan.warnings == []
    # the same grid as a product pairs killworth with 0.6 and 0.8: an error
    with pytest.raises(SpecError, match="killworth"):
        _load(grid, "product")
    # the classical-only keys are fine as factors of the classical model
    plan = _load({"model.n_boot": [50, 100], "model.method": ["mle", "pimle"]})
    assert len(plan.scenarios()) == 4
    # "(spec)" keeps the spec's own value (none): the degree scenario sets no tau prior
    ok = _load(
        {"model.name": ["transmission", "degree"], "priors.tau.msm": ["(spec)", 0.5]},
        "one_at_a_time",
    )
    assert len(ok.scenarios()) == 3


def test_bundled_sweep_still_loads_with_set_warnings(tmp_path):
    plan = load_sweep(ROOT / "models" / "sweeps" / "rwanda_sweep.toml", SPEC)
    assert len(plan.scenarios()) == 34
    # "model.n_boot" (classical only) and the sampler keys of [set]: warnings, not errors
    joined = "\n".join(plan.warnings)
    assert "'model.n_boot'" in joined and "transmission" in joined
    assert "'sampler.draws'" in joined and "killworth" in joined
    assert plan.describe()["warnings"] == plan.warnings


def test_set_keys_warn_or_fail():
    plan = _load({"model.name": ["killworth", "degree"]}, fixed={"model.n_boot": 10})
    assert len(plan.warnings) == 1
    w = plan.warnings[0]
    assert "'model.n_boot'" in w and "degree" in w and "1 of 2 scenarios" in w
    # a [set] key the scenario's fit would refuse is an error (it would fail every scenario)
    with pytest.raises(SpecError, match=r"\[set\] key 'priors.tau.msm'.*degree"):
        _load({"model.name": ["transmission", "degree"]}, fixed={"priors.tau.msm": 0.5})


# ---------------------------------------------------------------------------------------------
# running with a stub fit: the command line
# ---------------------------------------------------------------------------------------------


def _summary_rows(converged: bool, scale: float) -> pd.DataFrame:
    rows = [
        {
            "area": "",
            "group": h,
            "quantity": "size",
            "estimate": 1000.0 * (i + 1) * scale,
            "mean": 1000.0 * (i + 1) * scale,
            "lower": 500.0,
            "upper": 9000.0,
            "interval_prob": 0.9,
            "r_hat": 1.0 if converged else 1.2,
            "ess_bulk": 500.0,
            "ess_tail": 450.0,
            "denominator": "frame population",
            "converged": converged,
        }
        for i, h in enumerate(HIDDEN)
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def stub_fits(monkeypatch):
    """Replace the fit of a scenario: a scenario with ``preprocess.missing = "zero"`` does not
    converge, one with ``preprocess.topcode = 20`` raises; scenarios run in-process."""
    import bayes_nsum.sweep.run as run_mod
    from bayes_nsum.io import write_csv, write_json

    def fake_fit(spec, folder, options):
        pre = spec.raw.get("preprocess", {})
        if pre.get("topcode") == 20:
            raise RuntimeError("boom")
        converged = pre.get("missing") != "zero"
        scale = 1.5 if not converged else 1.0
        write_csv(_summary_rows(converged, scale), folder / "summary.csv")
        write_json({"passed": converged}, folder / "diagnostics.json")
        return {"kind": "bayesian", "converged": converged}

    @contextmanager
    def in_process(scheduler=None, workers=2):
        yield SyncExecutor()

    monkeypatch.setattr(run_mod, "_fit_scenario", fake_fit)
    monkeypatch.setattr(run_mod, "dask_executor", in_process)


def _sweep_file(tmp_path: Path, grid: str, fixed: str = '"model.name" = "degree"') -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(f"[set]\n{fixed}\n[grid]\n{grid}\n")
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sweep_of_unused_key_exits_2_before_running(capsys, tmp_path, stub_fits):
    sweep = _sweep_file(tmp_path, '"model.transmission" = [{ msm = 0.4 }, { msm = 0.6 }]')
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "sweep", SPEC, sweep, "--out", out)
    assert code == EXIT_BAD_INPUT
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayes-nsum: error: ")
    assert "'model.transmission'" in lines[0] and "degree model" in lines[0]
    assert "Traceback" not in err
    assert not (out / "scenarios").exists() and not out.exists()
    assert stdout == ""


def test_cli_sweep_unconverged_exits_3_and_is_marked(capsys, tmp_path, stub_fits):
    sweep = _sweep_file(
        tmp_path,
        '"preprocess.missing" = ["drop", "zero"]\n"preprocess.topcode" = [30, 50]',
        fixed='"model.name" = "degree"\n"model.n_boot" = 10',
    )
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "sweep", SPEC, sweep, "--out", out)
    assert code == EXIT_UNCONVERGED, err
    plan = load_sweep(sweep, SPEC)
    bad = [s.id for s in plan.scenarios() if s.overrides["preprocess.missing"] == "zero"]
    assert len(bad) == 2
    # the [set] key the degree model does not read: a warning line, and in sweep.json
    assert "bayes-nsum: warning: [set] key 'model.n_boot'" in err
    # console: a progress line and a line per unconverged scenario, and the count
    assert stdout.count("NOT CONVERGED") == 2
    assert "zero (not converged)" in stdout  # the table of largest effects
    for sid in bad:
        assert f"not converged: {sid}" in err
    assert "4/4 scenarios complete (0 already done before this run), 0 failed, 2 not converged" in (
        stdout
    )
    info = json.loads((out / "sweep.json").read_text())
    assert info["n_unconverged"] == 2 and {u["scenario"] for u in info["unconverged"]} == set(bad)
    assert any("model.n_boot" in w for w in info["warnings"])
    ds = xr.open_dataset(out / "sweep.nc", engine="h5netcdf").load()
    assert ds.attrs["n_unconverged"] == 2
    assert list(ds["converged"].sel(scenario=bad).values) == [0.0, 0.0]
    # tornado: the effect of preprocess.missing comes from an unconverged scenario
    eff = pd.read_csv(out / "tornado.csv")
    miss = eff[eff["factor"] == "preprocess.missing"]
    assert len(miss) == len(HIDDEN)
    assert (~miss["high_converged"].astype(bool)).all()  # "zero": 1.5 x the baseline
    assert miss["low_converged"].astype(bool).all() and miss["baseline_converged"].all()
    assert eff.loc[eff["factor"] == "preprocess.topcode", "high_converged"].all()
    assert (out / "tornado.png").is_file()

    # a rerun with --allow-unconverged skips everything and exits 0, still saying so
    code, stdout, err = _run(
        capsys, "sweep", SPEC, sweep, "--out", out, "--allow-unconverged", "--quiet"
    )
    assert code == 0, err
    assert "2 not converged" in stdout and f"not converged: {bad[0]}" in err


def test_cli_sweep_failures_take_precedence(capsys, tmp_path, stub_fits):
    sweep = _sweep_file(tmp_path, '"preprocess.missing" = ["drop", "zero"]\n'
                        '"preprocess.topcode" = [30, 20]')  # fmt: skip
    code, stdout, err = _run(capsys, "sweep", SPEC, sweep, "--out", tmp_path / "o", "--quiet")
    assert code == EXIT_SCENARIOS_FAILED
    assert "FAILED SCENARIOS" in err and "boom" in err and "not converged" in err
    assert "2 failed, 1 not converged" in stdout  # topcode 20 fails with both


def test_cli_sweep_all_converged_exits_0(capsys, tmp_path, stub_fits):
    sweep = _sweep_file(tmp_path, '"preprocess.topcode" = [30, 50]')
    code, stdout, err = _run(capsys, "sweep", SPEC, sweep, "--out", tmp_path / "o", "--quiet")
    assert code == 0, err
    assert "0 not converged" in stdout and "not converged:" not in err
    assert json.loads((tmp_path / "o" / "sweep.json").read_text())["n_unconverged"] == 0


# ---------------------------------------------------------------------------------------------
# the plots mark unconverged fits
# ---------------------------------------------------------------------------------------------


def _texts(fig) -> str:
    parts = [t.get_text() for ax in fig.axes for t in ax.texts]
    parts += [ax.get_title() for ax in fig.axes]
    parts += [lab.get_text() for ax in fig.axes for lab in ax.get_yticklabels()]
    if fig._suptitle is not None:
        parts.append(fig._suptitle.get_text())
    return "\n".join(parts)


def test_tornado_figure_hatches_unconverged_ends():
    from bayes_nsum.report.figures import tornado_figure

    effects = pd.DataFrame(
        {
            "group": ["a", "a"],
            "quantity": ["size", "size"],
            "factor": ["f1", "f2"],
            "n_levels": [2, 3],
            "baseline": [100.0, 100.0],
            "low": [80.0, 90.0],
            "high": [150.0, 120.0],
            "low_level": ["x", "p"],
            "high_level": ["y", "q"],
            "low_ratio": [0.8, 0.9],
            "high_ratio": [1.5, 1.2],
            "baseline_converged": [True, True],
            "low_converged": [True, True],
            "high_converged": [False, True],
        }
    )
    fig = tornado_figure(effects, note="1 of 4 scenarios did not pass")
    text = _texts(fig)
    assert "y (not converged)" in text and "q (not converged)" not in text
    assert "1 of 4 scenarios did not pass" in text
    hatched = [p for p in fig.axes[0].patches if p.get_hatch()]
    assert len(hatched) == 1  # the high half of f1's bar
    assert hatched[0].get_x() == pytest.approx(1.0)
    assert hatched[0].get_width() == pytest.approx(0.5)
    # an unconverged baseline is said in the panel title; old tables without flags still plot
    effects["baseline_converged"] = False
    assert "NOT CONVERGED" in tornado_figure(effects).axes[0].get_title()
    plain = tornado_figure(effects.drop(columns=["low_converged", "high_converged"]))
    assert not [p for p in plain.axes[0].patches if p.get_hatch()]


def test_compare_priors_figure_marks_unconverged_sets():
    from bayes_nsum.report.figures import prior_sets_figure

    rows = []
    for name, conv in (("maltiel2015", True), ("weakly_informative", False)):
        rows.append(
            {
                "prior_set": name,
                "status": "complete",
                "area": "",
                "group": "msm",
                "quantity": "size",
                "estimate": 1000.0,
                "lower": 500.0,
                "upper": 2000.0,
                "converged": conv,
            }
        )
    fig = prior_sets_figure(pd.DataFrame(rows))
    assert "not converged: weakly_informative" in fig.axes[0].get_title()
    faces = [line.get_markerfacecolor() for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert "white" in faces and len(set(faces)) == 2  # hollow for the unconverged set


def test_compare_page_and_figure_flag_unconverged_fits():
    from bayes_nsum.compare import Comparison
    from bayes_nsum.report import comparison_html
    from bayes_nsum.report.figures import comparison_figure

    table = pd.DataFrame(
        {
            "rank": [0, 1],
            "model": ["degree", "barrier"],
            "model_name": ["degree", "barrier"],
            "elpd_loo": [-100.0, -110.0],
            "se": [5.0, 5.0],
            "elpd_diff": [0.0, -10.0],
            "dse": [0.0, 2.0],
            "p_loo": [3.0, 4.0],
            "n_bad_k": [0, 0],
            "converged": [True, False],
        }
    )
    fig = comparison_figure(table)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "barrier (not converged)" in labels and "degree" in labels
    faces = [line.get_markerfacecolor() for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert "white" in faces
    page = comparison_html(Comparison(table=table))
    assert "Fits that failed their convergence checks" in page
    # the unconverged model's row of the ranking table is flagged
    row = next(r for r in page.split("<tr") if "<td>barrier</td>" in r)
    assert row.startswith(" class='fail'")
    assert np.isfinite(table["elpd_loo"]).all()


def test_scale_of_harm_visibility_sweep_loads_and_transmission_key_is_refused():
    """The advisory council's question on the study's own model: a sweep over the victims'
    visibility loads (and moves the size as 1/tau, see test_pooled.py); the classical
    ``model.transmission`` key, once accepted and ignored, is refused."""
    soh = ROOT / "models" / "scale_of_harm_example" / "spec.toml"
    plan = load_sweep({"grid": {"priors.tau.victims": [0.4, 0.6, 0.8]}}, soh)
    assert len(plan.scenarios()) == 3
    with pytest.raises(SpecError, match="model.transmission.*pooled"):
        load_sweep({"grid": {"model.transmission": [{"victims": 0.4}, {"victims": 0.6}]}}, soh)


@pytest.mark.slow
def test_scale_of_harm_visibility_sweep_moves_size_as_one_over_tau(tmp_path):
    """The advisory council's question answered on the study's model, end to end: the victims'
    size moves exactly as 1/tau (tau stays out of the likelihood, so with one seed the draws
    are shared and only the division differs); the offenders' size does not move."""
    from bayes_nsum.sweep import run_sweep

    soh = ROOT / "models" / "scale_of_harm_example" / "spec.toml"
    plan = load_sweep(
        {
            "grid": {"priors.tau.victims": [0.4, 0.6, 0.8]},
            "set": {"sampler.draws": 100, "sampler.tune": 150, "sampler.chains": 2},
        },
        soh,
    )
    res = run_sweep(plan, tmp_path, executor=SyncExecutor())
    assert res.n_complete == 3
    t = res.table[(res.table["quantity"] == "size") & (res.table["area"] == "")]
    size = {(r["priors.tau.victims"], r["group"]): r["estimate"] for _, r in t.iterrows()}
    np.testing.assert_allclose(size[(0.4, "victims")] / size[(0.8, "victims")], 2.0, rtol=1e-9)
    np.testing.assert_allclose(size[(0.6, "victims")] / size[(0.8, "victims")], 4 / 3, rtol=1e-9)
    np.testing.assert_allclose(size[(0.4, "offenders")], size[(0.8, "offenders")], rtol=1e-9)


def test_levels_show_the_spec_values_not_tokens():
    """Tables and the tornado plot show "(spec)" as the spec's own value and "(unset)" as the
    package default, so a reader sees what was fitted."""
    from bayes_nsum.sweep.gather import shown_level

    plan = _load({"preprocess.topcode": ["(spec)", {"known": 20}, "(unset)"]})
    assert shown_level(plan, "preprocess.topcode", "(spec)") == '{"known":30} (spec)'
    assert shown_level(plan, "preprocess.topcode", "(unset)") == "(default)"
    assert shown_level(plan, "preprocess.topcode", {"known": 20}) == '{"known":20}'
