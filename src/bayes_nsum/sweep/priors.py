"""Comparing prior sets: one model and survey fitted under several prior sets, side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BayesNsumError, SpecError
from ..io import write_csv, write_json
from ..report.figures import plot_comparison, plot_prior_predictive
from ..report.tables import write_wide
from ..result import SUMMARY_COLUMNS
from ..spec import Spec, load_spec
from .gather import SweepResult
from .plan import _read_json, _without, load_sweep, scenario_state
from .run import run_sweep

# ---------------------------------------------------------------------------------------------
# comparing prior sets
# ---------------------------------------------------------------------------------------------

COMPARISON_COLUMNS = [
    "prior_set",
    "scenario",
    "status",
    "error",
    *SUMMARY_COLUMNS,
    "converged",
    "max_r_hat",
    "min_ess_bulk",
    "divergences",
]


@dataclass
class ComparisonResult:
    """The outputs of :func:`compare_priors` (also written under ``out``)."""

    table: pd.DataFrame
    sensitivity: pd.DataFrame
    prior_predictive: pd.DataFrame
    sweep: SweepResult
    out: Path
    notes: list[str] = field(default_factory=list)


def compare_priors(
    spec: str | Path | Spec | dict,
    prior_sets: list[str],
    out: str | Path | None = None,
    model: str | None = None,
    executor: Any = None,
    scheduler: str | None = None,
    workers: int = 2,
    ignore_spec_priors: bool = False,
    sampler: Mapping[str, Any] | None = None,
    prior_predictive_draws: int = 500,
    echo: Callable[[str], None] | None = None,
) -> ComparisonResult:
    """Fit one model to one survey under several prior sets and compare them side by side.

    Runs as a sweep over ``model.prior_set`` (same Dask execution, skipping and failure
    handling; scenario folders under ``out/scenarios``), with power-scaling sensitivity of each
    fit, and writes ``comparison.csv`` (estimate, interval and diagnostics per set),
    ``comparison.png``, ``sensitivity.csv`` and the prior predictive checks of every set
    (``prior_predictive.csv``, ``prior_predictive.png``).

    Parameters
    ----------
    spec : path, Spec or dict
        The analysis spec; its model must be Bayesian (or give ``model``).
    prior_sets : list of str
        Prior set names (bundled, or ``priors/NAME.toml`` next to the spec) or TOML paths.
    out : path, optional
        Output folder (default: the spec's output folder + ``/compare_priors``).
    model : str, optional
        Model name replacing the spec's ``[model] name``.
    ignore_spec_priors : bool
        Drop the spec's own ``[priors]``, which otherwise override every set (merge order
        user > prior set > model default).
    sampler : mapping, optional
        Sampler settings replacing the spec's (``draws``, ``tune``, ``chains``, ``seed``...).
    prior_predictive_draws : int
        Prior draws per set for the prior predictive checks (0 to skip them).
    """
    from ..analysis import build_model, prepare
    from ..checks.prior_predictive import (
        observed_stats,
        prior_predictive_table,
        sample_prior_predictive,
    )
    from ..preflight import check_output

    base = load_spec(spec)
    if model:
        base = base.with_value("model.name", model)
    if base.model.is_classical:
        raise SpecError(
            f"{base.where}: compare-priors needs a Bayesian model; [model] name is "
            f"'{base.model_name}' (pass --model degree, barrier, transmission, combined, ...)"
        )
    sets = [str(s).strip() for s in prior_sets if str(s).strip()]
    if len(sets) < 1:
        raise SpecError("compare-priors: give at least one prior set")
    notes = []
    if ignore_spec_priors:
        base = _without(base, "priors")
    elif base.section("priors"):
        notes.append(
            f"the spec's own [priors] ({', '.join(base.section('priors'))}) override every "
            "prior set; use --ignore-spec-priors to compare the sets alone"
        )
    fixed = {f"sampler.{k}": v for k, v in (sampler or {}).items() if v is not None}
    plan = load_sweep(
        {
            "description": f"prior sets compared: {', '.join(sets)}",
            "grid": {"model.prior_set": sets},
            "set": fixed,
            "options": {"sensitivity": True},
        },
        base,
    )
    notes.extend(plan.warnings)
    out = check_output(out if out is not None else base.output_dir() / "compare_priors")
    out.mkdir(parents=True, exist_ok=True)

    # prior predictive checks (numpy only, in this process)
    pp_tables, pp_sets = [], {}
    if prior_predictive_draws > 0:
        prep = prepare(plan.base_with_fixed)
        seed = int(plan.base_with_fixed.sampler["seed"])
        for name in sets:
            try:
                m = build_model(prep, prior_set=name)
                ds = sample_prior_predictive(m, draws=prior_predictive_draws, seed=seed)
            except BayesNsumError as exc:
                notes.append(f"prior predictive check skipped for '{name}': {exc}")
                continue
            pp_sets[name] = ds
            pp_tables.append(prior_predictive_table(ds, prep.ard).assign(prior_set=name))
    prior_pred = (
        pd.concat(pp_tables, ignore_index=True)
        if pp_tables
        else pd.DataFrame(columns=["prior_set"])
    )
    if pp_tables:
        prior_pred = prior_pred[["prior_set", *[c for c in prior_pred if c != "prior_set"]]]
        write_csv(prior_pred, out / "prior_predictive.csv")
        plot_prior_predictive(pp_sets, out / "prior_predictive.png", observed_stats(prep.ard))

    res = run_sweep(plan, out, executor=executor, scheduler=scheduler, workers=workers, echo=echo)
    table = res.table.rename(columns={"model.prior_set": "prior_set"})
    sens = []
    diag_cols: dict[str, dict[str, Any]] = {}
    for s in plan.scenarios():
        folder = out / "scenarios" / s.id
        diag = _read_json(folder / "diagnostics.json") or {}
        diag_cols[s.id] = {
            "max_r_hat": diag.get("max_r_hat", np.nan),
            "min_ess_bulk": diag.get("min_ess_bulk", np.nan),
            "divergences": diag.get("divergences", np.nan),
        }
        if (folder / "sensitivity.csv").is_file() and scenario_state(folder) == "complete":
            t = pd.read_csv(
                folder / "sensitivity.csv",
                keep_default_na=False,
                dtype={"variable": str, "group": str, "diagnosis": str},
            )
            sens.append(t.assign(prior_set=s.overrides["model.prior_set"]))
        err = _read_json(folder / "sensitivity_error.json")
        if err:
            notes.append(
                f"sensitivity not computed for '{s.overrides['model.prior_set']}': "
                f"{err.get('error')}"
            )
    extra = pd.DataFrame.from_dict(diag_cols, orient="index")
    table = table.join(extra, on="scenario").reindex(columns=COMPARISON_COLUMNS)
    sensitivity = (
        pd.concat(sens, ignore_index=True) if sens else pd.DataFrame(columns=["prior_set"])
    )
    if sens:
        sensitivity = sensitivity[["prior_set", *[c for c in sensitivity if c != "prior_set"]]]
    write_csv(table, out / "comparison.csv")
    done = table[table["status"] == "complete"]
    if len(done):  # paper-ready: comparison_wide.csv / .md / .tex
        write_wide(done, "prior_set", out, "comparison", base.interval_prob)
    write_csv(sensitivity, out / "sensitivity.csv")
    write_json({"notes": notes, "prior_sets": sets}, out / "comparison_notes.json")
    plot_comparison(table, out / "comparison.png")
    return ComparisonResult(
        table=table,
        sensitivity=sensitivity,
        prior_predictive=prior_pred,
        sweep=res,
        out=out,
        notes=notes,
    )
