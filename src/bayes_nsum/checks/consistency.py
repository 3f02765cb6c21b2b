r"""Internal consistency: each known group held out, estimated as if hidden, compared with its
true size.

* :func:`bayesian_internal_consistency` refits the model once per held-out group (the known
  groups minus the one held out are known, the held-out group is the only hidden group, with
  transmission rate and degree ratio fixed at 1 because a known group is fully visible). It is
  the honest check and costs one fit per group.
* :func:`quick_internal_consistency` is the cheap version used by ``bayes-nsum compare`` by
  default: the fit's posterior draws of the population parameters are reused, each respondent's
  degree is re-estimated from its answers to the *other* groups only (its posterior mean given
  those answers, by the model's quadrature), and the held-out group's reported rate is the
  ratio estimator :math:`\sum_i y_{ik} / \sum_i E[d_i \mid y_{i,-k}]` (Killworth's estimator
  with model-based degrees), turned into a share by the model
  (:meth:`~bayes_nsum.estimators.base.NSUMModel.known_share_from_rate`: recall calibration
  undone, or Zheng et al.'s rescaling with the other known groups). Its uncertainty: per
  posterior draw, the rate is drawn from its conditional posterior under Poisson answers and a
  flat prior on the log rate given the re-estimated degrees,
  :math:`\mathrm{Gamma}(\sum_i y_{ik}, \sum_i E[d_i \mid y_{i,-k}])`; this understates the
  spread when answers vary more than Poisson counts do. Because the population parameters were fitted with the
  group present, the check is mildly optimistic; use the full refit to report a model's
  accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesNsumError
from ..estimators.base import stack_draws

IC_COLUMNS = ["group", "true_size", "estimate", "error", "relative_error", "lower", "upper"]


# ---------------------------------------------------------------------------------------------
# internal consistency
# ---------------------------------------------------------------------------------------------


def _ic_row(group: str, true: float, draws: np.ndarray, prob: float) -> dict[str, Any]:
    draws = np.asarray(draws, float)
    est = float(np.median(draws))
    tail = (1 - prob) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return {
        "group": group,
        "true_size": true,
        "estimate": est,
        "error": est - true,
        "relative_error": (est - true) / true,
        "lower": float(lo),
        "upper": float(hi),
    }


def quick_internal_consistency(
    tree: xr.DataTree,
    model,
    groups: list[str] | None = None,
    n_draws: int = 100,
    seed: int = 0,
    prob: float = 0.9,
) -> pd.DataFrame:
    """Hold-one-out check of the known groups from one fit (no refitting; see module notes).

    Parameters
    ----------
    tree : xarray.DataTree
        The fit.
    model : NSUMModel
        The fitted model (e.g. :meth:`NSUMModel.from_tree`).
    groups : list of str, optional
        Known groups to hold out (default: all).
    n_draws : int
        Posterior draws used (default 100).
    seed : int
    prob : float
        Probability of the (lower, upper) interval over draws.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IC_COLUMNS`.
    """
    data = model.data
    known = list(data.known)
    groups = list(groups) if groups else known
    bad = [g for g in groups if g not in known]
    if bad:
        raise BayesNsumError(f"internal consistency: {', '.join(bad)} are not known groups")
    if len(known) < 2:
        raise BayesNsumError("internal consistency needs at least two known groups")
    rng = np.random.default_rng(seed)
    post = stack_draws(tree["posterior"].to_dataset())
    if n_draws < post.sizes["sample"]:
        post = post.isel(sample=np.sort(rng.choice(post.sizes["sample"], n_draws, replace=False)))
    lm = model.latent(post)
    y = model.answers()
    N = float(data.total_population)
    rows = []
    for g in groups:
        j = data.groups.index(g)
        e = lm.moments(y, exclude=[g])[0]
        answered = ~np.isnan(y[:, j])
        total = float(np.sum(y[answered, j]))
        # rate | degrees ~ Gamma(sum y, sum E[d]) (Poisson answers, flat prior on log rate)
        rate = rng.gamma(max(total, 0.5), 1.0, size=lm.n_draws) / e[:, answered].sum(axis=1)
        share = model.known_share_from_rate(post, g, rate)
        rows.append(_ic_row(g, float(data.known_sizes[g]), share * N, prob))
    return pd.DataFrame(rows, columns=IC_COLUMNS)


def _held_out_priors(spec_priors: dict, param_groups: dict[str, list[str] | None]) -> dict:
    """The spec's priors restricted to a held-out model's parameters and groups."""
    out: dict[str, Any] = {}
    for name, value in (spec_priors or {}).items():
        if name not in param_groups:
            continue
        groups = param_groups[name]
        if isinstance(value, dict) and "dist" not in value:
            if groups is None:
                continue
            kept = {g: v for g, v in value.items() if g in groups}
            if kept:
                out[name] = kept
        else:
            out[name] = value
    return out


def bayesian_internal_consistency(
    prep,
    model_name: str | None = None,
    sampler: dict[str, Any] | None = None,
    groups: list[str] | None = None,
    prob: float | None = None,
    kind: str | None = None,
) -> pd.DataFrame:
    """Hold each known group out, refit the Bayesian model with it hidden, compare with truth.

    Parameters
    ----------
    prep : bayes_nsum.analysis.Prepared
        Prepared data and spec (:func:`bayes_nsum.analysis.prepare`).
    model_name : str, optional
        Model to fit (default: the spec's ``[model] name``).
    sampler : dict, optional
        Sampler settings over the spec's (``draws``, ``tune``, ``chains``, ``seed`` ...).
    groups : list of str, optional
        Known groups to hold out (default: every known group).
    prob, kind : optional
        Interval probability and kind (default: the spec's ``[output]``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IC_COLUMNS` plus ``interval_prob``, ``r_hat`` (of the held-out size) and
        ``converged`` (the refit's convergence checks).

    Notes
    -----
    The held-out group gets the model's default prior for a hidden group's visible prevalence;
    its transmission rate and degree ratio are fixed at 1 (a known group is fully visible). The
    spec's priors are kept for the parameters and groups the held-out model has.
    """
    from ..analysis import build_model, fit_and_check

    spec = prep.spec
    ard = prep.ard
    known = list(ard.known)
    if len(known) < 2:
        raise BayesNsumError("internal consistency needs at least two known groups")
    groups = list(groups) if groups else known
    bad = [g for g in groups if g not in known]
    if bad:
        raise BayesNsumError(f"internal consistency: {', '.join(bad)} are not known groups")
    prob = spec.interval_prob if prob is None else float(prob)
    kind = spec.interval_kind if kind is None else kind
    settings = {**spec.sampler, **{k: v for k, v in (sampler or {}).items() if v is not None}}
    settings.setdefault("progress", False)
    name = model_name or spec.model_name
    rows = []
    for g in groups:
        held = ard.with_groups(known=[k for k in known if k != g], hidden=[g])
        probe = build_model(prep, name=name, ard=held, spec_priors=False)
        pgroups = probe.param_groups()
        priors = _held_out_priors(spec.section("priors"), pgroups)
        for fixed in ("tau", "delta"):
            if fixed in pgroups:
                priors[fixed] = {g: 1.0}
        model = build_model(prep, priors=priors, name=name, ard=held, spec_priors=False)
        result = fit_and_check(model, settings, steps=()).result
        summ = result.summary(prob, kind)
        row = summ[(summ["quantity"] == "size") & (summ["area"] == "") & (summ["group"] == g)]
        if row.empty:
            raise BayesNsumError(f"the {model.name} model gave no national size for '{g}'")
        r = row.iloc[0]
        true = float(ard.known_sizes[g])
        est = float(r["estimate"])
        diag = result.diagnostics(spec.diagnostics)
        rows.append(
            {
                "group": g,
                "true_size": true,
                "estimate": est,
                "error": est - true,
                "relative_error": (est - true) / true,
                "lower": float(r["lower"]),
                "upper": float(r["upper"]),
                "interval_prob": prob,
                "r_hat": float(r["r_hat"]),
                "converged": bool(diag["passed"]),
            }
        )
    return pd.DataFrame(rows, columns=IC_COLUMNS + ["interval_prob", "r_hat", "converged"])


def summarize_ic(table: pd.DataFrame) -> dict[str, float]:
    """Mean absolute relative error, RMSE and coverage of an internal-consistency table."""
    from ..classical import summarize_internal_consistency

    out = summarize_internal_consistency(table)
    if {"lower", "upper"} <= set(table.columns):
        inside = (table["true_size"] >= table["lower"]) & (table["true_size"] <= table["upper"])
        out["coverage"] = float(inside.mean())
    return out


def run_bayesian_validate(
    spec,
    out: str | Path | None = None,
    sampler: dict[str, Any] | None = None,
    groups: list[str] | None = None,
    model_name: str | None = None,
) -> tuple[pd.DataFrame, dict[str, float], Path]:
    """Bayesian internal consistency of a spec's model; writes ``internal_consistency.csv`` and
    ``internal_consistency.json`` (summary, method, provenance) in the output folder."""
    from ..analysis import VALIDATE_OUTPUTS, check_model, prepare, provenance
    from ..io import StagedFolder, write_csv, write_json
    from ..preflight import check_output, check_sampler_settings
    from ..spec import load_spec

    spec = load_spec(spec)
    outdir = check_output(spec.output_dir(out))
    prep = prepare(spec)
    if model_name is None:
        check_model(prep)
    check_sampler_settings({**spec.sampler, **(sampler or {})})
    table = bayesian_internal_consistency(prep, model_name, sampler, groups)
    summary = summarize_ic(table)
    with StagedFolder(outdir, VALIDATE_OUTPUTS) as stage:
        write_csv(table, stage.path / "internal_consistency.csv")
        write_json(
            {
                "summary": summary,
                "method": "bayesian",
                "model": model_name or prep.spec.model_name,
                **provenance(prep, sampler, command="validate-bayesian"),
            },
            stage.path / "internal_consistency.json",
        )
    return table, summary, outdir
