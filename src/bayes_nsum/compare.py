"""``bayes-nsum compare``: Bayesian models of the same survey ranked by PSIS-LOO, beside their
internal consistency.

Every spec is fitted through the workflow's one path (:func:`bayes_nsum.analysis.run_fit`) or
its saved fit reused; the ranking reads each fit's ``log_likelihood`` group
(:mod:`bayes_nsum.checks.loo`), and internal consistency is the quick check on the fit or the
full refit per held-out group (:mod:`bayes_nsum.checks.consistency`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .checks.consistency import (
    bayesian_internal_consistency,
    quick_internal_consistency,
    summarize_ic,
)
from .checks.loo import compare_fits
from .errors import BayesNsumError
from .report import comparison_html, load_tree
from .report.tables import write_wide


def _provenance(tree: xr.DataTree) -> dict[str, Any]:
    prov = tree.attrs.get("provenance", {})
    if isinstance(prov, str):
        try:
            prov = json.loads(prov)
        except json.JSONDecodeError:
            prov = {}
    return prov if isinstance(prov, dict) else {}


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
    from .analysis import check_model, prepare, run_fit
    from .estimators.base import NSUMModel
    from .preflight import check_output
    from .spec import load_spec

    if ic not in ("quick", "bayes", "none"):
        raise BayesNsumError(f"--ic must be 'quick', 'bayes' or 'none', not {ic!r}")
    say = echo or (lambda msg: None)
    specs = [load_spec(s) for s in specs]
    if len(specs) < 2:
        raise BayesNsumError("compare needs at least two specs")
    for s in specs:
        if s.model.is_classical:
            raise BayesNsumError(
                f"{s.where}: [model] name is '{s.model_name}' (classical); compare ranks Bayesian "
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
    converged: dict[str, bool] = {}
    reused: dict[str, bool] = {}
    notes: list[str] = []
    # every folder, spec, data set and model is checked before the first fit
    for d in outdirs.values():
        check_output(d)
    preps = {lab: prepare(spec) for lab, spec in zip(labels, specs, strict=True)}
    for prep in preps.values():
        check_model(prep)
    for lab, spec in zip(labels, specs, strict=True):
        prep = preps[lab]
        d = outdirs[lab]
        tree = None
        if reuse and (d / "posterior.nc").is_file():
            tree = load_tree(d)
            prov = _provenance(tree)
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
    say("computing PSIS-LOO")
    table, _ = compare_fits(fits, max_draws)
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
                    NSUMModel.from_tree(fits[lab]),
                    seed=seed,
                    prob=preps[lab].spec.interval_prob,
                )
            else:
                say(f"Bayesian internal consistency of {lab} (one fit per known group)")
                t = bayesian_internal_consistency(preps[lab], sampler=sampler)
        except BayesNsumError as exc:
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
    estimates = []  # paper-ready: every model's sizes side by side
    for label, folder in comp.outdirs.items():
        summary = Path(folder) / "summary.csv"
        if summary.is_file():
            s = pd.read_csv(summary, keep_default_na=False, na_values=["", "nan"])
            conv = comp.table.set_index("model")["converged"].get(label, True)
            estimates.append(s.assign(model=label, converged=conv))
    if estimates:
        wide = write_wide(pd.concat(estimates, ignore_index=True), "model", out, "compare")
        paths.update({f"wide_{k}": v for k, v in wide.items()})
    return paths


__all__ = ["compare_specs", "write_comparison", "Comparison"]
