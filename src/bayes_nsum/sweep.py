"""Scenario sweeps and prior-set comparisons, run through Dask.

A **sweep file** (TOML) describes how to vary one analysis spec::

    description = "How the estimates move with top-coding and the transmission prior"
    design = "product"                 # or "one_at_a_time" (baseline + one factor at a time)

    [set]                              # applied to every scenario (not a factor)
    "sampler.draws" = 500

    [grid]                             # factors: dotted spec path -> list of values
    "model.name" = ["killworth", "degree", "combined"]
    "preprocess.topcode" = [20, 30, 50]
    "priors.tau.victims" = ["(spec)", 0.4, 0.6, 0.8]
    "preprocess.impute" = ["(spec)", "(unset)"]
    drop_known = "each"                # named factor: no group dropped, then each known group

    [options]
    sensitivity = false                # power-scaling sensitivity of each Bayesian fit
    retry_failed = true                # re-run scenarios that failed last time

Keys of ``[grid]`` (and ``[set]``) are dotted paths into the spec, written in quotes; each list
value replaces the spec value at that path (:meth:`bayes_nsum.spec.Spec.with_value`; a path
that the spec schema does not know is a :class:`~bayes_nsum.errors.SpecError` naming the key).
Two tokens: ``"(spec)"`` keeps the spec's own value and ``"(unset)"`` removes the key (so the
package default applies, e.g. imputation off). Named factors: ``drop_known = "each"`` (or a list
of group names) drops each known group in turn from ``[groups] known``, plus the baseline with
none dropped (``"(none)"``). The first value of every factor is its baseline level.

With ``design = "product"`` (default) the scenarios are the Cartesian product of the lists;
with ``"one_at_a_time"`` they are the baseline plus every other level of each factor with the
other factors at baseline.

**Running.** Each scenario gets an id, a stable hash of its overrides, and its own folder
``OUT/scenarios/<id>/`` holding ``scenario.json``, the results (``summary.csv`` and, for a
Bayesian model, ``posterior.nc`` and ``diagnostics.json``), and last of all, written
atomically, the completion marker ``_COMPLETE.json`` (which also records a hash of the
scenario's full spec). A re-run skips scenarios whose marker is present and whose spec is
unchanged; a folder without the marker (an interrupted run) or with a stale spec is run again.
A scenario that raises is recorded (``_FAILED.json`` with the error and traceback) and does not
stop the others. Scenarios run on a Dask ``LocalCluster`` (2 worker processes, 1 thread each,
by default) or on an existing cluster (``scheduler`` address); any object with ``submit(fn,
*args)`` returning futures with ``result()`` can be passed as ``executor`` (e.g.
:class:`SyncExecutor` runs everything in-process, for tests and debugging).

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
  (:func:`factor_effects`).

:func:`compare_priors` runs the same model and data under several prior sets (a sweep over
``model.prior_set``) and writes one side-by-side table and plot, with power-scaling
sensitivity and prior predictive checks per set.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import difflib
import hashlib
import itertools
import json
import logging
import shutil
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import BayesNsumError, PriorError, SpecError
from .io import atomic_write, write_csv, write_json
from .result import SUMMARY_COLUMNS
from .spec import Spec, load_spec

__all__ = [
    "Sweep",
    "Scenario",
    "SweepResult",
    "ComparisonResult",
    "load_sweep",
    "expand_grid",
    "scenario_id",
    "scenario_state",
    "run_scenario",
    "run_sweep",
    "gather_sweep",
    "factor_effects",
    "plot_tornado",
    "compare_priors",
    "plot_comparison",
    "SyncExecutor",
    "DaskExecutor",
    "dask_executor",
    "KEEP",
    "UNSET",
    "NONE_DROPPED",
]

SWEEP_KEYS = ("description", "design", "grid", "set", "options")
DESIGNS = ("product", "one_at_a_time")
NAMED_FACTORS = ("drop_known",)
OPTION_DEFAULTS: dict[str, Any] = {"sensitivity": False, "retry_failed": True}
#: keep the spec's own value
KEEP = "(spec)"
#: remove the key from the spec (the package default applies)
UNSET = "(unset)"
#: drop_known level: no known group dropped
NONE_DROPPED = "(none)"

MARKER = "_COMPLETE.json"
FAILED = "_FAILED.json"
SCENARIO_FILE = "scenario.json"
STATUS_COMPLETE, STATUS_FAILED, STATUS_NOT_RUN = "complete", "failed", "not run"
RESULT_VARS = ["estimate", "mean", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]
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
]

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def scenario_id(overrides: Mapping[str, Any]) -> str:
    """Stable id of a scenario: the first 12 hex digits of a SHA-256 of its overrides.

    The hash is taken over the JSON text of the overrides with sorted keys, so it does not
    depend on key order, on the process or on the machine.
    """
    return hashlib.sha256(_canonical(dict(overrides)).encode()).hexdigest()[:12]


def _cell(value: Any) -> Any:
    """A grid value as a table cell: scalars as they are, tables and lists as JSON text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return _canonical(value)


