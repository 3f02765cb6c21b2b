"""Issue 14: every bad input refused before work starts, nothing lost, nothing about a respondent
leaving a results folder by default.

One named regression test per input that misbehaved when the package was tried as a new user
would (tracebacks, silently accepted inputs, half-written folders, disclosure), then the checks
that keep the lists of models and parameters complete. The contract for a bad input: exit status
2, one line on stderr naming the file, key, column or rows (rows by position, never by id, no
answer quoted), no traceback, and no file written. ``fit`` runs with the fake sampler of
conftest.py; nothing here samples.

The inputs of the issue and their tests: a spec in Latin-1 / UTF-16 (``test_spec_saved_as_*``);
``[model] n_boot = "abc"``; a malformed prior-set TOML; a prior parameter ``sigma = true``; an
output folder inside a file, not writable, or a symbolic-link loop; ``simulate --out FILE``;
``report`` on a truncated ``posterior.nc``; ``fit --out afile/res`` (refused before sampling);
an answer of 1e12; a Parquet datetime column; a bool column; a repeated column name;
``[priors.tua]`` and ``name = "degre"`` under ``estimate``; ``max_r_hat = nan``; a fixed
transmission rate 1.5 in a sweep grid; ``sweep --workers 0``; a Ctrl-C swallowed during
sampling; respondent ids and respondent-level tables in a results folder, its report and its
sweep scenario folders; ids and answers quoted in error messages; an area with one respondent.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_nsum.fit
from bayes_nsum.cli import main
from bayes_nsum.simulate import simulate_pooled
from conftest import fake_sampler

SRC = Path(__file__).resolve().parents[1] / "src" / "bayes_nsum"
FAST_FIT = ("--draws", "20", "--chains", "2", "--quiet", "--allow-unconverged")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree_of(folder: Path) -> dict[str, int]:
    """Every file and folder under ``folder`` with its modification time (ns)."""
    return {str(p.relative_to(folder)): p.lstat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def assert_refused(code: int, err: str, *words: str) -> str:
    """Exit 2, one error line holding ``words``, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayes-nsum: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def case(small_sim, tmp_path) -> Path:
    """The small simulated survey (50 respondents, ids R00001...) with a degree-model spec."""
    small_sim.write(tmp_path / "case", model="degree")
    return tmp_path / "case"


def add_to_spec(folder: Path, text: str) -> Path:
    spec = folder / "spec.toml"
    spec.write_text(spec.read_text() + "\n" + text)
    return spec


def set_model(folder: Path, name: str, extra: str = "") -> Path:
    spec = folder / "spec.toml"
    text = re.sub(r'name = "\w+"', f'name = "{name}"{extra}', spec.read_text())
    spec.write_text(text)
    return spec


def refused_without_files(capsys, folder: Path, *argv, words=()) -> str:
    """Run a command that must be refused and leave ``folder`` exactly as it was."""
    before = tree_of(folder)
    code, _, err = run(capsys, *argv)
    line = assert_refused(code, err, *words)
    assert tree_of(folder) == before, "a refused command wrote files"
    return line


@pytest.fixture
def no_sampling(monkeypatch):
    """A sampler that fails the test if called: the input must be refused before sampling."""

    def sample(*args, **kwargs):
        raise AssertionError("sampled although the input was bad")

    monkeypatch.setattr(bayes_nsum.fit, "sample", sample)


# ---------------------------------------------------------------------------------------------
# tracebacks that became one line
# ---------------------------------------------------------------------------------------------


def test_spec_saved_as_latin1(capsys, case):
    spec = case / "spec.toml"
    spec.write_bytes(("# Résumé de l'analyse\n" + spec.read_text()).encode("latin-1"))
    refused_without_files(
        capsys, case, "estimate", spec, words=("spec.toml", "not UTF-8", "line 1", "save it as")
    )


def test_spec_saved_as_utf16(capsys, case):
    spec = case / "spec.toml"
    spec.write_bytes(spec.read_text().encode("utf-16"))
    refused_without_files(capsys, case, "validate", spec, words=("UTF-16", "save it as UTF-8"))


def test_n_boot_as_text(capsys, case, no_sampling):
    spec = set_model(case, "killworth", '\nn_boot = "abc"')
    line = refused_without_files(capsys, case, "estimate", spec, words=("n_boot", "integer"))
    assert "[model]" in line
    set_model(case, "degree")
    refused_without_files(capsys, case, "fit", spec, words=("n_boot",))


