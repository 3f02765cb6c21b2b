"""Reading columns of an input table: codes as text, numbers refused when they are not.

Shared by the survey loader (:mod:`bayes_nsum.data`) and the household roster
(:mod:`bayes_nsum.roster`). Every check raises :class:`~bayes_nsum.errors.DataError` with one
line naming the file, the column and the rows (by position, never by id), never a value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError, format_rows


def column(df: pd.DataFrame, col: str, where: str, key: str) -> pd.Series:
    """Column ``col`` of ``df``; a missing column is an error naming the spec ``key``."""
    if col not in df.columns:
        raise DataError(
            f"{where}: column '{col}' (from {key}) not found; columns are "
            f"{', '.join(map(str, df.columns[:12]))}{' ...' if len(df.columns) > 12 else ''}"
        )
    return df[col]


def labels(s: pd.Series) -> pd.Series:
    """Codes as strings; whole numbers stored as floats (SPSS keeps every number as a double)
    are written without a decimal part, so ``101.0`` in a .sav file matches ``101`` in a CSV."""
    if pd.api.types.is_float_dtype(s):
        x = s.to_numpy(dtype=float, na_value=np.nan)
        ok = np.isfinite(x)
        if np.all(x[ok] == np.round(x[ok])):
            return pd.Series(
                [f"{v:.0f}" if f else str(v) for v, f in zip(x, ok, strict=True)],
                index=s.index,
                name=s.name,
            )
    return s.astype(str)


def numbers(raw: pd.Series, where: str, what: str) -> np.ndarray:
    """A column of numbers as floats (NaN = empty); refuses true/false values, dates, times and
    text, naming the column and the rows (never the values)."""
    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise DataError(f"{where}: {what} holds true/false values, not numbers")
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    ):
        raise DataError(f"{where}: {what} holds dates or times, not numbers")
    if isinstance(dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    if raw.dtype == object:
        kinds = {type(v) for v in raw.dropna().to_numpy()}
        if any(issubclass(k, (bool, np.bool_)) for k in kinds):
            raise DataError(f"{where}: {what} holds true/false values, not numbers")
        if any(issubclass(k, (pd.Timestamp, np.datetime64, pd.Timedelta)) for k in kinds) or any(
            k.__module__ == "datetime" for k in kinds
        ):
            raise DataError(f"{where}: {what} holds dates or times, not numbers")
    if pd.api.types.is_complex_dtype(raw.dtype):
        raise DataError(f"{where}: {what} holds complex numbers")
    num = pd.to_numeric(raw, errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy() & raw.notna().to_numpy())
    if len(bad):
        raise DataError(
            f"{where}: {what} has text instead of a number in rows {format_rows(bad + 1)}"
        )
    return num.to_numpy(dtype=float, na_value=np.nan)


def counts(df: pd.DataFrame, names: list[str], where: str, what: str = "group") -> pd.DataFrame:
    """Count columns as floats (NaN = missing): integers >= 0, finite; ``df`` is indexed by
    row position. Refused otherwise, naming the column and the rows."""
    out = {}
    for g in names:
        if g not in df.columns:
            raise DataError(f"{where}: no column for {what} '{g}'")
        x = numbers(df[g], where, f"column '{g}'")
        seen = ~np.isnan(x)
        with np.errstate(invalid="ignore"):
            fraction = np.abs(x - np.round(x))
        checks = (
            (seen & ~np.isfinite(x), "infinite answers"),
            (np.isfinite(x) & (fraction > 1e-9), "non-integer counts"),
            (seen & (x < 0), "negative counts"),
        )
        for mask, why in checks:
            if mask.any():
                rows = np.flatnonzero(mask) + 1
                raise DataError(f"{where}: column '{g}' has {why} in rows {format_rows(rows)}")
        out[g] = x
    return pd.DataFrame(out, index=df.index)
