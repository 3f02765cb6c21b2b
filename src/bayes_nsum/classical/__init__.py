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

* :mod:`.inputs` -- validation of the inputs and the validated arrays shared by the estimators;
* :mod:`.national` -- degrees, :func:`scale_up` and the tidy :func:`estimate_table` of one frame;
* :mod:`.areas` -- :func:`per_area_estimates`;
* :mod:`.gnsum` -- the generalized scale-up estimator of a hidden sample's group
  (:func:`gnsum_estimate_table`; Feehan & Salganik 2016);
* :mod:`.consistency` -- :func:`internal_consistency` and its summaries.

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

from .areas import per_area_estimates
from .consistency import internal_consistency, summarize_internal_consistency
from .gnsum import gnsum_estimate_table, gnsum_table
from .national import TABLE_COLUMNS, estimate_table, known_population_degree, scale_up

__all__ = [
    "known_population_degree",
    "scale_up",
    "estimate_table",
    "per_area_estimates",
    "gnsum_estimate_table",
    "gnsum_table",
    "internal_consistency",
    "summarize_internal_consistency",
    "TABLE_COLUMNS",
]