def test_malformed_prior_set_toml(capsys, case, no_sampling):
    (case / "priors").mkdir()
    (case / "priors" / "broken.toml").write_text("mu = {dist = \n")
    spec = set_model(case, "degree", '\nprior_set = "broken"')
    for command in ("estimate", "fit"):
        refused_without_files(
            capsys, case, command, spec, words=("broken.toml", "not valid TOML", "line 1")
        )


@pytest.mark.parametrize(
    "prior",
    ["sigma = true", 'mu = {dist = "Normal", mu = 5, sigma = true}', "tau = 0.5"],
)
def test_prior_parameter_true_or_unused_prior_under_every_command(capsys, case, prior, no_sampling):
    spec = add_to_spec(case, f"[priors]\n{prior}\n")
    name = prior.split(" ")[0]
    for command in ("estimate", "validate", "fit"):
        refused_without_files(capsys, case, command, spec, words=(name,))


def test_output_folder_inside_a_file(capsys, case):
    (case / "afile").write_text("not a folder")
    line = refused_without_files(
        capsys, case, "estimate", case / "spec.toml", "--out", case / "afile" / "res"
    )
    assert "afile" in line and "is a file, not a folder" in line


def test_output_folder_not_writable(capsys, case, monkeypatch):
    (case / "locked").mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the folder look read-only
        real = os.access
        monkeypatch.setattr(
            os, "access", lambda p, m, **k: False if Path(p).name == "locked" else real(p, m)
        )
    line = refused_without_files(
        capsys, case, "validate", case / "spec.toml", "--out", case / "locked" / "res"
    )
    assert "locked" in line and "not writable" in line


def test_output_folder_symlink_loop(capsys, case):
    os.symlink(case / "loop_b", case / "loop_a")
    os.symlink(case / "loop_a", case / "loop_b")
    for command in ("estimate", "validate"):
        line = refused_without_files(
            capsys, case, command, case / "spec.toml", "--out", case / "loop_a" / "res"
        )
        assert "symbolic link loop" in line


