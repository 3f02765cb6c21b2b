"""Gathering a sweep: the scenario folders of a plan into one table, dataset and tornado plot.

**Gathering.** :func:`gather_sweep` reads every scenario folder of the plan and writes

* ``sweep.csv`` -- one row per scenario and summary row: ``scenario``, ``status`` (``complete``,
  ``failed`` or ``not run``), ``error``, one column per grid key (named by its key), then the
  ``summary.csv`` columns (:data:`bayes_nsum.result.SUMMARY_COLUMNS` + ``converged``);
* ``sweep.nc`` -- the same numbers as an xarray Dataset with dims ``scenario``, ``quantity``,
  ``group`` (and ``area`` for per-area results), the grid keys, ``status`` and ``error`` as
  coordinates along ``scenario``; attrs ``n_scenarios``, ``n_complete``, ``n_failed``,
  ``n_not_run`` and ``complete`` (1 only when every scenario of the plan finished);
* ``failures.json``, ``tornado.csv`` and ``tornado.png``: how far each factor moves each
  hidden size from the baseline scenario, the other factors at baseline
  (:func:`factor_effects`);
* ``sweep_wide.csv``, ``.md`` and ``.tex`` -- the paper-ready table: one row per hidden group and
  quantity, one column block per finished scenario, labelled by its factor levels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..io import atomic_write, write_csv, write_json
from ..report.figures import plot_tornado
from ..report.tables import write_wide
from ..result import SUMMARY_COLUMNS
from .plan import (
    FAILED,
    KEEP,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_NOT_RUN,
    UNSET,
    Scenario,
    Sweep,
    _canonical,
    _cell,
    _read_json,
    scenario_state,
)

RESULT_VARS = ["estimate", "mean", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]
#: columns of ``tornado.csv`` (:func:`factor_effects`)
TORNADO_COLUMNS = [
    "group",
    "quantity",
    "factor",
    "n_levels",
    "baseline",
    "low",
    "high",
    "low_level",
    "high_level",
    "low_ratio",
    "high_ratio",
    "baseline_converged",
    "low_converged",
    "high_converged",
]


@dataclass
class SweepResult:
    """Everything a sweep produced (also written under ``out``)."""

    table: pd.DataFrame
    dataset: xr.Dataset
    effects: pd.DataFrame
    failures: list[dict[str, Any]]
    out: Path
    n_scenarios: int
    n_complete: int
    n_failed: int
    n_skipped: int = 0
    n_run: int = 0
    #: finished scenarios whose fit failed its convergence checks (``scenario``, ``overrides``)
    unconverged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_unconverged(self) -> int:
        return len(self.unconverged)

    @property
    def complete(self) -> bool:
        return self.n_complete == self.n_scenarios


def shown_level(sweep: Sweep, key: str, value: Any) -> Any:
    """A factor level as tables and plots show it: ``"(spec)"`` as the spec's own value (with
    "(spec)" after it), ``"(unset)"`` as "(default)"."""
    if isinstance(value, str) and value == KEEP:
        node: Any = sweep.base_with_fixed.raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "(default)" if node is None else f"{_text(node)} (spec)"
    if isinstance(value, str) and value == UNSET:
        return "(default)"
    return _cell(value)


def _scenario_rows(sweep: Sweep, s: Scenario, folder: Path, state: str) -> list[dict[str, Any]]:
    base = {"scenario": s.id}
    grid_cells = {k: shown_level(sweep, k, s.overrides.get(k)) for k in sweep.factors}
    if state == "complete":
        summary = pd.read_csv(
            folder / "summary.csv",
            keep_default_na=False,
            na_values=["", "nan", "NaN"],
            dtype={"area": str, "group": str, "quantity": str},
        )
        summary["area"] = summary["area"].fillna("")
        summary["group"] = summary["group"].fillna("")
        rows = []
        for rec in summary.to_dict("records"):
            rows.append({**base, "status": STATUS_COMPLETE, "error": "", **grid_cells, **rec})
        if rows:
            return rows
        return [{**base, "status": STATUS_COMPLETE, "error": "", **grid_cells}]
    if state == "failed":
        err = (_read_json(folder / FAILED) or {}).get("error", "unknown error")
        return [{**base, "status": STATUS_FAILED, "error": err, **grid_cells}]
    reason = {
        "missing": "",
        "incomplete": "interrupted: no completion marker",
        "stale": "results are for another spec",
    }.get(state, "")
    return [{**base, "status": STATUS_NOT_RUN, "error": reason, **grid_cells}]


def _text(value: Any) -> str:
    v = _cell(value)
    return "" if v is None else str(v)


def converged_flags(values: Any) -> np.ndarray:
    """``converged`` cells as 1.0 (passed), 0.0 (failed its convergence checks) or NaN (no
    checks: a classical scenario, or not finished), whether read as bools or as text."""
    truth = {"true": 1.0, "1": 1.0, "1.0": 1.0, "false": 0.0, "0": 0.0, "0.0": 0.0}
    return np.array([truth.get(str(v).strip().lower(), np.nan) for v in values], dtype=float)


def _to_dataset(sweep: Sweep, table: pd.DataFrame, states: dict[str, str]) -> xr.Dataset:
    ids = [s.id for s in sweep.scenarios()]
    done = table[table["status"] == STATUS_COMPLETE].dropna(subset=["quantity"])
    if len(done):
        frame = done.set_index(["scenario", "area", "quantity", "group"])[RESULT_VARS]
        frame = frame[~frame.index.duplicated()]
        ds = xr.Dataset.from_dataframe(frame.astype(float)).reindex(scenario=ids)
        if list(ds["area"].values) == [""]:
            ds = ds.isel(area=0, drop=True)
    else:
        ds = xr.Dataset(coords={"scenario": ids})
    per = table.drop_duplicates("scenario").set_index("scenario").reindex(ids)
    conv = table.groupby("scenario")["converged"].first().reindex(ids)
    ds["converged"] = ("scenario", converged_flags(conv))
    coords = {
        "status": ("scenario", per["status"].astype(str).to_numpy()),
        "error": ("scenario", per["error"].fillna("").astype(str).to_numpy()),
    }
    overrides = {s.id: s.overrides for s in sweep.scenarios()}
    for key in sweep.factors:
        coords[key] = ("scenario", np.array([_text(overrides[i].get(key)) for i in ids]))
    ds = ds.assign_coords(coords)
    n_complete = sum(1 for v in states.values() if v == "complete")
    n_failed = sum(1 for v in states.values() if v == "failed")
    ds.attrs.update(
        {
            "description": sweep.description,
            "design": sweep.design,
            "grid": _canonical(sweep.grid),
            "set": _canonical(sweep.fixed),
            "spec_hash": sweep.base.digest(),
            "n_scenarios": len(ids),
            "n_complete": n_complete,
            "n_failed": n_failed,
            "n_not_run": len(ids) - n_complete - n_failed,
            "n_unconverged": int((ds["converged"] == 0).sum()),
            "complete": int(n_complete == len(ids)),
            "baseline_scenario": sweep.baseline().id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    return ds


def gather_sweep(sweep: Sweep, out: str | Path, write: bool = True) -> SweepResult:
    """Collect the scenario folders of a plan into one table, dataset and tornado plot.

    Only scenarios of this plan are read; a folder counts as finished only with its completion
    marker written for the scenario's current spec (see :func:`scenario_state`).

    Parameters
    ----------
    sweep : Sweep
    out : path
        The sweep's output folder.
    write : bool
        Write ``sweep.csv``, ``sweep.nc``, ``failures.json``, ``tornado.csv``,
        ``tornado.png`` and ``sweep.json`` (the plan with the counts of complete, failed and
        unconverged scenarios) into ``out``.
    """
    out = Path(out)
    rows: list[dict[str, Any]] = []
    states: dict[str, str] = {}
    failures = []
    for s in sweep.scenarios():
        folder = out / "scenarios" / s.id
        state = scenario_state(folder, sweep.spec_for(s).digest())
        states[s.id] = state
        new = _scenario_rows(sweep, s, folder, state)
        rows.extend(new)
        if state == "failed":
            failures.append({"scenario": s.id, "overrides": s.overrides, "error": new[0]["error"]})
    columns = ["scenario", "status", "error", *sweep.factors, *SUMMARY_COLUMNS, "converged"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for col in ("area", "group"):
        table[col] = table[col].astype(object).where(table[col].notna(), "")
    dataset = _to_dataset(sweep, table, states)
    effects = factor_effects(table, {k: shown_level(sweep, k, v[0]) for k, v in sweep.grid.items()})
    n_complete = int(dataset.attrs["n_complete"])
    n_failed = int(dataset.attrs["n_failed"])
    flags = dict(zip(dataset["scenario"].values, dataset["converged"].values, strict=True))
    unconverged = [
        {"scenario": s.id, "overrides": s.overrides}
        for s in sweep.scenarios()
        if states[s.id] == "complete" and flags[s.id] == 0
    ]
    if write:
        write_csv(table, out / "sweep.csv")
        atomic_write(out / "sweep.nc", lambda p: dataset.to_netcdf(p, engine="h5netcdf"))
        write_json(failures, out / "failures.json")
        write_json(
            {
                **sweep.describe(),
                "n_scenarios": len(states),
                "n_complete": n_complete,
                "n_failed": n_failed,
                "n_unconverged": len(unconverged),
                "unconverged": unconverged,
            },
            out / "sweep.json",
        )
        write_csv(effects, out / "tornado.csv")
        done = table[table["status"] == STATUS_COMPLETE]
        if len(done):
            labels = {
                s.id: "; ".join(
                    f"{k.rsplit('.', 1)[-1]}={shown_level(sweep, k, s.overrides.get(k))}"
                    for k in sweep.factors
                )
                or s.id
                for s in sweep.scenarios()
            }
            done = done.assign(scenario=done["scenario"].map(labels))
            write_wide(done, "scenario", out, "sweep", sweep.base_with_fixed.interval_prob)
        if len(effects):
            note = ""
            if unconverged:
                note = (
                    f"{len(unconverged)} of {len(states)} scenarios did not pass their "
                    "convergence checks: hatched bar ends, marked (not converged)"
                )
            plot_tornado(effects, out / "tornado.png", note=note)
    return SweepResult(
        table=table,
        dataset=dataset,
        effects=effects,
        failures=failures,
        out=out,
        n_scenarios=len(states),
        n_complete=n_complete,
        n_failed=n_failed,
        unconverged=unconverged,
    )


# ---------------------------------------------------------------------------------------------
# factor effects and the tornado plot
# ---------------------------------------------------------------------------------------------


def factor_effects(
    table: pd.DataFrame, baseline_levels: Mapping[str, Any], quantity: str = "size"
) -> pd.DataFrame:
    """How much each factor moves each hidden group's estimate, around the baseline.

    For each factor, the scenarios used are those with every *other* factor at its baseline
    level (the one-at-a-time slice, present in both designs); the (national) ``estimate`` of
    ``quantity`` at each level of the factor is read from them. ``low``/``high`` are the
    smallest and largest of these estimates and ``low_level``/``high_level`` the levels giving
    them; ratios are relative to the baseline scenario's estimate (every factor at baseline).
    Factors with fewer than two finished levels in the slice are left out, and so is every
    group whose baseline scenario did not finish. ``baseline_converged``, ``low_converged``
    and ``high_converged`` are False where that scenario's fit failed its convergence checks
    (read from the table's ``converged`` column; scenarios without checks, e.g. classical
    ones, count as True).

    Parameters
    ----------
    table : pandas.DataFrame
        ``sweep.csv`` (:func:`gather_sweep`).
    baseline_levels : mapping
        Factor (grid key) -> its baseline (first) level.
    quantity : str
        Summary quantity (default ``size``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TORNADO_COLUMNS`, sorted by group and by decreasing
        ``high / low``.
    """
    rows: list[dict[str, Any]] = []
    if table.empty or "quantity" not in table:
        return pd.DataFrame(columns=TORNADO_COLUMNS)
    sel = table[
        (table["status"] == STATUS_COMPLETE)
        & (table["quantity"] == quantity)
        & (table["area"].fillna("") == "")
    ].copy()
    sel = sel[np.isfinite(pd.to_numeric(sel["estimate"], errors="coerce"))]
    ok = pd.Series(
        converged_flags(sel["converged"]) != 0 if "converged" in sel else True, index=sel.index
    )
    factors = [f for f in baseline_levels if f in sel]
    text = {f: sel[f].map(_text) for f in factors}
    base_text = {f: _text(baseline_levels[f]) for f in factors}
    at_base = {f: text[f] == base_text[f] for f in factors}
    for group in dict.fromkeys(sel["group"]):
        in_group = sel["group"] == group
        all_base = in_group.copy()
        for f in factors:
            all_base &= at_base[f]
        if not all_base.any():
            continue
        base = float(pd.to_numeric(sel.loc[all_base, "estimate"]).iloc[0])
        base_ok = bool(ok[all_base].iloc[0])
        for f in factors:
            mask = in_group.copy()
            for other in factors:
                if other != f:
                    mask &= at_base[other]
            est = pd.to_numeric(sel.loc[mask, "estimate"])
            levels = text[f][mask]
            per_level = est.groupby(levels.to_numpy(), sort=False).first()
            ok_level = ok[mask].groupby(levels.to_numpy(), sort=False).first()
            if len(per_level) < 2:
                continue
            lo, hi = per_level.idxmin(), per_level.idxmax()
            rows.append(
                {
                    "group": group,
                    "quantity": quantity,
                    "factor": f,
                    "n_levels": len(per_level),
                    "baseline": base,
                    "low": float(per_level[lo]),
                    "high": float(per_level[hi]),
                    "low_level": lo,
                    "high_level": hi,
                    "low_ratio": float(per_level[lo]) / base if base else np.nan,
                    "high_ratio": float(per_level[hi]) / base if base else np.nan,
                    "baseline_converged": base_ok,
                    "low_converged": bool(ok_level[lo]),
                    "high_converged": bool(ok_level[hi]),
                }
            )
    eff = pd.DataFrame(rows, columns=TORNADO_COLUMNS)
    if len(eff):
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.log(eff["high"].astype(float)) - np.log(eff["low"].astype(float))
        eff = (
            eff.assign(_s=spread)
            .sort_values(["group", "_s"], ascending=[True, False], kind="stable")
            .drop(columns="_s")
        )
    return eff.reset_index(drop=True)
