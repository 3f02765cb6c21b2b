"""Classical scale-up over one frame: known-population degrees, MLE / PIMLE, the tidy table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..bootstrap import percentile_interval, rescaled_bootstrap_weights
from ..errors import DataError
from .inputs import Prepared, align, check_boot, check_denominators, known_degrees

#: Columns of the tidy tables returned by :func:`estimate_table` and :func:`per_area_estimates`.
TABLE_COLUMNS = ["area", "group", "quantity", "estimate", "lower", "upper", "interval_prob"]


def scale_up_arrays(
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


def basic_estimates(prep: Prepared, y_hidden, degree, w, N, where: str = "") -> np.ndarray:
    est = scale_up_arrays(y_hidden, degree, w, prep.method, N)
    undefined = [g for g, e in zip(prep.hidden, est, strict=True) if not np.isfinite(e)]
    if undefined:
        why = (
            "every respondent with a positive weight has degree zero or a missing answer"
            if prep.method == "pimle"
            else "the weighted degree sum is zero"
        )
        raise DataError(f"hidden group {undefined[0]!r} cannot be estimated{where}: {why}")
    return est


def table_rows(area: str, groups, size, size_lo, size_hi, denom, prob) -> list[list]:
    """Rows of the tidy table (as ``TABLE_COLUMNS``): the size, then the prevalence, of each group."""
    return [
        [area, g, q, size[j] / s, size_lo[j] / s, size_hi[j] / s, prob]
        for j, g in enumerate(groups)
        for q, s in (("size", 1.0), ("prevalence", denom[j]))
    ]


def replicate_bounds(prep: Prepared, y_hidden, degree, w_reps, N: float, prob: float):
    """Percentile bounds of the adjusted sizes over the replicate weights ``w_reps`` (None: NaN)
    and whether some replicate is undefined."""
    if w_reps is None:
        return np.full(len(prep.hidden), np.nan), np.full(len(prep.hidden), np.nan), False
    reps = scale_up_arrays(y_hidden, degree, w_reps, prep.method, N) / prep.adj
    return (*percentile_interval(reps, prob), bool(np.isnan(reps).any()))


def replicate_weights(prep: Prepared, strata, cluster, n_boot: int, seed: int):
    if n_boot == 0:
        return None
    s = align(strata, prep.index, "strata")
    c = align(cluster, prep.index, "cluster")
    return rescaled_bootstrap_weights(len(prep.index), s, c, pd.Series(prep.w), n_boot, seed)


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
        What to do with NaN answers (see :mod:`bayes_nsum.classical`).

    Returns
    -------
    pandas.Series
        Degree per respondent, index ``counts.index``, name ``"degree"``.

    Raises
    ------
    DataError
        Unknown group, bad size, NaN answers with ``missing="raise"``, negative answers.
    """
    degree = known_degrees(counts, known_sizes, total_population, missing)
    return pd.Series(degree, index=counts.index, name="degree")


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
        What to do with NaN answers (see :mod:`bayes_nsum.classical`).

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
    prep = Prepared(counts, known_sizes, total_population, hidden, weights, method, missing)
    prep.adjust(degree_ratio, transmission)
    basic = basic_estimates(prep, prep.y_hidden, prep.degree, prep.w, prep.N)
    out = pd.Series(basic / prep.adj, index=pd.Index(prep.hidden), name="size")
    out.attrs.update(prep.dropped(), basic=dict(zip(prep.hidden, basic.tolist(), strict=True)))
    return out


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
    prep = Prepared(counts, known_sizes, total_population, hidden, weights, method, missing)
    prep.adjust(degree_ratio, transmission)
    denoms = check_denominators(denominators, prep.hidden)
    n_boot = check_boot(n_boot, interval_prob)
    size = basic_estimates(prep, prep.y_hidden, prep.degree, prep.w, prep.N) / prep.adj
    w_reps = replicate_weights(prep, strata, cluster, n_boot, seed)
    lo, hi, _ = replicate_bounds(prep, prep.y_hidden, prep.degree, w_reps, prep.N, interval_prob)
    denom = np.array([denoms.get(g, prep.N) for g in prep.hidden])
    prob = float(interval_prob) if n_boot > 0 else np.nan
    rows = table_rows("", prep.hidden, size, lo, hi, denom, prob)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.attrs.update(prep.dropped(), n_boot=n_boot)
    return table
