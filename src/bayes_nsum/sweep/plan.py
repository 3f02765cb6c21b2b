"""The sweep file: its factors, scenarios and checks, and the state of scenario folders.

A **sweep file** (TOML) describes how to vary one analysis spec::

    description = "How the estimates move with top-coding and the transmission prior"
    design = "product"                 # or "one_at_a_time" (baseline + one factor at a time)

    [set]                              # applied to every scenario (not a factor)
    "sampler.draws" = 500

    [grid]                             # factors: dotted spec path -> list of values
    "model.name" = ["transmission", "combined"]
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

**Every factor must matter.** :func:`load_sweep` checks each scenario as the design expands it:
a factor used by no scenario's model, or at a non-baseline level in a scenario whose model does
not use it (that scenario would repeat another), is a :class:`~bayes_nsum.errors.SpecError`
naming the key and the model; a ``[set]`` key some models do not use is a warning
(``Sweep.warnings``, in ``sweep.json``). Running: :mod:`.run`; gathering: :mod:`.gather`.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
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
        combos = [base] + [{**base, k: level} for k in keys for level in grid[k][1:]]
    out: dict[str, dict[str, Any]] = {}
    for c in combos:
        out.setdefault(scenario_id(c), c)
    return list(out.values())


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
    #: ``[set]`` keys that some scenarios' models do not use (:func:`load_sweep`)
    warnings: list[str] = field(default_factory=list)

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
            "warnings": list(self.warnings),
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
    """Model names and prior sets exist."""
    from ..analysis import CLASSICAL_MODELS, prior_search_dirs
    from ..estimators import MODELS
    from ..priors import load_prior_set

    fixed = sweep.base_with_fixed.model_name
    for n in sweep.grid.get("model.name", [fixed]):
        n = fixed if n == KEEP else "killworth" if n == UNSET else n
        if n not in MODELS and n not in CLASSICAL_MODELS:
            key = "model.name" if "model.name" in sweep.grid else "[model] name"
            models = ", ".join(list(CLASSICAL_MODELS) + list(MODELS))
            raise _grid_error(where, key, f"'{n}' is not a model; use one of {models}")
    for level in sweep.grid.get("model.prior_set", []):
        try:
            if level not in (KEEP, UNSET):
                load_prior_set(level, prior_search_dirs(sweep.base))
        except PriorError as exc:
            raise _grid_error(where, "model.prior_set", str(exc)) from None


def _present(raw: Mapping[str, Any], dotted: str) -> bool:
    """Whether a spec (its raw tables) holds a value at a dotted path."""
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


class _Models:
    """The Bayesian models of a plan's scenarios, each distinct one built once without fitting:
    their parameters, and why the workflow cannot build one (None when it can)."""

    def __init__(self, plan: Sweep) -> None:
        self.plan, self._prep, self._cache = plan, None, {}

    def _prepared(self, spec: Spec):
        from ..analysis import Prepared, prepare

        self._prep = self._prep or prepare(self.plan.base_with_fixed)
        prep, groups = self._prep, spec.raw["groups"]
        try:  # the same data with the scenario's groups (e.g. a known group dropped)
            ard = prep.ard.with_groups(groups.get("known", list(prep.ard.known)), groups["hidden"])
        except BayesNsumError:
            return prepare(spec)
        return Prepared(spec=spec, raw=prep.raw, ard=ard, log=prep.log)

    def _cached(self, key: list, make) -> Any:
        text = _canonical(key)
        if text not in self._cache:
            self._cache[text] = make()
        return self._cache[text]

    def params(self, spec: Spec) -> dict[str, list[str] | None]:
        from ..estimators import MODELS

        cls, ard = MODELS[spec.model.name], self._prepared(spec).ard
        opts = spec.model.split(cls.options_used)[0]
        key = [cls.name, opts, ard.known, ard.hidden]
        return self._cached(key, lambda: cls(ard, **opts).param_groups())

    def build_error(self, spec: Spec) -> str | None:
        from ..analysis import build_model

        def build() -> str | None:
            try:
                build_model(self._prepared(spec))
            except BayesNsumError as exc:
                return str(exc)
            return None

        return self._cached([spec.section(k) for k in ("model", "priors", "groups")], build)


def _unused(key: str, spec: Spec, params: Mapping | None) -> tuple[str, bool] | None:
    """Why the model of a scenario with this spec does not use ``key`` (the text follows "not
    used by the X model: ") and whether its fit would refuse the key; None when the model uses
    it (or may: keys not checked here)."""
    from ..config import CLASSICAL_MODELS, MODEL_OPTIONS
    from ..estimators import MODELS

    section, _, rest = key.partition(".")
    parts = rest.split(".")
    opt = MODEL_OPTIONS.get(parts[0]) if section == "model" else None
    if spec.model.is_classical:
        if opt is not None and not opt.classical:
            return "an option of the Bayesian models", False
        if section == "priors" or key == "model.prior_set":
            return "the classical estimator has no priors", False
        if section == "diagnostics" or (section == "sampler" and parts[0] != "seed"):
            return "the classical estimator does not sample", False
        return None
    used = MODELS[spec.model.name].options_used
    if opt is not None and parts[0] not in used:
        if opt.classical:
            return f"read only by the classical estimator {', '.join(CLASSICAL_MODELS)}", False
        return f"not among its options ({', '.join(used)})", True
    if section != "priors" or params is None:
        return None
    if parts[0] not in params:
        close = difflib.get_close_matches(parts[0], list(params), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"'{parts[0]}' is not a parameter{hint} ({', '.join(sorted(params))})", True
    groups, one = params[parts[0]], spec.section("priors").get(parts[0])
    field_of_one = isinstance(one, Mapping) and "dist" in one  # e.g. priors.tau.mean
    if len(parts) > 1 and groups is not None and parts[1] not in groups and not field_of_one:
        return f"'{parts[1]}' is not a group of '{parts[0]}' ({', '.join(groups)})", True
    return None


def _check_scenarios(where: str, plan: Sweep) -> list[str]:
    """Check every factor and ``[set]`` key against the model of every scenario.

    A model uses a key when changing it can change the scenario's result. A factor at a level
    other than its baseline in a scenario whose model does not use it (that scenario would
    repeat another), a factor no scenario's model uses, and a key that a scenario's fit would
    refuse are each a :class:`SpecError` naming the key and the model. Returns one warning per
    ``[set]`` key that some scenarios' models do not use.
    """
    from ..estimators import MODELS

    scenarios, models = plan.scenarios(), _Models(plan)
    with_priors = any(k.startswith("priors.") for k in (*plan.grid, *plan.fixed))
    base_level = {k: _canonical(v[0]) for k, v in plan.grid.items()}
    why_unused: dict[str, str] = {}
    used: set[str] = set()
    set_unused: dict[str, dict[str, list[str]]] = {}  # key -> model -> reasons
    for s in scenarios:
        spec, label = plan.spec_for(s), s.label()
        name, bayes, params = spec.model.name, not spec.model.is_classical, None
        try:
            if bayes and (with_priors or spec.section("priors")):
                params = models.params(spec)
        except BayesNsumError as exc:
            raise SpecError(f"{where}: scenario [{label}]: {exc}") from None
        for key in plan.grid:
            if (why := _unused(key, spec, params)) is None:
                used.add(key)
                continue
            why_unused[key] = f"not used by the {name} model: {why[0]}"
            if why[1] and _present(spec.raw, key):
                msg = f"{why_unused[key]}; scenario [{label}] cannot be fitted"
                raise _grid_error(where, key, msg)
            if _canonical(s.overrides[key]) != base_level[key]:
                raise _grid_error(
                    where,
                    key,
                    f"{why_unused[key]}, so scenario [{label}] would repeat the result of its "
                    'baseline level; vary it only where the model uses it (design = "one_at_a_'
                    'time" varies each factor with the others at baseline)',
                )
        for key in plan.fixed:
            if (why := _unused(key, spec, params)) is None:
                continue
            if why[1] and _present(spec.raw, key):
                raise SpecError(
                    f"{where}: [set] key '{key}': not used by the {name} model: {why[0]}; "
                    f"scenario [{label}] cannot be fitted"
                )
            set_unused.setdefault(key, {}).setdefault(name, []).append(why[0])
        unused_options = bayes and spec.model.split(MODELS[name].options_used)[2]
        if (params is not None or unused_options) and (err := models.build_error(spec)):
            raise SpecError(f"{where}: scenario [{label}]: {err}")
    for key in plan.grid:
        if key not in used:
            raise _grid_error(where, key, f"no scenario uses it ({why_unused[key]})")
    return [
        f"[set] key '{key}' changes nothing in {sum(map(len, by.values()))} of "
        f"{len(scenarios)} scenarios: not used by the {', '.join(by)} model"
        f"{'s' if len(by) > 1 else ''} ({'; '.join(dict.fromkeys(sum(by.values(), [])))})"
        for key, by in set_unused.items()
    ]


def load_sweep(sweep: str | Path | Mapping[str, Any], spec: str | Path | Spec | dict) -> Sweep:
    """Read and check a sweep file (or dict) against a spec.

    Every grid key is applied to the spec once per value, so an unknown section or key, a bad
    token or a value the spec rejects is a :class:`~bayes_nsum.errors.SpecError` naming the grid
    key. Model names and prior sets must exist, and every factor and ``[set]`` key is checked
    against the model of every scenario (no fitting; see the module docstring): a factor that
    would change nothing is an error, an unused ``[set]`` key a warning in ``Sweep.warnings``.

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
    plan.warnings = _check_scenarios(where, plan)
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
