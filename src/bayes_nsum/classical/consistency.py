"""Hold-one-out internal consistency of the known groups, and its summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .inputs import check_counts, check_known_sizes
from .national import scale_up


def internal_consistency(
    counts: pd.DataFrame,
    known_sizes: pd.Series,
    total_population: float,
    weights: pd.Series | None = None,
    method: str = "mle",
    missing: str = "raise",
) -> pd.DataFrame:
    """Hold-one-out internal consistency check of the known groups.

    Each known group :math:`k` in turn is treated as hidden: degrees are computed from the other
    known groups and :math:`N_k` is estimated with :func:`scale_up` (Killworth et al. 1998;
    Feehan & Salganik 2016 use it to diagnose reporting errors). Large errors point to groups
    that respondents misreport (recall, barrier or transmission effects).

    Parameters
    ----------
    counts, known_sizes, total_population, weights, method, missing
        As in :func:`scale_up`; at least two known groups are needed and every size must be
        positive.

    Returns
    -------
    pandas.DataFrame
        One row per known group, columns exactly ``group``, ``true_size``, ``estimate``,
        ``error`` (estimate - true size) and ``relative_error`` (error / true size).
    """
    check_counts(counts)
    sizes = check_known_sizes(known_sizes, counts)
    if len(sizes) < 2:
        raise DataError("internal consistency needs at least two known groups")
    zero = sizes.index[sizes.to_numpy() <= 0]
    if len(zero):
        raise DataError(f"known group {zero[0]!r} has size zero")
    rows = []
    for g in sizes.index:
        est = scale_up(
            counts, sizes.drop(g), total_population, [g], weights, method, missing=missing
        ).iloc[0]
        true = float(sizes[g])
        rows.append([g, true, est, est - true, (est - true) / true])
    return pd.DataFrame(rows, columns=["group", "true_size", "estimate", "error", "relative_error"])


def summarize_internal_consistency(df: pd.DataFrame) -> dict[str, float]:
    """Summaries of an :func:`internal_consistency` table.

    Returns
    -------
    dict
        ``n_groups``, ``mean_absolute_error``, ``mean_absolute_relative_error``, ``rmse`` (root
        mean squared error of the sizes) and ``median_relative_error`` (signed: below zero when
        the known groups are underestimated).
    """
    for col in ("error", "relative_error"):
        if col not in df.columns:
            raise DataError(f"internal-consistency table has no {col!r} column")
    err = df["error"].to_numpy(dtype=float)
    rel = df["relative_error"].to_numpy(dtype=float)
    return {
        "n_groups": int(len(df)),
        "mean_absolute_error": float(np.mean(np.abs(err))),
        "mean_absolute_relative_error": float(np.mean(np.abs(rel))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "median_relative_error": float(np.median(rel)),
    }
