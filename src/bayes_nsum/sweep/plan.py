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

import copy
import difflib
import hashlib
import itertools
import json
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BayesNsumError, PriorError, SpecError
from ..spec import Spec, load_spec

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
    from ..data import load_survey

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
    from ..analysis import CLASSICAL_MODELS, prepare, prior_search_dirs
    from ..estimators import MODELS
    from ..priors import load_prior_set

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
    config = sweep.base_with_fixed.model
    groups_of: dict[str, set[str]] = {}
    scalar: set[str] = set()
    for n in bayes:
        cls = MODELS[n]
        opts = config.split(cls.options_used)[0]
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
