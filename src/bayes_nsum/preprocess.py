"""Survey pre-processing in which nothing is dropped or changed silently.

Every rule is a small function ``(df, ..., log) -> df`` that returns a new frame (the caller's frame is
never modified) and appends to a :class:`PreprocessLog`:

* one entry in ``log.steps`` per rule that ran, with its *resolved* settings (for example the numeric
  caps that a ``"p95"`` threshold turned into) and its per-group counts;
* one entry in ``log.changes`` per changed cell or dropped respondent, so that every change can be
  listed respondent by respondent.

Rules (see ``methods.md``, "Top-coding" and "The Scale of Harm design"):

:func:`combine_questions`
    Combine several questions into one answer, e.g. ``victims = max(victims_general,
    victims_livestream)``.
:func:`impute_victims_offenders`
    The Scale of Harm imputation of the missing side of a victims / offenders pair.
:func:`handle_missing`
    Drop respondents with missing answers, set missing answers to 0, or leave them for the model.
:func:`topcode`
    Cap answers at a fixed value or at a per-group percentile.

:func:`preprocess` runs them from a spec's ``[preprocess]`` table in the order
combine -> impute -> missing -> topcode:

* combine first, because the other rules act on the combined question;
* impute before the missing-answer rule and before top-coding, so that imputed values are themselves
  top-coded (an imputed household size or victim count is capped like any answer) and the imputation
  sees every respondent who answered both questions;
* missing before top-coding, so that percentile caps are computed over the respondents that are kept.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_nsum.errors import DataError, SpecError, format_rows

__all__ = [
    "PreprocessLog",
    "combine_questions",
    "topcode",
    "handle_missing",
    "impute_victims_offenders",
    "resolve_topcode",
    "preprocess",
    "MISSING_POLICIES",
    "COMBINE_HOW",
]

MISSING_POLICIES = ("drop", "zero", "model")
COMBINE_HOW = ("max", "sum")
CHANGE_COLUMNS = ["rule", "group", "respondent", "old", "new", "detail"]
SUMMARY_COLUMNS = ["rule", "group", "n_changed"]
_PERCENTILE_RE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_CONFIG_KEYS = ("combine", "topcode", "missing", "impute")
_IMPUTE_KEYS = ("victims", "offenders", "victims_per_offender", "household_size", "area_col")
_COMBINE_KEYS = ("sources", "how")
# Guard against floating-point noise when rounding a percentile up (7.000000000001 -> 7, not 8).
_CEIL_TOL = 1e-9


# ----------------------------------------------------------------------------------------------
# The log
# ----------------------------------------------------------------------------------------------


@dataclass
class PreprocessLog:
    """Record of every pre-processing step and every change it made.

    Attributes
    ----------
    changes : list of dict
        One entry per changed cell or dropped respondent, with keys ``rule``, ``group``,
        ``respondent``, ``old``, ``new`` and ``detail``. A whole-respondent drop has group ``""``
        and ``old``/``new`` NaN.
    steps : list of dict
        One entry per step that ran: ``{"rule": str, "settings": dict, "counts": dict}``, where
        ``settings`` are the resolved settings of the step and ``counts`` maps every group that the
        step looked at to its number of changes (zeros included; for a drop, also ``""`` to the
        number of respondents dropped).
    """

    changes: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)

    def add_change(
        self, rule: str, group: str, respondent: Any, old: float, new: float, detail: str = ""
    ) -> None:
        """Append one change (a changed cell or, with ``group=""``, a dropped respondent)."""
        self.changes.append(
            {
                "rule": rule,
                "group": group,
                "respondent": str(respondent),
                "old": _py_float(old),
                "new": _py_float(new),
                "detail": detail,
            }
        )

    def add_step(self, rule: str, settings: dict, counts: Mapping[str, int]) -> None:
        """Append one step with its resolved settings and per-group change counts."""
        self.steps.append(
            {
                "rule": rule,
                "settings": _jsonable(settings),
                "counts": {str(g): int(n) for g, n in counts.items()},
            }
        )

    def summary(self) -> pd.DataFrame:
        """Number of changes per rule and group.

        Returns
        -------
        pandas.DataFrame
            Columns ``rule``, ``group``, ``n_changed``; one row per rule x group that a step looked
            at, in the order the steps ran, including groups with no change. For
            ``missing_left_for_model`` the count is the number of missing answers left in place.
        """
        rows = [
            {"rule": step["rule"], "group": g, "n_changed": n}
            for step in self.steps
            for g, n in step.get("counts", {}).items()
        ]
        if not rows:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS}).astype(
                {"n_changed": "int64"}
            )
        out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        out = out.groupby(["rule", "group"], sort=False, as_index=False)["n_changed"].sum()
        out["n_changed"] = out["n_changed"].astype("int64")
        return out

    def to_frame(self) -> pd.DataFrame:
        """The respondent-by-respondent listing of changes.

        Returns
        -------
        pandas.DataFrame
            Columns ``rule``, ``group``, ``respondent``, ``old``, ``new``, ``detail``.
        """
        if not self.changes:
            return pd.DataFrame(
                {
                    "rule": pd.Series(dtype=object),
                    "group": pd.Series(dtype=object),
                    "respondent": pd.Series(dtype=object),
                    "old": pd.Series(dtype=float),
                    "new": pd.Series(dtype=float),
                    "detail": pd.Series(dtype=object),
                }
            )
        out = pd.DataFrame(self.changes, columns=CHANGE_COLUMNS)
        out["old"] = out["old"].astype(float)
        out["new"] = out["new"].astype(float)
        return out

    def write(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write the summary and the listing as CSV files, each atomically.

        Parameters
        ----------
        directory : path-like
            Folder to write into (created if needed).

        Returns
        -------
        dict of str to pathlib.Path
            ``{"summary": .../preprocess_log.csv, "changes": .../preprocess_changes.csv}``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "summary": directory / "preprocess_log.csv",
            "changes": directory / "preprocess_changes.csv",
        }
        _write_csv_atomic(self.summary(), paths["summary"])
        _write_csv_atomic(self.to_frame(), paths["changes"])
        return paths

    def to_dict(self) -> dict:
        """JSON-able summary for provenance: the steps with their settings and counts.

        Returns
        -------
        dict
            ``{"steps": [...], "n_changes": int, "n_changes_by_rule": {rule: int}}``.
        """
        by_rule: dict[str, int] = {}
        for change in self.changes:
            by_rule[change["rule"]] = by_rule.get(change["rule"], 0) + 1
        return {
            "steps": _jsonable(self.steps),
            "n_changes": len(self.changes),
            "n_changes_by_rule": by_rule,
        }


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _py_float(x: Any) -> float:
    if x is None:
        return float("nan")
    return float(x)


def _jsonable(obj: Any) -> Any:
    """Convert numpy / pandas scalars and containers to plain Python for JSON."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.Series):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) else f
    return obj


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


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