@dataclass
class Scenario:
    """One combination of grid values.

    Attributes
    ----------
    id : str
        :func:`scenario_id` of ``overrides``.
    overrides : dict
        Grid key -> value, in grid order.
    """

    id: str
    overrides: dict[str, Any]

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any]) -> Scenario:
        return cls(id=scenario_id(overrides), overrides=dict(overrides))

    def label(self) -> str:
        """``key=value, ...`` for messages."""
        return ", ".join(f"{k}={_cell(v)}" for k, v in self.overrides.items())


def expand_grid(grid: Mapping[str, list[Any]], design: str = "product") -> list[dict[str, Any]]:
    """The scenarios (override dicts) of a grid.

    Parameters
    ----------
    grid : mapping
        Factor -> list of levels (the first level is the baseline).
    design : {"product", "one_at_a_time"}
        ``product``: every combination. ``one_at_a_time``: the baseline, then each other level
        of each factor with the remaining factors at their baseline.

    Returns
    -------
    list of dict
        Distinct override dicts, baseline first.
    """
    if design not in DESIGNS:
        raise SpecError(f"sweep design '{design}' is not one of {', '.join(DESIGNS)}")
    keys = list(grid)
    if not keys:
        return [{}]
    if design == "product":
        combos = [
            dict(zip(keys, vals, strict=True))
            for vals in itertools.product(*(grid[k] for k in keys))
        ]
    else:
        base = {k: grid[k][0] for k in keys}
        combos = [base]
        for k in keys:
            for level in grid[k][1:]:
                combos.append({**base, k: level})
    seen: set[str] = set()
    out = []
    for c in combos:
        sid = scenario_id(c)
        if sid not in seen:
            seen.add(sid)
            out.append(c)
    return out


def _without(spec: Spec, dotted: str) -> Spec:
    """A copy of ``spec`` with the key at ``dotted`` removed (absent keys are fine)."""
    raw = copy.deepcopy(spec.raw)
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.get(part)
        if not isinstance(node, dict):
            break
    else:
        node.pop(parts[-1], None)
    new = Spec(raw=raw, path=spec.path, base_dir=spec.base_dir)
    new.check()
    return new


def _apply(spec: Spec, key: str, value: Any, known: list[str]) -> Spec:
    """Apply one grid override to a spec."""
    if key == "drop_known":
        if value == NONE_DROPPED:
            return spec
        return spec.with_value("groups.known", [k for k in known if k != value])
    if isinstance(value, str) and value == KEEP:
        return spec
    if isinstance(value, str) and value == UNSET:
        return _without(spec, key)
    return spec.with_value(key, value)


