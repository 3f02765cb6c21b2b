r"""Model comparison (PSIS-LOO) and internal consistency of Bayesian fits.

Leave-one-out cross-validation
------------------------------
Each respondent is one observation. Its log-likelihood at a posterior draw is the probability of
all of its answers with its latent effect (degree, or Zheng et al.'s respondent effect)
integrated out by quadrature (:func:`bayes_nsum.ppc.respondent_log_likelihood`): exactly the
term the Poisson models' likelihood sums, and the marginal (not the conditional given the
fitted effect) for the negative-binomial models, so that every model is scored on the same
thing -- predicting a new respondent's answers -- and the importance weights stay stable. The
expected log predictive density is estimated with PSIS-LOO (``arviz.loo``) on at most
``max_draws`` draws (each chain thinned evenly) and models are ranked with ``arviz.compare``.
Pareto :math:`\hat k` above the threshold ``arviz`` reports (0.7, or less for few draws) marks
respondents whose LOO estimate is unreliable; they are counted in the table.

Internal consistency
--------------------
Each known group is held out in turn, estimated as if hidden, and compared with its true size.

* :func:`bayesian_internal_consistency` refits the model once per held-out group (the known
  groups minus the one held out are known, the held-out group is the only hidden group, with
  transmission rate and degree ratio fixed at 1 because a known group is fully visible). It is
  the honest check and costs one fit per group.
* :func:`quick_internal_consistency` is the cheap version used by ``bayes-nsum compare`` by
  default: the fit's posterior draws of the population parameters are reused, each respondent's
  degree is re-estimated from its answers to the *other* groups only (its posterior mean given
  those answers, by quadrature), and the held-out group's share is the ratio estimator
  :math:`\sum_i y_{ik} / \sum_i E[d_i \mid y_{i,-k}]` (Killworth's estimator with model-based
  degrees). Its uncertainty: per posterior draw, the rate is drawn from its conditional
  posterior under Poisson answers and a flat prior on the log rate given the re-estimated
  degrees, :math:`\mathrm{Gamma}(\sum_i y_{ik}, \sum_i E[d_i \mid y_{i,-k}])`; this
  understates the spread when answers are overdispersed. For the overdispersed model the share
  is rescaled with the other known groups as in the model. Because the population parameters
  were fitted with the group present, the check is mildly optimistic; use the full refit to
  report a model's accuracy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import BayesNsumError
from .ppc import (
    ModelInfo,
    PPCUnavailable,
    latent_model,
    load_tree,
    model_info,
    pointwise_log_likelihood,
    subset_draws,
)

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
    data,
    info: ModelInfo | None = None,
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
    data : ARD
        The fitted data (known sizes and total population).
    info : ModelInfo, optional
        Default: :func:`bayes_nsum.ppc.model_info` of the tree.
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
    info = info or model_info(tree)
    if info.name == "pooled":
        raise PPCUnavailable(
            "the quick internal-consistency check is not implemented for the pooled model "
            "(area-specific rates); use the full refit (--ic bayes)"
        )
    y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
    all_groups = [str(g) for g in y["group"].values]
    obs_y = y.values.astype(float)
    known = [g for g in data.known if g in all_groups]
    groups = list(groups) if groups else known
    bad = [g for g in groups if g not in known]
    if bad:
        raise BayesNsumError(f"internal consistency: {', '.join(bad)} are not known groups")
    if len(known) < 2:
        raise BayesNsumError("internal consistency needs at least two known groups")
    rng = np.random.default_rng(seed)
    post = subset_draws(tree["posterior"].to_dataset(), n_draws, rng)
    lm = latent_model(info, post, all_groups, data)
    from .ppc import expected_degree

    N = float(data.total_population)
    sizes = data.known_sizes
    log_m = np.log(np.array([float(sizes[g]) for g in known]) / N)
    rows = []
    for g in groups:
        j = all_groups.index(g)
        e = expected_degree(lm, obs_y, exclude=[g])
        answered = ~np.isnan(obs_y[:, j])
        total = float(np.sum(obs_y[answered, j]))
        # rate | degrees ~ Gamma(sum y, sum E[d]) (Poisson answers, flat prior on log rate)
        ratio = rng.gamma(max(total, 0.5), 1.0, size=lm.n_draws) / e[:, answered].sum(axis=1)
        if info.name == "overdispersed":
            others = [k for k in known if k != g]
            beta = np.stack([lm.log_rate[:, 0, all_groups.index(k)] for k in others], axis=1)
            m_others = np.array([float(sizes[k]) for k in others]) / N
            scale = np.log(m_others.sum()) - np.log(np.exp(beta).sum(axis=1))
            share = ratio * np.exp(scale)
        else:
            share = ratio
            if info.options.get("recall_calibration") and "gamma" in post:
                gamma = np.asarray(post["gamma"].values, float)
                center = float(np.mean(log_m))
                share = np.exp((np.log(ratio) + gamma * center) / (1 + gamma))
        rows.append(_ic_row(g, float(sizes[g]), share * N, prob))
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
    from .analysis import build_model

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
    rows = []
    for g in groups:
        held = ard.with_groups(known=[k for k in known if k != g], hidden=[g])
        new_spec = spec.copy()
        if model_name:
            new_spec.raw.setdefault("model", {})["name"] = model_name
        new_spec.raw.pop("priors", None)
        sub = replace(prep, spec=new_spec, ard=held)
        probe = build_model(sub)
        pgroups = probe.param_groups()
        priors = _held_out_priors(spec.section("priors"), pgroups)
        for fixed in ("tau", "delta"):
            if fixed in pgroups:
                priors[fixed] = {g: 1.0}
        new_spec.raw["priors"] = priors
        model = build_model(replace(prep, spec=new_spec, ard=held))
        result = model.fit(**settings)
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
    from .classical import summarize_internal_consistency

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
    from .analysis import prepare, provenance
    from .io import write_csv, write_json

    prep = prepare(spec)
    table = bayesian_internal_consistency(prep, model_name, sampler, groups)
    summary = summarize_ic(table)
    outdir = prep.spec.output_dir(out)
    write_csv(table, outdir / "internal_consistency.csv")
    write_json(
        {
            "summary": summary,
            "method": "bayesian",
            "model": model_name or prep.spec.model_name,
            **provenance(prep, sampler, command="validate-bayesian"),
        },
        outdir / "internal_consistency.json",
    )
    return table, summary, outdir


# ---------------------------------------------------------------------------------------------
# PSIS-LOO
# ---------------------------------------------------------------------------------------------


def loo_of_fit(
    tree: xr.DataTree, info: ModelInfo | None = None, data=None, max_draws: int | None = 1000
):
    """PSIS-LOO (``arviz.loo``, pointwise) of a fit; see the module notes."""
    import arviz as az

    ll_tree = pointwise_log_likelihood(tree, info, data, max_draws)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto distribution.*")
        return az.loo(ll_tree, pointwise=True, var_name="y")


def _same_observations(trees: dict[str, xr.DataTree]) -> None:
    ref_name, ref = None, None
    for name, tree in trees.items():
        y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
        if ref is None:
            ref_name, ref = name, y
            continue
        same = (
            y.shape == ref.shape
            and list(y["respondent"].values) == list(ref["respondent"].values)
            and np.array_equal(y.values, ref.values, equal_nan=True)
        )
        if not same:
            raise BayesNsumError(
                f"models '{ref_name}' and '{name}' were fitted to different answers (respondents, "
                "groups or pre-processing differ); LOO can only compare fits of the same data"
            )


def compare_fits(
    fits: dict[str, xr.DataTree],
    data: dict[str, Any] | None = None,
    max_draws: int | None = 1000,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rank fits of the same data by PSIS-LOO.

    Parameters
    ----------
    fits : dict
        Label -> fitted DataTree.
    data : dict, optional
        Label -> ARD (needed for the pooled model only).
    max_draws : int
        Draws used per fit.

    Returns
    -------
    table : pandas.DataFrame
        One row per model, best first: ``model``, ``rank``, ``elpd_loo``, ``se``, ``p_loo``,
        ``elpd_diff``, ``dse``, ``weight`` (stacking), ``n_bad_k`` (respondents with Pareto k
        above ``k_threshold``), ``max_k``, ``k_threshold``, ``warning``.
    loos : dict
        Label -> ``ELPDData``.
    """
    import arviz as az

    if len(fits) < 2:
        raise BayesNsumError("model comparison needs at least two fits")
    _same_observations(fits)
    loos = {}
    for name, tree in fits.items():
        loos[name] = loo_of_fit(tree, None, (data or {}).get(name), max_draws)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto distribution.*")
        cmp = az.compare(loos, round_to="none")
    rows = []
    for name, r in cmp.iterrows():
        lo = loos[name]
        k = np.asarray(lo.pareto_k)
        thr = float(lo.good_k)
        n_bad = int(np.sum(k > thr))
        warn = []
        if n_bad:
            warn.append(f"{n_bad} respondent(s) with Pareto k > {thr:.2f}: LOO unreliable for them")
        if float(np.max(k)) > 1:
            warn.append("some Pareto k > 1")
        rows.append(
            {
                "model": name,
                "rank": int(r["rank"]),
                "elpd_loo": float(r["elpd"]),
                "se": float(r["se"]),
                "p_loo": float(r["p"]),
                "elpd_diff": float(r["elpd_diff"]),
                "dse": float(r["dse"]),
                "weight": float(r["weight"]),
                "n_bad_k": n_bad,
                "max_k": float(np.max(k)),
                "k_threshold": thr,
                "warning": "; ".join(warn),
            }
        )
    return pd.DataFrame(rows).sort_values("rank").reset_index(drop=True), loos