def _round_half_up(x: np.ndarray | float) -> np.ndarray | float:
    return np.floor(np.asarray(x, dtype=float) + 0.5)


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


# ----------------------------------------------------------------------------------------------
# Rules
# ----------------------------------------------------------------------------------------------


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
    if how not in COMBINE_HOW:
        raise SpecError(f"[preprocess] combine.{target}.how: must be 'max' or 'sum', got {how!r}")
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
    if policy not in MISSING_POLICIES:
        raise SpecError(
            f"[preprocess] missing: must be one of {', '.join(MISSING_POLICIES)}, got {policy!r}"
        )
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


def impute_victims_offenders(
    df: pd.DataFrame,
    victims: str,
    offenders: str,
    victims_per_offender: float | None = None,
    household_size: float | pd.Series | Mapping[str, float] | None = None,
    area_col: str = "area",
    log: PreprocessLog | None = None,
) -> pd.DataFrame:
    """Scale of Harm imputation of the missing side of a victims / offenders pair.

    Both rules look at the answers as given (before either imputes), and respondents with a missing
    answer to either question are left alone.

    * Offenders > 0 but victims == 0: victims are set to ``offenders * victims_per_offender``,
      rounded half up, at least 1 (a respondent who knows an offender is taken to know a victim).
      ``victims_per_offender`` defaults to ``sum(victims) / sum(offenders)`` over respondents who
      reported both > 0; the value used and its source are recorded in the step settings.
    * Victims > 0 but offenders == 0: offenders are set to the mean household size of the
      respondent's area, rounded half up, at least 1.

    Parameters
    ----------
    df : pandas.DataFrame
        Survey.
    victims, offenders : str
        The two columns.
    victims_per_offender : float, optional
        Victims per offender; if omitted, the ratio of sums described above.
    household_size : float, pandas.Series or mapping, optional
        Mean household size: one number, or per area (a Series or mapping indexed by the values
        of ``area_col``). Needed only if some respondent reports victims but no offenders.
    area_col : str
        Area column, used when ``household_size`` is per area.
    log : PreprocessLog, optional
        Log to append to. Changes use rule ``impute`` with group = the column imputed.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with imputed values.

    Raises
    ------
    SpecError
        A rule is needed but its setting is missing, or a setting is not positive.
    DataError
        A column is missing, an area has no household size, or the default ratio has no
        respondent reporting both victims and offenders to be computed from.
    """
    log = PreprocessLog() if log is None else log
    _require_columns(df, [victims, offenders], "[preprocess] impute")
    out = df.copy()
    v = out[victims].astype(float)
    o = out[offenders].astype(float)
    need_victims = ((o > 0) & (v == 0)).to_numpy()
    need_offenders = ((v > 0) & (o == 0)).to_numpy()
    settings: dict[str, Any] = {
        "victims": victims,
        "offenders": offenders,
        "rounding": "half up, at least 1",
    }

    # victims per offender
    if victims_per_offender is None:
        both = (v > 0) & (o > 0)
        n_both = int(both.sum())
        if n_both == 0:
            if need_victims.any():
                raise DataError(
                    "[preprocess] impute: victims_per_offender not given and no respondent reports "
                    f"both {victims} > 0 and {offenders} > 0 to compute it from"
                )
            vpo = None
            vpo_source = "not needed (no respondent reports both)"
        else:
            vpo = float(v[both].sum() / o[both].sum())
            vpo_source = (
                f"sum({victims}) / sum({offenders}) over {n_both} respondents reporting both > 0"
            )
    else:
        if not _is_number(victims_per_offender) or not victims_per_offender > 0:
            raise SpecError(
                "[preprocess] impute.victims_per_offender: must be a positive number, "
                f"got {victims_per_offender!r}"
            )
        vpo = float(victims_per_offender)
        vpo_source = "given"
    settings["victims_per_offender"] = vpo
    settings["victims_per_offender_source"] = vpo_source

    # household size
    hh_per_row: pd.Series | None = None
    if household_size is None:
        settings["household_size"] = None
        if need_offenders.any():
            rows = out.index[need_offenders]
            raise SpecError(
                "[preprocess] impute.household_size: needed because "
                f"{len(rows)} respondents report {victims} > 0 but {offenders} == 0 "
                f"(respondents {format_rows(rows)})"
            )
    elif _is_number(household_size):
        if not household_size > 0:
            raise SpecError(
                f"[preprocess] impute.household_size: must be positive, got {household_size!r}"
            )
        settings["household_size"] = float(household_size)
        hh_per_row = pd.Series(float(household_size), index=out.index)
    elif isinstance(household_size, (pd.Series, Mapping)):
        hh = pd.Series(household_size, dtype=float)
        if hh.isna().any() or (hh <= 0).any():
            raise SpecError(
                "[preprocess] impute.household_size: every area's size must be positive "
                f"(bad: {format_rows(hh.index[~(hh > 0)])})"
            )
        settings["household_size"] = {str(k): float(x) for k, x in hh.items()}
        settings["area_col"] = area_col
        if need_offenders.any():
            if area_col not in out.columns:
                raise DataError(
                    f"[preprocess] impute: survey has no area column {area_col!r} "
                    "(needed for a per-area household size)"
                )
            areas = out.loc[need_offenders, area_col]
            unknown = sorted({str(a) for a in areas if a not in hh.index})
            if unknown:
                raise DataError(
                    f"[preprocess] impute.household_size: no size for area {format_rows(unknown)}"
                )
            hh_per_row = out[area_col].map(hh)
    else:
        raise SpecError(
            "[preprocess] impute.household_size: must be a positive number or a per-area table, "
            f"got {household_size!r}"
        )

    counts = {victims: 0, offenders: 0}
    new_v = v.copy()
    new_o = o.copy()
    if need_victims.any():
        assert vpo is not None
        for rid in out.index[need_victims]:
            value = max(1.0, float(_round_half_up(o.at[rid] * vpo)))
            log.add_change(
                "impute",
                victims,
                rid,
                v.at[rid],
                value,
                f"{offenders}={_fmt(o.at[rid])} x victims_per_offender={vpo:g}",
            )
            new_v.at[rid] = value
            counts[victims] += 1
    if need_offenders.any():
        assert hh_per_row is not None
        for rid in out.index[need_offenders]:
            size = float(hh_per_row.at[rid])
            value = max(1.0, float(_round_half_up(size)))
            where = (
                f" of area {out.at[rid, area_col]}"
                if isinstance(household_size, (pd.Series, Mapping))
                else ""
            )
            log.add_change(
                "impute",
                offenders,
                rid,
                o.at[rid],
                value,
                f"{victims}={_fmt(v.at[rid])}; mean household size{where}={size:g}",
            )
            new_o.at[rid] = value
            counts[offenders] += 1
    out[victims] = new_v
    out[offenders] = new_o
    log.add_step("impute", settings, counts)
    return out


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def _unknown_key(where: str, key: Any, allowed: Sequence[str]) -> SpecError:
    hint = difflib.get_close_matches(str(key), list(allowed), n=1)
    msg = f"{where}: unknown key {key!r}"
    if hint:
        msg += f" (did you mean {hint[0]!r}?)"
    msg += f"; allowed: {', '.join(allowed)}"
    return SpecError(msg)