def test_simulate_out_is_a_file(capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    line = refused_without_files(
        capsys, tmp_path, "simulate", "ard", "--n", "20", "--out", tmp_path / "taken"
    )
    assert "taken" in line and "not a folder" in line


def test_report_on_a_truncated_posterior(capsys, case, fake_sampling):
    fake_sampling()
    code, _, err = run(capsys, "fit", case / "spec.toml", *FAST_FIT, "--out", case / "res")
    assert code == 0, err
    nc = case / "res" / "posterior.nc"
    nc.write_bytes(nc.read_bytes()[: nc.stat().st_size // 3])
    code, _, err = run(capsys, "report", case / "res")
    assert_refused(code, err, "posterior.nc", "not a readable fit")


def test_fit_out_under_a_file_fails_before_sampling(capsys, case, no_sampling):
    (case / "afile").write_text("x")
    refused_without_files(
        capsys,
        case,
        "fit",
        case / "spec.toml",
        *FAST_FIT,
        "--out",
        case / "afile" / "res",
        words=("afile", "not a folder"),
    )


# ---------------------------------------------------------------------------------------------
# inputs that were accepted silently
# ---------------------------------------------------------------------------------------------


def test_answer_of_1e12_refused_or_topcoded(capsys, case):
    survey = pd.read_csv(case / "survey.csv")
    survey.loc[6, "victims"] = 1e12
    survey.to_csv(case / "survey.csv", index=False)
    line = refused_without_files(
        capsys, case, "estimate", case / "spec.toml", words=("'victims'", "max_answer", "rows 7")
    )
    assert "1e+12" not in line and "1000000000000" not in line  # no answer quoted
    # an answer larger than the known group itself
    survey.loc[6, "victims"] = 0
    survey.loc[2, "known_01"] = 5000  # known_01 has 1,000 people
    survey.to_csv(case / "survey.csv", index=False)
    refused_without_files(
        capsys, case, "estimate", case / "spec.toml", words=("'known_01'", "known group", "rows 3")
    )
    # top-coded where the spec asks: accepted, and the cap is logged
    spec = add_to_spec(case, "[preprocess]\ntopcode = {known = 30}\n")
    code, _, err = run(capsys, "estimate", spec, "--out", case / "est")
    assert code == 0, err
    log = pd.read_csv(case / "est" / "preprocess_log.csv")
    assert log.query("rule == 'topcode' and group == 'known_01'")["n_changed"].item() == 1


def _parquet_case(case: Path, column, dtype_name: str) -> Path:
    survey = pd.read_csv(case / "survey.csv")
    survey["victims"] = column(len(survey))
    survey.to_parquet(case / "survey.parquet", index=False)
    assert dtype_name in str(pd.read_parquet(case / "survey.parquet")["victims"].dtype)
    spec = case / "spec.toml"
    spec.write_text(spec.read_text().replace('"survey.csv"', '"survey.parquet"'))
    return spec


def test_parquet_datetime_column(capsys, case):
    spec = _parquet_case(
        case, lambda n: pd.date_range("2024-01-01", periods=n, freq="D"), "datetime"
    )
    refused_without_files(capsys, case, "estimate", spec, words=("'victims'", "dates or times"))


def test_bool_column(capsys, case):
    spec = _parquet_case(case, lambda n: np.arange(n) % 2 == 0, "bool")
    refused_without_files(capsys, case, "estimate", spec, words=("'victims'", "true/false"))


def test_duplicated_column_name(capsys, case):
    lines = (case / "survey.csv").read_text().splitlines()
    header = lines[0].split(",")
    header[header.index("known_05")] = "known_02"  # two columns named known_02
    lines[0] = ",".join(header)
    (case / "survey.csv").write_text("\n".join(lines) + "\n")
    refused_without_files(
        capsys, case, "estimate", case / "spec.toml", words=("'known_02'", "more than once")
    )


def test_unknown_prior_name_under_estimate(capsys, case):
    spec = add_to_spec(case, "[priors.tua]\nvictims = 0.5\n")
    refused_without_files(capsys, case, "estimate", spec, words=("tua", "did you mean 'tau'"))


def test_model_name_typo_under_estimate(capsys, case):
    spec = set_model(case, "degre")
    refused_without_files(
        capsys, case, "estimate", spec, words=("'degre'", "not a model", "did you mean 'degree'")
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "true"])
def test_threshold_not_finite(capsys, case, value):
    spec = add_to_spec(case, f"[diagnostics]\nmax_r_hat = {value}\n")
    refused_without_files(capsys, case, "estimate", spec, words=("max_r_hat",))


def test_fixed_transmission_rate_above_one_in_a_sweep_grid(capsys, case):
    spec = set_model(case, "transmission")
    (case / "grid.toml").write_text('[grid]\n"priors.tau.victims" = [0.5, 1.5]\n')
    line = refused_without_files(capsys, case, "sweep", spec, case / "grid.toml")
    assert "1.5" in line and "tau" in line and "(0, 1]" in line


def test_sweep_with_zero_workers_leaves_nothing(capsys, case):
    (case / "grid.toml").write_text('[grid]\n"preprocess.topcode" = [20, 30]\n')
    spec = set_model(case, "killworth")
    line = refused_without_files(
        capsys, case, "sweep", spec, case / "grid.toml", "--workers", "0", "--out", case / "sw"
    )
    assert "--workers" in line
    from bayes_nsum.errors import BayesNsumError
    from bayes_nsum.sweep import load_sweep, run_sweep

    plan = load_sweep(case / "grid.toml", spec)
    with pytest.raises(BayesNsumError, match="workers"):
        run_sweep(plan, case / "sw2", workers=0)
    assert not (case / "sw2").exists()


def test_ctrl_c_during_sampling_exits_130_and_keeps_the_previous_results(capsys, case, monkeypatch):
    monkeypatch.setattr(bayes_nsum.fit, "sample", fake_sampler())
    spec = case / "spec.toml"
    code, _, err = run(capsys, "fit", spec, *FAST_FIT, "--out", case / "res")
    assert code == 0, err
    before = tree_of(case / "res")
    inner = fake_sampler(seed=5)

    def swallowing(model, settings, timings=None):
        try:  # as nutpie does: the interrupt is caught and sampling "completes"
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return inner(model, settings, timings)

    monkeypatch.setattr(bayes_nsum.fit, "sample", swallowing)
    code, _, err = run(capsys, "fit", spec, *FAST_FIT, "--out", case / "res")
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert tree_of(case / "res") == before
    # Ctrl-C while the results are being written: the same
    monkeypatch.setattr(bayes_nsum.fit, "sample", fake_sampler(seed=6))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bayes_nsum.analysis.write_csv", interrupted)
    code, _, err = run(capsys, "fit", spec, *FAST_FIT, "--out", case / "res")
    assert code == 130
    assert tree_of(case / "res") == before
    assert not [p for p in case.rglob("*") if "partial" in p.name]


def test_failed_write_after_sampling_keeps_the_posterior(capsys, case, monkeypatch):
    monkeypatch.setattr(bayes_nsum.fit, "sample", fake_sampler())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bayes_nsum.analysis.write_csv", disk_full)
    code, _, err = run(capsys, "fit", case / "spec.toml", *FAST_FIT, "--out", case / "res")
    line = assert_refused(code, err, "No space left on device", "posterior is kept in")
    kept = Path(line.split("posterior is kept in ")[1])
    assert kept.name == "posterior.nc" and kept.is_file()
    from bayes_nsum.result import load_result

    assert "posterior" in load_result(kept.parent).tree.children
    assert not (case / "res").exists()
    # when even posterior.nc cannot be written there, a copy goes to the temporary folder
    from bayes_nsum.result import NSUMResult

    real = NSUMResult.save_posterior
    calls = []

    def first_fails(self, path, converged=None):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(self, path, converged)

    monkeypatch.setattr(NSUMResult, "save_posterior", first_fails)
    monkeypatch.setattr("bayes_nsum.io.tempfile.tempdir", str(case / "tmp"))
    (case / "tmp").mkdir()
    monkeypatch.setattr("bayes_nsum.analysis.write_csv", disk_full)
    code, _, err = run(capsys, "fit", case / "spec.toml", *FAST_FIT, "--out", case / "res2")
    line = assert_refused(code, err, "posterior is kept in")
    assert Path(line.split("posterior is kept in ")[1]).is_file()


# ---------------------------------------------------------------------------------------------
# disclosure control
# ---------------------------------------------------------------------------------------------


def _files_with_ids(folder: Path) -> list[str]:
    """Files under ``folder`` whose bytes hold a respondent id of the simulated survey (an id
    standing alone: not inside the base64 text of an embedded image)."""
    alone = re.compile(rb"(?<![A-Za-z0-9+/])R000\d\d(?![A-Za-z0-9+/=])")
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and alone.search(p.read_bytes())
    ]


def test_default_fit_writes_no_respondent_id_or_table(capsys, case, fake_sampling):
    fake_sampling()
    add_to_spec(case, "[preprocess]\ntopcode = {known = 3}\n")  # some answers change
    code, _, err = run(capsys, "fit", case / "spec.toml", *FAST_FIT, "--out", case / "res")
    assert code == 0, err
    res = case / "res"
    assert _files_with_ids(res) == []
    names = {p.name for p in res.rglob("*")}
    assert not names & {"degrees.csv", "preprocess_changes.csv", "restricted"}
    assert {"degrees_summary.csv", "preprocess_log.csv", "report.html"} <= names
    report = (res / "report.html").read_text()
    assert "Respondent-by-respondent" not in report
    # opting in: respondent-level tables in restricted/, nowhere else
    spec = case / "spec.toml"
    spec.write_text(spec.read_text().replace("[output]", "[output]\nrespondent_level = true"))
    code, _, err = run(capsys, "fit", spec, *FAST_FIT, "--out", case / "res")
    assert code == 0, err
    restricted = res / "restricted"
    assert sorted(p.name for p in restricted.iterdir()) == [
        "degrees.csv",
        "preprocess_changes.csv",
    ]
    assert sorted(_files_with_ids(res)) == [
        "restricted/degrees.csv",
        "restricted/preprocess_changes.csv",
    ]
    changes = pd.read_csv(restricted / "preprocess_changes.csv", dtype=str)
    assert list(changes.columns[:4]) == ["rule", "group", "respondent", "id"]
    degrees = pd.read_csv(restricted / "degrees.csv", dtype={"id": str})
    assert degrees["id"].str.match(r"R\d{5}").all() and len(degrees) == 50
    assert "restricted/" in (res / "report.html").read_text()
    # and opting out again removes them
    spec.write_text(spec.read_text().replace("respondent_level = true", ""))
    code, _, err = run(capsys, "fit", spec, *FAST_FIT, "--out", case / "res")
    assert code == 0, err
    assert not restricted.exists() and _files_with_ids(res) == []


def test_sweep_scenario_folders_hold_no_respondent_id(case, fake_sampling):
    from bayes_nsum.sweep import SyncExecutor, load_sweep, run_sweep

    fake_sampling()
    spec = add_to_spec(case, "[preprocess]\ntopcode = {known = 3}\n")
    spec.write_text(
        spec.read_text().replace("[model]", "[sampler]\ndraws = 20\nchains = 2\n\n[model]")
    )
    plan = load_sweep({"grid": {"model.name": ["killworth", "degree"]}}, spec)
    res = run_sweep(plan, case / "sweep", executor=SyncExecutor())
    assert res.n_complete == 2
    assert _files_with_ids(case / "sweep") == []
    names = {p.name for p in (case / "sweep").rglob("*")}
    assert not names & {"degrees.csv", "preprocess_changes.csv", "restricted"}
    assert "preprocess_log.csv" in names and "posterior.nc" in names


def test_error_messages_name_rows_not_ids_nor_answers(capsys, case):
    survey = pd.read_csv(case / "survey.csv")
    cases = [
        ("known_03", "many", "text instead of a number"),
        ("known_03", 2.5, "non-integer"),
        ("known_03", -7, "negative"),
        ("weight", -3.25, "weight column"),
    ]
    for column, value, words in cases:
        bad = survey.astype({column: object}).copy()
        bad.loc[8, column] = value
        bad.to_csv(case / "survey.csv", index=False)
        spec = case / "spec.toml"
        if column == "weight" and "weight =" not in spec.read_text():
            spec.write_text(spec.read_text().replace("[data]", '[data]\nweight = "weight"'))
        line = refused_without_files(capsys, case, "estimate", spec, words=(words, "rows 9"))
        assert survey.loc[8, "id"] not in line and str(value) not in line
    dup = survey.copy()
    dup.loc[8, "id"] = dup.loc[2, "id"]
    dup.to_csv(case / "survey.csv", index=False)
    line = refused_without_files(
        capsys, case, "estimate", case / "spec.toml", words=("not unique", "rows 3, 9")
    )
    assert str(dup.loc[2, "id"]) not in line


@pytest.mark.filterwarnings("ignore:bootstrap estimates undefined")
def test_areas_with_few_respondents_are_suppressed_and_reported(capsys, tmp_path):
    # an area with one respondent: its estimate is that respondent's answers, scaled
    sim = simulate_pooled(n_areas=3, respondents_per_area=[25, 25, 1], seed=3)
    paths = sim.write(tmp_path / "areas")
    code, _, err = run(capsys, "estimate", paths["spec"], "--out", tmp_path / "est")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "est" / "estimates.csv", keep_default_na=False)
    small = table[table["area"] == "A003"]
    assert len(small) and small["suppressed"].astype(str).eq("True").all()
    assert small["estimate"].eq("").all() and small["lower"].eq("").all()
    big = table[table["area"].isin(["A001", "A002"])]
    assert big["suppressed"].astype(str).eq("False").all()
    assert pd.to_numeric(big["estimate"]).notna().all()
    national = table[table["area"] == ""]
    assert pd.to_numeric(national["estimate"]).notna().all()

    # the report says which areas were suppressed and shows none of their numbers
    from bayes_nsum.report import write_report
    from fakefit import make_tree, maltiel_posterior, model_of, simulate, write_results

    rng = np.random.default_rng(1)
    y = simulate(rng, 60)
    tree, prov = make_tree(maltiel_posterior(rng), model_of("degree", y))
    d = write_results(tmp_path / "res", tree, prov, areas=True)
    summary = pd.read_csv(d / "summary.csv", keep_default_na=False)
    summary["suppressed"] = summary["area"].eq("west")
    summary.loc[summary["suppressed"], ["estimate", "mean", "lower", "upper"]] = np.nan
    summary.to_csv(d / "summary.csv", index=False)
    html = write_report(d).read_text()
    assert "Suppressed: 1 area(s) with fewer than 10 respondents" in html and "west" in html
    assert html.count("west") == 1  # named once, in the note; no row, no figure label


