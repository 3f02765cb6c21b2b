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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, SpecError, format_rows
from .impute import impute_victims_offenders
from .log import CHANGE_COLUMNS as CHANGE_COLUMNS
from .log import SUMMARY_COLUMNS as SUMMARY_COLUMNS
from .log import PreprocessLog
from .rules import (
    COMBINE_HOW,
    MISSING_POLICIES,
    _check_how,
    _check_policy,
    _is_number,
    _parse_threshold,
    _require_columns,
    combine_questions,
    handle_missing,
    resolve_topcode,
    topcode,
)

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

_CONFIG_KEYS = ("combine", "topcode", "missing", "impute")
_IMPUTE_KEYS = ("victims", "offenders", "victims_per_offender", "household_size", "area_col")
_COMBINE_KEYS = ("sources", "how")


def _did_you_mean(key: Any, allowed: Sequence[str]) -> str:
    hint = difflib.get_close_matches(str(key), list(allowed), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _check_keys(where: str, table: Mapping, allowed: Sequence[str]) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(
                f"{where}: unknown key {key!r}{_did_you_mean(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )


def _resolve_topcode_config(
    value: Any, known: list[str], hidden: list[str]
) -> dict[str, int | float | str]:
    """Map a ``topcode`` config value to {group: threshold}; validate every key and value."""
    where = "[preprocess] topcode"
    if isinstance(value, Mapping):
        if not value:
            raise SpecError(f"{where}: empty table (give a threshold, or leave topcode out)")
        everything = known + hidden
        scopes = {"all": everything, "known": known, "hidden": hidden}
        per_group: dict[str, int | float | str] = {}
        # Order of precedence: all < known / hidden < named group.
        for key in value:
            if not isinstance(key, str) or (key not in scopes and key not in everything):
                raise SpecError(
                    f"{where}: unknown group {key!r}{_did_you_mean(key, everything)} "
                    "(keys are 'all', 'known', 'hidden' or a group; "
                    f"groups: {format_rows(everything, limit=30)})"
                )
            _parse_threshold(value[key], f"{where}.{key}")
        for scope, targets in scopes.items():
            if scope in value:
                per_group.update(dict.fromkeys(targets, value[scope]))
        per_group.update({k: thr for k, thr in value.items() if k not in scopes})
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
        _check_keys(w, entry, _COMBINE_KEYS)
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
        _check_how(target, how)
        out[str(target)] = (list(sources), how)
    return out


def _positive_finite(x: Any) -> bool:
    return _is_number(x) and x > 0 and math.isfinite(x)


def _check_impute_config(value: Any) -> dict[str, Any]:
    where = "[preprocess] impute"
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table with keys victims and offenders")
    _check_keys(where, value, _IMPUTE_KEYS)
    for k in ("victims", "offenders"):
        if k not in value:
            raise SpecError(f"{where}.{k}: missing (name of the {k} column)")
        if not isinstance(value[k], str) or not value[k]:
            raise SpecError(f"{where}.{k}: must be a column name, got {value[k]!r}")
    vpo = value.get("victims_per_offender")
    if vpo is not None and not _positive_finite(vpo):
        raise SpecError(f"{where}.victims_per_offender: must be a positive number, got {vpo!r}")
    hh = value.get("household_size")
    if hh is not None:
        if isinstance(hh, str):
            if not hh.strip():
                raise SpecError(f"{where}.household_size: an area-table column name is empty")
        elif isinstance(hh, Mapping):
            bad = [a for a, x in hh.items() if not _is_number(x) or not x > 0]
            if not hh or bad:
                raise SpecError(
                    f"{where}.household_size: every area's size must be a positive number "
                    f"(bad: {format_rows(bad) if bad else 'empty table'})"
                )
        elif not _positive_finite(hh):
            raise SpecError(
                f"{where}.household_size: must be a positive number, a table of sizes per area "
                f"or an area-table column name, got {hh!r}"
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


def _household_size_column(name: str, area_table: pd.DataFrame | None) -> pd.Series:
    """Each area's mean household size from an area-table column (Series named after it)."""
    where = "[preprocess] impute.household_size"
    if area_table is None:
        raise SpecError(f"{where}: names column '{name}' but there is no area table")
    if name not in area_table.columns:
        raise DataError(
            f"{where}: the area table has no column '{name}' (columns: "
            f"{format_rows([str(c) for c in area_table.columns], limit=12)})"
        )
    hh = pd.to_numeric(area_table[name], errors="coerce").astype(float)
    bad = area_table.index[~(hh > 0) | ~np.isfinite(hh)]
    if len(bad):
        raise DataError(
            f"{where}: area-table column '{name}' must be a positive number in every area; bad "
            f"in areas {format_rows(bad)}"
        )
    return pd.Series(hh.to_numpy(), index=[str(a) for a in area_table.index], name=name)


def preprocess(
    survey: pd.DataFrame,
    known: Sequence[str],
    hidden: Sequence[str],
    config: Mapping[str, Any] | None = None,
    area_table: pd.DataFrame | None = None,
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
            household_size = float | {area = float} | "column", area_col = "area"}``; a
            text ``household_size`` names a column of ``area_table`` (each area's mean
            household size, e.g. derived from the household roster).
        ``missing``
            ``"drop"`` (default), ``"zero"`` or ``"model"``; applies to known + hidden groups.
        ``topcode``
            A threshold for every known group (``30`` or ``"p95"``), or a table whose keys are
            ``"all"``, ``"known"``, ``"hidden"`` or group names (a group's own key wins over
            ``known`` / ``hidden``, which win over ``all``). No top-coding if omitted.
    area_table : pandas.DataFrame, optional
        The area table (index ``area``), for a ``household_size`` given as a column name.

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
    _check_keys("[preprocess]", config, _CONFIG_KEYS)
    known, hidden = list(known), list(hidden)
    groups = known + hidden

    # Validate every setting before touching the data, so a bad spec fails fast.
    combine_cfg = _check_combine_config(config["combine"]) if "combine" in config else {}
    impute_cfg = _check_impute_config(config["impute"]) if "impute" in config else None
    if impute_cfg is not None and isinstance(impute_cfg["household_size"], str):
        impute_cfg["household_size"] = _household_size_column(
            impute_cfg["household_size"], area_table
        )
    policy = config.get("missing", "drop")
    _check_policy(policy)
    topcode_cfg = (
        _resolve_topcode_config(config["topcode"], known, hidden) if "topcode" in config else None
    )

    log = PreprocessLog()
    df = survey.copy()
    for target, (sources, how) in combine_cfg.items():
        df = combine_questions(df, target, sources, how, log)
    _require_columns(df, groups, "[preprocess]")
    if impute_cfg is not None:
        df = impute_victims_offenders(df, **impute_cfg, log=log)
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
