"""Gathering a sweep: the scenario folders of a plan into one table, dataset and tornado plot."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..io import atomic_write, write_csv, write_json
from ..report.figures import plot_tornado
from ..result import SUMMARY_COLUMNS
from .plan import (
    FAILED,
    RESULT_VARS,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_NOT_RUN,
    TORNADO_COLUMNS,
    Scenario,
    Sweep,
    _canonical,
    _cell,
    _read_json,
    scenario_state,
)


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

    @property
    def complete(self) -> bool:
        return self.n_complete == self.n_scenarios


def _scenario_rows(sweep: Sweep, s: Scenario, folder: Path, state: str) -> list[dict[str, Any]]:
    base = {"scenario": s.id}
    grid_cells = {k: _cell(s.overrides.get(k)) for k in sweep.factors}
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
    truth = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
    conv = table.groupby("scenario")["converged"].first().reindex(ids)
    ds["converged"] = (
        "scenario",
        np.array(
            [truth.get(v, np.nan) if not isinstance(v, float) else v for v in conv], dtype=float
        ),
    )
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
        Write ``sweep.csv``, ``sweep.nc``, ``failures.json``, ``tornado.csv`` and
        ``tornado.png`` into ``out``.
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
    effects = factor_effects(table, {k: v[0] for k, v in sweep.grid.items()})
    n_complete = int(dataset.attrs["n_complete"])
    n_failed = int(dataset.attrs["n_failed"])
    if write:
        write_csv(table, out / "sweep.csv")
        atomic_write(out / "sweep.nc", lambda p: dataset.to_netcdf(p, engine="h5netcdf"))
        write_json(failures, out / "failures.json")
        write_csv(effects, out / "tornado.csv")
        if len(effects):
            plot_tornado(effects, out / "tornado.png")
    return SweepResult(
        table=table,
        dataset=dataset,
        effects=effects,
        failures=failures,
        out=out,
        n_scenarios=len(states),
        n_complete=n_complete,
        n_failed=n_failed,
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
    group whose baseline scenario did not finish.

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
        for f in factors:
            mask = in_group.copy()
            for other in factors:
                if other != f:
                    mask &= at_base[other]
            est = pd.to_numeric(sel.loc[mask, "estimate"])
            levels = text[f][mask]
            per_level = est.groupby(levels.to_numpy(), sort=False).first()
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