def _resolve_topcode_config(
    value: Any, known: list[str], hidden: list[str]
) -> dict[str, int | float | str]:
    """Map a ``topcode`` config value to {group: threshold}; validate every key and value."""
    where = "[preprocess] topcode"
    if isinstance(value, Mapping):
        if not value:
            raise SpecError(f"{where}: empty table (give a threshold, or leave topcode out)")
        everything = known + hidden
        per_group: dict[str, int | float | str] = {}
        # Order of precedence: all < known / hidden < named group.
        for key in value:
            if not isinstance(key, str) or (
                key not in ("all", "known", "hidden") and key not in everything
            ):
                hint = difflib.get_close_matches(str(key), everything, n=1)
                msg = f"{where}: unknown group {key!r}"
                if hint:
                    msg += f" (did you mean {hint[0]!r}?)"
                msg += (
                    f" (keys are 'all', 'known', 'hidden' or a group; "
                    f"groups: {format_rows(everything, limit=30)})"
                )
                raise SpecError(msg)
            _parse_threshold(value[key], f"{where}.{key}")
        for scope in ("all", "known", "hidden"):
            if scope in value:
                targets = {"all": everything, "known": known, "hidden": hidden}[scope]
                for g in targets:
                    per_group[g] = value[scope]
        for key, thr in value.items():
            if key not in ("all", "known", "hidden"):
                per_group[key] = thr
        return per_group
    _parse_threshold(value, where)
    return {g: value for g in known}