def test_suppress_small_areas_keeps_national_rows_and_areas_without_respondents():
    from bayes_nsum.disclosure import suppress_small_areas

    table = pd.DataFrame(
        {
            "area": ["", "one", "many", "none"],
            "group": "h",
            "estimate": [10.0, 1.0, 2.0, 3.0],
            "lower": [9.0, 1.0, 1.0, 1.0],
            "upper": [11.0, 1.0, 3.0, 9.0],
        }
    )
    out = suppress_small_areas(table, {"one": 1, "many": 10}, least=10)
    assert out["suppressed"].tolist() == [False, True, False, False]
    assert out["estimate"].isna().tolist() == [False, True, False, False]
    assert out["lower"].isna().sum() == 1 and table["estimate"].notna().all()  # a copy
    national = table[table["area"] == ""]
    assert suppress_small_areas(national, {}, 10) is national  # no area rows: unchanged
    assert not suppress_small_areas(table, {"one": 1}, least=1)["suppressed"].any()


# ---------------------------------------------------------------------------------------------
# the lists the checks rely on
# ---------------------------------------------------------------------------------------------


def test_model_names_match_the_models():
    from bayes_nsum.config import CLASSICAL_MODELS, MODEL_NAMES
    from bayes_nsum.estimators import MODELS

    assert set(MODEL_NAMES) == set(MODELS) | set(CLASSICAL_MODELS)


