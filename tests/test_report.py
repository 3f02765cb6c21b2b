"""Headline rounding, the HTML report (it reads a results folder only), the compare command.

The fast tier never samples: fits are fake DataTrees (see ``fakefit.py``).
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

from bayes_nsum.checks.predictive import PPC_COLUMNS
from bayes_nsum.errors import BayesNsumError
from fakefit import (
    GROUPS,
    KNOWN,
    N,
    make_tree,
    maltiel_posterior,
    model_of,
    simulate,
    write_results,
)


@pytest.fixture(scope="module")
def degree_data():
    rng = np.random.default_rng(11)
    y = simulate(rng, 400)
    post = maltiel_posterior(rng)
    return y, post


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
    tree, prov = make_tree(post, model_of("degree", y), caps={"k5": 30.0})
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
    path = write_report(d)
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
    assert list(ppc.columns) == PPC_COLUMNS
    assert ppc.loc[ppc["group"] == "k5", "upper"].max() <= 30.0  # replicates top-coded
    before = {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.name != "report.html"}
    write_report(d)  # the report reads the folder: it computes and writes nothing else
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.name != "report.html"} == before


def test_report_loads_only_what_it_shows(tmp_path):
    """The report reads the posterior without per-respondent draws, the observed and constant
    data, and the attributes; nothing else of the file."""
    import xarray as xr

    from bayes_nsum.report.page import REPORT_GROUPS, load_tree

    rng = np.random.default_rng(1)
    sample = ("chain", "draw")
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {
                    "size": (sample, rng.random((2, 5))),
                    "log_degree": ((*sample, "respondent"), rng.random((2, 5, 3))),
                }
            ),
            "observed_data": xr.Dataset({"y": (("respondent", "group"), rng.random((3, 2)))}),
            "log_likelihood": xr.Dataset({"y": ((*sample, "respondent"), rng.random((2, 5, 3)))}),
        }
    )
    tree.attrs = {"model": "pooled", "bayes_nsum_version": "0"}
    tree.to_netcdf(tmp_path / "posterior.nc", engine="h5netcdf")
    full, part = load_tree(tmp_path), load_tree(tmp_path, REPORT_GROUPS)
    assert set(full.children) == {"posterior", "observed_data", "log_likelihood"}
    assert set(part.children) == {"posterior", "observed_data"}
    assert list(part["posterior"].data_vars) == ["size"]
    np.testing.assert_array_equal(part["posterior"]["size"], full["posterior"]["size"])
    np.testing.assert_array_equal(part["observed_data"]["y"], full["observed_data"]["y"])
    assert part.attrs == full.attrs == tree.attrs


def test_report_flags_failed_fit_and_unavailable_ppc(tmp_path, degree_data):
    from bayes_nsum.report import write_report

    y, post = degree_data
    tree, prov = make_tree(post, model_of("degree", y))
    d = write_results(tmp_path / "res", tree, prov, passed=False)
    (d / "ppc.csv").unlink()
    (d / "ppc_error.json").write_text(json.dumps({"error": "ValueError: no replicates"}))
    path = write_report(d)
    _check_html(path)
    text = path.read_text()
    assert "CONVERGENCE CHECKS FAILED" in text
    assert "class='banner'" in text
    assert "Posterior predictive checks not available" in text
    assert "no replicates" in text
    assert not (d / "ppc.csv").exists()


def test_report_errors_and_cli(tmp_path, degree_data, capsys):
    from bayes_nsum.cli import report as cli_report

    with pytest.raises(BayesNsumError, match="not found"):
        cli_report.run(argparse.Namespace(results_dir=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BayesNsumError, match="summary.csv"):
        cli_report.run(argparse.Namespace(results_dir=str(tmp_path / "empty")))
    y, post = degree_data
    tree, prov = make_tree(post, model_of("degree", y))
    d = write_results(tmp_path / "res", tree, prov)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_report.add_parser(sub)
    args = parser.parse_args(["report", str(d)])
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
    from bayes_nsum.analysis import prepare
    from bayes_nsum.cli import compare as cli_compare
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
        tree, prov = make_tree(post, model_of(model, y))
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
    wide = (out / "compare_wide.md").read_text()  # paper-ready: both models' sizes side by side
    assert "| h1 | size |" in wide and (out / "compare_wide.tex").is_file()
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
    from bayes_nsum.checks.consistency import IC_COLUMNS, bayesian_internal_consistency

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
    tree, prov = make_tree(post, model_of("degree", y))
    d = write_results(tmp_path / "res", tree, prov, areas=True)
    path = write_report(d)
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
