r"""Each evidence source's contribution: the posterior of the hidden sizes with and without it.

A fit with ``[evidence]`` has one log-likelihood term :math:`\ell_s(\theta)` per source s,
multiplied by a data container ``evidence_power__<source>`` = 1
(:mod:`bayes_nsum.estimators.evidence`). ``[evidence] contribution`` chooses how the posterior
without a source is found:

``"refit"`` (default)
    the model is sampled again with that source's power set to 0 (and once with every source's,
    the NSUM-only posterior), with the fit's sampler settings; nutpie compiles the model once
    and swaps the powers in. Exact, at the cost of one extra sampling run per source (plus one
    per group with several sources).
``"reweight"``
    no sampling: :math:`p(\theta \mid \text{rest}) \propto p(\theta \mid \text{all}) /
    e^{\ell_s(\theta)}`, so the fit's draws with Pareto-smoothed importance weights
    :math:`w \propto e^{-\ell_s(\theta)}` (Vehtari et al. 2024, J Mach Learn Res 25:72) estimate
    it: the likelihood power-scaling of Kallioinen et al. (2024) taken to :math:`\alpha = 0`.
    It can only move weight among the fit's draws, never reach values the fit excluded: when a
    source is informative the posterior without it is wider than the fit's and reweighting
    shows almost no change, *with a small Pareto k* (the draws lie along the ridge
    :math:`p N_H \approx y` where :math:`\ell_s` is nearly constant). Measured on a simulated
    survey (docs/guide/evidence.md): the refit widened the interval 1.9-fold, reweighting 1.02-fold
    with :math:`\hat k = -1.7`. Use it only to see that a weak source changes little.
``"none"``
    no table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesNsumError
from .sensitivity import log_likelihood_draws

#: Pareto k above which the importance-weighted posterior is not trusted
K_THRESHOLD = 0.7
EVIDENCE_COLUMNS = [
    "group",
    "source",
    "kind",
    "median_with",
    "lower_with",
    "upper_with",
    "median_without",
    "lower_without",
    "upper_without",
    "width_ratio",
    "method",
    "pareto_k",
    "reliable",
]


def weighted_quantiles(x: np.ndarray, log_w: np.ndarray, q) -> np.ndarray:
    """Quantiles ``q`` of draws ``x`` with log weights ``log_w`` (inverse of the weighted
    empirical CDF, interpolated at the midpoints of the weights)."""
    order = np.argsort(x)
    w = np.exp(log_w[order] - np.max(log_w))
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cdf, x[order])


def source_logliks(model, post: xr.Dataset) -> dict[str, np.ndarray]:
    """Each source's log-likelihood at each draw (flattened chain x draw), by source label."""
    pm_model = model.model
    out = {}
    for s in model.evidence:
        term = next(p for p in pm_model.potentials if p.name == f"evidence_loglik__{s.label}")
        out[s.label] = np.asarray(log_likelihood_draws(model, post, terms=[term]).values).ravel()
    return out


def refit_sizes(result, model, cases: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Size draws (chain x draw flattened, hidden) of the model sampled again with the sources
    of each case switched off (power 0), with the fit's sampler settings."""
    import pymc as pm

    from .. import fit as fitting

    settings = {**result.settings, "progress": False}
    pm_model = model.model
    ones = {f"evidence_power__{s.label}": 1.0 for s in model.evidence}
    compiled = fitting.compile_nutpie(pm_model) if settings["backend"] == "nutpie" else None
    out = {}
    try:
        for case, labels in cases.items():
            values = {**ones, **{f"evidence_power__{lab}": 0.0 for lab in labels}}
            if compiled is not None:
                swapped = compiled.with_data(**{k: np.asarray(v) for k, v in values.items()})
                refit = fitting.fit_model(model, compiled=swapped, with_prior=False, **settings)
            else:
                pm.set_data(values, model=pm_model)
                refit = fitting.fit_model(model, with_prior=False, **settings)
            size = refit.tree["posterior"]["size"].transpose("chain", "draw", "hidden")
            out[case] = size.values.reshape(-1, size.sizes["hidden"])
    finally:
        pm.set_data(ones, model=pm_model)
    return out


def evidence_contribution(result, model, prob: float = 0.9) -> dict[str, pd.DataFrame]:
    """The ``evidence_contribution`` table of a fit with evidence (``{}`` without, or with
    ``[evidence] contribution = "none"``).

    One row per source (and one ``all evidence`` row per group with several sources): the
    hidden group's size, median and central ``prob`` interval with every source (the fit) and
    without this one, the ratio of the interval widths (without / with), the method (``refit``
    or ``reweight``) and, for reweighting, the weights' Pareto k and whether it is below
    :data:`K_THRESHOLD` (a refit is always ``reliable``).
    """
    from arviz_stats.base import array_stats

    mode = getattr(model, "evidence_contribution", "refit")
    if not getattr(model, "evidence", ()) or mode == "none":
        return {}
    post = result.tree["posterior"].to_dataset()
    if "size" not in post:
        raise BayesNsumError("the posterior has no 'size' draws")
    hidden = [str(h) for h in post["size"]["hidden"].values]
    q = [0.5, (1 - prob) / 2, (1 + prob) / 2]
    cases: dict[str, list[str]] = {}
    for group in dict.fromkeys(s.group for s in model.evidence):
        sources = [s for s in model.evidence if s.group == group]
        cases.update({s.label: [s.label] for s in sources})
        if len(sources) > 1:
            cases[f"{group}: all evidence"] = [s.label for s in sources]
    if mode == "refit":
        refits = refit_sizes(result, model, cases)
    else:
        lls = source_logliks(model, post)
    kinds = {s.label: s.kind for s in model.evidence}
    group_of = {s.label: s.group for s in model.evidence}
    rows = []
    for case, labels in cases.items():
        group = group_of[labels[0]]
        size = post["size"].sel(hidden=group).transpose("chain", "draw").values.ravel()
        with_q = np.quantile(size, q)
        if mode == "refit":
            without = np.quantile(refits[case][:, hidden.index(group)], q)
            k = np.nan
        else:
            ll = sum(lls[lab] for lab in labels)
            try:
                log_w, k = array_stats.psislw(-ll)
            except ValueError:  # flat tail: the term barely varies (e.g. a bound never near)
                log_w, k = -ll, 0.0
            without = weighted_quantiles(size, np.asarray(log_w), q)
        width = (without[2] - without[1]) / max(with_q[2] - with_q[1], 1e-300)
        k = float(k)
        source = case if len(labels) == 1 else "all evidence"
        kind = kinds[case] if len(labels) == 1 else ""
        reliable = mode == "refit" or k <= K_THRESHOLD
        rows.append((group, source, kind, *with_q, *without, width, mode, k, reliable))
    table = pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)
    table.attrs["note"] = (
        f"size of each hidden group with every evidence source (the fit) and without one "
        f"({mode}); {prob:.0%} intervals"
    )
    return {"evidence_contribution": table}
