"""Analysis specs: parse, check and resolve a TOML spec.

A spec is the declarative description of one analysis (data, groups, pre-processing, model, priors,
sampler, diagnostics, output). Every key the package understands is listed once, in
:data:`SCHEMA` below; an unknown key is an error with a suggestion, never silently ignored.
Paths inside a spec are relative to the spec file.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DEFAULT_MODEL, ModelConfig, schema_section
from .errors import SpecError

#: Every section and key a spec may hold, with a one-line description (the spec reference in
#: docs/ is generated from this table). ``"*"`` means free keys (group names or parameter names).
SCHEMA: dict[str, dict[str, str]] = {
    "data": {
        "survey": "survey file (CSV, Parquet, Stata .dta or SPSS .sav), one row per respondent",
        "known_sizes": "national known-group sizes: a file with columns group,size",
        "total_population": "size N of the frame population (default: sum of area_table populations)",
        "id": "respondent id column (default: 'id' if present, else the row number)",
        "weight": "sampling weight column (optional)",
        "strata": "stratum column, for the bootstrap (optional)",
        "cluster": "primary sampling unit (PSU) column, for the bootstrap (optional)",
        "area": "area column, e.g. municipality (optional)",
        "area_table": "per-area table: columns area, population, one column per known group, "
        "denominator columns",
        "covariates": "list of covariate columns kept with the data (optional)",
        "known_sizes_group_column": "name of the group column in known_sizes (default: first column)",
        "known_sizes_size_column": "name of the size column in known_sizes (default: 'size')",
    },
    "groups": {
        "known": "known groups used to learn degrees (default: every group in known_sizes)",
        "hidden": "hidden groups to estimate",
        "denominators": "table: hidden group -> number, or area_table column name",
    },
    "preprocess": {
        "topcode": "number, {known = 30}, {known = 'p95'} or per-group caps",
        "missing": "'drop' (default), 'zero' or 'model'",
        "combine": "table: target = {sources = [..], how = 'max'|'sum'}",
        "impute": "Scale of Harm imputation: {victims, offenders, victims_per_offender, "
        "household_size}",
    },
    "model": schema_section(),
    "priors": {"*": "prior override per parameter name (see the priors reference)"},
    "sampler": {
        "draws": "posterior draws per chain (default 1000)",
        "tune": "tuning steps per chain (default 1000)",
        "chains": "number of chains (default 4)",
        "seed": "random seed (default 20240521)",
        "backend": "'nutpie' (default), 'pymc' or 'numpyro'",
        "target_accept": "NUTS target acceptance (default 0.8; raise it if there are divergences)",
        "cores": "parallel chains (default 2)",
        "progress": "show progress bars (default true)",
    },
    "diagnostics": {
        "max_r_hat": "R-hat threshold (default 1.01)",
        "min_ess_bulk": "bulk ESS threshold (default 400)",
        "min_ess_tail": "tail ESS threshold (default 400)",
        "max_divergences": "divergences allowed (default 0)",
        "min_bfmi": "E-BFMI threshold (default 0.3)",
        "max_treedepth_share": "share of draws allowed at maximum tree depth (default 0.05)",
    },
    "output": {
        "dir": "output folder (relative to the spec file)",
        "interval_prob": "credible / confidence interval probability (default 0.9)",
        "interval": "'eti' (equal-tailed, default) or 'hdi'",
        "report": "write report.html after fit (default true)",
    },
}

REQUIRED = {"data": ["survey"], "groups": ["hidden"]}

SAMPLER_DEFAULTS: dict[str, Any] = {
    "draws": 1000,
    "tune": 1000,
    "chains": 4,
    "seed": 20240521,
    "backend": "nutpie",
    "target_accept": 0.8,
    "cores": 2,
    "progress": True,
}

DIAGNOSTIC_DEFAULTS: dict[str, Any] = {
    "max_r_hat": 1.01,
    "min_ess_bulk": 400.0,
    "min_ess_tail": 400.0,
    "max_divergences": 0,
    "min_bfmi": 0.3,
    "max_treedepth_share": 0.05,
}

BACKENDS = ("nutpie", "pymc", "numpyro")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class Spec:
    """A parsed, checked analysis spec.

    Attributes
    ----------
    raw : dict
        The spec as a nested dict (a deep copy; never the caller's object).
    path : Path or None
        The spec file, if read from one. Relative paths resolve against its folder.
    """

    raw: dict[str, Any]
    path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Spec:
        """Read and check a TOML spec file."""
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML: {exc}") from None
        spec = cls(raw=raw, path=path.resolve(), base_dir=path.resolve().parent)
        spec.check()
        return spec

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base_dir: str | Path | None = None) -> Spec:
        """Build a spec from a dict (deep-copied), resolving paths against ``base_dir``."""
        spec = cls(raw=copy.deepcopy(raw), path=None, base_dir=Path(base_dir or Path.cwd()))
        spec.check()
        return spec

    def copy(self) -> Spec:
        return Spec(raw=copy.deepcopy(self.raw), path=self.path, base_dir=self.base_dir)

    # -- checking -----------------------------------------------------------------------
    @property
    def where(self) -> str:
        return str(self.path) if self.path else "spec"

    def check(self) -> None:
        """Raise :class:`SpecError` naming the first unknown or missing key or bad value."""
        for section, body in self.raw.items():
            if section not in SCHEMA:
                raise SpecError(
                    f"{self.where}: unknown section [{section}]{_suggest(section, SCHEMA)}"
                )
            if not isinstance(body, dict):
                raise SpecError(f"{self.where}: [{section}] must be a table")
            allowed = SCHEMA[section]
            if "*" in allowed:
                continue
            for key in body:
                if key not in allowed:
                    raise SpecError(
                        f"{self.where}: unknown key '{key}' in [{section}]{_suggest(key, allowed)}"
                    )
        for section, keys in REQUIRED.items():
            for key in keys:
                if key not in self.raw.get(section, {}):
                    raise SpecError(f"{self.where}: missing required key '{key}' in [{section}]")
        hidden = self.raw["groups"]["hidden"]
        if isinstance(hidden, str):
            self.raw["groups"]["hidden"] = [hidden]
        elif not (isinstance(hidden, list) and all(isinstance(h, str) for h in hidden) and hidden):
            raise SpecError(f"{self.where}: [groups] hidden must be a non-empty list of names")
        known = self.raw["groups"].get("known")
        if known is not None and not (
            isinstance(known, list) and all(isinstance(k, str) for k in known)
        ):
            raise SpecError(f"{self.where}: [groups] known must be a list of names")
        data = self.raw["data"]
        if "known_sizes" not in data and "area_table" not in data:
            raise SpecError(
                f"{self.where}: [data] needs 'known_sizes' (national sizes) or 'area_table'"
            )
        tp = data.get("total_population")
        if tp is not None and (not isinstance(tp, (int, float)) or tp <= 0):
            raise SpecError(f"{self.where}: [data] total_population must be a positive number")
        sampler = self.raw.get("sampler", {})
        for key in ("draws", "tune", "chains", "cores"):
            value = sampler.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise SpecError(f"{self.where}: [sampler] {key} must be a positive integer")
        seed = sampler.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise SpecError(f"{self.where}: [sampler] seed must be an integer >= 0")
        ta = sampler.get("target_accept", 0.9)
        if isinstance(ta, bool) or not isinstance(ta, numbers.Real) or not 0 < ta < 1:
            raise SpecError(f"{self.where}: [sampler] target_accept must be between 0 and 1")
        if not isinstance(sampler.get("progress", True), bool):
            raise SpecError(f"{self.where}: [sampler] progress must be true or false")
        if "backend" in sampler and sampler["backend"] not in BACKENDS:
            raise SpecError(
                f"{self.where}: [sampler] backend '{sampler['backend']}' is not one of "
                f"{', '.join(BACKENDS)}"
            )
        out = self.raw.get("output", {})
        prob = out.get("interval_prob")
        if prob is not None and not (isinstance(prob, float) and 0 < prob < 1):
            raise SpecError(f"{self.where}: [output] interval_prob must be between 0 and 1")
        if out.get("interval", "eti") not in ("eti", "hdi"):
            raise SpecError(f"{self.where}: [output] interval must be 'eti' or 'hdi'")
        ModelConfig.from_section(self.raw.get("model", {}), self.where)  # every [model] key
        diag = self.raw.get("diagnostics", {})
        for key, value in diag.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"{self.where}: [diagnostics] {key} must be a number >= 0")

    # -- access -------------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        """A deep copy of one section (empty dict if absent)."""
        return copy.deepcopy(self.raw.get(name, {}))

    def resolve(self, relpath: str | Path) -> Path:
        """Resolve a path written in the spec against the spec's folder."""
        p = Path(relpath)
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def model(self) -> ModelConfig:
        """The checked ``[model]`` section."""
        return ModelConfig.from_section(self.raw.get("model", {}), self.where)

    @property
    def model_name(self) -> str:
        return str(self.raw.get("model", {}).get("name", DEFAULT_MODEL))

    @property
    def hidden(self) -> list[str]:
        return list(self.raw["groups"]["hidden"])

    @property
    def sampler(self) -> dict[str, Any]:
        return {**SAMPLER_DEFAULTS, **self.raw.get("sampler", {})}

    @property
    def diagnostics(self) -> dict[str, Any]:
        return {**DIAGNOSTIC_DEFAULTS, **self.raw.get("diagnostics", {})}

    @property
    def interval_prob(self) -> float:
        return float(self.raw.get("output", {}).get("interval_prob", 0.9))

    @property
    def interval_kind(self) -> str:
        return str(self.raw.get("output", {}).get("interval", "eti"))

    def output_dir(self, override: str | Path | None = None) -> Path:
        if override is not None:
            return Path(override)
        out = self.raw.get("output", {}).get("dir", "results")
        return self.resolve(out)

    # -- modification (sweeps, CLI overrides) -------------------------------------------
    def with_value(self, dotted: str, value: Any) -> Spec:
        """Return a copy with the value at a dotted path (``"priors.tau.victims"``) replaced.

        The new spec is checked again, so a typo in the path is an error.
        """
        new = self.copy()
        parts = dotted.split(".")
        if len(parts) < 2:
            raise SpecError(f"'{dotted}': a spec path needs a section and a key, e.g. model.name")
        node = new.raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"'{dotted}': '{part}' is a value, not a table")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
        new.check()
        return new

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    def digest(self) -> str:
        """A short hash of the spec's content (stable across key order)."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_spec(spec: str | Path | Spec | dict) -> Spec:
    """Accept a path, a dict or a :class:`Spec` and return a checked :class:`Spec`."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return Spec.from_dict(spec)
    return Spec.from_file(spec)