def _check_combine_config(value: Any) -> dict[str, tuple[list[str], str]]:
    where = "[preprocess] combine"
    if not isinstance(value, Mapping) or not value:
        raise SpecError(
            f"{where}: must be a table like {{victims = {{sources = ['v1', 'v2'], how = 'max'}}}}"
        )
    out: dict[str, tuple[list[str], str]] = {}
    for target, entry in value.items():
        w = f"{where}.{target}"
        if not isinstance(entry, Mapping):
            raise SpecError(f"{w}: must be a table with keys sources and how")
        for k in entry:
            if k not in _COMBINE_KEYS:
                raise _unknown_key(w, k, _COMBINE_KEYS)
        if "sources" not in entry:
            raise SpecError(f"{w}.sources: missing (list of the columns to combine)")
        sources = entry["sources"]
        if (
            isinstance(sources, str)
            or not isinstance(sources, Sequence)
            or not sources
            or not all(isinstance(s, str) for s in sources)
        ):
            raise SpecError(
                f"{w}.sources: must be a non-empty list of column names, got {sources!r}"
            )
        how = entry.get("how", "max")
        if how not in COMBINE_HOW:
            raise SpecError(f"{w}.how: must be 'max' or 'sum', got {how!r}")
        out[str(target)] = (list(sources), how)
    return out


def _check_impute_config(value: Any) -> dict[str, Any]:
    where = "[preprocess] impute"
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table with keys victims and offenders")
    for k in value:
        if k not in _IMPUTE_KEYS:
            raise _unknown_key(where, k, _IMPUTE_KEYS)
    for k in ("victims", "offenders"):
        if k not in value:
            raise SpecError(f"{where}.{k}: missing (name of the {k} column)")
        if not isinstance(value[k], str) or not value[k]:
            raise SpecError(f"{where}.{k}: must be a column name, got {value[k]!r}")
    vpo = value.get("victims_per_offender")
    if vpo is not None and (not _is_number(vpo) or not vpo > 0 or not math.isfinite(vpo)):
        raise SpecError(f"{where}.victims_per_offender: must be a positive number, got {vpo!r}")
    hh = value.get("household_size")
    if hh is not None:
        if isinstance(hh, Mapping):
            bad = [a for a, x in hh.items() if not _is_number(x) or not x > 0]
            if not hh or bad:
                raise SpecError(
                    f"{where}.household_size: every area's size must be a positive number "
                    f"(bad: {format_rows(bad) if bad else 'empty table'})"
                )
        elif not _is_number(hh) or not hh > 0 or not math.isfinite(hh):
            raise SpecError(
                f"{where}.household_size: must be a positive number or a table of sizes per area, "
                f"got {hh!r}"
            )
    area_col = value.get("area_col", "area")
    if not isinstance(area_col, str) or not area_col:
        raise SpecError(f"{where}.area_col: must be a column name, got {area_col!r}")
    return {
        "victims": value["victims"],
        "offenders": value["offenders"],
        "victims_per_offender": vpo,
        "household_size": dict(hh) if isinstance(hh, Mapping) else hh,
        "area_col": area_col,
    }


