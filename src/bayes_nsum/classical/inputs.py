"""Validation of the inputs of the classical estimators and the validated arrays they share."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, format_rows

METHODS = ("mle", "pimle")
MISSING = ("raise", "skip")


def check_counts(counts: pd.DataFrame) -> None:
    if not isinstance(counts, pd.DataFrame):
        raise DataError(f"counts must be a pandas DataFrame, got {type(counts).__name__}")
    if len(counts) == 0:
        raise DataError("counts has no respondents")
    dup = counts.index[counts.index.duplicated()]
    if len(dup):
        raise DataError(f"counts has duplicated respondent ids: {format_rows(dup.unique())}")


def check_option(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise DataError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_total(total_population: float, name: str = "total_population") -> float:
    try:
        N = float(total_population)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a number, got {total_population!r}") from None
    if not math.isfinite(N) or N <= 0:
        raise DataError(f"{name} must be positive and finite, got {total_population!r}")
    return N


def check_known_sizes(known_sizes: pd.Series, counts: pd.DataFrame) -> pd.Series:
    if isinstance(known_sizes, Mapping):
        known_sizes = pd.Series(dict(known_sizes), dtype=float)
    if not isinstance(known_sizes, pd.Series):
        raise DataError(f"known_sizes must be a pandas Series, got {type(known_sizes).__name__}")
    if len(known_sizes) == 0:
        raise DataError("known_sizes is empty: at least one known group is needed")
    dup = known_sizes.index[known_sizes.index.duplicated()]
    if len(dup):
        raise DataError(f"known_sizes lists group {dup[0]!r} more than once")
    absent = [g for g in known_sizes.index if g not in counts.columns]
    if absent:
        raise DataError(f"known group {absent[0]!r} has no column in the counts")
    try:
        sizes = known_sizes.astype(float)
    except (TypeError, ValueError):
        raise DataError("known_sizes holds non-numeric sizes") from None
    bad = sizes.index[~np.isfinite(sizes.to_numpy()) | (sizes.to_numpy() < 0)]
    if len(bad):
        raise DataError(f"known group {bad[0]!r} has a missing, infinite or negative size")
    if sizes.sum() <= 0:
        raise DataError("the known group sizes sum to zero")
    return sizes


def check_hidden(hidden: str | Sequence[str], counts: pd.DataFrame, known: pd.Index) -> list[str]:
    groups = [hidden] if isinstance(hidden, str) else list(hidden)
    if not groups:
        raise DataError("no hidden group given")
    seen = set()
    for g in groups:
        if g in seen:
            raise DataError(f"hidden group {g!r} is listed twice")
        seen.add(g)
        if g not in counts.columns:
            raise DataError(f"hidden group {g!r} has no column in the counts")
        if g in known:
            raise DataError(
                f"group {g!r} is both hidden and known; drop it from the known sizes to estimate "
                "it as hidden"
            )
    return groups


def numeric_block(counts: pd.DataFrame, columns: list, missing: str) -> np.ndarray:
    """Float array of ``counts[columns]``; checks types, signs and (for missing='raise') NaN."""
    block = counts.loc[:, columns]
    for col in columns:
        if not pd.api.types.is_numeric_dtype(block[col]) or pd.api.types.is_bool_dtype(block[col]):
            raise DataError(f"column {col!r} is not numeric")
    arr = block.to_numpy(dtype=float)
    nan = np.isnan(arr)
    if missing == "raise" and nan.any():
        j = int(np.flatnonzero(nan.any(axis=0))[0])
        others = [columns[k] for k in np.flatnonzero(nan.any(axis=0))[1:]]
        extra = f" (also columns {format_rows(others)})" if others else ""
        raise DataError(
            f"column {columns[j]!r} has missing answers at rows "
            f"{format_rows(counts.index[nan[:, j]])}{extra}; remove them or use missing='skip'"
        )
    bad = ~nan & (~np.isfinite(arr) | (arr < 0))
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise DataError(
            f"column {columns[j]!r} has negative or infinite answers at rows "
            f"{format_rows(counts.index[bad[:, j]])}"
        )
    return arr


def align(values: pd.Series | None, index: pd.Index, name: str) -> pd.Series | None:
    """Align a per-respondent Series on ``index``; every respondent needs a non-missing value."""
    if values is None:
        return None
    if not isinstance(values, pd.Series):
        arr = np.asarray(values)
        if arr.ndim != 1 or len(arr) != len(index):
            raise DataError(f"{name} must be a Series aligned on the respondent ids")
        values = pd.Series(arr, index=index)
    if values.index.has_duplicates:
        dup = values.index[values.index.duplicated()].unique()
        raise DataError(f"{name} has duplicated respondent ids: {format_rows(dup)}")
    absent = index.difference(values.index, sort=False)
    if len(absent):
        raise DataError(f"{name} has no value for rows {format_rows(absent)}")
    out = values.reindex(index)
    miss = out.isna().to_numpy()
    if miss.any():
        raise DataError(f"{name} is missing for rows {format_rows(index[miss])}")
    return out


def weights_array(weights: pd.Series | None, index: pd.Index) -> np.ndarray:
    w = align(weights, index, "weights")
    if w is None:
        return np.ones(len(index))
    try:
        arr = w.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise DataError("weights are not numeric") from None
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise DataError(f"weights are infinite or negative for rows {format_rows(index[bad])}")
    if arr.sum() <= 0:
        raise DataError("weights sum to zero")
    return arr


def _positive(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise DataError(f"{what} must be positive, got {value!r}")
    return v


def check_factors(
    factors: Mapping[str, float] | None, hidden: list[str], name: str, upper_one: bool = False
) -> np.ndarray:
    """Adjustment factors as an array over ``hidden`` (missing key = 1)."""
    out = np.ones(len(hidden))
    if factors is None:
        return out
    if not isinstance(factors, Mapping | pd.Series):
        raise DataError(f"{name} must be a dict group -> value, got {type(factors).__name__}")
    for key, value in dict(factors).items():
        if key not in hidden:
            raise DataError(f"{name} names group {key!r}, which is not a hidden group here")
        v = _positive(value, f"{name} for group {key!r}")
        if upper_one and v > 1:
            raise DataError(f"{name} for group {key!r} must lie in (0, 1], got {value!r}")
        out[hidden.index(key)] = v
    return out


def check_denominators(
    denominators: Mapping[str, float | str] | None, hidden: list[str], allow_str: bool = False
) -> dict:
    if denominators is None:
        return {}
    if not isinstance(denominators, Mapping | pd.Series):
        raise DataError("denominators must be a dict group -> population")
    out = {}
    for key, value in dict(denominators).items():
        if key not in hidden:
            raise DataError(f"denominators names group {key!r}, which is not a hidden group here")
        what = f"denominator of group {key!r}"
        if isinstance(value, str) and not allow_str:
            raise DataError(f"{what} must be a number, got {value!r}")
        out[key] = value if isinstance(value, str) else _positive(value, what)
    return out


def check_boot(n_boot: int, interval_prob: float) -> int:
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 0:
        raise DataError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    try:
        p = float(interval_prob)
    except (TypeError, ValueError):
        raise DataError(f"interval_prob must be a number, got {interval_prob!r}") from None
    if not 0.0 < p < 1.0:
        raise DataError(f"interval_prob must lie strictly between 0 and 1, got {interval_prob!r}")
    return int(n_boot)


def degree_array(y_known: np.ndarray, sizes: np.ndarray, N: float) -> np.ndarray:
    """Degrees from known answers; NaN answers (missing='skip') drop out of both sums."""
    obs = ~np.isnan(y_known)
    num = np.where(obs, y_known, 0.0).sum(axis=1)
    den = (obs * sizes[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = N * num / den
    d[den <= 0] = np.nan  # no answered known group (or only groups of size 0)
    return d


def known_degrees(
    counts: pd.DataFrame, known_sizes: pd.Series, total_population: float, missing: str
) -> np.ndarray:
    """Checked inputs of :func:`~bayes_nsum.classical.known_population_degree`, then degrees."""
    check_counts(counts)
    missing = check_option(missing, MISSING, "missing")
    N = check_total(total_population)
    sizes = check_known_sizes(known_sizes, counts)
    return degree_array(numeric_block(counts, list(sizes.index), missing), sizes.to_numpy(), N)


class Prepared:
    """Validated arrays shared by the public functions."""

    def __init__(
        self,
        counts: pd.DataFrame,
        known_sizes: pd.Series,
        total_population: float,
        hidden: str | Sequence[str],
        weights: pd.Series | None,
        method: str,
        missing: str,
    ) -> None:
        check_counts(counts)
        self.method = check_option(method, METHODS, "method")
        self.missing = check_option(missing, MISSING, "missing")
        self.N = check_total(total_population)
        self.sizes = check_known_sizes(known_sizes, counts)
        self.hidden = check_hidden(hidden, counts, self.sizes.index)
        self.index = counts.index
        self.y_known = numeric_block(counts, list(self.sizes.index), self.missing)
        self.y_hidden = numeric_block(counts, self.hidden, self.missing)
        self.w = weights_array(weights, counts.index)
        self.degree = degree_array(self.y_known, self.sizes.to_numpy(), self.N)

    def adjust(self, degree_ratio, transmission) -> None:
        r"""Check the adjustment factors; ``adj`` is :math:`\delta_H \tau_H` per hidden group."""
        ratio = check_factors(degree_ratio, self.hidden, "degree_ratio")
        self.adj = ratio * check_factors(transmission, self.hidden, "transmission", upper_one=True)

    def dropped(self) -> dict:
        """``n_zero_degree``, ``n_dropped`` and ``method``, as recorded in the ``attrs``."""
        n_zero = int(np.sum(self.degree == 0))
        n_dropped = int(np.sum(np.isnan(self.degree))) + (n_zero if self.method == "pimle" else 0)
        return {"n_zero_degree": n_zero, "n_dropped": n_dropped, "method": self.method}
