"""The pre-processing rules: combine questions, top-coding (fixed or percentile), missing answers.

Every rule is a function ``(df, ..., log) -> df`` that returns a new frame and appends its step and
each change to a :class:`~bayes_nsum.preprocess.log.PreprocessLog`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, SpecError, format_rows
from .log import PreprocessLog

MISSING_POLICIES = ("drop", "zero", "model")
COMBINE_HOW = ("max", "sum")
_PERCENTILE_RE = re.compile(r"^p(\d+(?:\.\d+)?)$")
# Guard against floating-point noise when rounding a percentile up (7.000000000001 -> 7, not 8).
_CEIL_TOL = 1e-9


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{what}: survey has no column {format_rows(repr(c) for c in missing)} "
            f"(columns: {format_rows(df.columns, limit=10)})"
        )
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise DataError(
            f"{what}: column {format_rows(repr(c) for c in bad)} is not numeric "
            f"(counts must be numbers, empty for a missing answer)"
        )


def _fmt(x: float) -> str:
    if pd.isna(x):
        return "NaN"
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _parse_threshold(threshold: Any, where: str) -> tuple[str, float]:
    """Return ("fixed", value) or ("percentile", q); raise SpecError on a bad threshold."""
    if _is_number(threshold):
        value = float(threshold)
        if not math.isfinite(value) or value <= 0:
            raise SpecError(f"{where}: threshold must be a positive number, got {threshold!r}")
        return "fixed", value
    if isinstance(threshold, str):
        m = _PERCENTILE_RE.match(threshold.strip().lower())
        if m:
            q = float(m.group(1))
            if 0 < q <= 100:
                return "percentile", q
        raise SpecError(
            f"{where}: threshold {threshold!r} is neither a positive number nor a percentile "
            f"like 'p95' or 'p97.5' (0 < p <= 100)"
        )
    raise SpecError(
        f"{where}: threshold must be a positive number or a percentile like 'p95', "
        f"got {threshold!r}"
    )


def _check_how(target: str, how: Any) -> None:
    if how not in COMBINE_HOW:
        raise SpecError(f"[preprocess] combine.{target}.how: must be 'max' or 'sum', got {how!r}")


def _check_policy(policy: Any) -> None:
    if policy not in MISSING_POLICIES:
        raise SpecError(
            f"[preprocess] missing: must be one of {', '.join(MISSING_POLICIES)}, got {policy!r}"
        )


def combine_questions(
    df: pd.DataFrame,
    target: str,
    sources: Sequence[str],
    how: str = "max",
    log: PreprocessLog | None = None,
) -> pd.DataFrame:
    """Combine several questions into one column, row by row.

    The target is the row-wise maximum (``how="max"``) or sum (``how="sum"``) of the sources,
    ignoring missing answers; it is missing only where every source is missing. The sources are
    kept in the frame; the target is created, or replaced if it exists.

    A ``combine`` change is logged for every respondent whose combined value differs from the
    reference value: the target's previous value if the target existed, otherwise the first
    source's answer (what the analysis would have used had only the first question been asked).
    Missing and present count as different. The detail names every source's answer.

    Parameters
    ----------
    df : pandas.DataFrame
        Survey, one row per respondent.
    target : str
        Column to create or replace.
    sources : sequence of str
        Columns to combine (at least one).
    how : {"max", "sum"}
        How to combine.
    log : PreprocessLog, optional
        Log to append to (a new one is used if omitted).

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with the target column set.

    Raises
    ------
    SpecError
        ``how`` is not "max" or "sum", or ``sources`` is empty.
    DataError
        A source column is missing or not numeric.
    """
    log = PreprocessLog() if log is None else log
    _check_how(target, how)
    sources = list(sources)
    if not sources:
        raise SpecError(f"[preprocess] combine.{target}.sources: needs at least one column")
    _require_columns(df, sources, f"[preprocess] combine.{target}")
    out = df.copy()
    values = out[sources].astype(float)
    if how == "max":
        combined = values.max(axis=1, skipna=True)
    else:
        combined = values.sum(axis=1, skipna=True, min_count=1)
    replaced = target in out.columns
    reference = out[target].astype(float) if replaced else values[sources[0]]
    differs = ~((combined == reference) | (combined.isna() & reference.isna()))
    n = 0
    for rid in out.index[differs.to_numpy()]:
        detail = ", ".join(f"{s}={_fmt(values.at[rid, s])}" for s in sources)
        detail += f" -> {how}={_fmt(combined.at[rid])}"
        if replaced:
            detail += f" (replaces existing {target})"
        log.add_change("combine", target, rid, reference.at[rid], combined.at[rid], detail)
        n += 1
    out[target] = combined
    log.add_step(
        "combine",
        {"target": target, "sources": sources, "how": how, "replaced_existing": replaced},
        {target: n},
    )
    return out


def resolve_topcode(df: pd.DataFrame, group: str, threshold: int | float | str) -> dict:
    """Resolve a top-coding threshold to a numeric cap for one group.

    A fixed threshold is its own cap. A percentile ``"pQ"`` is computed over the group's
    non-missing answers with :func:`numpy.percentile` (``method="linear"``) and rounded **up** to
    an integer (answers are counts, so a cap of 7.4 caps at 8, i.e. keeps every answer of 7 or 8
    that the percentile does not clearly exclude); the cap is at least 1, so that a sparse group
    whose percentile is 0 is never wiped out to all zeros.

    Parameters
    ----------
    df : pandas.DataFrame
        Survey.
    group : str
        Column.
    threshold : int, float or str
        A positive number or ``"p95"``, ``"p97.5"``, ...

    Returns
    -------
    dict
        ``{"threshold": threshold, "cap": float}``, plus ``"percentile_value"`` (the unrounded
        percentile) and ``"n_answers"`` for a percentile threshold.

    Raises
    ------
    SpecError
        Bad threshold.
    DataError
        The group has no non-missing answer to compute a percentile from.
    """
    kind, value = _parse_threshold(threshold, f"[preprocess] topcode.{group}")
    if kind == "fixed":
        return {"threshold": threshold, "cap": value}
    answers = df[group].dropna().to_numpy(dtype=float)
    if answers.size == 0:
        raise DataError(
            f"[preprocess] topcode: group {group!r} has no answers to compute {threshold!r} from"
        )
    pct = float(np.percentile(answers, value, method="linear"))
    cap = float(max(1, math.ceil(pct - _CEIL_TOL)))
    return {
        "threshold": threshold,
        "cap": cap,
        "percentile_value": pct,
        "n_answers": int(answers.size),
    }


def topcode(
    df: pd.DataFrame,
    groups: Sequence[str],
    threshold: int | float | str,
    log: PreprocessLog | None = None,
) -> pd.DataFrame:
    """Cap every answer above a threshold at that threshold.

    Parameters
    ----------
    df : pandas.DataFrame
        Survey.
    groups : sequence of str
        Columns to top-code.
    threshold : int, float or str
        A positive number (the same cap for every group), or a percentile string ``"p95"`` /
        ``"p97.5"`` computed per group over its non-missing answers and rounded up to an integer
        (at least 1); see :func:`resolve_topcode`. Scale of Harm used the 95th percentile.
    log : PreprocessLog, optional
        Log to append to. Each capped cell is logged (rule ``topcode``, detail ``"cap=.."``); the
        step records each group's resolved cap.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with answers capped. Missing answers stay missing.

    Raises
    ------
    SpecError
        Bad threshold (not positive, not a number or ``"pQ"``).
    DataError
        A column is missing or not numeric, or a percentile has no answers to use.
    """
    log = PreprocessLog() if log is None else log
    groups = list(groups)
    _parse_threshold(threshold, "[preprocess] topcode")
    _require_columns(df, groups, "[preprocess] topcode")
    out = df.copy()
    caps: dict[str, dict] = {}
    counts: dict[str, int] = {}
    for g in groups:
        resolved = resolve_topcode(out, g, threshold)
        cap = resolved["cap"]
        caps[g] = resolved
        col = out[g].astype(float)
        above = (col > cap).to_numpy()
        detail = f"cap={_fmt(cap)}"
        if "percentile_value" in resolved:
            detail += f" ({threshold}={resolved['percentile_value']:g})"
        for rid, old in zip(out.index[above], col[above], strict=True):
            log.add_change("topcode", g, rid, old, cap, detail)
        col[above] = cap
        out[g] = col
        counts[g] = int(above.sum())
    log.add_step(
        "topcode",
        {
            "threshold": threshold,
            "rounding": "percentile rounded up to an integer, at least 1",
            "caps": {g: r["cap"] for g, r in caps.items()},
            "percentile_values": {
                g: r["percentile_value"] for g, r in caps.items() if "percentile_value" in r
            },
        },
        counts,
    )
    return out


def handle_missing(
    df: pd.DataFrame,
    groups: Sequence[str],
    policy: str = "drop",
    log: PreprocessLog | None = None,
) -> pd.DataFrame:
    """Apply a missing-answer policy to the count columns.

    Parameters
    ----------
    df : pandas.DataFrame
        Survey.
    groups : sequence of str
        Columns whose missing answers are handled (normally known + hidden groups).
    policy : {"drop", "zero", "model"}
        ``"drop"``: respondents with any missing answer among ``groups`` are removed, each logged
        once (rule ``missing_drop``, group ``""``, detail naming the missing groups); the summary
        also counts, per group, the dropped respondents missing that group.
        ``"zero"``: each missing answer is set to 0 and logged (rule ``missing_zero``).
        ``"model"``: nothing changes; the number of missing answers per group is recorded as rule
        ``missing_left_for_model`` so that the model (which must handle them) is not a surprise.
    log : PreprocessLog, optional
        Log to append to.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` after the policy.

    Raises
    ------
    SpecError
        Unknown policy.
    DataError
        A column is missing or not numeric.
    """
    log = PreprocessLog() if log is None else log
    _check_policy(policy)
    groups = list(groups)
    _require_columns(df, groups, "[preprocess] missing")
    out = df.copy()
    isna = out[groups].isna()
    per_group = {g: int(isna[g].sum()) for g in groups}
    if policy == "drop":
        rows = isna.any(axis=1)
        for rid in out.index[rows.to_numpy()]:
            miss = [g for g in groups if isna.at[rid, g]]
            log.add_change(
                "missing_drop", "", rid, float("nan"), float("nan"), "missing: " + ", ".join(miss)
            )
        out = out.loc[~rows.to_numpy()].copy()
        counts = dict(per_group)
        counts[""] = int(rows.sum())
        log.add_step("missing_drop", {"policy": "drop", "groups": groups}, counts)
    elif policy == "zero":
        for g in groups:
            for rid in out.index[isna[g].to_numpy()]:
                log.add_change("missing_zero", g, rid, float("nan"), 0.0, "missing answer set to 0")
            out[g] = out[g].fillna(0.0)
        log.add_step("missing_zero", {"policy": "zero", "groups": groups}, per_group)
    else:
        log.add_step("missing_left_for_model", {"policy": "model", "groups": groups}, per_group)
    return out
