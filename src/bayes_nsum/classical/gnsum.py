r"""The generalized scale-up estimator (Feehan & Salganik 2016) with rescaled-bootstrap intervals.

Two independent samples: the frame survey (respondents i with weights :math:`w_i`, answers
:math:`y_{iH}` about the hidden group H) and a sample of H's members (j = 1..m, equal weights;
:mod:`bayes_nsum.hidden_sample`), who report :math:`y_{jk}` members of each known group k and
:math:`\tilde v_{jk} \le y_{jk}` of them who know j is in H. Feehan & Salganik's estimator
(the generalized scale-up estimator with the known-population estimator of the visibility) is

.. math::
    \hat N_H = \frac{\hat y_{F,H}}{\hat{\bar v}_{H,F}}, \qquad
    \hat y_{F,H} = N\,\frac{\sum_i w_i y_{iH}}{\sum_i w_i}, \qquad
    \hat{\bar v}_{H,F} = N\,\frac{\sum_j \sum_{k \in A_j} \tilde v_{jk}}
        {\sum_j \sum_{k \in A_j} N_k},

where :math:`A_j` are the known groups member j answered (all of them without missing
answers, when :math:`\hat{\bar v}_{H,F}` is :math:`(N/N_A)` times the mean number of aware
alters). :math:`\hat y_{F,H}` estimates the total number of reports of H from the frame, and
:math:`\hat{\bar v}_{H,F}` the mean number of frame members who know a member of H and know
that they are in H (the visibility). :math:`N` cancels: :math:`\hat N_H` needs no degree.

The estimate factorises as the basic (Killworth) estimate divided by the product of the degree
ratio and the true-positive rate that the two samples estimate:
:math:`\hat N_H = \hat N_H^{basic} / (\hat\delta_H \hat\tau_H)` with
:math:`\hat{\bar d}_F` the frame's known-population mean degree,
:math:`\hat{\bar d}_H = N \sum_j \sum_{k\in A_j} y_{jk} / \sum_j \sum_{k \in A_j} N_k`,
:math:`\hat\delta_H = \hat{\bar d}_H / \hat{\bar d}_F` and
:math:`\hat\tau_H = \sum_{jk} \tilde v_{jk} / \sum_{jk} y_{jk}`; these are kept in the
table's ``attrs``. Precision is taken as 1 (no false reports; Feehan & Salganik's
:math:`\eta_F`).

Intervals: the frame survey's rescaled-bootstrap replicate weights (strata and PSUs; Rao & Wu
1988) and, independently, rescaled-bootstrap weights of the hidden sample treated as a simple
random sample, fed through the same estimator; percentile bounds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..bootstrap import percentile_interval, rescaled_bootstrap_weights
from ..errors import DataError, format_rows
from ..hidden_sample import HiddenSample
from .inputs import align, check_boot, check_denominators, weights_array
from .national import TABLE_COLUMNS, table_rows


def visibility_sums(sample: HiddenSample, known_sizes: pd.Series) -> tuple[np.ndarray, ...]:
    """Per member: aware alters :math:`\\sum_{k\\in A_j} \\tilde v_{jk}`, alters in the known
    groups :math:`\\sum_{k\\in A_j} y_{jk}` and the size :math:`\\sum_{k \\in A_j} N_k` of the
    known groups answered."""
    y, v = sample.arrays()
    answered = ~np.isnan(y)
    sizes = known_sizes.loc[sample.known].to_numpy(float)
    return (
        np.where(answered, v, 0.0).sum(axis=1),
        np.where(answered, y, 0.0).sum(axis=1),
        answered @ sizes,
    )


def gnsum_estimate_table(
    counts: pd.DataFrame,
    known_sizes: pd.Series,
    total_population: float,
    hidden_sample: HiddenSample,
    weights: pd.Series | None = None,
    denominators: Mapping[str, float] | None = None,
    strata: pd.Series | None = None,
    cluster: pd.Series | None = None,
    n_boot: int = 0,
    interval_prob: float = 0.9,
    seed: int = 0,
    missing: str = "raise",
) -> pd.DataFrame:
    """Tidy table (``TABLE_COLUMNS``) of the generalized scale-up size and prevalence of the
    hidden sample's group, with rescaled-bootstrap percentile intervals (``n_boot > 0``).

    Parameters
    ----------
    counts : DataFrame
        Frame answers, one column per group (the sampled hidden group and the known groups).
    known_sizes : Series
        Size of each known group (every known group of the hidden sample).
    total_population : float
        :math:`N`.
    hidden_sample : HiddenSample
    weights, strata, cluster : Series, optional
        Frame design, aligned on ``counts.index``.
    denominators : dict, optional
        Group -> population of the prevalence (default :math:`N`).
    n_boot, interval_prob, seed
        Bootstrap replicates, coverage of the interval and seed.
    missing : {"raise", "skip"}
        A missing frame answer about H: an error, or the respondent left out.

    Returns
    -------
    DataFrame
        Rows ``size`` and ``prevalence`` of the group; ``attrs`` holds ``visibility``,
        ``frame_degree``, ``hidden_degree``, ``degree_ratio``, ``transmission``, ``basic``
        (the Killworth estimate), ``n_hidden_sample``, ``n_boot`` and ``method``.
    """
    group = hidden_sample.group
    if group not in counts.columns:
        raise DataError(f"hidden group {group!r} has no column in the frame survey")
    N = float(total_population)
    idx = counts.index
    w = weights_array(weights, idx)
    y_h = counts[group].to_numpy(float)
    absent = np.isnan(y_h)
    if absent.any() and missing != "skip":
        raise DataError(f"column '{group}' has missing answers in rows {format_rows(idx[absent])}")
    known = list(hidden_sample.known)
    y_known = counts[known].to_numpy(float)
    ans = ~np.isnan(y_known)
    sizes = known_sizes.loc[known].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        degree = N * np.where(ans, y_known, 0.0).sum(axis=1) / (ans @ sizes)
    aware, alters, reach = visibility_sums(hidden_sample, known_sizes)
    if aware.sum() <= 0:
        raise DataError(
            f"{hidden_sample.source}: no member of the hidden sample has a contact in the known "
            "groups who knows their status: the visibility is zero and the size undefined"
        )
    used = ~absent
    yh = np.where(used, y_h, 0.0)

    def estimate(wf: np.ndarray, wh: np.ndarray) -> np.ndarray:
        y_fh = N * (wf @ yh) / (wf @ used.astype(float))
        vis = N * (wh @ aware) / (wh @ reach)
        with np.errstate(invalid="ignore", divide="ignore"):
            return y_fh / vis

    ones = np.ones(hidden_sample.n)
    size = float(estimate(w, ones))
    n_boot = check_boot(n_boot, interval_prob)
    lo = hi = np.array([np.nan])
    if n_boot > 0:
        wf = rescaled_bootstrap_weights(
            len(idx),
            align(strata, idx, "strata"),
            align(cluster, idx, "cluster"),
            pd.Series(w),
            n_boot,
            seed,
        )
        wh = rescaled_bootstrap_weights(hidden_sample.n, None, None, None, n_boot, seed + 1)
        reps = estimate(wf, wh)
        lo, hi = percentile_interval(reps[:, None], interval_prob)
    denom = check_denominators(denominators, [group]).get(group, N)
    prob = float(interval_prob) if n_boot > 0 else np.nan
    table = pd.DataFrame(
        table_rows("", [group], [size], lo, hi, [denom], prob), columns=TABLE_COLUMNS
    )
    ok = ~np.isnan(degree) & used
    frame_degree = float(w[ok] @ degree[ok] / w[ok].sum())
    visibility = N * aware.sum() / reach.sum()
    hidden_degree = N * alters.sum() / reach.sum()
    table.attrs.update(
        method="gnsum",
        n_boot=n_boot,
        n_hidden_sample=hidden_sample.n,
        visibility=float(visibility),
        frame_degree=frame_degree,
        hidden_degree=float(hidden_degree),
        degree_ratio=float(hidden_degree / frame_degree),
        transmission=float(aware.sum() / alters.sum()),
        basic=float(N * (w[ok] @ yh[ok]) / (w[ok] @ degree[ok])),
    )
    return table


def gnsum_table(ard, **common) -> pd.DataFrame:
    """:func:`gnsum_estimate_table` of an :class:`~bayes_nsum.data.ARD` with a hidden sample
    (national: the hidden sample is not by area), given the workflow's classical options;
    Killworth's ``method``, ``degree_ratio`` and ``transmission`` must be at their defaults
    (:meth:`bayes_nsum.config.ModelConfig.check_hidden_sample` refuses them)."""
    for key, default in (("method", "mle"), ("degree_ratio", None), ("transmission", None)):
        if common.pop(key, default) != default:
            raise DataError(f"[model] {key} is not used by the generalized scale-up estimator")
    sample = ard.hidden_sample
    others = [h for h in ard.hidden if h != sample.group]
    if others:
        raise DataError(
            f"the generalized scale-up estimator estimates the hidden sample's group "
            f"'{sample.group}' only; estimate {', '.join(others)} in a spec of its own"
        )
    dens = {g: v for g, v in ard.denominators.items() if not isinstance(v, str)}
    return gnsum_estimate_table(
        ard.counts[ard.groups],
        ard.known_sizes,
        ard.total_population,
        sample.with_known(list(ard.known)),
        denominators=dens or None,
        **common,
    )
