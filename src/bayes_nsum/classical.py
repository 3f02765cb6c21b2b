r"""Classical (design-based) network scale-up estimators.

Notation: respondents :math:`i = 1..n` with design weights :math:`w_i`, known groups :math:`k` of
size :math:`N_k`, frame population :math:`N`, hidden group :math:`H`; :math:`y_{ik}` is the number
of members of group :math:`k` that respondent :math:`i` reports knowing.

* Known-population degree (Killworth et al. 1998):
  :math:`\hat d_i = N \sum_k y_{ik} / \sum_k N_k`.
* Basic scale-up, maximum likelihood (MLE):
  :math:`\hat N_H = N \sum_i w_i y_{iH} / \sum_i w_i \hat d_i`.
* Plug-in MLE (PIMLE): :math:`\hat N_H = N \sum_i w_i (y_{iH} / \hat d_i) / \sum_i w_i`, over the
  respondents with :math:`\hat d_i > 0`.
* Adjusted estimate (Feehan & Salganik 2016): :math:`\hat N_H / (\delta_H \tau_H)` with the degree
  ratio :math:`\delta_H` (mean degree of hidden-population members over the frame mean degree) and
  the true-positive (transmission) rate :math:`\tau_H \in (0, 1]`.
* Uncertainty: percentile intervals from the rescaled bootstrap
  (:mod:`bayes_nsum.bootstrap`; Rao & Wu 1988, Rust & Rao 1996).

All functions take plain pandas objects: ``counts`` is a DataFrame indexed by respondent with one
numeric column per group (already pre-processed, e.g. top-coded), ``known_sizes`` a Series
group -> size, ``weights`` a Series aligned on ``counts.index`` (or None for equal weights).
Columns of ``counts`` that are neither known nor hidden are ignored. Every problem with the inputs
raises :class:`bayes_nsum.errors.DataError` naming the group, column or rows at fault.

Missing answers (NaN): by default (``missing="raise"``) a NaN in a column that is used raises.
With ``missing="skip"``, a respondent's missing known answers are left out of their degree (both
from :math:`\sum_k y_{ik}` and from :math:`\sum_k N_k`, so the degree stays unbiased); a respondent
with no known answer at all, or with a missing answer about hidden group :math:`H`, is left out of
the estimate of :math:`H` (numerator and denominator).

References
----------
Killworth, P. D., McCarty, C., Bernard, H. R., Shelley, G. A. and Johnsen, E. C. (1998).
Estimation of seroprevalence, rape, and homelessness in the United States using a social network
approach. *Evaluation Review* 22(2), 289-308.

Feehan, D. M. and Salganik, M. J. (2016). Generalizing the network scale-up method: a new estimator
for the size of hidden populations. *Sociological Methodology* 46(1), 153-186.

Rao, J. N. K. and Wu, C. F. J. (1988). Resampling inference with complex survey data. *JASA* 83,
231-241. Rust, K. F. and Rao, J. N. K. (1996). Variance estimation for complex surveys using
replication techniques. *Statistical Methods in Medical Research* 5, 283-310.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_nsum.bootstrap import percentile_interval, rescaled_bootstrap_weights
from bayes_nsum.errors import DataError, format_rows

__all__ = [
    "known_population_degree",
    "scale_up",
    "estimate_table",
    "per_area_estimates",
    "internal_consistency",
    "summarize_internal_consistency",
    "TABLE_COLUMNS",
]

#: Columns of the tidy tables returned by :func:`estimate_table` and :func:`per_area_estimates`.
TABLE_COLUMNS = ["area", "group", "quantity", "estimate", "lower", "upper", "interval_prob"]

_METHODS = ("mle", "pimle")
_MISSING = ("raise", "skip")


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_counts(counts: pd.DataFrame) -> None:
    if not isinstance(counts, pd.DataFrame):
        raise DataError(f"counts must be a pandas DataFrame, got {type(counts).__name__}")
    if len(counts) == 0:
        raise DataError("counts has no respondents")
    dup = counts.index[counts.index.duplicated()]
    if len(dup):
        raise DataError(f"counts has duplicated respondent ids: {format_rows(dup.unique())}")


def _check_option(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise DataError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _check_total(total_population: float, name: str = "total_population") -> float:
    try:
        N = float(total_population)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a number, got {total_population!r}") from None
    if not math.isfinite(N) or N <= 0:
        raise DataError(f"{name} must be positive and finite, got {total_population!r}")
    return N


def _check_known_sizes(known_sizes: pd.Series, counts: pd.DataFrame) -> pd.Series:
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


def _check_hidden(hidden: str | Sequence[str], counts: pd.DataFrame, known: pd.Index) -> list[str]:
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


def _numeric_block(counts: pd.DataFrame, columns: list, missing: str) -> np.ndarray:
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


def _align(values: pd.Series | None, index: pd.Index, name: str) -> pd.Series | None:
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


def _weights_array(weights: pd.Series | None, index: pd.Index) -> np.ndarray:
    w = _align(weights, index, "weights")
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


def _check_factors(
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
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{name} for group {key!r} is not a number: {value!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise DataError(f"{name} for group {key!r} must be positive, got {value!r}")
        if upper_one and v > 1:
            raise DataError(f"{name} for group {key!r} must lie in (0, 1], got {value!r}")
        out[hidden.index(key)] = v
    return out


def _check_denominators(
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
        if isinstance(value, str):
            if not allow_str:
                raise DataError(f"denominator of group {key!r} must be a number, got {value!r}")
            out[key] = value
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise DataError(f"denominator of group {key!r} is not a number: {value!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise DataError(f"denominator of group {key!r} must be positive, got {value!r}")
        out[key] = v
    return out


# --------------------------------------------------------------------------------------------
# array cores
# --------------------------------------------------------------------------------------------


def _degree_array(y_known: np.ndarray, sizes: np.ndarray, N: float) -> np.ndarray:
    """Degrees from known answers; NaN answers (missing='skip') drop out of both sums."""
    obs = ~np.isnan(y_known)
    num = np.where(obs, y_known, 0.0).sum(axis=1)
    den = (obs * sizes[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = N * num / den
    d[den <= 0] = np.nan  # no answered known group (or only groups of size 0)
    return d


def _scale_up_arrays(
    y_hidden: np.ndarray, degree: np.ndarray, w: np.ndarray, method: str, N: float
) -> np.ndarray:
    """Basic estimates; ``w`` is ``(n,)`` or ``(B, n)``; result ``(H,)`` or ``(B, H)``.

    Undefined estimates (zero denominator) are NaN.
    """
    obs = ~np.isnan(y_hidden) & ~np.isnan(degree)[:, None]
    if method == "mle":
        num = w @ np.where(obs, y_hidden, 0.0)
        den = w @ np.where(obs, degree[:, None], 0.0)
    else:
        obs &= degree[:, None] > 0
        safe_d = np.where(degree > 0, degree, 1.0)[:, None]
        num = w @ np.where(obs, y_hidden / safe_d, 0.0)
        den = w @ obs.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = N * num / den
    return np.where(den > 0, est, np.nan)


class _Prepared:
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
        _check_counts(counts)
        self.method = _check_option(method, _METHODS, "method")
        self.missing = _check_option(missing, _MISSING, "missing")
        self.N = _check_total(total_population)
        self.sizes = _check_known_sizes(known_sizes, counts)
        self.hidden = _check_hidden(hidden, counts, self.sizes.index)
        self.index = counts.index
        y_known = _numeric_block(counts, list(self.sizes.index), self.missing)
        self.y_hidden = _numeric_block(counts, self.hidden, self.missing)
        self.w = _weights_array(weights, counts.index)
        self.degree = _degree_array(y_known, self.sizes.to_numpy(), self.N)


def _basic_estimates(prep: _Prepared, y_hidden, degree, w, N, where: str = "") -> np.ndarray:
    est = _scale_up_arrays(y_hidden, degree, w, prep.method, N)
    undefined = [g for g, e in zip(prep.hidden, est, strict=True) if not np.isfinite(e)]
    if undefined:
        why = (
            "every respondent with a positive weight has degree zero or a missing answer"
            if prep.method == "pimle"
            else "the weighted degree sum is zero"
        )
        raise DataError(f"hidden group {undefined[0]!r} cannot be estimated{where}: {why}")
    return est


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def known_population_degree(
    counts: pd.DataFrame,
    known_sizes: pd.Series,
    total_population: float,
    missing: str = "raise",
) -> pd.Series:
    r"""Known-population estimate of each respondent's personal network size (degree).

    .. math:: \hat d_i = N \, \frac{\sum_{k \in K} y_{ik}}{\sum_{k \in K} N_k}

    (Killworth et al. 1998). With ``missing="skip"`` the sums run over the known groups that
    respondent :math:`i` answered; a respondent with no known answer gets NaN.

    Parameters
    ----------
    counts : pandas.DataFrame
        Answers, index respondent ids, one column per group.
    known_sizes : pandas.Series
        Group -> size of every known group used (each must be a column of ``counts``).
    total_population : float
        Size :math:`N` of the frame population.
    missing : {"raise", "skip"}
        What to do with NaN answers (see the module docstring).

    Returns
    -------
    pandas.Series
        Degree per respondent, index ``counts.index``, name ``"degree"``.

    Raises
    ------
    DataError
        Unknown group, bad size, NaN answers with ``missing="raise"``, negative answers.
    """
    _check_counts(counts)
    missing = _check_option(missing, _MISSING, "missing")
    N = _check_total(total_population)
    sizes = _check_known_sizes(known_sizes, counts)
    y_known = _numeric_block(counts, list(sizes.index), missing)
    return pd.Series(_degree_array(y_known, sizes.to_numpy(), N), index=counts.index, name="degree")


def scale_up(
    counts: pd.DataFrame,
    known_sizes: pd.Series,
    total_population: float,
    hidden: str | Sequence[str],
    weights: pd.Series | None = None,
    method: str = "mle",
    degree_ratio: Mapping[str, float] | None = None,
    transmission: Mapping[str, float] | None = None,
    missing: str = "raise",
) -> pd.Series:
    r"""Network scale-up estimates of hidden population sizes.

    MLE (Killworth et al. 1998), weighted:

    .. math:: \hat N_H = N \, \frac{\sum_i w_i y_{iH}}{\sum_i w_i \hat d_i}

    PIMLE (plug-in MLE), over the respondents with :math:`\hat d_i > 0`:

    .. math:: \hat N_H = N \, \frac{\sum_i w_i \, y_{iH} / \hat d_i}{\sum_i w_i}

    Adjusted (Feehan & Salganik 2016): :math:`\hat N_H^{adj} = \hat N_H / (\delta_H \tau_H)`.

    Parameters
    ----------
    counts, known_sizes, total_population
        As in :func:`known_population_degree`.
    hidden : str or sequence of str
        Hidden group(s) to estimate (columns of ``counts``, not known groups).
    weights : pandas.Series, optional
        Design weights aligned on ``counts.index``; None: equal weights.
    method : {"mle", "pimle"}
        Estimator.
    degree_ratio : dict, optional
        Group -> :math:`\delta_H > 0`, mean degree of hidden-population members divided by the
        mean degree of the frame population. A group not listed gets 1.
    transmission : dict, optional
        Group -> true-positive rate :math:`\tau_H \in (0, 1]`. A group not listed gets 1.
    missing : {"raise", "skip"}
        What to do with NaN answers (see the module docstring).

    Returns
    -------
    pandas.Series
        Estimated sizes, index the hidden groups, name ``"size"``. ``attrs`` holds
        ``"n_zero_degree"`` (respondents whose degree is zero: dropped by PIMLE, kept by the MLE
        where they add :math:`y_{iH}` to the numerator only), ``"n_dropped"`` (respondents left out
        of the estimate: zero degree for PIMLE, plus those without any known answer with
        ``missing="skip"``), ``"method"`` and ``"basic"`` (dict of the unadjusted estimates).

    Raises
    ------
    DataError
        Unknown or duplicated groups, a factor key that is not a hidden group, a degree ratio
        or transmission rate that is not positive, a transmission rate above 1, bad weights, or an
        estimate that is undefined (zero denominator).
    """
    prep = _Prepared(counts, known_sizes, total_population, hidden, weights, method, missing)
    ratio = _check_factors(degree_ratio, prep.hidden, "degree_ratio")
    tau = _check_factors(transmission, prep.hidden, "transmission", upper_one=True)
    basic = _basic_estimates(prep, prep.y_hidden, prep.degree, prep.w, prep.N)
    out = pd.Series(basic / (ratio * tau), index=pd.Index(prep.hidden), name="size")
    n_zero = int(np.sum(prep.degree == 0))
    n_nan = int(np.sum(np.isnan(prep.degree)))
    out.attrs["n_zero_degree"] = n_zero
    out.attrs["n_dropped"] = n_nan + (n_zero if prep.method == "pimle" else 0)
    out.attrs["method"] = prep.method
    out.attrs["basic"] = dict(zip(prep.hidden, basic.tolist(), strict=True))
    return out


def _interval(
    est_fn, w_reps: np.ndarray | None, prob: float, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    if w_reps is None:
        return np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    reps = est_fn(w_reps)
    return percentile_interval(reps, prob)


def _rows(area: str, groups, size, size_lo, size_hi, denom, prob) -> list[dict]:
    rows = []
    for j, g in enumerate(groups):
        for quantity, scale in (("size", 1.0), ("prevalence", denom[j])):
            rows.append(
                {
                    "area": area,
                    "group": g,
                    "quantity": quantity,
                    "estimate": size[j] / scale,
                    "lower": size_lo[j] / scale,
                    "upper": size_hi[j] / scale,
                    "interval_prob": prob,
                }
            )
    return rows


def _check_boot(n_boot: int, interval_prob: float) -> int:
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 0:
        raise DataError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    try:
        p = float(interval_prob)
    except (TypeError, ValueError):
        raise DataError(f"interval_prob must be a number, got {interval_prob!r}") from None
    if not 0.0 < p < 1.0:
        raise DataError(f"interval_prob must lie strictly between 0 and 1, got {interval_prob!r}")
    return int(n_boot)


def _replicate_weights(prep: _Prepared, strata, cluster, n_boot: int, seed: int):
    if n_boot == 0:
        return None
    s = _align(strata, prep.index, "strata")
    c = _align(cluster, prep.index, "cluster")
    return rescaled_bootstrap_weights(len(prep.index), s, c, pd.Series(prep.w), n_boot, seed)


def estimate_table(
    counts: pd.DataFrame,
    known_sizes: pd.Series,
    total_population: float,
    hidden: str | Sequence[str],
    weights: pd.Series | None = None,
    method: str = "mle",
    degree_ratio: Mapping[str, float] | None = None,
    transmission: Mapping[str, float] | None = None,
    denominators: Mapping[str, float] | None = None,
    strata: pd.Series | None = None,
    cluster: pd.Series | None = None,
    n_boot: int = 0,
    interval_prob: float = 0.9,
    seed: int = 0,
    missing: str = "raise",
) -> pd.DataFrame:
    """Tidy table of scale-up sizes and prevalences with rescaled-bootstrap intervals.

    The point estimates are those of :func:`scale_up`. With ``n_boot > 0`` the bootstrap replicate
    weights of :func:`bayes_nsum.bootstrap.rescaled_bootstrap_weights` (PSUs ``cluster`` resampled
    within ``strata``; Rao & Wu 1988, Rust & Rao 1996) are fed through the same estimator; the
    degrees do not depend on the weights and are computed once. The bounds are percentile
    intervals of the replicates. The adjustment factors and denominators are treated as fixed.

    Parameters
    ----------
    counts, known_sizes, total_population, hidden, weights, method, degree_ratio, transmission, missing
        As in :func:`scale_up`.
    denominators : dict, optional
        Group -> size of the population the prevalence refers to (e.g. children for child
        victims); prevalence = size / denominator. A group not listed uses ``total_population``.
    strata, cluster : pandas.Series, optional
        Stratum and PSU of each respondent, aligned on ``counts.index``.
    n_boot : int
        Number of bootstrap replicates; 0 gives no interval.
    interval_prob : float
        Coverage of the percentile interval.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Columns exactly ``area`` (always ``""``: national), ``group``, ``quantity`` (``"size"``
        then ``"prevalence"`` for each hidden group), ``estimate``, ``lower``, ``upper``,
        ``interval_prob``. Without bootstrap ``lower``, ``upper`` and ``interval_prob`` are NaN.
        ``attrs`` holds ``n_zero_degree``, ``n_dropped``, ``method`` and ``n_boot``.
    """
    prep = _Prepared(counts, known_sizes, total_population, hidden, weights, method, missing)
    ratio = _check_factors(degree_ratio, prep.hidden, "degree_ratio")
    tau = _check_factors(transmission, prep.hidden, "transmission", upper_one=True)
    denoms = _check_denominators(denominators, prep.hidden)
    n_boot = _check_boot(n_boot, interval_prob)
    adj = ratio * tau
    size = _basic_estimates(prep, prep.y_hidden, prep.degree, prep.w, prep.N) / adj
    w_reps = _replicate_weights(prep, strata, cluster, n_boot, seed)

    def est_fn(w):
        return _scale_up_arrays(prep.y_hidden, prep.degree, w, prep.method, prep.N) / adj

    lo, hi = _interval(est_fn, w_reps, interval_prob, len(prep.hidden))
    denom = np.array([denoms.get(g, prep.N) for g in prep.hidden])
    prob = float(interval_prob) if n_boot > 0 else np.nan
    table = pd.DataFrame(_rows("", prep.hidden, size, lo, hi, denom, prob), columns=TABLE_COLUMNS)
    n_zero = int(np.sum(prep.degree == 0))
    table.attrs.update(
        n_zero_degree=n_zero,
        n_dropped=int(np.sum(np.isnan(prep.degree))) + (n_zero if prep.method == "pimle" else 0),
        method=prep.method,
        n_boot=n_boot,
    )
    return table


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
    _check_counts(counts)
    if not isinstance(area_table, pd.DataFrame):
        raise DataError("area_table must be a pandas DataFrame")
    if "population" not in area_table.columns:
        raise DataError("area_table has no 'population' column")
    if area_table.index.has_duplicates:
        dup = area_table.index[area_table.index.duplicated()].unique()
        raise DataError(f"area_table lists areas more than once: {format_rows(dup)}")
    groups = [hidden] if isinstance(hidden, str) else list(hidden)
    denoms = _check_denominators(denominators, groups, allow_str=True)
    denom_cols = {v for v in denoms.values() if isinstance(v, str)}
    for g, col in denoms.items():
        if isinstance(col, str) and col not in area_table.columns:
            raise DataError(
                f"denominator of group {g!r} names column {col!r}, absent from area_table"
            )
    if known_groups is None:
        known = [
            c
            for c in area_table.columns
            if c != "population" and c in counts.columns and c not in groups and c not in denom_cols
        ]
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
        bad = (
            ~np.isfinite(vals)
            | (vals < 0)
            | ((vals == 0) & (col != "population") & (col not in known))
        )
        if col == "population":
            bad |= vals <= 0
        if bad.any():
            raise DataError(
                f"area_table column {col!r} has missing, negative or zero values for areas "
                f"{format_rows(area_table.index[bad])}"
            )

    area_s = _align(area, counts.index, "area")
    unknown_area = ~area_s.isin(area_table.index).to_numpy()
    if unknown_area.any():
        raise DataError(
            f"area labels {format_rows(pd.unique(area_s[unknown_area]))} of rows "
            f"{format_rows(counts.index[unknown_area])} are not in area_table"
        )

    totals = area_table[numeric_cols].astype(float).sum()
    N = float(totals["population"])
    national_sizes = totals[known]
    prep = _Prepared(counts, national_sizes, N, groups, weights, method, missing)
    ratio = _check_factors(degree_ratio, prep.hidden, "degree_ratio")
    tau = _check_factors(transmission, prep.hidden, "transmission", upper_one=True)
    n_boot = _check_boot(n_boot, interval_prob)
    adj = ratio * tau
    w_reps = _replicate_weights(prep, strata, cluster, n_boot, seed)
    prob = float(interval_prob) if n_boot > 0 else np.nan
    y_known = _numeric_block(counts, known, prep.missing)

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
        degree = _degree_array(y_known[rows_idx], sizes, pop)
        y_h = prep.y_hidden[rows_idx]
        where = "" if row is None else f" in area {label!r}"
        size = _basic_estimates(prep, y_h, degree, prep.w[rows_idx], pop, where) / adj
        if w_reps is None:
            lo = hi = np.full(len(prep.hidden), np.nan)
        else:
            reps = _scale_up_arrays(y_h, degree, w_reps[:, rows_idx], prep.method, pop) / adj
            if np.isnan(reps).any():
                undefined.append(label)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = percentile_interval(reps, interval_prob)
        zero_deg[label] = int(np.sum(degree == 0))
        area_name = "" if row is None else str(label)
        return _rows(area_name, prep.hidden, size, lo, hi, denominators_for(pop, row), prob)

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
    _check_counts(counts)
    sizes = _check_known_sizes(known_sizes, counts)
    if len(sizes) < 2:
        raise DataError("internal consistency needs at least two known groups")
    zero = sizes.index[sizes.to_numpy() <= 0]
    if len(zero):
        raise DataError(f"known group {zero[0]!r} has size zero")
    rows = []
    for g in sizes.index:
        est = scale_up(
            counts,
            sizes.drop(g),
            total_population,
            [g],
            weights=weights,
            method=method,
            missing=missing,
        ).iloc[0]
        true = float(sizes[g])
        rows.append(
            {
                "group": g,
                "true_size": true,
                "estimate": est,
                "error": est - true,
                "relative_error": (est - true) / true,
            }
        )
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
