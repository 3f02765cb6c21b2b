"""A corpus of malformed inputs, generated with Hypothesis, that keeps the input contract.

Each example starts from a small valid analysis (a 12-respondent survey, known sizes and a
spec), breaks it in one to three ways that are each invalid on their own (a spec key of the
wrong type or out of range, an unknown key, a prior outside its parameter's values, a survey
cell that is not a count, a repeated column name, a column of dates or true/false values, a
damaged file, ...) and runs a command in-process. The contract: exit status 2, at most three
lines on stderr, no traceback, no file written (not even an empty output folder), and no
sampling. About 1,200 examples in all, in the fast tier (a few seconds to a minute);
``derandomize=True`` makes the corpus the same on every run.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayes_nsum.fit
from bayes_nsum.cli import main

CORPUS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KNOWN = {"k1": 200.0, "k2": 500.0, "k3": 1000.0}
N = 100_000


def base_survey() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 12
    return pd.DataFrame(
        {
            "id": [f"P{i:03d}" for i in range(n)],
            "w": rng.uniform(0.5, 2.0, n).round(3),
            "area": ["a", "b"] * (n // 2),
            "k1": rng.integers(0, 3, n),
            "k2": rng.integers(1, 6, n),
            "k3": rng.integers(2, 9, n),
            "h": rng.integers(0, 3, n),
        }
    )


def base_spec(model: str = "killworth") -> dict:
    return {
        "data": {
            "survey": "survey.csv",
            "known_sizes": "known.csv",
            "total_population": N,
            "weight": "w",
        },
        "groups": {"known": list(KNOWN), "hidden": ["h"]},
        "model": {"name": model, **({"n_boot": 5} if model == "killworth" else {})},
        "sampler": {"draws": 10, "tune": 10, "chains": 1, "progress": False},
        "output": {"dir": "results"},
    }


def write_inputs(folder: Path, spec: dict | bytes, survey: pd.DataFrame | bytes | None = None):
    if isinstance(spec, dict):
        (folder / "spec.toml").write_text(tomli_w.dumps(spec), encoding="utf-8")
    else:
        (folder / "spec.toml").write_bytes(spec)
    survey = base_survey() if survey is None else survey
    if isinstance(survey, bytes):
        (folder / "survey.csv").write_bytes(survey)
    else:
        survey.to_csv(folder / "survey.csv", index=False)
    pd.DataFrame({"group": list(KNOWN), "size": list(KNOWN.values())}).to_csv(
        folder / "known.csv", index=False
    )


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.lstat().st_mtime_ns for p in folder.rglob("*")}


def check_contract(capsys, folder: Path, argv: list[str]) -> None:
    before = snapshot(folder)
    code = main(argv)
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (argv, err)
    assert 1 <= len(lines) <= 3, err
    assert "Traceback" not in err
    assert snapshot(folder) == before, f"files written: {set(snapshot(folder)) - set(before)}"


@pytest.fixture
def no_sampling(monkeypatch):
    def sample(*args, **kwargs):
        raise AssertionError("a malformed input reached the sampler")

    monkeypatch.setattr(bayes_nsum.fit, "sample", sample)


def test_the_base_case_is_valid(capsys, tmp_path):
    write_inputs(tmp_path, base_spec())
    assert main(["estimate", str(tmp_path / "spec.toml")]) == 0, capsys.readouterr().err
    assert (tmp_path / "results" / "estimates.csv").is_file()


# ---------------------------------------------------------------------------------------------
# malformed specs: each mutation is invalid on its own
# ---------------------------------------------------------------------------------------------

NOT_TEXT = [5, 2.5, True, ["survey.csv"], {"a": 1}]
NOT_POSITIVE = [0, -1, -2.5, math.nan, math.inf, -math.inf, True, "many", [1]]
NOT_BOOL = ["yes", 1, 0.0, ["true"]]


def _set(*path_value):
    *path, value = path_value
    return ("set", tuple(path), value)


SPEC_MUTATIONS = (
    [_set("data", "survey", v) for v in [*NOT_TEXT, "", "missing.csv", "survey.xlsx"]]
    + [_set("data", "known_sizes", v) for v in [*NOT_TEXT, "none.csv", "known.txt"]]
    + [_set("data", "total_population", v) for v in NOT_POSITIVE]
    + [_set("data", "max_answer", v) for v in [*NOT_POSITIVE, 1]]  # answers of 8 exist
    + [_set("data", k, v) for k in ("id", "weight", "strata", "cluster") for v in [5, "", "zz"]]
    + [_set("data", "area", v) for v in [True, "zz"]]
    + [_set("data", "area_table", v) for v in ["none.csv", 3]]
    + [_set("data", "covariates", v) for v in ["w", [1], ["zz"], {"a": "w"}]]
    + [_set("data", "known_sizes_group_column", "zz"), _set("data", "known_sizes_size_column", "z")]
    + [_set("data", "sizes", "x"), ("delete", ("data", "survey"), None)]
    + [("delete", ("data", "known_sizes"), None), ("delete", ("groups", "hidden"), None)]
    + [_set("groups", "hidden", v) for v in [[], "", [1], ["zz"], ["k1"], ["h", "h"], 5]]
    + [_set("groups", "known", v) for v in [[], ["zz"], [1], ["k1", "k1"], "k1,k2"]]
    + [
        _set("groups", "denominators", v)
        for v in [5, {"h": 0}, {"h": -1}, {"h": math.nan}, {"h": "zz"}, {"k1": 10}, {"h": 1e12}]
    ]
    + [_set("groups", "size", 1)]
    + [
        _set("preprocess", k, v)
        for k, vs in {
            "topcode": [-1, 0, "p200", "abc", {"zz": 5}, True, math.inf, {}],
            "missing": ["foo", 1, True],
            "combine": ["x", {"h": {"sources": []}}, {"h": {"sources": ["zz"]}}, {}],
            "impute": ["x", {}, {"victims": "h"}],
            "cap": [5],
        }.items()
        for v in vs
    ]
    + [_set("model", "name", v) for v in ["degre", "", 5, "Killworth", "bayes"]]
    + [_set("model", "n_boot", v) for v in [-1, "abc", 1.5, True]]
    + [_set("model", "method", v) for v in ["foo", 1]]
    + [_set("model", "degree_ratio", v) for v in [{"h": 0}, {"h": "x"}, 5, {"h": math.inf}]]
    + [_set("model", "transmission", v) for v in [{"h": 1.5}, {"h": 0}, {"h": -0.5}, "x"]]
    + [_set("model", k, v) for k, v in [("prior_set", "nosuchset"), ("prior_set", 5)]]
    + [_set("model", k, v) for k, v in [("barrier_dispersion", "x"), ("degree", "poisson")]]
    + [_set("model", "unknown_option", 1)]
    + [
        _set("priors", k, v)
        for k, v in [
            ("tua", 0.5),
            ("tau", 1.5),
            ("tau", {"h": 1.5}),
            ("tau", {"h": 0}),
            ("tau", {"dist": "Normal", "mu": 0.5, "sigma": 0.1}),
            ("tau", {"dist": "Uniform", "lower": 0.2, "upper": 1.4}),
            ("mu", {"dist": "Normal", "mu": 0, "sigma": -1}),
            ("mu", True),
            ("mu", {"dist": "Normal", "mu": 0, "sigma": True}),
            ("sigma", "abc"),
            ("sigma", {"dist": "Normal", "mu": 1, "sigma": 1}),
            ("mu", {"dist": "Nope", "x": 1}),
            ("mu", {"dist": "Normal", "mu": 0}),
            ("delta", 0),
            ("delta", {"h": -2}),
            ("zero_prob", 1.5),
            ("rho", {}),
            ("sigma", math.nan),
        ]
    ]
    + [_set("sampler", "draws", v) for v in [0, -1, 1.5, "x", True]]
    + [_set("sampler", "chains", v) for v in [0, "2"]]
    + [_set("sampler", "seed", v) for v in [-1, 2**40, 1.5, "x"]]
    + [_set("sampler", "target_accept", v) for v in [0, 1, math.nan, 1.5, "x"]]
    + [_set("sampler", k, v) for k, v in [("backend", "stan"), ("progress", "yes"), ("cpus", 2)]]
    + [
        _set("diagnostics", k, v)
        for k in ("max_r_hat", "min_ess_bulk", "min_ess_tail", "min_bfmi")
        for v in [math.nan, math.inf, -1, "x", True]
    ]
    + [_set("diagnostics", k, v) for k, v in [("max_r_hat", 0.5), ("max_treedepth_share", 2)]]
    + [_set("diagnostics", k, v) for k, v in [("max_divergences", 1.5), ("max_rhat", 1.01)]]
    + [_set("output", "dir", v) for v in [5, "", True]]
    + [_set("output", "interval_prob", v) for v in [0, 1, 1.5, "x", math.nan, -1]]
    + [_set("output", "interval", v) for v in ["x", 5]]
    + [_set("output", k, v) for k in ("report", "respondent_level") for v in NOT_BOOL]
    + [_set("output", "min_area_respondents", v) for v in [0, -3, 1.5, "x", True]]
    + [_set("outputs", "dir", "x"), _set("prior", "tau", 0.5), _set("Model", "name", "degree")]
)


def apply(spec: dict, mutation) -> dict:
    kind, path, value = mutation
    node = spec
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return spec
    if kind == "delete":
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return spec


@settings(CORPUS, max_examples=500)
@given(
    mutations=st.lists(st.sampled_from(SPEC_MUTATIONS), min_size=1, max_size=3),
    command=st.sampled_from(["estimate", "validate", "fit"]),
)
def test_malformed_specs_are_refused(capsys, no_sampling, mutations, command):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = base_spec("degree" if command == "fit" else "killworth")
        for m in mutations:
            spec = apply(spec, m)
        write_inputs(folder, spec)
        check_contract(capsys, folder, [command, str(folder / "spec.toml")])


# ---------------------------------------------------------------------------------------------
# malformed surveys and size files
# ---------------------------------------------------------------------------------------------

BAD_CELLS = ["many", "1,5", "-3", "2.5", "inf", "nan?", "1e12", "20000", "TRUE", "2024-01-05"]


def bad_survey(draw) -> tuple[pd.DataFrame | bytes, str]:
    """A survey broken in one way (and the file format it is written in)."""
    df = base_survey()
    kind = draw(
        st.sampled_from(
            ["cell", "above_known", "header_dup", "drop_col", "id", "weight", "parquet", "bytes"]
        )
    )
    row = draw(st.integers(0, len(df) - 1))
    col = draw(st.sampled_from(["k1", "k2", "k3", "h"]))
    if kind == "cell":
        df = df.astype({col: object})
        df.loc[row, col] = draw(st.sampled_from(BAD_CELLS))
    elif kind == "above_known":
        known = draw(st.sampled_from(list(KNOWN)))
        df.loc[row, known] = int(KNOWN[known]) + draw(st.integers(1, 5000))
    elif kind == "header_dup":
        other = draw(st.sampled_from([c for c in df.columns if c != col]))
        return df.to_csv(index=False).replace(other, col, 1).encode(), "csv"
    elif kind == "drop_col":
        df = df.drop(columns=col)
    elif kind == "id":
        df.loc[row, "id"] = df.loc[(row + 1) % len(df), "id"] if draw(st.booleans()) else None
    elif kind == "weight":
        df = df.astype({"w": object})
        df.loc[row, "w"] = draw(st.sampled_from([0, -1.5, "heavy", None, "inf"]))
    elif kind == "parquet":
        n = len(df)
        df[col] = draw(
            st.sampled_from(
                [
                    pd.date_range("2024-01-01", periods=n),
                    np.arange(n) % 2 == 0,
                    pd.Series([f"x{i}" for i in range(n)], dtype="string"),
                    pd.to_timedelta(np.arange(n), unit="D"),
                ]
            )
        )
        return df, "parquet"
    else:
        return draw(
            st.sampled_from(
                [
                    b"",
                    b"id,k1\n",
                    b"\x00\x01\x02\xff\xfe" * 20,
                    "id,k1,k2,k3,h\nP1,1,2,3,caf\xe9\n".encode("latin-1"),
                    b'id,k1,k2,k3,h\n"P1,1,2\n',
                ]
            )
        ), "csv"
    return df, "csv"


@settings(CORPUS, max_examples=450)
@given(data=st.data(), command=st.sampled_from(["estimate", "validate", "fit"]))
def test_malformed_surveys_are_refused(capsys, no_sampling, data, command):
    survey, fmt = bad_survey(data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = base_spec("degree" if command == "fit" else "killworth")
        if fmt == "parquet":
            spec["data"]["survey"] = "survey.parquet"
            survey.to_parquet(folder / "survey.parquet", index=False)
            survey = base_survey()
        write_inputs(folder, spec, survey)
        check_contract(capsys, folder, [command, str(folder / "spec.toml")])


BAD_SIZES = [
    "group,size\nk1,200\nk2,lots\nk3,1000\n",
    "group,size\nk1,200\nk1,300\nk2,500\nk3,1000\n",
    "group,size\nk1,0\nk2,500\nk3,1000\n",
    "group,size\nk1,200\nk2,500\nk3,1e9\n",
    "group,size\nk1,200\nk2,500\n",
    "group,size\nk1,200\nk2,500\nk3,inf\n",
    "name,count\nk1,200\nk2,500\nk3,1000\n",
    "",
]


@settings(CORPUS, max_examples=50)
@given(
    sizes=st.sampled_from(BAD_SIZES),
    command=st.sampled_from(["estimate", "validate", "fit"]),
)
def test_malformed_known_sizes_are_refused(capsys, no_sampling, sizes, command):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder, base_spec("degree" if command == "fit" else "killworth"))
        (folder / "known.csv").write_text(sizes)
        check_contract(capsys, folder, [command, str(folder / "spec.toml")])


# ---------------------------------------------------------------------------------------------
# spec files that are not TOML, or not UTF-8
# ---------------------------------------------------------------------------------------------


@settings(CORPUS, max_examples=250)
@given(
    content=st.one_of(
        st.text(max_size=200).map(lambda t: t.encode("utf-8")),
        st.binary(max_size=200),
        st.text(max_size=100).map(lambda t: ("[data]\n# " + t).encode("utf-16")),
        st.sampled_from(["[data]\nsurvey = 'Ü'\n".encode("latin-1"), b"\xef\xbb\xbf[x]\n"]),
    ),
    command=st.sampled_from(["estimate", "validate", "fit", "calibrate", "compare-priors"]),
)
def test_spec_files_that_are_not_valid_toml(capsys, no_sampling, content, command):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder, content)
        argv = [command, str(folder / "spec.toml")]
        if command == "compare-priors":
            argv += ["--prior-sets", "maltiel2015", "--out", str(folder / "cp")]
        check_contract(capsys, folder, argv)
