"""Tests of the command line (bayes_nsum.cli.main): exit codes, error lines and files written.

``fit`` runs with :func:`bayes_nsum.fit.sample` replaced by prior draws (see conftest.py), so no
sampler runs here.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from bayes_nsum.cli import EXIT_BAD_INPUT, EXIT_UNCONVERGED, main

ROOT = Path(__file__).resolve().parents[1]
RWANDA_SPEC = ROOT / "models" / "rwanda_example.toml"
ESTIMATE_COLUMNS = ["area", "group", "quantity", "estimate", "lower", "upper", "interval_prob"]
CONSISTENCY_COLUMNS = ["group", "true_size", "estimate", "error", "relative_error"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayes-nsum: error: ")
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


# -- bad input: exit 2, one line ------------------------------------------------------------
def test_missing_spec_file(capsys, tmp_path):
    code, _, err = run(capsys, "estimate", tmp_path / "nope.toml")
    assert code == EXIT_BAD_INPUT
    assert_one_error_line(err, "spec file not found", "nope.toml")


def test_spec_typo(capsys, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(RWANDA_SPEC.read_text().replace("[preprocess]", "[preproces]"))
    code, _, err = run(capsys, "validate", spec)
    assert code == EXIT_BAD_INPUT
    assert_one_error_line(err, "unknown section [preproces]", "did you mean 'preprocess'")


def test_bad_data(capsys, small_sim, tmp_path):
    small_sim.write(tmp_path)
    survey = pd.read_csv(tmp_path / "survey.csv")
    survey.loc[3, "known_02"] = -2
    survey.to_csv(tmp_path / "survey.csv", index=False)
    code, _, err = run(capsys, "estimate", tmp_path / "spec.toml", "--out", tmp_path / "o")
    assert code == EXIT_BAD_INPUT
    assert_one_error_line(err, "survey.csv", "known_02", "negative", "rows 4")
    assert str(survey.loc[3, "id"]) not in err  # rows by position, never by respondent id
    assert not (tmp_path / "o").exists()


def test_fit_of_a_classical_model_and_bad_sampler_setting(capsys, tmp_path):
    code, _, err = run(capsys, "fit", RWANDA_SPEC, "--out", tmp_path)
    assert code == EXIT_BAD_INPUT
    assert_one_error_line(err, "killworth", "not a Bayesian model")


def test_bad_sampler_setting(capsys, small_spec_path, tmp_path):
    code, _, err = run(capsys, "fit", small_spec_path, "--draws", "0", "--out", tmp_path)
    assert code == EXIT_BAD_INPUT
    assert_one_error_line(err, "draws")
    code, _, err = run(capsys, "fit", small_spec_path, "--target-accept", "1.2", "--out", tmp_path)
    assert code == EXIT_BAD_INPUT
    assert_one_error_line(err, "target-accept", "between 0 and 1")


def test_target_accept_option_reaches_the_sampler(capsys, small_spec_path, tmp_path, monkeypatch):
    """``--target-accept`` is passed on like the other sampler options (not ignored)."""
    import bayes_nsum.analysis as analysis

    seen = {}

    def stop(model, settings, *args, **kwargs):
        seen.update(settings)
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis, "fit_and_check", stop)
    run(capsys, "fit", small_spec_path, "--target-accept", "0.93", "--out", tmp_path / "o")
    assert seen["target_accept"] == 0.93


# -- estimate / validate on the bundled example ----------------------------------------------
def test_estimate_writes_table(capsys, tmp_path):
    code, out, err = run(capsys, "estimate", RWANDA_SPEC, "--out", tmp_path)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "estimates.csv", keep_default_na=False)
    assert list(table.columns) == ESTIMATE_COLUMNS
    sizes = table[table.quantity == "size"]
    assert sorted(sizes.group) == sorted(["sex.workers", "msm", "idu", "clients"])
    assert (sizes.lower.astype(float) < sizes.estimate.astype(float)).all()
    assert (sizes.estimate.astype(float) < sizes.upper.astype(float)).all()
    assert (table.interval_prob.astype(float) == 0.9).all()
    assert "estimates.csv" in out
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["command"] == "estimate" and prov["n_respondents_raw"] == 2406


def test_validate_writes_internal_consistency(capsys, tmp_path):
    code, out, err = run(capsys, "validate", RWANDA_SPEC, "--out", tmp_path)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "internal_consistency.csv")
    assert list(table.columns) == CONSISTENCY_COLUMNS
    assert len(table) == 22  # every known group held out once
    pd.testing.assert_series_equal(table.error, table.estimate - table.true_size, check_names=False)
    pd.testing.assert_series_equal(
        table.relative_error, table.error / table.true_size, check_names=False
    )
    assert "summary:" in out


# -- simulate and demo -----------------------------------------------------------------------
def test_simulate_ard_writes_files(capsys, tmp_path):
    out_dir = tmp_path / "sim"
    code, out, err = run(
        capsys, "simulate", "ard", "--out", out_dir, "--n", "40", "--seed", "3", "--model", "degree"
    )
    assert code == 0, err
    for name in ("survey.csv", "known_sizes.csv", "truth.csv", "spec.toml"):
        assert (out_dir / name).is_file()
        assert name in out
    assert len(pd.read_csv(out_dir / "survey.csv")) == 40
    spec = tomllib.loads((out_dir / "spec.toml").read_text())
    assert spec["model"]["name"] == "degree"
    # the written spec is usable as is
    code, _, err = run(capsys, "estimate", out_dir / "spec.toml", "--out", tmp_path / "est")
    assert code == 0, err


def test_demo_classical_only(capsys, tmp_path):
    """The default demo is the Scale of Harm example, regenerated from its seed: the same files
    as models/scale_of_harm_example; the Rwanda analysis is the second example."""
    code, out, err = run(capsys, "demo", "--classical-only", "--out", tmp_path / "demo")
    assert code == 0, err
    example = tmp_path / "demo" / "example"
    shipped = ROOT / "models" / "scale_of_harm_example"
    for name in ("survey.csv", "area_table.csv", "truth.csv", "boundaries.geojson", "spec.toml"):
        assert (example / name).read_bytes() == (shipped / name).read_bytes(), name
    table = pd.read_csv(tmp_path / "demo" / "classical" / "estimates.csv", keep_default_na=False)
    assert list(table.columns) == [*ESTIMATE_COLUMNS, "suppressed"]
    assert set(table.group) == {"victims", "offenders"} and table.area.nunique() == 151
    assert "Scale of Harm" in out and "pooled" not in out

    code, out, err = run(
        capsys, "demo", "--example", "rwanda", "--classical-only", "--out", tmp_path / "rw"
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "rw" / "classical" / "estimates.csv", keep_default_na=False)
    assert list(table.columns) == ESTIMATE_COLUMNS
    assert "Classical" in out and "Bayesian" not in out


def test_demo_scale_of_harm_with_fake_sampling(capsys, fake_sampling, tmp_path, monkeypatch):
    """The demo's whole path (fit, console summary, truth check, report, maps) on prior draws."""
    fake_sampling()
    monkeypatch.setenv("BAYES_NSUM_FAST", "1")
    code, out, err = run(capsys, "demo", "--quiet", "--out", tmp_path / "demo")
    assert code == 0, err
    pooled = tmp_path / "demo" / "pooled"
    assert (pooled / "report.html").is_file() and (pooled / "summary.csv").is_file()
    assert "true national prevalence" in out and "1 in" in out
    assert "Per area (150 areas" in out and "full per-area table" in out
    assert len(out.splitlines()) < 60  # one screen, not a line per area
    try:
        import geopandas  # noqa: F401
    except ImportError:
        assert "pip install 'bayes_nsum[maps]'" in err
    else:
        assert sorted(p.name for p in (pooled / "maps").glob("*.png")) == [
            "offenders_interval_width.png",
            "offenders_prevalence.png",
            "victims_interval_width.png",
            "victims_prevalence.png",
        ]


