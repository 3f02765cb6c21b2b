"""Tests of bayes_nsum.preprocess: every rule on hand examples, the log, config errors."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.errors import DataError, SpecError
from bayes_nsum.preprocess import (
    PreprocessLog,
    combine_questions,
    handle_missing,
    impute_victims_offenders,
    preprocess,
    topcode,
)

NAN = float("nan")


@pytest.fixture
def survey() -> pd.DataFrame:
    idx = pd.Index(["r1", "r2", "r3", "r4", "r5"], name="id")
    return pd.DataFrame(
        {
            "a": [1.0, 40.0, 31.0, 30.0, NAN],
            "b": [0.0, 2.0, 50.0, 3.0, 4.0],
            "h": [0.0, 1.0, NAN, 35.0, 2.0],
            "area": ["x", "x", "y", "y", "y"],
        },
        index=idx,
    )


def _changes(log: PreprocessLog, rule: str) -> pd.DataFrame:
    frame = log.to_frame()
    return frame[frame["rule"] == rule]


def _summary_count(log: PreprocessLog, rule: str, group: str) -> int:
    s = log.summary()
    row = s[(s["rule"] == rule) & (s["group"] == group)]
    assert len(row) == 1, (rule, group, s)
    return int(row["n_changed"].iloc[0])


# ---------------------------------------------------------------------------------------------
# caller's frame, top-coding
# ---------------------------------------------------------------------------------------------


def test_callers_frame_unchanged(survey):
    before = survey.copy(deep=True)
    config = {
        "combine": {"c": {"sources": ["a", "b"], "how": "max"}},
        "missing": "zero",
        "topcode": {"known": 30, "hidden": 10},
    }
    out, _ = preprocess(survey, ["a", "b"], ["h"], config)
    pd.testing.assert_frame_equal(survey, before)
    assert "c" not in survey.columns and "c" in out.columns
    # each rule on its own also copies
    for fn in (
        lambda d: topcode(d, ["a"], 5),
        lambda d: handle_missing(d, ["a", "h"], "zero"),
        lambda d: handle_missing(d, ["a", "h"], "drop"),
        lambda d: combine_questions(d, "a", ["b", "h"], "sum"),
        lambda d: impute_victims_offenders(d, "h", "b", 2.0, 4.0),
    ):
        fn(survey)
        pd.testing.assert_frame_equal(survey, before)


def test_fixed_topcode_counts_cells_above_cap(survey):
    log = PreprocessLog()
    out = topcode(survey, ["a", "b", "h"], 30, log)
    # above 30: a: 40, 31 (30 itself is not above); b: 50; h: 35
    assert _summary_count(log, "topcode", "a") == 2
    assert _summary_count(log, "topcode", "b") == 1
    assert _summary_count(log, "topcode", "h") == 1
    assert len(log.changes) == 4
    assert out.loc["r2", "a"] == 30 and out.loc["r3", "a"] == 30 and out.loc["r4", "a"] == 30
    assert out.loc["r3", "b"] == 30 and out.loc["r4", "h"] == 30
    assert np.isnan(out.loc["r5", "a"]) and np.isnan(out.loc["r3", "h"])  # NaN stays NaN
    ch = _changes(log, "topcode").set_index(["group", "respondent"])
    assert ch.loc[("a", "r2"), "old"] == 40 and ch.loc[("a", "r2"), "new"] == 30
    assert ch.loc[("a", "r2"), "detail"] == "cap=30"
    assert log.steps[-1]["settings"]["caps"] == {"a": 30.0, "b": 30.0, "h": 30.0}


def test_percentile_cap_matches_numpy():
    values = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, NAN]
    df = pd.DataFrame({"g": values, "k": [1.0] * 11}, index=[f"r{i}" for i in range(11)])
    log = PreprocessLog()
    out = topcode(df, ["g", "k"], "p90", log)
    expected = np.percentile([v for v in values if not math.isnan(v)], 90, method="linear")
    assert expected == pytest.approx(22.3)
    cap = math.ceil(expected)  # 23: rounded up
    settings = log.steps[-1]["settings"]
    assert settings["caps"]["g"] == cap
    assert settings["percentile_values"]["g"] == pytest.approx(expected)
    assert out["g"].max() == cap
    assert _summary_count(log, "topcode", "g") == 1  # only 34
    assert _summary_count(log, "topcode", "k") == 0
    # p97.5 as well
    log2 = PreprocessLog()
    topcode(df, ["g"], "p97.5", log2)
    exp2 = np.percentile([v for v in values if not math.isnan(v)], 97.5, method="linear")
    assert log2.steps[-1]["settings"]["caps"]["g"] == math.ceil(exp2)


def test_percentile_cap_at_least_one():
    df = pd.DataFrame({"g": [0.0] * 19 + [5.0]}, index=[str(i) for i in range(20)])
    log = PreprocessLog()
    out = topcode(df, ["g"], "p95", log)
    assert log.steps[-1]["settings"]["percentile_values"]["g"] == pytest.approx(0.25)
    assert log.steps[-1]["settings"]["caps"]["g"] == 1
    assert out["g"].max() == 1


# ---------------------------------------------------------------------------------------------
# missing answers
# ---------------------------------------------------------------------------------------------


def test_missing_drop(survey):
    log = PreprocessLog()
    out = handle_missing(survey, ["a", "b", "h"], "drop", log)
    assert list(out.index) == ["r1", "r2", "r4"]
    ch = _changes(log, "missing_drop")
    assert list(ch["respondent"]) == ["r3", "r5"]
    assert list(ch["group"]) == ["", ""]
    assert ch["new"].isna().all()
    assert ch.set_index("respondent").loc["r3", "detail"] == "missing: h"
    assert _summary_count(log, "missing_drop", "") == 2
    assert _summary_count(log, "missing_drop", "a") == 1
    assert _summary_count(log, "missing_drop", "h") == 1
    assert _summary_count(log, "missing_drop", "b") == 0


def test_missing_zero(survey):
    log = PreprocessLog()
    out = handle_missing(survey, ["a", "b", "h"], "zero", log)
    assert len(out) == 5
    assert out.loc["r5", "a"] == 0 and out.loc["r3", "h"] == 0
    assert not out[["a", "b", "h"]].isna().any().any()
    ch = _changes(log, "missing_zero")
    assert sorted(zip(ch["group"], ch["respondent"], strict=True)) == [("a", "r5"), ("h", "r3")]
    assert (ch["new"] == 0).all()
    assert _summary_count(log, "missing_zero", "b") == 0


def test_missing_model(survey):
    log = PreprocessLog()
    out = handle_missing(survey, ["a", "b", "h"], "model", log)
    pd.testing.assert_frame_equal(out, survey)
    assert log.changes == []
    assert _summary_count(log, "missing_left_for_model", "a") == 1
    assert _summary_count(log, "missing_left_for_model", "h") == 1
    assert _summary_count(log, "missing_left_for_model", "b") == 0


# ---------------------------------------------------------------------------------------------
# combine
# ---------------------------------------------------------------------------------------------


def test_combine_max_and_sum():
    df = pd.DataFrame(
        {"v1": [1.0, 3.0, NAN, NAN, 2.0], "v2": [2.0, 1.0, 4.0, NAN, 2.0]},
        index=["r1", "r2", "r3", "r4", "r5"],
    )
    log = PreprocessLog()
    out = combine_questions(df, "v", ["v1", "v2"], "max", log)
    assert out["v"].tolist()[:3] == [2.0, 3.0, 4.0]
    assert np.isnan(out.loc["r4", "v"]) and out.loc["r5", "v"] == 2
    assert {"v1", "v2"} <= set(out.columns)  # sources kept
    ch = _changes(log, "combine")
    # differs from v1: r1 (1 -> 2), r3 (NaN -> 4)
    assert list(ch["respondent"]) == ["r1", "r3"]
    assert ch.iloc[0]["detail"] == "v1=1, v2=2 -> max=2"
    assert _summary_count(log, "combine", "v") == 2

    log = PreprocessLog()
    out = combine_questions(df, "v", ["v1", "v2"], "sum", log)
    assert out["v"].tolist()[:3] == [3.0, 4.0, 4.0]
    assert np.isnan(out.loc["r4", "v"]) and out.loc["r5", "v"] == 4
    assert list(_changes(log, "combine")["respondent"]) == ["r1", "r2", "r3", "r5"]


def test_combine_replaces_existing_target_logged_vs_old():
    df = pd.DataFrame({"v": [5.0, 2.0], "v1": [1.0, 2.0], "v2": [2.0, 0.0]}, index=["r1", "r2"])
    log = PreprocessLog()
    out = combine_questions(df, "v", ["v1", "v2"], "max", log)
    assert out["v"].tolist() == [2.0, 2.0]
    ch = _changes(log, "combine")
    assert list(ch["respondent"]) == ["r1"]
    assert ch.iloc[0]["old"] == 5 and ch.iloc[0]["new"] == 2
    assert log.steps[0]["settings"]["replaced_existing"] is True


# ---------------------------------------------------------------------------------------------
# imputation
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def vo() -> pd.DataFrame:
    return pd.DataFrame(
        {
            #      both   both   off-only vic-only vic-only none  NaN
            "vic": [4.0, 2.0, 0.0, 3.0, 1.0, 0.0, NAN],
            "off": [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 2.0],
            "area": ["x", "y", "x", "x", "y", "y", "x"],
        },
        index=[f"r{i}" for i in range(1, 8)],
    )


def test_impute_default_ratio_and_per_area_household(vo):
    log = PreprocessLog()
    hh = pd.Series({"x": 4.6, "y": 3.2})
    out = impute_victims_offenders(vo, "vic", "off", household_size=hh, log=log)
    # default ratio: (4 + 2) / (1 + 2) = 2 -> r3 victims = round(3 * 2) = 6
    settings = log.steps[-1]["settings"]
    assert settings["victims_per_offender"] == pytest.approx(2.0)
    assert "2 respondents" in settings["victims_per_offender_source"]
    assert out.loc["r3", "vic"] == 6
    # r4 in area x: round(4.6) = 5; r5 in area y: round(3.2) = 3
    assert out.loc["r4", "off"] == 5 and out.loc["r5", "off"] == 3
    # untouched
    assert out.loc["r6", "vic"] == 0 and out.loc["r6", "off"] == 0
    assert np.isnan(out.loc["r7", "vic"]) and out.loc["r7", "off"] == 2
    ch = log.to_frame()
    assert sorted(zip(ch["group"], ch["respondent"], strict=True)) == [
        ("off", "r4"),
        ("off", "r5"),
        ("vic", "r3"),
    ]
    assert "area x" in ch.set_index("respondent").loc["r4", "detail"]
    assert _summary_count(log, "impute", "vic") == 1
    assert _summary_count(log, "impute", "off") == 2


def test_impute_given_ratio_and_scalar_household(vo):
    log = PreprocessLog()
    out = impute_victims_offenders(vo, "vic", "off", 0.5, 2.5, log=log)
    assert out.loc["r3", "vic"] == 2  # 3 * 0.5 = 1.5 -> half up -> 2
    assert out.loc["r4", "off"] == 3 and out.loc["r5", "off"] == 3  # 2.5 -> 3
    assert log.steps[-1]["settings"]["victims_per_offender_source"] == "given"
    # at least 1
    out = impute_victims_offenders(vo, "vic", "off", 0.1, 0.3)
    assert out.loc["r3", "vic"] == 1 and out.loc["r4", "off"] == 1


def test_impute_errors(vo):
    with pytest.raises(SpecError, match="household_size"):
        impute_victims_offenders(vo, "vic", "off", 2.0)
    with pytest.raises(DataError, match="area 'y'|area y"):
        impute_victims_offenders(vo, "vic", "off", 2.0, pd.Series({"x": 4.0}))
    no_both = vo.drop(index=["r1", "r2"])
    with pytest.raises(DataError, match="victims_per_offender"):
        impute_victims_offenders(no_both, "vic", "off", household_size=3.0)
    with pytest.raises(DataError, match="'nope'"):
        impute_victims_offenders(vo, "nope", "off", 2.0, 3.0)


# ---------------------------------------------------------------------------------------------
# the log
# ---------------------------------------------------------------------------------------------


def test_summary_has_zero_rows_and_files_round_trip(survey, tmp_path):
    out, log = preprocess(
        survey, ["a", "b"], ["h"], {"missing": "zero", "topcode": {"known": 45, "h": 100}}
    )
    s = log.summary()
    assert list(s.columns) == ["rule", "group", "n_changed"]
    # topcode at 45: a none, b one (50); h none; all rows present
    assert _summary_count(log, "topcode", "a") == 0
    assert _summary_count(log, "topcode", "b") == 1
    assert _summary_count(log, "topcode", "h") == 0
    assert _summary_count(log, "missing_zero", "a") == 1
    assert _summary_count(log, "missing_zero", "b") == 0

    # by default only the summary (counts per rule and group) is written
    assert set(log.write(tmp_path / "summary_only")) == {"summary"}
    assert sorted(p.name for p in (tmp_path / "summary_only").iterdir()) == ["preprocess_log.csv"]
    # on request, the respondent-level listing goes to the restricted subfolder
    paths = log.write(tmp_path / "out", respondent_level=True)
    assert paths["summary"].name == "preprocess_log.csv"
    assert paths["changes"] == tmp_path / "out" / "restricted" / "preprocess_changes.csv"
    assert not list((tmp_path / "out").rglob("*.tmp"))
    back_s = pd.read_csv(paths["summary"], dtype={"group": str}, keep_default_na=False)
    pd.testing.assert_frame_equal(back_s, s)
    back_c = pd.read_csv(paths["changes"], dtype={"group": str, "respondent": str})
    back_c["group"] = back_c["group"].fillna("")
    back_c["detail"] = back_c["detail"].fillna("")
    pd.testing.assert_frame_equal(back_c, log.to_frame())

    d = log.to_dict()
    json.dumps(d)
    assert d["n_changes"] == len(log.changes) == 3
    assert [st["rule"] for st in d["steps"]] == ["missing_zero", "topcode", "topcode"]


def test_empty_log_frames_and_write(tmp_path):
    log = PreprocessLog()
    assert list(log.to_frame().columns) == ["rule", "group", "respondent", "old", "new", "detail"]
    assert list(log.summary().columns) == ["rule", "group", "n_changed"]
    paths = log.write(tmp_path, respondent_level=True)
    assert paths["changes"].read_text().strip() == "rule,group,respondent,old,new,detail"


def test_driver_order_and_resolved_settings(vo):
    # a hidden victims question combined from two, imputed, then top-coded
    df = vo.rename(columns={"vic": "v1"}).assign(v2=[5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    config = {
        "combine": {"vic": {"sources": ["v1", "v2"]}},
        "impute": {"victims": "vic", "offenders": "off", "household_size": {"x": 4.6, "y": 3.2}},
        "missing": "drop",
        "topcode": {"hidden": 4},
    }
    out, log = preprocess(df, [], ["vic", "off"], config)
    assert [st["rule"] for st in log.steps] == ["combine", "impute", "missing_drop", "topcode"]
    # combine: r1 -> 5, r7 -> 1; ratio over r1, r2, r7 = (5+2+1)/(1+2+2) = 1.6;
    # r3 vic = round(3 * 1.6) = 5, then capped at 4
    assert log.steps[1]["settings"]["victims_per_offender"] == pytest.approx(1.6)
    assert _changes(log, "impute").set_index("respondent").loc["r3", "new"] == 5
    assert out.loc["r3", "vic"] == 4
    assert out.loc["r4", "off"] == 4  # imputed 5 (household 4.6), then capped at 4
    assert out.loc["r7", "vic"] == 1  # r7 kept: combined not NaN
    assert log.steps[-1]["settings"]["caps"] == {"vic": 4.0, "off": 4.0}
    assert len(out) == 7


def test_household_size_from_an_area_table_column(vo):
    """``household_size = "column"`` reads each area's mean household size from the area
    table (e.g. the column a household roster wrote); the log names the column."""
    table = pd.DataFrame({"hh": [4.6, 3.2]}, index=pd.Index(["x", "y"], name="area"))
    config = {"impute": {"victims": "vic", "offenders": "off", "household_size": "hh"}}
    out, log = preprocess(vo, [], ["vic", "off"], config, area_table=table)
    settings = log.steps[0]["settings"]
    assert settings["household_size"] == {"x": 4.6, "y": 3.2}
    assert settings["household_size_column"] == "hh"
    assert out.loc["r4", "off"] == 5  # area x: 4.6 rounded half up
    with pytest.raises(SpecError, match="no area table"):
        preprocess(vo, [], ["vic", "off"], config)
    with pytest.raises(DataError, match="no column 'size'"):
        bad = {"impute": {**config["impute"], "household_size": "size"}}
        preprocess(vo, [], ["vic", "off"], bad, area_table=table)
    with pytest.raises(DataError, match=r"'hh' must be a positive number.*areas y"):
        preprocess(vo, [], ["vic", "off"], config, area_table=table.assign(hh=[4.6, 0.0]))


# ---------------------------------------------------------------------------------------------
# config errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"topcod": 30}, "topcod"),
        ({"topcode": 0}, "topcode"),
        ({"topcode": -5}, "topcode"),
        ({"topcode": True}, "topcode"),
        ({"topcode": "p0"}, "topcode"),
        ({"topcode": "p101"}, "topcode"),
        ({"topcode": "95%"}, "topcode"),
        ({"topcode": {}}, "topcode"),
        ({"topcode": {"widowr": 20}}, "widowr"),
        ({"topcode": {"known": 0}}, "topcode.known"),
        ({"topcode": {"a": "pp"}}, "topcode.a"),
        ({"missing": "impute"}, "missing"),
        ({"combine": []}, "combine"),
        ({"combine": {"v": {"source": ["a"]}}}, "source"),
        ({"combine": {"v": {"sources": []}}}, "combine.v.sources"),
        ({"combine": {"v": {"sources": "a"}}}, "combine.v.sources"),
        ({"combine": {"v": {"sources": ["a"], "how": "mean"}}}, "combine.v.how"),
        ({"combine": {"v": ["a", "b"]}}, "combine.v"),
        ({"impute": {"victims": "h"}}, "impute.offenders"),
        ({"impute": {"victims": "h", "offenders": "b", "ratio": 2}}, "ratio"),
        (
            {"impute": {"victims": "h", "offenders": "b", "victims_per_offender": 0}},
            "victims_per_offender",
        ),
        ({"impute": {"victims": "h", "offenders": "b", "household_size": -1}}, "household_size"),
        (
            {"impute": {"victims": "h", "offenders": "b", "household_size": {"x": 0}}},
            "household_size",
        ),
        ({"impute": "yes"}, "impute"),
    ],
)
def test_bad_config_raises_spec_error_naming_key(survey, config, key):
    with pytest.raises(SpecError) as err:
        preprocess(survey, ["a", "b"], ["h"], config)
    msg = str(err.value)
    assert key in msg
    assert "\n" not in msg


def test_unknown_group_message_suggests(survey):
    s = survey.rename(columns={"a": "widower"})
    with pytest.raises(SpecError, match=r"unknown group 'widowr'.*did you mean 'widower'"):
        preprocess(s, ["widower", "b"], ["h"], {"topcode": {"widowr": 20}})


def test_missing_columns_raise_data_error(survey):
    with pytest.raises(DataError, match="'zz'"):
        preprocess(survey, ["a", "zz"], ["h"])
    with pytest.raises(DataError, match="'v9'"):
        preprocess(survey, ["a"], ["h"], {"combine": {"c": {"sources": ["a", "v9"]}}})


def test_empty_after_drop_raises(survey):
    s = survey.copy()
    s["h"] = NAN
    with pytest.raises(DataError, match=r"survey is empty after pre-processing \(5 dropped"):
        preprocess(s, ["a", "b"], ["h"])


# ---------------------------------------------------------------------------------------------
# bundled Rwanda example
# ---------------------------------------------------------------------------------------------


def test_rwanda_example():
    root = resources.files("bayes_nsum") / "data" / "rwanda"
    with resources.as_file(root / "survey.csv") as p:
        survey = pd.read_csv(p, index_col="id")
    with resources.as_file(root / "known_sizes.csv") as p:
        known = pd.read_csv(p)["known.popn"].tolist()
    hidden = ["sex.workers", "msm", "idu", "clients"]
    assert len(known) == 22
    used = known + hidden
    n_nan_rows = int(survey[used].isna().any(axis=1).sum())
    assert n_nan_rows == 1  # of the 2 missing cells, one (treatedfortb) is not a used group
    kept = survey[~survey[used].isna().any(axis=1)]
    n_above = int((kept[known] > 30).sum().sum())
    assert n_above > 0

    out, log = preprocess(survey, known, hidden, {"topcode": {"known": 30}, "missing": "drop"})
    assert len(out) == len(survey) - n_nan_rows
    assert _summary_count(log, "missing_drop", "") == n_nan_rows
    assert len(_changes(log, "topcode")) == n_above
    assert log.summary().query("rule == 'topcode'")["n_changed"].sum() == n_above
    assert set(log.summary().query("rule == 'topcode'")["group"]) == set(known)
    assert (out[known] <= 30).all().all()
    pd.testing.assert_frame_equal(out[hidden], kept[hidden])  # hidden not top-coded