def preprocess(
    survey: pd.DataFrame,
    known: Sequence[str],
    hidden: Sequence[str],
    config: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, PreprocessLog]:
    """Run the pre-processing rules of a spec's ``[preprocess]`` table.

    Order: combine -> impute -> missing -> topcode. Combining comes first because the other rules
    act on the combined questions; imputation comes before top-coding so that imputed values are
    capped like any answer; the missing-answer rule comes before top-coding so that percentile caps
    are computed over the respondents that are kept.

    Parameters
    ----------
    survey : pandas.DataFrame
        Survey, index = respondent id, one numeric column per group (NaN = missing answer). Not
        modified.
    known, hidden : sequence of str
        Known and hidden group columns.
    config : mapping, optional
        The ``[preprocess]`` table. Keys (all optional):

        ``combine``
            ``{target = {sources = [...], how = "max" | "sum"}}`` (how defaults to "max").
        ``impute``
            ``{victims = col, offenders = col, victims_per_offender = float,
            household_size = float | {area = float}, area_col = "area"}``.
        ``missing``
            ``"drop"`` (default), ``"zero"`` or ``"model"``; applies to known + hidden groups.
        ``topcode``
            A threshold for every known group (``30`` or ``"p95"``), or a table whose keys are
            ``"all"``, ``"known"``, ``"hidden"`` or group names (a group's own key wins over
            ``known`` / ``hidden``, which win over ``all``). No top-coding if omitted.

    Returns
    -------
    survey : pandas.DataFrame
        The pre-processed copy.
    log : PreprocessLog
        Every step with its resolved settings and every change.

    Raises
    ------
    SpecError
        Unknown key or bad value in ``config``; the message names the key.
    DataError
        A column is missing, or no respondent is left.
    """
    config = {} if config is None else config
    if not isinstance(config, Mapping):
        raise SpecError(f"[preprocess]: must be a table, got {type(config).__name__}")
    for key in config:
        if key not in _CONFIG_KEYS:
            raise _unknown_key("[preprocess]", key, _CONFIG_KEYS)
    known = list(known)
    hidden = list(hidden)
    groups = known + hidden

    # Validate every setting before touching the data, so a bad spec fails fast.
    combine_cfg = _check_combine_config(config["combine"]) if "combine" in config else {}
    impute_cfg = _check_impute_config(config["impute"]) if "impute" in config else None
    policy = config.get("missing", "drop")
    if policy not in MISSING_POLICIES:
        raise SpecError(
            f"[preprocess] missing: must be one of {', '.join(MISSING_POLICIES)}, got {policy!r}"
        )
    topcode_cfg = (
        _resolve_topcode_config(config["topcode"], known, hidden) if "topcode" in config else None
    )

    log = PreprocessLog()
    df = survey.copy()
    for target, (sources, how) in combine_cfg.items():
        df = combine_questions(df, target, sources, how, log)
    _require_columns(df, groups, "[preprocess]")
    if impute_cfg is not None:
        df = impute_victims_offenders(
            df,
            impute_cfg["victims"],
            impute_cfg["offenders"],
            victims_per_offender=impute_cfg["victims_per_offender"],
            household_size=impute_cfg["household_size"],
            area_col=impute_cfg["area_col"],
            log=log,
        )
    n_before = len(df)
    df = handle_missing(df, groups, policy, log)
    if len(df) == 0:
        raise DataError(
            f"survey is empty after pre-processing ({n_before} dropped for missing answers)"
        )
    if topcode_cfg:
        batches: dict[tuple[str, Any], list[str]] = {}
        for g, thr in topcode_cfg.items():
            batches.setdefault((type(thr).__name__, thr), []).append(g)
        for (_, thr), gs in batches.items():
            df = topcode(df, gs, thr, log)
    return df, log