# ---------------------------------------------------------------------------------------------
# bayes-nsum compare
# ---------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Result of :func:`compare_specs`: the ranked table and the per-model details."""

    table: pd.DataFrame
    ic: dict[str, pd.DataFrame] = field(default_factory=dict)
    outdirs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _labels(specs) -> list[str]:
    labels = []
    for s in specs:
        base = s.path.stem if s.path else s.model_name
        label, i = base, 2
        while label in labels:
            label, i = f"{base}_{i}", i + 1
        labels.append(label)
    return labels


def compare_specs(
    specs: list,
    reuse: bool = False,
    out: str | Path | None = None,
    sampler: dict[str, Any] | None = None,
    ic: str = "quick",
    max_draws: int | None = 1000,
    seed: int = 0,
    echo=None,
) -> Comparison:
    """Fit (or load) every spec's model and rank them by PSIS-LOO beside internal consistency.

    Parameters
    ----------
    specs : list
        Spec files, dicts or :class:`~bayes_nsum.spec.Spec` objects (Bayesian models of the same
        data).
    reuse : bool
        Load ``posterior.nc`` from a spec's output folder instead of fitting, when it exists and
        was written from the same spec (spec hash) and data (data hash); otherwise fit.
    out : path, optional
        Folder for the fits (``OUT/<spec name>/``); default: each spec's own ``[output] dir``.
    sampler : dict, optional
        Sampler settings over the specs'.
    ic : {"quick", "bayes", "none"}
        Internal consistency beside LOO: the quick version (default), the full refit per held-out
        group (slow), or none.
    max_draws : int
        Draws used by LOO per fit.
    seed : int
        Seed of the quick internal-consistency draw selection.
    echo : callable, optional
        Called with progress messages.
    """
    from .analysis import prepare, run_fit
    from .spec import load_spec

    if ic not in ("quick", "bayes", "none"):
        raise BayesNsumError(f"--ic must be 'quick', 'bayes' or 'none', not {ic!r}")
    say = echo or (lambda msg: None)
    specs = [load_spec(s) for s in specs]
    if len(specs) < 2:
        raise BayesNsumError("compare needs at least two specs")
    for s in specs:
        if s.model_name == "killworth":
            raise BayesNsumError(
                f"{s.where}: [model] name is 'killworth' (classical); compare ranks Bayesian "
                "models by LOO"
            )
    labels = _labels(specs)
    outdirs = {
        lab: (Path(out) / lab if out is not None else s.output_dir())
        for lab, s in zip(labels, specs, strict=True)
    }
    seen: dict[Path, str] = {}
    for lab, d in outdirs.items():
        key = d.resolve()
        if key in seen:
            raise BayesNsumError(
                f"specs '{seen[key]}' and '{lab}' write to the same folder {d}; give them "
                "different [output] dir or use --out"
            )
        seen[key] = lab
    fits: dict[str, xr.DataTree] = {}
    datas: dict[str, Any] = {}
    converged: dict[str, bool] = {}
    reused: dict[str, bool] = {}
    notes: list[str] = []
    preps = {}
    for lab, spec in zip(labels, specs, strict=True):
        prep = prepare(spec)
        preps[lab] = prep
        d = outdirs[lab]
        tree = None
        if reuse and (d / "posterior.nc").is_file():
            tree = load_tree(d)
            prov = model_info(tree, d).provenance
            if prov.get("spec_hash") != spec.digest() or prov.get("data_hash") != (
                prep.ard.data_hash()
            ):
                notes.append(f"{lab}: {d / 'posterior.nc'} is from another spec or data; refitted")
                tree = None
        if tree is None:
            say(f"fitting {lab} ({spec.model_name}) -> {d}")
            _, diag, _ = run_fit(spec, d, sampler)
            tree = load_tree(d)
            converged[lab] = bool(diag["passed"])
            reused[lab] = False
        else:
            say(f"reusing {d / 'posterior.nc'}")
            converged[lab] = bool(int(tree.attrs.get("converged", 0)))
            reused[lab] = True
        fits[lab] = tree
        datas[lab] = prep.ard
    say("computing PSIS-LOO")
    table, _ = compare_fits(fits, datas, max_draws)
    ic_tables: dict[str, pd.DataFrame] = {}
    ic_summary: dict[str, dict[str, float]] = {}
    for lab in labels:
        if ic == "none":
            continue
        try:
            if ic == "quick":
                say(f"quick internal consistency of {lab}")
                t = quick_internal_consistency(
                    fits[lab],
                    datas[lab],
                    groups=None,
                    seed=seed,
                    prob=preps[lab].spec.interval_prob,
                )
            else:
                say(f"Bayesian internal consistency of {lab} (one fit per known group)")
                t = bayesian_internal_consistency(preps[lab], sampler=sampler)
        except PPCUnavailable as exc:
            notes.append(f"{lab}: internal consistency not available: {exc}")
            continue
        ic_tables[lab] = t
        ic_summary[lab] = summarize_ic(t)
    table["model_name"] = [preps[m].spec.model_name for m in table["model"]]
    table["ic_method"] = ["" if m not in ic_summary else ic for m in table["model"]]
    table["ic_mean_abs_rel_error"] = [
        ic_summary.get(m, {}).get("mean_absolute_relative_error", np.nan) for m in table["model"]
    ]
    table["ic_rmse"] = [ic_summary.get(m, {}).get("rmse", np.nan) for m in table["model"]]
    table["ic_coverage"] = [ic_summary.get(m, {}).get("coverage", np.nan) for m in table["model"]]
    table["converged"] = [converged[m] for m in table["model"]]
    table["reused"] = [reused[m] for m in table["model"]]
    table["outdir"] = [str(outdirs[m]) for m in table["model"]]
    return Comparison(table=table, ic=ic_tables, outdirs=outdirs, notes=notes)


def write_comparison(comp: Comparison, out: str | Path) -> dict[str, Path]:
    """Write ``compare.csv``, ``compare.json`` and a self-contained ``compare.html``."""
    from .io import write_csv, write_json, write_text
    from .report import comparison_html

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": write_csv(comp.table, out / "compare.csv"),
        "json": write_json(
            {
                "table": comp.table.to_dict(orient="records"),
                "internal_consistency": {
                    k: v.to_dict(orient="records") for k, v in comp.ic.items()
                },
                "notes": comp.notes,
            },
            out / "compare.json",
        ),
    }
    paths["html"] = write_text(comparison_html(comp), out / "compare.html")
    return paths


__all__ = [
    "IC_COLUMNS",
    "quick_internal_consistency",
    "bayesian_internal_consistency",
    "run_bayesian_validate",
    "summarize_ic",
    "loo_of_fit",
    "compare_fits",
    "compare_specs",
    "write_comparison",
    "Comparison",
]