# ---------------------------------------------------------------------------------------------
# the sweep plan
# ---------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """A checked sweep plan: a base spec, factors and options.

    Build it with :func:`load_sweep` (which checks every key and value) rather than directly.
    """

    base: Spec
    grid: dict[str, list[Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    design: str = "product"
    options: dict[str, Any] = field(default_factory=lambda: dict(OPTION_DEFAULTS))
    description: str = ""
    path: Path | None = None
    known: list[str] = field(default_factory=list)

    @property
    def factors(self) -> list[str]:
        return list(self.grid)

    @property
    def base_with_fixed(self) -> Spec:
        """The base spec with the ``[set]`` values applied."""
        spec = self.base
        for key, value in self.fixed.items():
            spec = _apply(spec, key, value, self.known)
        return spec

    def scenarios(self) -> list[Scenario]:
        return [Scenario.from_overrides(o) for o in expand_grid(self.grid, self.design)]

    def baseline(self) -> Scenario:
        """The scenario with every factor at its first level."""
        return Scenario.from_overrides({k: v[0] for k, v in self.grid.items()})

    def spec_for(self, scenario: Scenario) -> Spec:
        """The full spec of one scenario (base, then ``[set]``, then the overrides)."""
        spec = self.base_with_fixed
        for key, value in scenario.overrides.items():
            spec = _apply(spec, key, value, self.known)
        return spec

    def describe(self) -> dict[str, Any]:
        """JSON-able plan (written as ``sweep.json``)."""
        return {
            "description": self.description,
            "design": self.design,
            "grid": self.grid,
            "set": self.fixed,
            "options": self.options,
            "sweep_file": str(self.path) if self.path else None,
            "spec_path": str(self.base.path) if self.base.path else None,
            "spec_hash": self.base.digest(),
            "scenarios": [{"id": s.id, "overrides": s.overrides} for s in self.scenarios()],
        }


def _known_groups(spec: Spec) -> list[str]:
    known = spec.raw.get("groups", {}).get("known")
    if known is not None:
        return list(known)
    from .data import load_survey

    return list(load_survey(spec).known)


def _grid_error(where: str, key: str, msg: str) -> SpecError:
    return SpecError(f"{where}: [grid] key '{key}': {msg}")


def _check_levels(where: str, key: str, levels: Any) -> list[Any]:
    if not isinstance(levels, list) or not levels:
        raise _grid_error(where, key, f"must be a non-empty list of values, got {levels!r}")
    texts = [_canonical(v) for v in levels]
    dup = sorted({t for t in texts if texts.count(t) > 1})
    if dup:
        raise _grid_error(where, key, f"value(s) listed twice: {', '.join(dup)}")
    return list(levels)


def _check_model_keys(where: str, sweep: Sweep) -> None:
    """Model names and prior sets exist; prior paths name parameters and groups of a model."""
    from .analysis import CLASSICAL_MODELS, prepare, prior_search_dirs
    from .estimators import MODELS
    from .priors import load_prior_set

    names = sweep.grid.get("model.name", [sweep.base_with_fixed.model_name])
    names = [
        sweep.base_with_fixed.model_name if n == KEEP else "killworth" if n == UNSET else n
        for n in names
    ]
    for n in names:
        if n not in MODELS and n not in CLASSICAL_MODELS:
            key = "model.name" if "model.name" in sweep.grid else "[model] name"
            raise _grid_error(
                where,
                key,
                f"'{n}' is not a model; use one of "
                f"{', '.join(list(CLASSICAL_MODELS) + list(MODELS))}",
            )
    for level in sweep.grid.get("model.prior_set", []):
        if level in (KEEP, UNSET):
            continue
        try:
            load_prior_set(level, prior_search_dirs(sweep.base))
        except PriorError as exc:
            raise _grid_error(where, "model.prior_set", str(exc)) from None
    prior_keys = [k for k in sweep.grid if k.startswith("priors.")]
    if not prior_keys:
        return
    bayes = [n for n in dict.fromkeys(names) if n in MODELS]
    if not bayes:
        raise _grid_error(
            where,
            prior_keys[0],
            f"no Bayesian model in this sweep uses priors (models: "
            f"{', '.join(dict.fromkeys(names))})",
        )
    ard = prepare(sweep.base_with_fixed).ard
    options = sweep.base_with_fixed.section("model")
    groups_of: dict[str, set[str]] = {}
    scalar: set[str] = set()
    for n in bayes:
        cls = MODELS[n]
        opts = {k: v for k, v in options.items() if k in cls.options_allowed}
        try:
            params = cls(ard, **opts).param_groups()
        except BayesNsumError as exc:
            raise _grid_error(where, "model.name", f"model '{n}': {exc}") from None
        for param, groups in params.items():
            if groups is None:
                scalar.add(param)
            groups_of.setdefault(param, set()).update(groups or [])
    for key in prior_keys:
        parts = key.split(".")
        param = parts[1]
        if param not in groups_of:
            close = difflib.get_close_matches(param, list(groups_of), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _grid_error(
                where,
                key,
                f"'{param}' is not a parameter of the model(s) {', '.join(bayes)}"
                f"{hint}; parameters: {', '.join(sorted(groups_of))}",
            )
        if len(parts) >= 3 and param not in scalar and parts[2] not in groups_of[param]:
            raise _grid_error(
                where,
                key,
                f"'{parts[2]}' is not a group of '{param}' (groups: "
                f"{', '.join(sorted(groups_of[param]))})",
            )


def load_sweep(sweep: str | Path | Mapping[str, Any], spec: str | Path | Spec | dict) -> Sweep:
    """Read and check a sweep file (or dict) against a spec.

    Every grid key is applied to the spec once per value, so an unknown section or key, a bad
    token or a value the spec rejects is a :class:`~bayes_nsum.errors.SpecError` naming the grid
    key. Model names, prior set names, and the parameters and groups of ``priors.*`` keys are
    checked against the models of the sweep.

    Parameters
    ----------
    sweep : path or mapping
        The sweep TOML file, or its content as a dict.
    spec : path, Spec or dict
        The base analysis spec.

    Returns
    -------
    Sweep
    """
    base = load_spec(spec)
    if isinstance(sweep, Mapping):
        raw, path, where = copy.deepcopy(dict(sweep)), None, "sweep"
    else:
        path = Path(sweep)
        if not path.is_file():
            raise SpecError(f"sweep file not found: {path}")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML: {exc}") from None
        path, where = path.resolve(), str(path)
    for key in raw:
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(key, SWEEP_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SpecError(f"{where}: unknown key '{key}'{hint}; keys: {', '.join(SWEEP_KEYS)}")
    design = raw.get("design", "product")
    if design not in DESIGNS:
        raise SpecError(f"{where}: design '{design}' is not one of {', '.join(DESIGNS)}")
    options = dict(OPTION_DEFAULTS)
    for key, value in dict(raw.get("options", {})).items():
        if key not in OPTION_DEFAULTS:
            raise SpecError(
                f"{where}: unknown key '{key}' in [options]; keys: {', '.join(OPTION_DEFAULTS)}"
            )
        if not isinstance(value, bool):
            raise SpecError(f"{where}: [options] {key} must be true or false")
        options[key] = value
    grid_raw = raw.get("grid")
    if not isinstance(grid_raw, Mapping) or not grid_raw:
        raise SpecError(f"{where}: a sweep needs a non-empty [grid] table")
    fixed = dict(raw.get("set", {}))
    plan = Sweep(
        base=base,
        grid={},
        fixed={},
        design=design,
        options=options,
        description=str(raw.get("description", "")),
        path=path,
    )
    needs_known = "drop_known" in grid_raw
    plan.known = _known_groups(base) if needs_known else []
    spec_now = base
    for key, value in fixed.items():
        if "." not in key:
            raise SpecError(f"{where}: [set] key '{key}' is not a dotted spec path")
        try:
            spec_now = _apply(spec_now, key, value, plan.known)
        except (SpecError, PriorError) as exc:
            raise SpecError(f"{where}: [set] key '{key}': {exc}") from None
    plan.fixed = fixed
    grid: dict[str, list[Any]] = {}
    for key, levels in grid_raw.items():
        if key == "drop_known":
            if levels == "each":
                levels = list(plan.known)
            elif not isinstance(levels, list):
                raise _grid_error(
                    where, key, f'must be "each" or a list of known groups, got {levels!r}'
                )
            levels = _check_levels(where, key, levels)
            unknown = [g for g in levels if g not in plan.known]
            if unknown:
                raise _grid_error(
                    where,
                    key,
                    f"not known group(s): {', '.join(map(str, unknown))}"
                    f" (known: {', '.join(plan.known)})",
                )
            grid[key] = [NONE_DROPPED, *levels]
            continue
        if "." not in key:
            raise _grid_error(
                where,
                key,
                'not a dotted spec path in quotes (like "preprocess.topcode") nor '
                f"a named factor ({', '.join(NAMED_FACTORS)})",
            )
        levels = _check_levels(where, key, levels)
        for level in levels:
            try:
                _apply(spec_now, key, level, plan.known)
            except (SpecError, PriorError) as exc:
                raise _grid_error(where, key, str(exc)) from None
        grid[key] = levels
    plan.grid = grid
    _check_model_keys(where, plan)
    return plan


# ---------------------------------------------------------------------------------------------
# running one scenario
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def scenario_state(folder: str | Path, spec_hash: str | None = None) -> str:
    """State of a scenario folder.

    Returns
    -------
    str
        ``"complete"`` (completion marker present and, if ``spec_hash`` is given, written for
        that spec), ``"stale"`` (marker for another spec), ``"failed"`` (failure record, no
        marker), ``"incomplete"`` (folder without marker or failure record: an interrupted run)
        or ``"missing"``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    marker = _read_json(folder / MARKER)
    if marker is not None:
        if spec_hash is not None and marker.get("spec_hash") != spec_hash:
            return "stale"
        return "complete" if marker.get("status") == STATUS_COMPLETE else "incomplete"
    failed = _read_json(folder / FAILED)
    if failed is not None and (spec_hash is None or failed.get("spec_hash") == spec_hash):
        return "failed"
    return "incomplete"


