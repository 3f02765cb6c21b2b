"""Known-group sizes from a household roster (bayes_nsum.roster) and what depends on them:
the area table, the counts on the ARD, the log, the imputation's household size from an
area-table column, and the raw-survey example's path from raw files to the area table."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.analysis import build_model, prepare
from bayes_nsum.cli import EXIT_BAD_INPUT, main
from bayes_nsum.errors import DataError, SpecError
from bayes_nsum.roster import check_roster, derive, roster_log_table

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "models" / "scale_of_harm_raw"

MEMBERS = pd.DataFrame(
    {
        "muni": ["a"] * 6 + ["b"] * 4,
        "hh": ["1", "1", "1", "2", "2", "2", "3", "3", "4", "4"],
        "age": [40, 8, 1, 35, 70, 15, 30, 4, 50, 16],
        "job": [
            "teacher",
            None,
            None,
            "driver",
            "teacher",
            "student",
            "nurse",
            None,
            "",
            "student",
        ],
        "w": [2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0],
    }
)
AREAS = pd.DataFrame(
    {"population": [1000.0, 500.0, 200.0]}, index=pd.Index(["a", "b", "c"], name="area")
)
CATEGORIES = {
    "teachers": {"column": "job", "equals": "teacher"},
    "students": {"column": "job", "equals": ["student"]},
    "children": {"column": "age", "max": 17},
    "adults": {"column": "age", "min": 18},
}


def config(**extra):
    section = {"area": "muni", "household": "hh", "categories": CATEGORIES, **extra}
    return check_roster(section, "area")


def test_member_layout_share_times_population():
    r = derive(MEMBERS, config(household_size="hh_size", smoothing=0), AREAS)
    at = r.area_table
    # area a: 6 members, 2 teachers, 3 children; area b: 4 members, 0 teachers, 2 children
    assert at.loc["a", "teachers"] == pytest.approx(2 / 6 * 1000)
    assert at.loc["a", "children"] == pytest.approx(3 / 6 * 1000)
    assert at.loc["b", "children"] == pytest.approx(2 / 4 * 500)
    assert at.loc["b", "teachers"] == 0
    # area c has no roster: the national share (2 teachers of 10 members)
    assert at.loc["c", "teachers"] == pytest.approx(0.2 * 200)
    assert list(r.log.loc[r.log.area == "c", "source"].unique()) == [
        "national roster share (no rostered member in the area)"
    ]
    assert at.loc["a", "hh_size"] == pytest.approx(3.0) and at.loc["b", "hh_size"] == 2.0
    # counts exposed for a measurement model: unweighted, every area, 0 without roster
    c = r.counts
    assert list(c.index) == ["a", "b", "c"]
    assert list(c.columns) == ["households", "members", *CATEGORIES]
    assert c.loc["a"].tolist() == [2, 6, 2, 1, 3, 3]
    assert c.loc["c"].tolist() == [0, 0, 0, 0, 0, 0]
    # every derived value is in the log, with the counts behind it
    row = r.log[(r.log.area == "a") & (r.log.column == "teachers")].iloc[0]
    assert (row.members, row.members_in_group, row.value) == (6, 2, pytest.approx(2000 / 6))
    assert r.settings["areas_national_share"] == ["c"]


def test_weights_smoothing_and_population_from_weights():
    r = derive(MEMBERS, config(weight="w"), None)
    # populations are the sums of the expansion factors
    assert r.area_table.loc["a", "population"] == 9.0 and r.area_table.loc["b", "population"] == 8.0
    # weighted share: of the weight 8 in area b, the student (aged 16) carries 3
    assert r.area_table.loc["b", "students"] == pytest.approx(3 / 8 * 8)
    smooth = derive(MEMBERS, config(smoothing=4), AREAS)
    national = 2 / 10
    assert smooth.area_table.loc["b", "teachers"] == pytest.approx((0 + 4 * national) / 8 * 500)
    with pytest.raises(SpecError, match="area_table"):
        derive(MEMBERS, config(), None)


def test_household_layout():
    hh = pd.DataFrame(
        {"muni": ["a", "a", "b"], "size": [3, 2, 4], "n_teach": [1, 0, 2], "n_kids": [2, 1, 0]}
    )
    cfg = check_roster(
        {
            "layout": "household",
            "area": "muni",
            "members": "size",
            "household_size": "hh_size",
            "categories": {"teachers": "n_teach", "children": {"column": "n_kids"}},
        },
        "area",
    )
    r = derive(hh, cfg, AREAS.loc[["a", "b"]])
    assert r.area_table.loc["a", "teachers"] == pytest.approx(1 / 5 * 1000)
    assert r.area_table.loc["b", "teachers"] == pytest.approx(2 / 4 * 500)
    assert r.area_table.loc["a", "hh_size"] == 2.5
    assert r.counts.loc["a", ["households", "members", "teachers"]].tolist() == [2, 5, 1]
    bad = hh.assign(n_teach=[4, 0, 2])
    with pytest.raises(DataError, match="n_teach.*more members than the household"):
        derive(bad, cfg, AREAS)


@pytest.mark.parametrize(
    "section, words",
    [
        ({"categories": {}}, "categories"),
        ({"layout": "rows", "categories": CATEGORIES}, "layout"),
        ({"categories": {"t": {"column": "job", "equals": "x", "min": 1}}}, "not both"),
        ({"categories": {"t": {"column": "age", "min": 5, "max": 1}}}, "larger than"),
        ({"categories": {"t": {"col": "age"}}}, "column"),
        ({"categories": CATEGORIES, "smoothing": -1}, "smoothing"),
        ({"categories": CATEGORIES, "household_size": "hh"}, "household"),
        ({"layout": "household", "categories": {"t": "n"}}, "members"),
        ({"categories": CATEGORIES, "colour": 1}, "unknown key 'colour'"),
    ],
)
def test_bad_roster_sections_name_the_key(section, words):
    with pytest.raises(SpecError, match=words):
        check_roster(section, "area")


def test_bad_roster_data_names_column_and_rows():
    with pytest.raises(DataError, match=r"column 'age'.*empty in rows 2"):
        derive(MEMBERS.assign(age=[40, None, 1, 35, 70, 15, 30, 4, 50, 16]), config(), AREAS)
    with pytest.raises(DataError, match="column 'job2'"):
        derive(MEMBERS, check_roster({"area": "muni", "categories": {"t": "job2"}}, "x"), AREAS)
    with pytest.raises(DataError, match="missing from the area table"):
        derive(MEMBERS, config(), AREAS.loc[["a"]])
    with pytest.raises(DataError, match="already has a column 'teachers'"):
        derive(MEMBERS, config(), AREAS.assign(teachers=1.0))
    flags = MEMBERS.assign(kid=[0, 1, 1, 0, 0, 2, 0, 1, 0, 0])
    with pytest.raises(DataError, match=r"'kid'.*0/1.*rows 6"):
        derive(flags, check_roster({"area": "muni", "categories": {"k": "kid"}}, "x"), AREAS)


def test_roster_log_suppresses_small_areas():
    r = derive(MEMBERS, config(), AREAS)
    log = roster_log_table(r, least=3)  # both areas have 2 households
    rostered = log[log.area.isin(["a", "b"])]
    assert rostered.suppressed.all() and rostered[["members", "value", "share"]].isna().all().all()
    assert not log[log.area == "c"].suppressed.any()  # no roster: the national share, kept


# -- the raw-survey example: raw files -> area table -> ARD --------------------------------


@pytest.fixture(scope="module")
def raw_prep():
    return prepare(RAW / "spec.toml")


def test_raw_example_files_are_what_the_script_writes(tmp_path):
    sys.path.insert(0, str(RAW))
    try:
        import make_data
    finally:
        sys.path.remove(str(RAW))
    make_data.write(tmp_path)
    for name in (
        "municipalities.csv",
        "roster.csv",
        "survey.csv",
        "truth.csv",
        "municipalities.geojson",
    ):
        assert (tmp_path / name).read_bytes() == (RAW / name).read_bytes(), name


def test_raw_example_roster_to_area_table(raw_prep):
    ard = raw_prep.ard
    at = ard.area_table
    assert len(ard.known) == 14 and ard.hidden == ("victims", "offenders")
    assert len(at) == 60 and {"population", "children", "adults", "household_size"} <= set(at)
    assert (at[list(ard.known)] > 0).all().all()  # smoothing: no known group of size 0
    assert np.allclose(at["children"] + at["adults"], at["population"])
    counts = ard.roster_counts
    assert list(counts.index) == ard.areas
    assert {"households", "members", *ard.known, "children", "adults"} <= set(counts.columns)
    no_resp = sorted(set(ard.areas) - set(ard.area))
    assert len(no_resp) == 6 and (counts.loc[no_resp, "members"] == 0).all()
    # roster estimates are close to the truth where the roster is large
    truth = pd.read_csv(RAW / "truth.csv", keep_default_na=False)
    kids = truth[(truth.group == "children") & (truth.quantity == "size") & (truth.area != "")]
    kids = kids.set_index("area")["value"]
    big = counts.index[counts["members"] >= 200]
    rel = (at.loc[big, "children"] / kids.loc[big] - 1).abs()
    assert len(big) >= 10 and rel.median() < 0.1
    # the pre-processing used the roster's household sizes
    steps = {s["rule"]: s for s in raw_prep.log.to_dict()["steps"]}
    imp = steps["impute"]["settings"]
    assert imp["household_size_column"] == "household_size"
    assert imp["household_size"]["M001"] == pytest.approx(at.loc["M001", "household_size"])
    assert {"combine", "impute", "topcode"} <= set(steps)
    assert steps["topcode"]["settings"]["threshold"] == "p95"


def test_raw_example_builds_and_keeps_roster_counts(raw_prep):
    model = build_model(raw_prep)
    ds = model.data.constant_dataset()
    assert ds["roster_count"].dims == ("area", "roster_column")
    back = type(model.data).from_datasets(
        xr_observed(model.data), ds, list(model.data.known), list(model.data.hidden)
    )
    pd.testing.assert_frame_equal(back.roster_counts, model.data.roster_counts, check_dtype=False)


def xr_observed(ard):
    import xarray as xr

    y = ard.counts.to_numpy(float)
    return xr.Dataset(
        {"y": (("respondent", "group"), y)},
        coords={"respondent": np.arange(ard.n), "group": ard.groups},
    )


def test_household_size_column_errors(tmp_path):
    spec = (RAW / "spec.toml").read_text()
    for name in ("survey.csv", "roster.csv", "municipalities.csv", "municipalities.geojson"):
        shutil.copy(RAW / name, tmp_path / name)
    bad = tmp_path / "spec.toml"
    bad.write_text(
        spec.replace('household_size = "household_size"  # the', 'household_size = "hh"  # the')
    )
    with pytest.raises(DataError, match="no column 'hh'"):
        prepare(bad)


def test_roster_cli_errors_are_one_line(tmp_path, capsys):
    for name in ("survey.csv", "roster.csv", "municipalities.csv", "municipalities.geojson"):
        shutil.copy(RAW / name, tmp_path / name)
    spec = (RAW / "spec.toml").read_text()
    (tmp_path / "spec.toml").write_text(
        spec.replace('equals = "doctor"', 'equals = "doctor", max = 3')
    )
    code = main(["estimate", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and len(err.strip().splitlines()) == 1
    assert "[roster.categories] doctors" in err
    # without smoothing, a known group with no rostered member in an area is refused
    (tmp_path / "spec.toml").write_text(spec.replace("smoothing = 10", "smoothing = 0"))
    code = main(["estimate", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "no rostered member of known group" in err
    assert "[roster] smoothing" in err and not (tmp_path / "o").exists()


def test_estimate_writes_roster_log_without_respondent_rows(tmp_path, capsys):
    for name in ("survey.csv", "roster.csv", "municipalities.csv", "municipalities.geojson"):
        shutil.copy(RAW / name, tmp_path / name)
    spec = (RAW / "spec.toml").read_text().replace('name = "pooled"', 'name = "killworth"')
    (tmp_path / "spec.toml").write_text(spec)
    code = main(["estimate", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    log = pd.read_csv(tmp_path / "o" / "roster_log.csv", keep_default_na=False)
    assert set(log.columns) >= {"area", "column", "members", "members_in_group", "value"}
    assert "household_id" not in log.columns and not log["area"].str.startswith("H").any()
    small = log[log.suppressed.astype(str) == "True"]
    assert len(small) and (small["value"] == "").all()  # the 5-respondent municipalities
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert prov["roster"]["layout"] == "member" and prov["roster"]["smoothing"] == 10


@pytest.mark.slow
def test_raw_example_end_to_end(tmp_path, capsys):
    """From the raw files to the report with maps in one command (small sampler settings)."""
    out = tmp_path / "results"
    argv = ["fit", RAW / "spec.toml", "--out", out, "--quiet", "--allow-unconverged"]
    code = main([str(a) for a in [*argv, "--draws", "200", "--tune", "300", "--chains", "2"]])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "victims:" in printed and "1 in" in printed and "Per area (60 areas" in printed
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    prev = summary[(summary.quantity == "prevalence") & (summary.group == "victims")]
    assert prev.area.nunique() == 61  # 60 municipalities and the national row
    assert set(summary.loc[summary.quantity == "one_in_x", "denominator"]) == {"children", "adults"}
    truth = pd.read_csv(RAW / "truth.csv", keep_default_na=False)
    true = truth[(truth.area == "") & (truth.quantity == "prevalence")].set_index("group")["value"]
    nat = prev[prev.area == ""].iloc[0]
    assert 0.5 < float(nat.estimate) / true["victims"] < 2
    html = (out / "report.html").read_text()
    assert "Known-group sizes from the household roster" in html and "1 in" in html
    assert (out / "roster_log.csv").is_file() and (out / "preprocess_log.csv").is_file()
    try:
        import geopandas  # noqa: F401
    except ImportError:
        assert "No maps" in html
    else:
        assert len(list((out / "maps").glob("*.png"))) == 4
        assert "6 area(s) without respondents" in html


def test_roster_shares_move_the_degrees_with_mu(raw_prep):
    """With known_shares = "roster" the log-degrees are non-centred (log_degree = mu + sigma z),
    so that mu alone moves along the degree x share ridge; with exact shares they stay a free
    centred variable."""
    import pytensor

    from bayes_nsum.estimators.pooled import PooledModel

    model = PooledModel(raw_prep.ard, known_shares="roster").model
    free = [v.name for v in model.free_RVs]
    assert "log_degree_z" in free and "log_degree" not in free
    point = model.initial_point()
    rng = np.random.default_rng(2)
    point["mu"], point["sigma_log__"] = np.array(4.2), np.array(np.log(0.7))
    point["log_degree_z"] = rng.normal(size=point["log_degree_z"].shape)
    inputs = [model.rvs_to_values[model[n]] for n in ("mu", "sigma", "log_degree_z")]
    out = model.replace_rvs_by_values([model["log_degree"]])[0]
    f = pytensor.function(inputs, out)
    got = f(point["mu"], point["sigma_log__"], point["log_degree_z"])
    np.testing.assert_allclose(got, 4.2 + 0.7 * point["log_degree_z"], rtol=1e-12)
    assert "log_degree" in [v.name for v in PooledModel(raw_prep.ard).model.free_RVs]