@pytest.mark.slow
def test_demo_samples_for_real_in_fast_mode(capsys, tmp_path, monkeypatch):
    """`make demo` with BAYES_NSUM_FAST=1: the pooled model really sampled, report and maps."""
    monkeypatch.setenv("BAYES_NSUM_FAST", "1")
    code, out, err = run(capsys, "demo", "--quiet", "--out", tmp_path / "demo")
    assert code == 0, err
    summary = pd.read_csv(tmp_path / "demo" / "pooled" / "summary.csv", keep_default_na=False)
    nat = summary[(summary.area == "") & (summary.quantity == "one_in_x")]
    assert set(nat.group) == {"victims", "offenders"}
    assert set(nat.denominator) == {"children", "adults"}
    assert "true national prevalence" in out and "report:" in out


# -- fit with mocked sampling ----------------------------------------------------------------
def test_fit_unconverged_returns_3_and_flag_allows_it(
    capsys, fake_sampling, small_spec_path, tmp_path
):
    fake_sampling(chain_shift=5.0, divergences=2)
    args = ["fit", small_spec_path, "--draws", "60", "--chains", "2", "--quiet", "--no-report"]
    code, out, err = run(capsys, *args, "--out", tmp_path / "a")
    assert code == EXIT_UNCONVERGED
    assert "CONVERGENCE CHECKS FAILED" in err and "r_hat" in err and "divergences" in err
    assert "Traceback" not in err
    # results are still written and flagged
    diag = json.loads((tmp_path / "a" / "diagnostics.json").read_text())
    assert diag["passed"] is False and diag["divergences"] == 2
    summary = pd.read_csv(tmp_path / "a" / "summary.csv", keep_default_na=False)
    assert (summary.converged.astype(str) == "False").all()

    code, out, err = run(capsys, *args, "--allow-unconverged", "--out", tmp_path / "b")
    assert code == 0
    assert "CONVERGENCE CHECKS FAILED" in err
    for name in ("posterior.nc", "summary.csv", "diagnostics.json", "provenance.json"):
        assert (tmp_path / "b" / name).is_file()
    # respondents' network sizes: a summary only, no respondent-level table by default
    assert not (tmp_path / "b" / "degrees.csv").exists()
    assert not (tmp_path / "b" / "restricted").exists()
    summary = pd.read_csv(tmp_path / "b" / "degrees_summary.csv")
    assert summary["n_respondents"].tolist() == [50] and (summary["median"] > 0).all()