def _reset_folder(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _classical_summary(table: pd.DataFrame) -> pd.DataFrame:
    out = table.reindex(columns=SUMMARY_COLUMNS)
    out["converged"] = np.nan
    return out


def _fit_scenario(spec: Spec, folder: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """Fit one scenario's spec and write its result files (not the marker)."""
    from .analysis import CLASSICAL_MODELS, build_model, classical_estimates, prepare, provenance

    prep = prepare(spec)
    prep.log.write(folder)
    if spec.model_name in CLASSICAL_MODELS:
        write_csv(_classical_summary(classical_estimates(prep)), folder / "summary.csv")
        write_json(provenance(prep, None, command="sweep"), folder / "provenance.json")
        return {"kind": "classical", "converged": None}
    model = build_model(prep)
    result = model.fit(**{**spec.sampler, "progress": False})
    prov = provenance(
        prep, result.settings, command="sweep", model=model.config(), timings=result.timings
    )
    result.provenance = {"provenance": prov}
    result.save(folder, spec.interval_prob, spec.interval_kind, spec.diagnostics)
    write_json(prov, folder / "provenance.json")
    diag = _read_json(folder / "diagnostics.json") or {}
    if options.get("sensitivity"):
        from .prior_checks import power_scaling_sensitivity

        try:
            table = power_scaling_sensitivity(result)
            write_csv(table, folder / "sensitivity.csv")
            write_json({"note": table.attrs.get("note", "")}, folder / "sensitivity_note.json")
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the fit
            write_json({"error": f"{type(exc).__name__}: {exc}"}, folder / "sensitivity_error.json")
    return {"kind": "bayesian", "converged": bool(diag.get("passed", False))}


def run_scenario(
    spec: Spec,
    scenario: str,
    overrides: Mapping[str, Any],
    folder: str | Path,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one scenario into its folder; never raises for a failure of the analysis.

    The folder is emptied first, then ``scenario.json`` is written, then the results, and
    last the completion marker (atomically). On an exception a failure record (``_FAILED.json``:
    error and traceback) is written instead of the marker.

    Parameters
    ----------
    spec : Spec
        The scenario's full spec (:meth:`Sweep.spec_for`).
    scenario : str
        Scenario id.
    overrides : mapping
        The scenario's grid values (recorded in ``scenario.json``).
    folder : path
        The scenario's result folder (``OUT/scenarios/<id>``).
    options : mapping, optional
        Sweep options (``sensitivity``).

    Returns
    -------
    dict
        ``id``, ``status`` (``"complete"`` or ``"failed"``), ``error`` and ``seconds``.
    """
    folder = Path(folder)
    t0 = time.perf_counter()
    _reset_folder(folder)
    digest = spec.digest()
    write_json(
        {"id": scenario, "overrides": dict(overrides), "spec_hash": digest, "spec": spec.to_dict()},
        folder / SCENARIO_FILE,
    )
    try:
        info = _fit_scenario(spec, folder, options or {})
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        err = f"{type(exc).__name__}: {exc}"
        write_json(
            {
                "id": scenario,
                "status": STATUS_FAILED,
                "error": err,
                "spec_hash": digest,
                "traceback": traceback.format_exc(),
            },
            folder / FAILED,
        )
        return {
            "id": scenario,
            "status": STATUS_FAILED,
            "error": err,
            "seconds": time.perf_counter() - t0,
        }
    seconds = time.perf_counter() - t0
    write_json(
        {
            "id": scenario,
            "status": STATUS_COMPLETE,
            "spec_hash": digest,
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **info,
        },
        folder / MARKER,
    )
    return {"id": scenario, "status": STATUS_COMPLETE, "error": "", "seconds": seconds}


# ---------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------


class SyncExecutor:
    """Runs each task at once in the calling process (tests, debugging, no Dask)."""

    def submit(self, fn: Callable, *args: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - delivered through the future
            fut.set_exception(exc)
        return fut

    def as_completed(self, futures: Iterable) -> Iterator:
        return iter(list(futures))


class DaskExecutor:
    """Adapter of a ``distributed.Client`` to the executor interface used by :func:`run_sweep`."""

    def __init__(self, client) -> None:
        self.client = client

    def submit(self, fn: Callable, *args: Any):
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, futures: Iterable) -> Iterator:
        from distributed import as_completed

        return iter(as_completed(list(futures)))


@contextmanager
def dask_executor(scheduler: str | None = None, workers: int = 2) -> Iterator[DaskExecutor]:
    """A Dask executor: a new ``LocalCluster`` or a client of an existing cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``). Its workers need this package
        installed and the spec's data files at the same paths.
    workers : int
        Worker processes of the local cluster (one thread each). Worker processes are not
        daemonic, so samplers that start processes of their own can run in them.

    Notes
    -----
    The local cluster starts its workers with ``multiprocessing`` "spawn": a Python script
    that runs a sweep must do so under ``if __name__ == "__main__":``.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield DaskExecutor(client)
        finally:
            client.close()
        return
    if workers < 1:
        raise BayesNsumError("--workers must be at least 1")
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(
            n_workers=int(workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    try:
        yield DaskExecutor(client)
    finally:
        client.close()
        cluster.close()


def _completed(executor, futures: list) -> Iterator:
    if hasattr(executor, "as_completed"):
        return executor.as_completed(futures)
    if all(isinstance(f, cf.Future) for f in futures):
        return cf.as_completed(futures)
    return iter(futures)


# ---------------------------------------------------------------------------------------------
# running and gathering a sweep
# ---------------------------------------------------------------------------------------------


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


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    executor: Any = None,
    scheduler: str | None = None,
    workers: int = 2,
    runner: Callable[..., dict[str, Any]] = run_scenario,
    echo: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every scenario not already finished, then gather the results.

    Parameters
    ----------
    sweep : Sweep
        The plan (:func:`load_sweep`).
    out : path
        Output folder; scenario folders go to ``out/scenarios/<id>/``.
    executor : optional
        Object with ``submit(fn, *args)`` returning futures with ``result()`` (optionally
        ``as_completed(futures)``). Default: a Dask cluster (:func:`dask_executor`).
    scheduler, workers :
        Passed to :func:`dask_executor` when no executor is given.
    runner : callable
        The function run per scenario, ``runner(spec, id, overrides, folder, options)``
        (default :func:`run_scenario`). An exception raised by it (or by the executor) marks that
        scenario failed.
    echo : callable, optional
        Called with one progress line per scenario.

    Returns
    -------
    SweepResult
    """
    out = Path(out)
    say = echo or (lambda _msg: None)
    out.mkdir(parents=True, exist_ok=True)
    write_json(sweep.describe(), out / "sweep.json")
    scenarios = sweep.scenarios()
    todo: list[tuple[Scenario, Spec, Path]] = []
    skipped = 0
    for s in scenarios:
        spec = sweep.spec_for(s)
        folder = out / "scenarios" / s.id
        state = scenario_state(folder, spec.digest())
        if state == "complete" or (state == "failed" and not sweep.options["retry_failed"]):
            skipped += 1
            say(f"[skip] {s.id} already {state} ({s.label()})")
            continue
        todo.append((s, spec, folder))
    if todo:
        if executor is None:
            with dask_executor(scheduler, workers) as ex:
                _run_all(ex, todo, runner, sweep.options, say)
        else:
            _run_all(executor, todo, runner, sweep.options, say)
    result = gather_sweep(sweep, out)
    result.n_skipped = skipped
    result.n_run = len(todo)
    return result


def _run_all(executor, todo, runner, options, say) -> None:
    futures = {}
    for s, spec, folder in todo:
        futures[
            executor.submit(runner, spec, s.id, dict(s.overrides), str(folder), dict(options))
        ] = (s, spec, folder)
    done = 0
    for fut in _completed(executor, list(futures)):
        s, spec, folder = futures[fut]
        done += 1
        try:
            res = fut.result()
            status, error = res.get("status", STATUS_FAILED), res.get("error", "")
        except Exception as exc:  # noqa: BLE001 - a crashed task is one failed scenario
            status, error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"
            try:
                (folder / MARKER).unlink(missing_ok=True)  # an older result is not this one
                write_json(
                    {
                        "id": s.id,
                        "status": STATUS_FAILED,
                        "error": error,
                        "spec_hash": spec.digest(),
                        "traceback": traceback.format_exc(),
                    },
                    folder / FAILED,
                )
            except OSError:
                pass
        say(f"[{done}/{len(todo)}] {s.id} {status}{': ' + error if error else ''} ({s.label()})")


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


def _log_axis(ax) -> None:
    """Log x axis (call after plotting) with plain tick labels at 1, 2 and 5 times powers of
    ten, or at every integer multiple when the axis spans less than a factor of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    narrow = lo > 0 and hi / lo < 10
    subs = tuple(float(k) for k in range(1, 10)) if narrow else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.6g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_tornado(effects: pd.DataFrame, path: str | Path) -> Path:
    """Tornado plot: per hidden group, the range each factor spans relative to the baseline.

    Bars run from ``low_ratio`` to ``high_ratio`` on a log axis (1 = the baseline estimate),
    largest range on top, labelled with the levels at each end.
    """
    from matplotlib.figure import Figure

    groups = list(dict.fromkeys(effects["group"]))
    n_f = max(int(effects.groupby("group").size().max()), 1)
    fig = Figure(figsize=(10, 1.2 + len(groups) * (0.45 * n_f + 0.9)))
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, group in zip(axes[:, 0], groups, strict=True):
        e = effects[effects["group"] == group].iloc[::-1]
        y = np.arange(len(e))
        lo = e["low_ratio"].astype(float).to_numpy()
        hi = e["high_ratio"].astype(float).to_numpy()
        ax.barh(y, hi - lo, left=lo, color="#4c72b0", alpha=0.8, height=0.6)
        for yi, (a, b, la, lb) in enumerate(
            zip(lo, hi, e["low_level"], e["high_level"], strict=True)
        ):
            ax.text(a, yi, f"{str(la)[:24]} ", ha="right", va="center", fontsize=7)
            ax.text(b, yi, f" {str(lb)[:24]}", ha="left", va="center", fontsize=7)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(y, list(e["factor"]))
        ax.set_xscale("log")
        finite = np.concatenate([lo, hi])
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if len(finite):
            ax.set_xlim(finite.min() / 1.8, finite.max() * 1.8)
        _log_axis(ax)
        base = float(e["baseline"].iloc[0])
        ax.set_title(
            f"{group}: {e['quantity'].iloc[0]} relative to baseline ({base:,.4g})", fontsize=10
        )
    axes[-1, 0].set_xlabel("estimate / baseline estimate (other factors at baseline)")
    fig.tight_layout()
    out = atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    return out


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
    from .analysis import CLASSICAL_MODELS, build_model, prepare
    from .prior_checks import plot_prior_predictive, prior_predictive_table, sample_prior_predictive

    base = load_spec(spec)
    if model:
        base = base.with_value("model.name", model)
    if base.model_name in CLASSICAL_MODELS:
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
    out = Path(out) if out is not None else base.output_dir() / "compare_priors"
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
        plot_prior_predictive(pp_sets, out / "prior_predictive.png", prep.ard)

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


def plot_comparison(table: pd.DataFrame, path: str | Path, quantity: str = "size") -> Path:
    """Side-by-side estimates and intervals of every prior set, one panel per hidden group.

    Filled markers: converged fits; hollow markers: convergence checks failed; sets whose fit
    failed are listed in the panel title.
    """
    import matplotlib
    from matplotlib.figure import Figure

    sets = list(dict.fromkeys(table["prior_set"].map(_text)))
    t = table[
        (table["quantity"] == quantity)
        & (table["area"].fillna("") == "")
        & (table["status"] == STATUS_COMPLETE)
    ]
    groups = list(dict.fromkeys(t["group"])) or ["(none)"]
    failed = sorted(set(table.loc[table["status"] != STATUS_COMPLETE, "prior_set"].map(_text)))
    ncol = min(len(groups), 2)
    nrow = -(-len(groups) // ncol)
    fig = Figure(figsize=(6.5 * ncol, nrow * (0.45 * len(sets) + 1.6) + 0.6))
    axes = fig.subplots(
        nrow,
        ncol,
        squeeze=False,
        sharey=True,
    )
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax in axes.ravel()[len(groups) :]:
        ax.set_visible(False)
    for ax, group in zip(axes.ravel(), groups, strict=False):
        g = t[t["group"] == group]
        for j, name in enumerate(sets):
            r = g[g["prior_set"].map(_text) == name]
            if r.empty:
                continue
            r = r.iloc[0]
            est, lo, hi = float(r["estimate"]), float(r["lower"]), float(r["upper"])
            ok = str(r["converged"]).lower() in ("true", "1", "1.0")
            c = colors[j % len(colors)]
            ax.errorbar(
                [est],
                [j],
                xerr=[[est - lo], [hi - est]],
                fmt="o",
                color=c,
                mfc=c if ok else "white",
                ms=6,
                capsize=3,
            )
        ax.set_yticks(np.arange(len(sets)), sets)
        ax.set_ylim(-0.6, len(sets) - 0.4)
        _log_axis(ax)
        title = f"{group} ({quantity})"
        if failed:
            title += f"\nfailed: {', '.join(failed)}"
        ax.set_title(title, fontsize=10)
    fig.suptitle("Estimate and interval under each prior set (hollow: not converged)")
    fig.tight_layout()
    out = atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    return out