def test_every_parameter_of_every_model_has_a_support():
    from bayes_nsum.estimators import MODELS
    from bayes_nsum.priors import PARAMETERS, Prior, check_support
    from fakefit import GROUPS, ard_of, simulate

    y = simulate(np.random.default_rng(0), 40)
    area = ["a" if i % 2 else "b" for i in range(40)]
    table = pd.DataFrame(
        {"population": [5e5, 5e5], **{g: [1e4, 1e4] for g in GROUPS}},
        index=pd.Index(["a", "b"], name="area"),
    )
    flags = [{}, *({k: True} for k in ("recall_calibration", "zero_inflation", "correlated"))]
    flags += [{"transmission_by_area": True}, {"barrier_dispersion": "shared"}]
    for name, cls in MODELS.items():
        ard = ard_of(y, area=area, area_table=table) if cls.requires_areas else ard_of(y)
        if cls.uses_hidden_sample or cls.uses_covariates:  # a hidden sample, covariates
            ard = cls.calibration_data(ard)
        for opts in flags:
            opts = {k: v for k, v in opts.items() if k in cls.options_used}
            tau = {"tau": 0.6} if opts.get("transmission_by_area") else None
            model = cls(ard, priors=tau, **opts)
            missing = set(model.param_groups()) - set(PARAMETERS)
            assert not missing, (name, opts, missing)
            for param, value in model.priors.items():  # the defaults respect the supports
                for p in value.values() if isinstance(value, dict) else [value]:
                    check_support(param, p, f"{name} default")
    with pytest.raises(Exception, match=r"impossible: tau must be in \(0, 1\]"):
        check_support("tau", Prior.fixed(1.5), "[priors] tau")
    with pytest.raises(Exception, match="delta must be > 0"):
        check_support("delta", Prior.fixed(0.0), "[priors] delta")
    with pytest.raises(Exception, match="zero_prob"):
        check_support("zero_prob", Prior("Normal", {"mu": 0.2, "sigma": 0.1}), "[priors]")


def test_nothing_swallows_ctrl_c():
    """No bare ``except:`` or ``except BaseException`` in the package: both would catch
    KeyboardInterrupt."""
    offenders = [
        f"{p.relative_to(SRC)}:{i}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.match(r"\s*except\s*(BaseException\b.*)?:", line)
    ]
    assert not offenders, offenders


def test_every_named_output_is_documented():
    from bayes_nsum.analysis import ESTIMATE_OUTPUTS, FIT_OUTPUTS

    page = (SRC.parents[1] / "docs" / "guide" / "data-protection.md").read_text()
    for name in {*FIT_OUTPUTS, *ESTIMATE_OUTPUTS}:
        assert f"`{name}" in page, name
