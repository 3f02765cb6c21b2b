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
import math
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
        "covariates": "respondent covariates: list of numeric survey columns, no missing values "
        "(models overdispersed and correlated; an error with any other model)",
        "known_sizes_group_column": "name of the group column in known_sizes (default: first column)",
        "known_sizes_size_column": "name of the size column in known_sizes (default: 'size')",
        "max_answer": "largest plausible answer to one question (default 10000); a larger "
        "answer, or one larger than the known group itself, is refused unless [preprocess] "
        "topcode caps it",
        "roster": "household roster file: known-group sizes (and other area-table columns) per "
        "area are derived from it as [roster] says",
        "boundaries": "area boundaries (GeoJSON, shapefile, GeoPackage: any file GeoPandas "
        "reads) for maps in the report; needs the maps extra (pip install bayes_nsum[maps])",
        "boundaries_key": "column of the boundaries file holding the area codes (default 'area')",
        "hidden_sample": "generalized NSUM (models gnsum, gnsum_bayes): a survey of members of "
        "one hidden group, one row per member, with each known group's column (how many of "
        "them the member knows) and its aware column (how many of those know the member's "
        "status)",
        "hidden_sample_group": "the hidden group the hidden sample samples (default: the only "
        "hidden group)",
        "hidden_sample_aware_suffix": "suffix of the aware columns of the hidden sample "
        "(default '_aware': column 'k_aware' for known group 'k')",
    },
    "roster": {
        "layout": "'member' (default: one row per household member) or 'household' (one row "
        "per household with member counts)",
        "area": "the roster's area column (default: [data] area)",
        "household": "household id column (member layout; counts households)",
        "members": "column of each household's number of members (household layout)",
        "weight": "household expansion factor column (optional): weighted shares, and the "
        "areas' populations when there is no area_table",
        "smoothing": "pseudo-count of members pulling each area's share towards the national "
        "roster share (default 0: the plain share)",
        "household_size": "name of an area-table column to write with each area's mean "
        "household size (e.g. for [preprocess] impute)",
        "categories": "table: area-table column -> indicator column, {column, equals = value "
        "or list}, {column, min, max} (member layout) or member-count column (household "
        "layout)",
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
        "household_size}; household_size is a number, a table area -> size, or the name of an "
        "area-table column",
    },
    "model": schema_section(),
    "priors": {"*": "prior override per parameter name (see the priors reference)"},
    "evidence": {
        "contribution": "how each source's contribution is shown: 'refit' (default: sampled "
        "again without it), 'reweight' (importance weights; understates informative sources) "
        "or 'none'",
        "*": "a hidden group: one table [evidence.<group>.<source>] per source with kind "
        "('lower_bound' or 'count'), value or file (per area; area_column, value_column), "
        "observation ('poisson' or 'binomial') and detection (a prior; counts)",
    },
    "sampler": {
        "draws": "posterior draws per chain (default 1000)",
        "tune": "tuning steps per chain, or 'auto' (default): the model's own choice, 300 for "
        "the pooled model with nutpie and 1000 otherwise",
        "chains": "number of chains (default 4)",
        "seed": "random seed (default 20240521)",
        "backend": "'nutpie' (default), 'nutpie-jax' (nutpie's sampler on a JAX-compiled "
        "model: for a GPU; needs the jax extra), 'pymc' or 'numpyro'",
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
        "respondent_level": "also write respondent-level tables (degrees, pre-processing "
        "changes with ids) to the restricted/ subfolder (default false: summaries only)",
        "min_area_respondents": "per-area estimates of areas with fewer respondents than this "
        "are suppressed and flagged (default 10)",
    },
}

REQUIRED = {"data": ["survey"], "groups": ["hidden"]}

