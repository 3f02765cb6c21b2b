r"""Convergence diagnostics of MCMC draws, computed for many quantities at once.

Rank-normalised split :math:`\hat R`, bulk and tail effective sample size (ESS) and the Monte
Carlo standard error of the mean, as defined by Vehtari, Gelman, Simpson, Carpenter and Bürkner
(2021), "Rank-normalization, folding, and localization: an improved R-hat for assessing
convergence of MCMC", *Bayesian Analysis* 16(2), 667-718:

* draws (chain x draw) are split into halves, each half a chain;
* rank normalisation replaces each draw by :math:`\Phi^{-1}((r - 3/8) / (S + 1/4))`, r its rank
  among the S draws (ties averaged);
* :math:`\hat R` is the larger of the split :math:`\hat R` of the rank-normalised draws and of the
  rank-normalised distances to the median (folding);
* ESS uses the autocovariances of every chain (by FFT) with Geyer's initial positive and
  initial monotone sequences; bulk ESS is that of the rank-normalised split draws, tail ESS the
  smaller ESS of the indicators of the 5% and 95% quantiles, and the MCSE of the mean is the
  standard deviation over the square root of the ESS of the split draws.

ArviZ computes the same estimators one quantity at a time in Python loops, which took about
2.5 s for the roughly 1,000 quantities of a 150-area pooled fit (4 x 1000 draws); here they are
array operations over every quantity together. ``tests/test_mcmc_stats.py`` checks that both give
the same numbers, including ties, constant and short chains.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len
from scipy.special import ndtri

#: fewer draws per chain than this give no diagnostics (NaN), as in ArviZ
MIN_DRAWS = 4
#: the lower and upper quantiles whose indicators give the tail ESS
TAIL_PROB = (0.05, 0.95)


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis of a 2-D array, ties given their average rank."""
    s = x.shape[1]
    order = np.argsort(x, axis=1)
    xs = np.take_along_axis(x, order, axis=1)
    pos = np.arange(s)
    first = np.ones(xs.shape, bool)
    first[:, 1:] = xs[:, 1:] != xs[:, :-1]  # a run of equal values starts here
    last = np.ones(xs.shape, bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, pos, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, pos, s - 1)[:, ::-1], axis=1)[:, ::-1]
    out = np.empty(xs.shape)
    np.put_along_axis(out, order, (start + end) / 2.0 + 1.0, axis=1)
    return out


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalised draws of (K, chains, draws): ranks over all of a quantity's draws."""
    k, m, n = x.shape
    r = _ranks(x.reshape(k, m * n))
    return ndtri((r - 3 / 8) / (m * n - 2 * 3 / 8 + 1)).reshape(k, m, n)


def _split(x: np.ndarray) -> np.ndarray:
    """(K, chains, draws) -> (K, 2 chains, draws // 2): first halves, then second halves."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1)


def _rhat(x: np.ndarray) -> np.ndarray:
    """The R-hat formula (between- and within-chain variances) of (K, chains, draws)."""
    n = x.shape[2]
    between = n * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(x, axis=2, ddof=1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of every chain at every lag (last axis), by FFT."""
    n = x.shape[-1]
    m = next_fast_len(2 * n)
    f = np.fft.rfft(x - x.mean(axis=-1, keepdims=True), n=m, axis=-1)
    return np.fft.irfft(f * np.conjugate(f), n=m, axis=-1)[..., :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of (K, chains, draws): Geyer's initial positive, then monotone, sequence."""
    x = np.asarray(x, float)
    k, m, n = x.shape
    size = m * n
    acov = _autocov(x).mean(axis=1)  # (K, n), mean over chains
    mean_var = acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov) / var_plus[:, None]  # rho[:, 0] is taken as 1
    # pairs (2j, 2j + 1), j = 1.. are examined while 2j - 1 < n - 3 and the previous pair's
    # sum is positive (pair 0 is (1, rho[1]))
    jcap = max(0, int(np.ceil((n - 2) / 2)) - 1)
    pair = np.empty((k, jcap + 1))
    pair[:, 0] = 1.0 + rho[:, 1]
    if jcap:
        pair[:, 1:] = rho[:, 2 : 2 * jcap + 1 : 2] + rho[:, 3 : 2 * jcap + 2 : 2]
    done = pair <= 0
    stop = np.where(done.any(axis=1), np.argmax(done, axis=1), jcap + 1)
    n_pairs = np.minimum(jcap, stop)  # J: pairs 0..J-1 enter the sum; pair J is the last seen
    kept = np.minimum.accumulate(pair, axis=1)  # initial monotone sequence of the pair sums
    total = np.where(np.arange(jcap + 1) < n_pairs[:, None], kept, 0.0).sum(axis=1)
    rows = np.arange(k)
    last_even = rho[rows, np.minimum(2 * n_pairs, n - 1)]
    last_pair = pair[rows, n_pairs]
    tail = np.where((last_even > 0) | (last_pair >= 0), last_even, 0.0)
    tail = np.where(n_pairs == 0, 1.0, tail)
    tau = np.maximum(-1.0 + 2.0 * total + tail, 1 / np.log10(size))
    ess = size / tau
    ess = np.where(np.isnan(rho[:, : 2 * jcap + 2]).any(axis=1) | np.isnan(var_plus), np.nan, ess)
    const = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    return np.where(const, float(size), ess)


def diagnostics(draws: np.ndarray) -> dict[str, np.ndarray]:
    """R-hat, bulk and tail ESS and MCSE of the mean of draws shaped (chain, draw, ...).

    Returns arrays of the trailing shape under ``r_hat``, ``ess_bulk``, ``ess_tail`` and
    ``mcse_mean``; NaN for a quantity with a missing draw, for every quantity when there are
    fewer than :data:`MIN_DRAWS` draws per chain, and for R-hat with a single chain.
    """
    draws = np.asarray(draws, float)
    m, n = draws.shape[:2]
    shape = draws.shape[2:]
    # (K, chain, draw): each quantity's draws contiguous
    x = np.ascontiguousarray(draws.reshape(m, n, -1).transpose(2, 0, 1))
    k = x.shape[0]
    nan = np.full(k, np.nan)
    if n < MIN_DRAWS or k == 0:
        return {key: nan.reshape(shape) for key in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean")}
    split = _split(x)
    z = _z_scale(split)
    folded = np.abs(split - np.median(split.reshape(k, -1), axis=1)[:, None, None])
    bulk_r, tail_r = _rhat(z), _rhat(_z_scale(folded))
    r_hat = np.where(tail_r > bulk_r, tail_r, bulk_r) if m > 1 else nan
    flat = x.reshape(k, -1)
    q = np.quantile(flat, TAIL_PROB, axis=1)  # linear (type 7), over every draw
    low, high = (_ess(_split((x <= qi[:, None, None]).astype(float))) for qi in q)
    sd = np.std(flat, axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mcse = sd / np.sqrt(_ess(split))
    out = {
        "r_hat": r_hat,
        "ess_bulk": _ess(z),
        "ess_tail": np.where(high < low, high, low),
        "mcse_mean": mcse,
    }
    bad = np.isnan(flat).any(axis=1)
    return {key: np.where(bad, np.nan, v).reshape(shape) for key, v in out.items()}
