"""Separate (unpooled) Killworth estimates per area, beside the national ones."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, format_rows
from .inputs import Prepared, align, check_boot, check_counts, check_denominators, degree_array
from .national import (
    TABLE_COLUMNS,
    basic_estimates,
    replicate_bounds,
    replicate_weights,
    table_rows,
)


def per_area_estimates(
    counts: pd.DataFrame,
    area: pd.Series,
    area_table: pd.DataFrame,
    hidden: str | Sequence[str],
    weights: pd.Series | None = None,
    method: str = "mle",
    denominators: Mapping[str, float | str] | None = None,
    degree_ratio: Mapping[str, float] | None = None,
    transmission: Mapping[str, float] | None = None,
    n_boot: int = 0,
    strata: pd.Series | None = None,
    cluster: pd.Series | None = None,
    interval_prob: float = 0.9,
    seed: int = 0,
    known_groups: Sequence[str] | None = None,
    missing: str = "raise",
) -> pd.DataFrame:
    r"""Separate (unpooled) Killworth estimates per area, plus national estimates.

    For area :math:`a` with population :math:`N_a` and known sizes :math:`N_{ak}`, the respondents
    of :math:`a` get degrees :math:`\hat d_i = N_a \sum_k y_{ik} / \sum_k N_{ak}` and
    :math:`\hat N_{aH}` is :func:`scale_up` on those respondents alone (MLE or PIMLE, weighted,
    adjusted by the same factors). The national rows (``area == ""``) use all respondents with the
    national totals :math:`N = \sum_a N_a` and :math:`N_k = \sum_a N_{ak}` (summed over every area
    of ``area_table``, including areas without respondents), exactly as :func:`estimate_table`.

    Areas of ``area_table`` without respondents get no rows. An area where the estimate is
    undefined (all its respondents have degree zero or zero weight) raises :class:`DataError`.

    Bootstrap: the replicate weights of the whole design (``strata``, ``cluster``) are restricted to
    each area (domain estimation). In replicates where an area's respondents all got weight zero
    (e.g. when the area is one PSU that was not drawn) its estimate is undefined; those replicates
    are left out of that area's interval with a :class:`RuntimeWarning`. Per-area intervals from a
    design whose PSUs are the areas themselves are therefore unreliable.

    Parameters
    ----------
    counts : pandas.DataFrame
        Answers, index respondent ids.
    area : pandas.Series
        Area label of each respondent, aligned on ``counts.index``; every label must be in
        ``area_table.index``.
    area_table : pandas.DataFrame
        Index area labels; column ``"population"`` (:math:`N_a`), one column per known group
        (:math:`N_{ak}`) and optional denominator columns.
    hidden : str or sequence of str
        Hidden groups.
    weights, method, degree_ratio, transmission, missing
        As in :func:`scale_up`.
    denominators : dict, optional
        Group -> denominator of the prevalence. A string names a column of ``area_table``: the
        area's value for area rows and the column total for national rows. A number is the
        national denominator; area rows then use it times the area's share of the population,
        :math:`D N_a / N` (i.e. assume the denominator population is the same share of every
        area). A group not listed uses the population (:math:`N_a`, resp. :math:`N`).
    n_boot, strata, cluster, interval_prob, seed
        As in :func:`estimate_table`.
    known_groups : sequence of str, optional
        Known-group columns of ``area_table``. Default: every column of ``area_table`` that is
        also a column of ``counts``, except ``"population"``, the hidden groups and the columns
        named by ``denominators``.

    Returns
    -------
    pandas.DataFrame
        Columns as in :func:`estimate_table`: first the national rows (``area == ""``), then the
        rows of each area with respondents, in the order of ``area_table`` (``area`` holds the
        area label as a string). ``attrs`` holds ``n_zero_degree`` (national) and
        ``n_zero_degree_by_area``.
    """
    check_counts(counts)
    if not isinstance(area_table, pd.DataFrame):
        raise DataError("area_table must be a pandas DataFrame")
    if "population" not in area_table.columns:
        raise DataError("area_table has no 'population' column")
    if area_table.index.has_duplicates:
        dup = area_table.index[area_table.index.duplicated()].unique()
        raise DataError(f"area_table lists areas more than once: {format_rows(dup)}")
    groups = [hidden] if isinstance(hidden, str) else list(hidden)
    denoms = check_denominators(denominators, groups, allow_str=True)
    denom_cols = {v for v in denoms.values() if isinstance(v, str)}
    for g, col in denoms.items():
        if isinstance(col, str) and col not in area_table.columns:
            raise DataError(
                f"denominator of group {g!r} names column {col!r}, absent from area_table"
            )
    if known_groups is None:
        skip = {"population", *groups, *denom_cols}
        known = [c for c in area_table.columns if c in counts.columns and c not in skip]
        if not known:
            raise DataError("area_table has no known-group column matching a column of the counts")
    else:
        known = list(known_groups)
        for g in known:
            if g not in area_table.columns:
                raise DataError(f"known group {g!r} has no column in area_table")
    numeric_cols = ["population", *known, *sorted(denom_cols)]
    for col in numeric_cols:
        if not pd.api.types.is_numeric_dtype(area_table[col]):
            raise DataError(f"area_table column {col!r} is not numeric")
        vals = area_table[col].to_numpy(dtype=float)
        zero_bad = col == "population" or col not in known
        bad = ~np.isfinite(vals) | (vals < 0) | ((vals == 0) & zero_bad)
        if bad.any():
            raise DataError(
                f"area_table column {col!r} has missing, negative or zero values for areas "
                f"{format_rows(area_table.index[bad])}"
            )

    area_s = align(area, counts.index, "area")
    unknown_area = ~area_s.isin(area_table.index).to_numpy()
    if unknown_area.any():
        raise DataError(
            f"area labels {format_rows(pd.unique(area_s[unknown_area]))} of rows "
            f"{format_rows(counts.index[unknown_area])} are not in area_table"
        )

    totals = area_table[numeric_cols].astype(float).sum()
    N = float(totals["population"])
    national_sizes = totals[known]
    prep = Prepared(counts, national_sizes, N, groups, weights, method, missing)
    prep.adjust(degree_ratio, transmission)
    n_boot = check_boot(n_boot, interval_prob)
    w_reps = replicate_weights(prep, strata, cluster, n_boot, seed)
    prob = float(interval_prob) if n_boot > 0 else np.nan

    def denominators_for(pop: float, row: pd.Series | None) -> np.ndarray:
        out = []
        for g in prep.hidden:
            d = denoms.get(g)
            if d is None:
                out.append(pop)
            elif isinstance(d, str):
                out.append(float(totals[d] if row is None else row[d]))
            else:
                out.append(d if row is None else d * pop / N)
        return np.array(out)

    def block(label, rows_idx, pop, sizes, row):
        degree = degree_array(prep.y_known[rows_idx], sizes, pop)
        y_h = prep.y_hidden[rows_idx]
        where = "" if row is None else f" in area {label!r}"
        size = basic_estimates(prep, y_h, degree, prep.w[rows_idx], pop, where) / prep.adj
        w = None if w_reps is None else w_reps[:, rows_idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi, undef = replicate_bounds(prep, y_h, degree, w, pop, interval_prob)
        if undef:
            undefined.append(label)
        zero_deg[label] = int(np.sum(degree == 0))
        area_name = "" if row is None else str(label)
        return table_rows(area_name, prep.hidden, size, lo, hi, denominators_for(pop, row), prob)

    undefined: list = []
    zero_deg: dict = {}
    rows = block("", np.arange(len(prep.index)), N, national_sizes.to_numpy(), None)
    national_zero = zero_deg.pop("")
    codes = area_s.to_numpy()
    for label, row in area_table.iterrows():
        idx = np.flatnonzero(codes == label)
        if len(idx) == 0:
            continue
        sizes = row[known].to_numpy(dtype=float)
        if sizes.sum() <= 0:
            raise DataError(f"the known group sizes of area {label!r} sum to zero")
        rows += block(label, idx, float(row["population"]), sizes, row)
    if undefined:
        warnings.warn(
            f"bootstrap estimates undefined in some replicates (no weight on the respondents) for "
            f"areas {format_rows(undefined)}; those replicates were left out of their intervals",
            RuntimeWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.attrs.update(
        n_zero_degree=national_zero,
        n_zero_degree_by_area=zero_deg,
        method=prep.method,
        n_boot=n_boot,
    )
    return table
