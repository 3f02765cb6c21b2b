"""Rescaled bootstrap for complex survey designs (Rao & Wu 1988; Rust & Rao 1996).

The rescaled bootstrap resamples primary sampling units (PSUs) with replacement inside each
stratum and rescales the design weights so that every replicate is again an estimate of the whole
population. With ``m_h = n_h - 1`` PSUs drawn in a stratum of ``n_h`` PSUs the rescaling is a plain
multiplication of the weights (no finite-population correction), which is the version used by most
survey software (e.g. the ``subbootstrap`` replicate weights of the R package ``survey``).

References
----------
Rao, J. N. K. and Wu, C. F. J. (1988). Resampling inference with complex survey data. *Journal of
the American Statistical Association* 83(401), 231-241.

Rust, K. F. and Rao, J. N. K. (1996). Variance estimation for complex surveys using replication
techniques. *Statistical Methods in Medical Research* 5(3), 283-310.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from bayes_nsum.errors import DataError, format_rows

__all__ = ["rescaled_bootstrap_weights", "bootstrap_statistic", "percentile_interval"]


def _as_labels(values: pd.Series | None, n: int, name: str) -> np.ndarray | None:
    """Return the labels of ``values`` as a positional array of length ``n`` (or None)."""
    if values is None:
        return None
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(
            f"{name} has {arr.shape[0] if arr.ndim else 0} values but there are {n} respondents"
        )
    missing = pd.isna(arr)
    if missing.any():
        labels = values.index[missing] if isinstance(values, pd.Series) else np.flatnonzero(missing)
        raise DataError(f"{name} is missing for rows {format_rows(labels)}")
    return arr


def _codes(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted unique labels (insertion order when labels cannot be sorted)."""
    try:
        codes, uniques = pd.factorize(arr, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(arr, sort=False)
    return codes, np.asarray(uniques)


def _check_weights(weights: pd.Series | np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = weights.to_numpy() if isinstance(weights, pd.Series) else np.asarray(weights)
    if w.ndim != 1 or w.shape[0] != n:
        raise DataError(
            f"weights have {w.shape[0] if w.ndim else 0} values but there are {n} respondents"
        )
    try:
        w = w.astype(float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"weights are not numeric: {exc}") from None
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        labels = weights.index[bad] if isinstance(weights, pd.Series) else np.flatnonzero(bad)
        raise DataError(f"weights are missing, infinite or negative for rows {format_rows(labels)}")
    return w


def rescaled_bootstrap_weights(
    n: int,
    strata: pd.Series | None,
    cluster: pd.Series | None,
    weights: pd.Series | None,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    r"""Rao-Wu-Rust rescaled bootstrap replicate weights.

    In every stratum :math:`h` with :math:`n_h` PSUs, :math:`m_h = n_h - 1` PSUs are drawn with
    replacement, independently across strata and replicates. Respondent :math:`i` in PSU
    :math:`j` of stratum :math:`h` gets the replicate weight

    .. math:: w_i^{(b)} = w_i \, \frac{n_h}{n_h - 1} \, r_{hj}^{(b)},

    where :math:`r_{hj}^{(b)}` is the number of times PSU :math:`j` was drawn in replicate
    :math:`b`. Since :math:`E[r_{hj}] = (n_h - 1)/n_h`, the replicate weights average to the
    design weights.

    Parameters
    ----------
    n : int
        Number of respondents.
    strata : pandas.Series or None
        Stratum of each respondent, in respondent order (positional, length ``n``). None: a single
        stratum.
    cluster : pandas.Series or None
        PSU (cluster) of each respondent, positional, length ``n``. None: every respondent is its own
        PSU. PSUs are nested in strata: the same cluster label in two strata is two PSUs.
    weights : pandas.Series or None
        Design weights, positional, length ``n``; None: all 1.
    n_boot : int
        Number of replicates (``>= 0``).
    seed : int
        Seed of :func:`numpy.random.default_rng`; the result is a deterministic function of the
        inputs and the seed.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(n_boot, n)`` of replicate weights.

    Raises
    ------
    DataError
        A stratum holds a single PSU (its variance cannot be estimated; merge it with a neighbouring
        stratum first), or strata / clusters / weights are missing or of the wrong length.

    References
    ----------
    Rao & Wu (1988), JASA 83, 231-241; Rust & Rao (1996), Stat. Methods Med. Res. 5, 283-310.
    """
    n = int(n)
    if n < 1:
        raise DataError("rescaled bootstrap needs at least one respondent")
    if int(n_boot) != n_boot or n_boot < 0:
        raise DataError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    n_boot = int(n_boot)
    w = _check_weights(weights, n)
    strata_arr = _as_labels(strata, n, "strata")
    cluster_arr = _as_labels(cluster, n, "cluster")

    if strata_arr is None:
        s_codes, s_labels = np.zeros(n, dtype=np.int64), np.array([None], dtype=object)
    else:
        s_codes, s_labels = _codes(strata_arr)
    if cluster_arr is None:
        c_codes = np.arange(n)
    else:
        c_codes, _ = _codes(cluster_arr)

    rng = np.random.default_rng(seed)
    factor = np.empty((n_boot, n))
    for h in range(len(s_labels)):
        members = np.flatnonzero(s_codes == h)
        psu_codes, _ = pd.factorize(c_codes[members], sort=True)
        n_h = int(psu_codes.max()) + 1
        if n_h < 2:
            name = "the sample" if strata_arr is None else f"stratum {s_labels[h]!r}"
            raise DataError(
                f"{name} has a single PSU; the rescaled bootstrap needs at least 2 per stratum "
                "(merge it with another stratum)"
            )
        draws = rng.multinomial(n_h - 1, np.full(n_h, 1.0 / n_h), size=n_boot)
        factor[:, members] = draws[:, psu_codes] * (n_h / (n_h - 1.0))
    return factor * w[None, :]


def bootstrap_statistic(
    fn: Callable[[np.ndarray], object],
    n_boot: int,
    n: int,
    strata: pd.Series | None = None,
    cluster: pd.Series | None = None,
    weights: pd.Series | None = None,
    seed: int = 0,
    vectorized: bool = False,
) -> np.ndarray:
    """Apply a statistic to rescaled-bootstrap replicate weights.

    Parameters
    ----------
    fn : callable
        Function of a weight vector of length ``n`` returning a scalar or an array (the statistic
        computed with those weights). With ``vectorized=True`` it is called once with the whole
        ``(n_boot, n)`` matrix and must return an array whose first axis is the replicate.
    n_boot, n, strata, cluster, weights, seed
        As in :func:`rescaled_bootstrap_weights`.
    vectorized : bool
        See ``fn``.

    Returns
    -------
    numpy.ndarray
        Replicates of the statistic, shape ``(n_boot, *shape_of_statistic)``.
    """
    reps = rescaled_bootstrap_weights(n, strata, cluster, weights, n_boot, seed)
    if vectorized:
        return np.asarray(fn(reps), dtype=float)
    if n_boot == 0:
        return np.empty((0,))
    return np.stack([np.asarray(fn(reps[b]), dtype=float) for b in range(n_boot)])


def percentile_interval(replicates: np.ndarray, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Central percentile interval of bootstrap replicates.

    Parameters
    ----------
    replicates : array_like
        Replicates along axis 0.
    prob : float
        Coverage in (0, 1): the bounds are the ``(1 - prob)/2`` and ``(1 + prob)/2`` quantiles.

    Returns
    -------
    (lower, upper) : tuple of numpy.ndarray
        Arrays of the shape of one replicate (0-d for scalar statistics). Replicates that are NaN
        (an undefined statistic, e.g. a ratio whose denominator got zero weight) are left out with
        a :class:`RuntimeWarning`; a position with no finite replicate gets NaN bounds.
    """
    if not (0.0 < float(prob) < 1.0):
        raise DataError(f"interval_prob must lie strictly between 0 and 1, got {prob!r}")
    reps = np.asarray(replicates, dtype=float)
    alpha = (1.0 - float(prob)) / 2.0
    if reps.shape[0] == 0:
        shape = reps.shape[1:]
        return np.full(shape, np.nan), np.full(shape, np.nan)
    nan = np.isnan(reps)
    if nan.any():
        warnings.warn(
            f"{int(nan.sum())} bootstrap replicate value(s) are undefined (NaN) and were left out "
            "of the percentile interval",
            RuntimeWarning,
            stacklevel=2,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanquantile(reps, alpha, axis=0)
        upper = np.nanquantile(reps, 1.0 - alpha, axis=0)
    return lower, upper