SAMPLER_DEFAULTS: dict[str, Any] = {
    "draws": 1000,
    "tune": "auto",  # resolved per model and backend by fit.sampler_settings
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

BACKENDS = ("nutpie", "nutpie-jax", "pymc", "numpyro")
#: the backends that sample with nutpie (numba- or JAX-compiled model)
NUTPIE_BACKENDS = ("nutpie", "nutpie-jax")

#: defaults of ``[output]`` keys read elsewhere than here
OUTPUT_DEFAULTS: dict[str, Any] = {"respondent_level": False, "min_area_respondents": 10}
#: default of ``[data] max_answer``: the largest plausible answer to one "how many X do you
#: know" question (personal networks are a few hundred people; see the data protection page)
MAX_ANSWER = 10_000

#: ``[data]`` keys that name a file or a column (a non-empty string each)
_DATA_NAMES = (
    "survey",
    "known_sizes",
    "area_table",
    "id",
    "weight",
    "strata",
    "cluster",
    "area",
    "known_sizes_group_column",
    "known_sizes_size_column",
    "roster",
    "boundaries",
    "boundaries_key",
    "hidden_sample",
    "hidden_sample_group",
    "hidden_sample_aware_suffix",
)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_number(value: Any) -> bool:
    """A finite real number that is not a bool (TOML ``true`` is no number here)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def read_toml(path: str | Path, what: str = "spec") -> dict[str, Any]:
    """Read a TOML file as UTF-8; every failure is one :class:`SpecError` line.

    A UTF-8 byte-order mark is accepted. A file in another encoding (Latin-1, UTF-16, ...) is
    refused with the line where decoding failed; the message never quotes the file's content.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{what} file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{what} file {path}: cannot be read ({exc.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise SpecError(f"{what} file {path}: is UTF-16 or UTF-32 text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{what} file {path}: is not UTF-8 text (undecodable byte on line {line}; "
            "Latin-1 or Windows-1252?); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None


def check_sampler(sampler: dict[str, Any], where: str = "spec") -> None:
    """Check ``[sampler]`` settings (a spec's section, or settings with command-line overrides:
    None values are ignored); raise :class:`SpecError` naming the first bad key."""
    sampler = {k: v for k, v in sampler.items() if v is not None}
    unknown = [k for k in sampler if k not in SAMPLER_DEFAULTS]
    if unknown:
        raise SpecError(
            f"{where}: unknown key '{unknown[0]}' in [sampler]"
            f"{_suggest(unknown[0], SAMPLER_DEFAULTS)}"
        )
    for key in ("draws", "tune", "chains", "cores"):
        value = sampler.get(key, 1)
        if key == "tune" and value == "auto":
            continue
        if not _is_int(value) or value < 1:
            also = " or 'auto'" if key == "tune" else ""
            raise SpecError(f"{where}: [sampler] {key} must be a positive integer{also}")
    seed = sampler.get("seed", 0)
    if not _is_int(seed) or not 0 <= seed < 2**32:
        raise SpecError(f"{where}: [sampler] seed must be an integer in [0, 2^32)")
    ta = sampler.get("target_accept", 0.9)
    if not is_number(ta) or not 0 < ta < 1:
        raise SpecError(f"{where}: [sampler] target_accept must be between 0 and 1")
    if not isinstance(sampler.get("progress", True), bool):
        raise SpecError(f"{where}: [sampler] progress must be true or false")
    if "backend" in sampler and sampler["backend"] not in BACKENDS:
        raise SpecError(
            f"{where}: [sampler] backend must be one of {', '.join(BACKENDS)}, "
            f"got {sampler['backend']!r}"
        )


#: ``[diagnostics]`` key -> (lower bound, upper bound, integer)
_DIAGNOSTIC_RANGES: dict[str, tuple[float, float, bool]] = {
    "max_r_hat": (1.0, math.inf, False),
    "min_ess_bulk": (0.0, math.inf, False),
    "min_ess_tail": (0.0, math.inf, False),
    "max_divergences": (0.0, math.inf, True),
    "min_bfmi": (0.0, math.inf, False),
    "max_treedepth_share": (0.0, 1.0, False),
}


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
        raw = read_toml(path, "spec")
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
        """Raise :class:`SpecError` naming the first unknown or missing key or bad value.

        Every key of every section is checked for its type and range here (priors and the
        files themselves are checked by :func:`bayes_nsum.preflight.check_spec`).
        """
        if not isinstance(self.raw, dict):
            raise SpecError(f"{self.where}: a spec must be a table of sections")
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
        self._check_data()
        self._check_groups()
        check_sampler(self.raw.get("sampler", {}), self.where)
        self._check_output()
        cfg = ModelConfig.from_section(self.raw.get("model", {}), self.where)  # every key
        cfg.check_hidden_sample("hidden_sample" in self.raw["data"], self.where)
        cfg.check_covariates(self.raw["data"].get("covariates"), self.where)
        for key, value in self.raw.get("diagnostics", {}).items():
            low, high, integer = _DIAGNOSTIC_RANGES[key]
            if not is_number(value) or not low <= value <= high or (integer and not _is_int(value)):
                kind = "an integer" if integer else "a finite number"
                bound = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
                raise SpecError(f"{self.where}: [diagnostics] {key} must be {kind} {bound}")

    def _check_data(self) -> None:
        data = self.raw["data"]
        for key in _DATA_NAMES:
            if key in data and not _is_name(data[key]):
                raise SpecError(
                    f"{self.where}: [data] {key} must be a file or column name (text), "
                    f"got {type(data[key]).__name__}"
                )
        if not {"known_sizes", "area_table", "roster"} & set(data):
            raise SpecError(
                f"{self.where}: [data] needs 'known_sizes' (national sizes), 'area_table' or "
                "'roster'"
            )
        if "roster" in self.raw and "roster" not in data:
            raise SpecError(f"{self.where}: [roster] is set but [data] names no roster file")
        if "roster" in data and "roster" not in self.raw:
            raise SpecError(
                f"{self.where}: [data] roster needs a [roster] section (at least its categories)"
            )
        cov = data.get("covariates")
        if cov is not None and not (isinstance(cov, list) and all(_is_name(c) for c in cov)):
            raise SpecError(f"{self.where}: [data] covariates must be a list of column names")
        for key in ("total_population", "max_answer"):
            value = data.get(key)
            if value is not None and (not is_number(value) or value <= 0):
                raise SpecError(f"{self.where}: [data] {key} must be a positive finite number")

    def _check_groups(self) -> None:
        groups = self.raw["groups"]
        hidden = groups["hidden"]
        if isinstance(hidden, str):
            groups["hidden"] = hidden = [hidden]
        for key in ("hidden", "known"):
            names = groups.get(key)
            if names is None:
                continue
            if not (isinstance(names, list) and names and all(_is_name(h) for h in names)):
                raise SpecError(f"{self.where}: [groups] {key} must be a non-empty list of names")
            if len(set(names)) < len(names):
                twice = sorted({n for n in names if names.count(n) > 1})
                raise SpecError(f"{self.where}: [groups] {key} lists {', '.join(twice)} twice")
        dens = groups.get("denominators")
        if dens is None:
            return
        if not isinstance(dens, dict):
            raise SpecError(f"{self.where}: [groups] denominators must be a table")
        for g, den in dens.items():
            if not (_is_name(den) or (is_number(den) and den > 0)):
                raise SpecError(
                    f"{self.where}: [groups.denominators] {g} must be a positive number or an "
                    "area_table column name"
                )

    def _check_output(self) -> None:
        out = self.raw.get("output", {})
        if "dir" in out and not _is_name(out["dir"]):
            raise SpecError(f"{self.where}: [output] dir must be a folder name (text)")
        prob = out.get("interval_prob")
        if prob is not None and not (is_number(prob) and 0 < prob < 1):
            raise SpecError(f"{self.where}: [output] interval_prob must be between 0 and 1")
        if out.get("interval", "eti") not in ("eti", "hdi"):
            raise SpecError(f"{self.where}: [output] interval must be 'eti' or 'hdi'")
        for key in ("report", "respondent_level"):
            if not isinstance(out.get(key, True), bool):
                raise SpecError(f"{self.where}: [output] {key} must be true or false")
        least = out.get("min_area_respondents", 1)
        if not _is_int(least) or least < 1:
            raise SpecError(f"{self.where}: [output] min_area_respondents must be an integer >= 1")

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
    def evidence(self) -> dict[str, Any]:
        """The ``[evidence]`` section with its files' paths resolved (checked by
        :func:`bayes_nsum.preflight.check_spec`, read by the model)."""
        out = self.section("evidence")
        for sources in out.values():
            for body in sources.values() if isinstance(sources, dict) else ():
                if isinstance(body, dict) and isinstance(body.get("file"), str):
                    body["file"] = str(self.resolve(body["file"]))
        return out

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

    @property
    def respondent_level(self) -> bool:
        """Whether respondent-level tables are written (to ``restricted/``; default false)."""
        out = self.raw.get("output", {})
        return bool(out.get("respondent_level", OUTPUT_DEFAULTS["respondent_level"]))

    @property
    def min_area_respondents(self) -> int:
        """Areas with fewer respondents have their per-area estimates suppressed."""
        out = self.raw.get("output", {})
        return int(out.get("min_area_respondents", OUTPUT_DEFAULTS["min_area_respondents"]))

    @property
    def max_answer(self) -> float:
        """The largest plausible answer (``[data] max_answer``)."""
        return float(self.raw["data"].get("max_answer", MAX_ANSWER))

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