def test_fit_converged_returns_0(capsys, fake_sampling, small_spec_path, tmp_path):
    # independent draws from 4 chains x 150: ESS about 600 > 400, R-hat about 1
    fake_sampling()
    code, out, err = run(
        capsys,
        "fit",
        small_spec_path,
        "--draws",
        "150",
        "--chains",
        "4",
        "--quiet",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    assert "CONVERGENCE" not in err
    diag = json.loads((tmp_path / "diagnostics.json").read_text())
    assert diag["passed"] is True
    summary = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert set(summary[summary.quantity == "size"].group) == {"victims", "offenders"}
    assert (tmp_path / "report.html").is_file()
    assert (tmp_path / "classical_estimates.csv").is_file()
    # where the time went: sampling and each post-fit step, recorded beside the results
    timings = json.loads((tmp_path / "provenance.json").read_text())["timings"]
    steps = ("predictive_s", "log_likelihood_s", "degrees_s", "sensitivity_s", "evidence_s")
    assert all(timings[k] >= 0.0 for k in ("sample_s", *steps))


# -- the console script runs under a fixed string-hash seed ------------------------------------


def test_console_script_reexecutes_with_a_fixed_hash_seed(monkeypatch):
    """Without PYTHONHASHSEED the console script re-runs itself once with it set (same
    arguments); with it set, it runs the command in place."""
    import os
    import sys

    import bayes_nsum.cli as cli

    calls = {}

    def fake_execve(path, args, env):
        calls.update(path=path, args=args, env=env)
        raise SystemExit(7)

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr(sys, "argv", ["bayes-nsum", "fit", "spec.toml", "--draws", "5"])
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    with pytest.raises(SystemExit):
        cli.entry()
    assert calls["env"]["PYTHONHASHSEED"] == cli.HASH_SEED
    assert calls["path"] == sys.executable
    assert calls["args"][-4:] == ["fit", "spec.toml", "--draws", "5"]

    calls.clear()
    monkeypatch.setenv("PYTHONHASHSEED", "3")
    monkeypatch.setattr(cli, "main", lambda: 0)
    with pytest.raises(SystemExit) as exit_:
        cli.entry()
    assert exit_.value.code == 0 and not calls


@pytest.mark.slow
def test_same_spec_and_seed_give_the_same_numbers_in_new_processes(tmp_path):
    """Runs of the installed command, each a new Python process started without
    PYTHONHASHSEED, write the same summaries of a small pooled fit, to the last digit; the
    provenance records the hash seed used. The first run may compile part of the model anew
    while later runs load it from PyTensor's cache: with numba's fast-math, fresh and cached
    code differed in the last digits of the log density and the first run drew other numbers
    (slow tier of 2026-12-02: 1e-9 to 2e-3 relative), so the sampler's model is compiled
    without it (fit.compile_nutpie). (Started by hand with PYTHONHASHSEED=1 and =2 on an
    empty cache, two runs wrote summaries that differ from the first estimate on.)"""
    import os
    import subprocess
    import sys

    from bayes_nsum.simulate import simulate_pooled

    sim = simulate_pooled(n_areas=20, respondents_per_area=10, n_known=4, n_hidden=2, seed=3)
    spec = sim.write(tmp_path / "sim", model="pooled")["spec"]
    script = Path(sys.executable).parent / "bayes-nsum"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    outs = []
    for i in range(3):
        out = tmp_path / f"run{i}"
        run = subprocess.run(
            [str(script), "fit", str(spec), "--out", str(out), "--draws", "150",
             "--tune", "150", "--chains", "2", "--quiet"],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
        assert run.returncode in (0, 3), run.stderr[-2000:]
        outs.append(out)
    first, *later = ((o / "summary.csv").read_text() for o in outs)
    assert all(text == first for text in later)
    prov = json.loads((outs[0] / "provenance.json").read_text())
    assert prov["python_hash_seed"] == "0"
