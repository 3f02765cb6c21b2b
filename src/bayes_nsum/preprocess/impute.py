"""The Scale of Harm imputation of the missing side of a victims / offenders pair."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, SpecError, format_rows
from .log import PreprocessLog
from .rules import _fmt, _is_number, _require_columns


def _round_half_up(x: np.ndarray | float) -> np.ndarray | float:
    return np.floor(np.asarray(x, dtype=float) + 0.5)


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
    per_area = isinstance(household_size, (pd.Series, Mapping))
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
    elif per_area:
        hh = pd.Series(household_size, dtype=float)
        if hh.isna().any() or (hh <= 0).any():
            raise SpecError(
                "[preprocess] impute.household_size: every area's size must be positive "
                f"(bad: {format_rows(hh.index[~(hh > 0)])})"
            )
        settings["household_size"] = {str(k): float(x) for k, x in hh.items()}
        if isinstance(household_size, pd.Series) and household_size.name:
            settings["household_size_column"] = str(household_size.name)
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

    new_v = v.copy()
    new_o = o.copy()
    if need_victims.any():
        assert vpo is not None
        for rid in out.index[need_victims]:
            new_v.at[rid] = max(1.0, float(_round_half_up(o.at[rid] * vpo)))
            detail = f"{offenders}={_fmt(o.at[rid])} x victims_per_offender={vpo:g}"
            log.add_change("impute", victims, rid, v.at[rid], new_v.at[rid], detail)
    if need_offenders.any():
        assert hh_per_row is not None
        for rid in out.index[need_offenders]:
            size = float(hh_per_row.at[rid])
            new_o.at[rid] = max(1.0, float(_round_half_up(size)))
            where = f" of area {out.at[rid, area_col]}" if per_area else ""
            detail = f"{victims}={_fmt(v.at[rid])}; mean household size{where}={size:g}"
            log.add_change("impute", offenders, rid, o.at[rid], new_o.at[rid], detail)
    counts = {victims: int(need_victims.sum()), offenders: int(need_offenders.sum())}
    out[victims] = new_v
    out[offenders] = new_o
    log.add_step("impute", settings, counts)
    return out
