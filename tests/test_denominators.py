"""Say what the number is (issue 12): every summary row and headline names its denominator
population, the per-area table shows "1 in X", and the report says whether sizes are visible
counts or corrected for visibility.

Fast tier: fake fits (``fakefit.py``) and hand-made draws; nothing samples.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum.report.page import (
    area_table,
    denominator_words,
    headline,
    percent_headline,
    visibility_text,
)
from bayes_nsum.result import (
    SUMMARY_COLUMNS,
    NSUMResult,
    denominator_label,
    denominator_labels,
    load_result,
    summarize_posterior,
)
from fakefit import make_tree, maltiel_posterior, model_of, simulate, write_results

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def degree_fit():
    rng = np.random.default_rng(5)
    y = simulate(rng, 300)
    return y, maltiel_posterior(rng, draws=100)


# ---------------------------------------------------------------------------------------------
# summary.csv: the denominator column
# ---------------------------------------------------------------------------------------------


def test_denominator_labels():
    assert denominator_label(None) == "frame population"
    assert denominator_label("children") == "children"
    assert denominator_label(2_600_000) == "denominator 2,600,000"
    assert denominator_labels({"v": "children", "o": 1e6}, ["v", "o", "x"]) == {
        "v": "children",
        "o": "denominator 1,000,000",
        "x": "frame population",
    }
    assert SUMMARY_COLUMNS[-1] == "denominator"


def _area_draws(rng, areas=("A1", "A2", "A3")) -> xr.Dataset:
    """Draws of a two-group, three-area fit with every derived quantity and a parameter."""
    shape = (2, 40)
    size_area = rng.uniform(100, 300, (*shape, 2, len(areas)))
    den_area = np.array([[10_000.0, 20_000.0, 30_000.0], [50_000.0, 60_000.0, 70_000.0]])
    prev_area = size_area / den_area
    size = size_area.sum(-1)
    prev = size / den_area.sum(-1)
    dims, adims = ("chain", "draw", "hidden"), ("chain", "draw", "hidden", "area")
    return xr.Dataset(
        {
            "size": (dims, size),
            "prevalence": (dims, prev),
            "one_in_x": (dims, 1 / prev),
            "size_area": (adims, size_area),
            "prevalence_area": (adims, prev_area),
            "one_in_x_area": (adims, 1 / prev_area),
            "mu": (("chain", "draw"), rng.normal(5, 0.1, shape)),
        },
        coords={"hidden": ["victims", "offenders"], "area": list(areas)},
    )


def test_summary_rows_name_their_denominator():
    post = _area_draws(np.random.default_rng(1))
    labels = {"victims": "children", "offenders": "frame population"}
    s = summarize_posterior(post, denominators=labels)
    assert list(s.columns) == SUMMARY_COLUMNS
    for q in ("size", "prevalence", "one_in_x"):
        for g, want in labels.items():
            rows = s[(s["quantity"] == q) & (s["group"] == g)]
            assert len(rows) == 4  # national + 3 areas
            assert (rows["denominator"] == want).all()
    assert (s.loc[s["quantity"] == "mu", "denominator"] == "").all()
    # without labels the column is there, empty
    assert (summarize_posterior(post)["denominator"] == "").all()


def test_result_summary_reads_denominators_from_model_or_tree(tmp_path, degree_fit):
    y, post = degree_fit
    model = model_of("degree", y)
    res = NSUMResult(tree=xr.DataTree.from_dict({"posterior": post}), model=model)
    s = res.summary()
    sizes = s[s["quantity"].isin(["size", "prevalence", "one_in_x"])]
    assert len(sizes) == 3 and (sizes["denominator"] == "frame population").all()
    assert (s.loc[s["quantity"] == "mu", "denominator"] == "").all()

    # a national number as the denominator: through the saved fit, without the model
    data = dataclasses.replace(model.data, denominators={"h1": 2_600_000})
    model2 = type(model)(data)
    tree, prov = make_tree(post, model2)
    NSUMResult(tree=tree, model=model2).save(tmp_path)
    written = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert list(written.columns) == [*SUMMARY_COLUMNS, "converged"]
    got = written.set_index("quantity").loc[["size", "prevalence", "one_in_x"], "denominator"]
    assert set(got) == {"denominator 2,600,000"}
    assert written.loc[written["quantity"] == "sigma", "denominator"].tolist() == [""]
    loaded = load_result(tmp_path)
    assert loaded.model is None
    assert loaded.denominators() == {"h1": "denominator 2,600,000"}
    assert set(loaded.summary().query("quantity == 'size'")["denominator"]) == {
        "denominator 2,600,000"
    }
    # a tree that does not record its data: left empty, not guessed
    assert NSUMResult(tree=xr.DataTree.from_dict({"posterior": post})).denominators() == {}


def test_pooled_example_denominators_are_area_table_columns():
    from bayes_nsum.analysis import build_model, prepare

    prep = prepare(ROOT / "models" / "scale_of_harm_example" / "spec.toml")
    model = build_model(prep)
    res = NSUMResult(tree=xr.DataTree(), model=model)
    assert res.denominators() == {"victims": "children", "offenders": "adults"}


# ---------------------------------------------------------------------------------------------
# headline words
# ---------------------------------------------------------------------------------------------

ROW = {"estimate": 34123.0, "lower": 28345.0, "upper": 40210.0, "interval_prob": 0.9}
PREV = {"estimate": 0.01081, "lower": 0.00931, "upper": 0.01254, "interval_prob": 0.9}


def test_headline_names_the_population():
    assert headline(ROW, 92.3, denominator="children").endswith("; about 1 in 92 children")
    assert headline(ROW, 312.4, denominator="frame population").endswith("about 1 in 310 people")
    assert headline(ROW, 4123.0, denominator="denominator 2,600,000").endswith(
        "about 1 in 4,100 of the denominator population (2,600,000)"
    )
    # the row's own denominator cell is used by default; no denominator: as before
    assert headline({**ROW, "denominator": "adult_women"}, 92.3).endswith("1 in 92 adult women")
    assert headline(ROW, 312.4) == "34,000 (90% CrI 28,000 to 40,000); about 1 in 310"
    assert headline({**ROW, "denominator": float("nan")}, 312.4).endswith("about 1 in 310")
    assert percent_headline(PREV, denominator="children") == (
        "1.08% of children (90% CrI 0.93% to 1.25%)"
    )
    assert percent_headline({**PREV, "denominator": "frame population"}).startswith(
        "1.08% of the frame population ("
    )
    assert denominator_words("") == ("", "")


def test_visibility_text_reads_the_tau_prior():
    hidden = ["victims", "offenders"]
    assert "visible to respondents" in visibility_text({}, hidden)
    assert "corrected" not in visibility_text({"mu": {"dist": "Normal"}}, hidden)
    fixed = {"tau": {"dist": "Fixed", "value": 1.0}}
    assert "visible to respondents" in visibility_text(fixed, hidden)
    beta = {"dist": "Beta", "alpha": 6, "beta": 4}
    one = visibility_text({"tau": {"victims": beta, "offenders": fixed["tau"]}}, hidden)
    assert "corrected for visibility" in one and "victims: Beta(alpha=6, beta=4)" in one
    assert "Sizes of offenders are of the population visible" in one
    both = visibility_text(
        {"tau": beta, "delta": {"victims": {"dist": "Fixed", "value": 0.8}}}, hidden
    )
    assert "Sizes of" not in both and "degree ratio delta" in both and "fixed at 0.8" in both


def test_area_table_shows_one_in_x():
    post = _area_draws(np.random.default_rng(2))
    s = summarize_posterior(post, denominators={"victims": "children"})
    rows = s[(s["area"] != "") & (s["group"] == "victims")]
    t = area_table(rows, "children")
    assert list(t["area"]) == ["A1", "A2", "A3"]
    assert {
        "size",
        "size lower",
        "size upper",
        "prevalence (interval)",
        "1 in X",
        "max r_hat",
    } <= set(t)
    assert all(v.count("%") == 3 for v in t["prevalence (interval)"])
    assert all(v.startswith("1 in ") and v.endswith(" children") for v in t["1 in X"])


# ---------------------------------------------------------------------------------------------
# the report and the fit command
# ---------------------------------------------------------------------------------------------


def _results(tmp_path: Path, degree_fit, summary: pd.DataFrame | None, tau=None) -> Path:
    y, post = degree_fit
    tree, prov = make_tree(post, model_of("degree", y))
    if tau is not None:
        prov["model"]["priors"]["tau"] = tau
    d = write_results(tmp_path / "res", tree, prov)
    if summary is not None:
        summary.to_csv(d / "summary.csv", index=False)
    return d


def test_report_headline_and_area_table_name_the_population(tmp_path, degree_fit):
    from bayes_nsum.report import write_report

    post = _area_draws(np.random.default_rng(3))
    labels = {"victims": "children", "offenders": "frame population"}
    summary = summarize_posterior(post, denominators=labels).assign(converged=True)
    d = _results(tmp_path, degree_fit, summary)
    text = write_report(d).read_text()
    headlines = [line for line in text.splitlines() if "class='headline'" in line]
    assert len(headlines) == 2
    victims = next(h for h in headlines if "<b>victims</b>" in h)
    assert " children; prevalence " in victims and "% of children (90% CrI" in victims
    offenders = next(h for h in headlines if "<b>offenders</b>" in h)
    assert " people; prevalence " in offenders and "of the frame population" in offenders
    # the per-area table: "1 in X" per area, naming the population
    assert text.count(" children</td>") >= 3 and "<th>1 in X</th>" in text
    # no transmission prior in the fit: the sizes are visible counts, said in words
    assert "visible to respondents" in text and "corrected for visibility" not in text


def test_report_of_older_folder_reads_denominators_from_the_fit(tmp_path, degree_fit):
    from bayes_nsum.report import write_report

    beta = {"h1": {"dist": "Beta", "alpha": 6, "beta": 4}}
    d = _results(tmp_path, degree_fit, None, tau=beta)
    s = pd.read_csv(d / "summary.csv", keep_default_na=False)
    s.drop(columns=["denominator"]).to_csv(d / "summary.csv", index=False)
    text = write_report(d).read_text()
    head = next(line for line in text.splitlines() if "class='headline'" in line)
    assert " people; prevalence " in head and "of the frame population" in head
    assert "corrected for visibility" in text and "h1: Beta(alpha=6, beta=4)" in text


def test_fit_command_names_the_denominator(capsys, fake_sampling, small_spec_path, tmp_path):
    from bayes_nsum.cli import main

    fake_sampling()
    argv = ["fit", str(small_spec_path), "--draws", "40", "--chains", "2", "--quiet"]
    code = main([*argv, "--no-report", "--allow-unconverged", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    table = out.split("\n\n")[0]
    assert "denominator" in table.splitlines()[0] and "frame population" in table
    for group in ("victims", "offenders"):
        line = next(x for x in out.splitlines() if x.startswith(f"{group}: "))
        assert " people; prevalence " in line and "of the frame population" in line
    summary = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert set(summary.loc[summary["quantity"] == "size", "denominator"]) == {"frame population"}
    assert json.loads((tmp_path / "provenance.json").read_text())["command"] == "fit"
