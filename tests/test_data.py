"""Tests of survey loading and validation (bayes_nsum.data, bayes_nsum.io).

Every bad input must raise :class:`DataError` whose one-line message names the file, the column
and the rows (respondent ids) at fault.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.analysis import prepare
from bayes_nsum.data import load_survey
from bayes_nsum.errors import DataError, SpecError
from bayes_nsum.io import read_table
from bayes_nsum.spec import Spec

N = 1000.0
KNOWN = {"a": 100.0, "b": 300.0}


def survey_frame() -> pd.DataFrame:
    """Six respondents with numeric ids, two known groups, one hidden group, weights, areas."""
    return pd.DataFrame(
        {
            "id": [101, 102, 103, 104, 105, 106],
            "area": [1, 1, 2, 2, 3, 3],
            "w": [1.0, 2.0, 1.0, 0.5, 1.5, 1.0],
            "a": [1, 2, 0, 3, 1, 0],
            "b": [3, 2, 4, 5, 0, 1],
            "h": [1, 0, 2, 0, 1, 0],
        }
    )


def area_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "area": [1, 2, 3],
            "population": [300.0, 400.0, 300.0],
            "a": [30.0, 40.0, 30.0],
            "b": [90.0, 120.0, 90.0],
        }
    )


def write_case(
    folder: Path,
    survey: pd.DataFrame | None = None,
    known: dict | None = None,
    fmt: str = "csv",
    areas: bool = False,
    area_table: pd.DataFrame | None = None,
    **data_keys,
) -> Spec:
    """Write a survey (in ``fmt``), known sizes and optionally an area table; return the spec."""
    survey = survey_frame() if survey is None else survey
    name = f"survey.{fmt}"
    path = folder / name
    if fmt == "csv":
        survey.to_csv(path, index=False)
    elif fmt == "parquet":
        survey.to_parquet(path, index=False)
    elif fmt == "dta":
        survey.to_stata(path, write_index=False)
    elif fmt == "sav":
        import pyreadstat

        pyreadstat.write_sav(survey, str(path))
    pd.DataFrame(
        {"group": list((known or KNOWN).keys()), "size": list((known or KNOWN).values())}
    ).to_csv(folder / "known.csv", index=False)
    raw = {
        "data": {"survey": name, "known_sizes": "known.csv", "total_population": N, **data_keys},
        "groups": {"known": ["a", "b"], "hidden": ["h"]},
    }
    if areas:
        (area_frame() if area_table is None else area_table).to_csv(
            folder / "areas.csv", index=False
        )
        raw["data"].update(area="area", area_table="areas.csv")
    return Spec.from_dict(raw, base_dir=folder)


def error_of(spec: Spec) -> str:
    with pytest.raises(DataError) as info:
        load_survey(spec)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# -- a good file -----------------------------------------------------------------------------
def test_good_survey_loads(tmp_path):
    ard = load_survey(write_case(tmp_path, weight="w"))
    assert ard.known == ("a", "b") and ard.hidden == ("h",)
    # respondents are labelled by survey row, never by id; the ids are kept aside
    assert list(ard.counts.index) == [1, 2, 3, 4, 5, 6]
    assert list(ard.ids) == ["101", "102", "103", "104", "105", "106"]
    assert list(ard.counts.columns) == ["a", "b", "h"]
    np.testing.assert_array_equal(ard.counts["b"].to_numpy(), [3, 2, 4, 5, 0, 1])
    assert ard.known_sizes.to_dict() == KNOWN
    assert ard.total_population == N
    np.testing.assert_array_equal(ard.weights.to_numpy(), survey_frame()["w"].to_numpy())


def test_without_id_column_rows_are_numbered(tmp_path):
    ard = load_survey(write_case(tmp_path, survey=survey_frame().drop(columns="id")))
    assert list(ard.counts.index) == [1, 2, 3, 4, 5, 6] and ard.ids is None


# -- files and columns -----------------------------------------------------------------------
def test_missing_survey_file(tmp_path):
    spec = write_case(tmp_path)
    (tmp_path / "survey.csv").unlink()
    msg = error_of(spec)
    assert "survey file not found" in msg and "survey.csv" in msg


def test_missing_known_sizes_file(tmp_path):
    spec = write_case(tmp_path)
    (tmp_path / "known.csv").unlink()
    msg = error_of(spec)
    assert "known_sizes file not found" in msg and "known.csv" in msg


def test_unsupported_and_unreadable_files(tmp_path):
    (tmp_path / "x.xlsx").write_text("a")
    with pytest.raises(DataError, match=r"x\.xlsx.*unsupported format '\.xlsx'"):
        read_table(tmp_path / "x.xlsx", "survey")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"survey file .*x\.parquet.*could not be read as parquet"):
        read_table(tmp_path / "x.parquet", "survey")


def test_missing_group_column(tmp_path):
    msg = error_of(write_case(tmp_path, survey=survey_frame().drop(columns="b")))
    assert "survey.csv" in msg and "'b'" in msg


@pytest.mark.parametrize("key", ["weight", "id", "strata", "cluster", "area"])
def test_missing_design_column(tmp_path, key):
    spec = write_case(tmp_path, **{key: "nosuchcol"})
    msg = error_of(spec)
    assert "survey.csv" in msg and "'nosuchcol'" in msg and f"[data] {key}" in msg


def test_known_sizes_columns_and_values(tmp_path):
    spec = write_case(tmp_path, known_sizes_size_column="n")
    msg = error_of(spec)
    assert "known.csv" in msg and "'n'" in msg
    spec = write_case(tmp_path)
    (tmp_path / "known.csv").write_text("group,size\na,100\nb,lots\n")
    msg = error_of(spec)
    assert "known.csv" in msg and "non-numeric size" in msg and "3" in msg  # file line 3
    (tmp_path / "known.csv").write_text("group,size\na,100\na,200\nb,300\n")
    assert "group listed twice: a" in error_of(spec)


# -- counts ----------------------------------------------------------------------------------
def test_non_numeric_counts_name_column_and_rows(tmp_path):
    df = survey_frame().astype({"a": object})
    df.loc[2, "a"] = "many"
    df.loc[4, "a"] = "?"
    msg = error_of(write_case(tmp_path, survey=df))
    assert "survey.csv" in msg and "column 'a'" in msg and "text instead of a number" in msg
    assert "rows 3, 5" in msg and "many" not in msg  # rows by position, no answer quoted


def test_non_integer_counts(tmp_path):
    df = survey_frame().astype({"b": float})
    df.loc[1, "b"] = 2.5
    msg = error_of(write_case(tmp_path, survey=df))
    assert "survey.csv" in msg and "column 'b'" in msg and "non-integer" in msg
    assert "rows 2" in msg and "102" not in msg and "2.5" not in msg


def test_negative_counts(tmp_path):
    df = survey_frame()
    df.loc[5, "h"] = -1
    msg = error_of(write_case(tmp_path, survey=df))
    assert "survey.csv" in msg and "column 'h'" in msg and "negative" in msg
    assert "rows 6" in msg and "106" not in msg


def test_missing_answers_are_kept_as_nan(tmp_path):
    df = survey_frame().astype({"h": float})
    df.loc[0, "h"] = np.nan
    ard = load_survey(write_case(tmp_path, survey=df))
    assert np.isnan(ard.counts.loc[1, "h"]) and ard.n == 6


# -- sizes and groups ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0.0, -5.0, N + 1])
def test_known_size_out_of_range(tmp_path, size):
    msg = error_of(write_case(tmp_path, known={"a": 100.0, "b": size}))
    assert "known.csv" in msg and f"b={size:g}" in msg and "total population 1000" in msg


def test_group_both_known_and_hidden(tmp_path):
    spec = write_case(tmp_path)
    spec = spec.with_value("groups.hidden", ["h", "b"])
    msg = error_of(spec)
    assert "both known and hidden" in msg and "b" in msg


def test_known_group_without_size(tmp_path):
    spec = write_case(tmp_path, known={"a": 100.0})
    msg = error_of(spec)
    assert "without a size" in msg and "b" in msg


# -- design variables ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_bad_weights(tmp_path, bad):
    df = survey_frame()
    df.loc[3, "w"] = bad
    msg = error_of(write_case(tmp_path, survey=df, weight="w"))
    assert "survey.csv" in msg and "weight column 'w'" in msg and "rows 4" in msg
    assert "104" not in msg


def test_duplicate_respondent_ids(tmp_path):
    df = survey_frame()
    df.loc[4, "id"] = 102
    msg = error_of(write_case(tmp_path, survey=df))
    assert "survey.csv" in msg and "not unique" in msg and "'id'" in msg
    assert "rows 2, 5" in msg and "102" not in msg  # positions of the two rows, not the id


def test_missing_strata(tmp_path):
    df = survey_frame().assign(st=["x", "x", None, "y", "y", "y"])
    msg = error_of(write_case(tmp_path, survey=df, strata="st"))
    assert "strata column 'st'" in msg and "rows 3" in msg


def test_area_missing_from_area_table(tmp_path):
    df = survey_frame()
    df.loc[5, "area"] = 9
    msg = error_of(write_case(tmp_path, survey=df, areas=True))
    assert "survey.csv" in msg and "area(s) 9" in msg and "'area'" in msg
    assert "area table" in msg


def test_area_table_loads_and_sums_known_sizes(tmp_path):
    ard = load_survey(write_case(tmp_path, areas=True))
    assert ard.has_areas and ard.areas == ["1", "2", "3"]
    assert ard.known_sizes.to_dict() == {"a": 100.0, "b": 300.0}
    assert list(ard.area) == ["1", "1", "2", "2", "3", "3"]
    assert ard.denominator("h", "2") == 400.0


def test_area_table_bad_values(tmp_path):
    at = area_frame()
    at.loc[1, "population"] = 0
    msg = error_of(write_case(tmp_path, areas=True, area_table=at))
    assert "areas.csv" in msg and "population" in msg and "2" in msg
    at = area_frame()
    at.loc[2, "b"] = 500.0
    msg = error_of(write_case(tmp_path, areas=True, area_table=at))
    assert "column 'b'" in msg and "larger than the population" in msg and "3" in msg


def test_area_table_without_area_column_is_a_spec_error(tmp_path):
    spec = write_case(tmp_path, areas=True)
    raw = copy.deepcopy(spec.raw)
    del raw["data"]["area"]
    with pytest.raises(SpecError, match=r"\[data\] area"):
        load_survey(Spec.from_dict(raw, base_dir=tmp_path))


# -- after pre-processing --------------------------------------------------------------------
def test_empty_after_preprocessing(tmp_path):
    df = survey_frame().astype({"a": float, "h": float})
    df["a"] = [np.nan, 1, np.nan, 2, np.nan, 0]
    df["h"] = [0, np.nan, 1, np.nan, 2, np.nan]  # every respondent misses a or h
    spec = write_case(tmp_path, survey=df).with_value("preprocess.missing", "drop")
    with pytest.raises(DataError) as info:
        prepare(spec)
    msg = str(info.value)
    assert "survey.csv" in msg and "empty after pre-processing" in msg and "6" in msg


def test_prepare_drops_missing_and_keeps_design_aligned(tmp_path):
    df = survey_frame().astype({"h": float})
    df.loc[1, "h"] = np.nan
    prep = prepare(write_case(tmp_path, survey=df, weight="w"))
    assert prep.raw.n == 6 and prep.ard.n == 5
    assert 2 not in prep.ard.counts.index  # survey row 2 (id 102) dropped
    assert list(prep.ard.weights.index) == list(prep.ard.counts.index)
    assert prep.ard.weights.loc[3] == 1.0 and prep.ard.ids.loc[3] == "103"


# -- readers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "dta", "sav"])
def test_all_formats_load_the_same_data(tmp_path, fmt):
    ref_dir = tmp_path / "csv"
    ref_dir.mkdir()
    other_dir = tmp_path / fmt
    other_dir.mkdir()
    df = survey_frame().astype({"h": float})
    df.loc[2, "h"] = np.nan  # a missing answer must survive every format
    ref = load_survey(write_case(ref_dir, survey=df, fmt="csv", areas=True, weight="w"))
    got = load_survey(write_case(other_dir, survey=df, fmt=fmt, areas=True, weight="w"))
    assert got.source.endswith(f"survey.{fmt}")
    pd.testing.assert_frame_equal(got.counts, ref.counts)
    pd.testing.assert_series_equal(got.weights, ref.weights)
    pd.testing.assert_series_equal(got.area, ref.area)
    pd.testing.assert_series_equal(got.known_sizes, ref.known_sizes)
    assert got.data_hash() == ref.data_hash()


def test_combined_hidden_group_needs_only_its_source_columns(tmp_path):
    """[preprocess] combine builds a hidden group from two questions (Scale of Harm)."""
    import tomli_w

    from bayes_nsum.analysis import prepare

    df = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "k1": [2, 0, 7, 1],
            "k2": [3, 3, 3, 4],
            "v_gen": [0, 2, 0, 1],
            "v_live": [1, 0, 0, 3],
        }
    )
    df.to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"group": ["k1", "k2"], "size": [1000, 800]}).to_csv(
        tmp_path / "k.csv", index=False
    )
    spec = {
        "data": {"survey": "s.csv", "known_sizes": "k.csv", "total_population": 100000},
        "groups": {"hidden": ["victims"]},
        "preprocess": {"combine": {"victims": {"sources": ["v_gen", "v_live"], "how": "max"}}},
    }
    (tmp_path / "spec.toml").write_text(tomli_w.dumps(spec))
    prep = prepare(tmp_path / "spec.toml")
    assert prep.ard.counts["victims"].tolist() == [1.0, 2.0, 0.0, 3.0]
    summary = prep.log.summary().set_index(["rule", "group"])
    # two respondents (1 and 4) answered more on the second question than the first
    assert summary.loc[("combine", "victims"), "n_changed"] == 2
