r"""Secondary data on hidden-group sizes, combined with the NSUM likelihood in one posterior.

A spec adds independent evidence about the *true* size :math:`N_H` of a hidden group (not the
part of it visible to respondents: the transmission rate :math:`\tau_H` and the degree ratio
:math:`\delta_H` sit between the two, :math:`N_H = N v_H / (\tau_H \delta_H)`), one table per
source::

    [evidence.victims.police]          # source "police" about the hidden group "victims"
    kind = "count"                     # "count" or "lower_bound"
    value = 850                        # national value, or
    # file = "police.csv"              # one value per area (columns area, value)
    observation = "poisson"            # count only: "poisson" (default) or "binomial"
    detection = {dist = "Beta", mean = 0.3, concentration = 30}   # count only: its prior

Each source adds a term to the log posterior (a ``pm.Potential`` named
``evidence_loglik__<group>.<source>``, so likelihood power-scaling sees it); with :math:`s =
\log N_H` (or the area's :math:`\log N_{jH}` for a value per area):

``lower_bound`` (e.g. confirmed cases, :math:`N_H \ge L`)
    a steep but smooth barrier :math:`\log\Phi\big((s - \log L)/\epsilon\big)`,
    :math:`\epsilon` = :data:`LOWER_BOUND_SOFTNESS` (0.01): no penalty above about
    :math:`1.03 L`, a 1% shortfall costs about 1.8 on the log scale, a 5% one about 16. (A hard
    bound would put a cliff in the density, which NUTS handles badly.)
``count`` with ``observation = "poisson"``
    :math:`y \sim \mathrm{Poisson}(p N_H)`, :math:`p` the source's detection rate (the expected
    number of records per member of the group; a probability when each member is recorded at
    most once).
``count`` with ``observation = "binomial"``
    :math:`y \sim \mathrm{Binomial}(N_H, p)`, each member recorded with probability :math:`p`;
    the coefficient :math:`\binom{N_H}{y}` is written with log-gamma functions so that
    :math:`N_H` may be continuous, evaluated at :math:`\max(N_H, y)` and with the lower-bound
    barrier at :math:`y` (the group cannot be smaller than the records of it).

A value per area (``file``) gives the term per area, on the area's size (pooled model only);
one detection rate per source, shared by its areas. The detection rates are model parameters
``detection`` (dim ``source``, labels ``<group>.<source>``): their priors are the sources'
``detection`` keys (overridable in ``[priors] detection``), and they appear in the posterior.
Without a count source tau and delta stay as unidentified as without evidence; a count with a
detection prior informs :math:`N_H`, and through it :math:`\tau_H \delta_H`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PriorError, SpecError
from ..priors import Prior, check_support

KINDS = ("lower_bound", "count")
#: how a fit shows each source's contribution (``[evidence] contribution``)
CONTRIBUTION = ("refit", "reweight", "none")
OBSERVATIONS = ("poisson", "binomial")
#: every key of an ``[evidence.<group>.<source>]`` table, with its description
KEYS: dict[str, str] = {
    "kind": "'lower_bound' (the size is at least value) or 'count' (a noisy count)",
    "value": "the national value (a number)",
    "file": "a table of values per area (pooled model): columns area_column and value_column",
    "area_column": "area column of file (default 'area')",
    "value_column": "value column of file (default 'value')",
    "observation": "count only: 'poisson' (default, y ~ Poisson(detection N)) or 'binomial' "
    "(y ~ Binomial(N, detection))",
    "detection": "count only, required: the prior of the detection rate (a prior table or a "
    "fixed number, as in [priors])",
}
#: width of the lower bound's barrier on the log-size scale
LOWER_BOUND_SOFTNESS = 0.01


@dataclass(frozen=True)
class EvidenceSource:
    """One source of evidence about one hidden group's size.

    ``values``: ``{"": value}`` for a national value, else ``{area: value}``.
    """

    group: str
    name: str
    kind: str
    values: dict[str, float]
    observation: str | None = None
    detection: Prior | None = None

    @property
    def label(self) -> str:
        return f"{self.group}.{self.name}"

    @property
    def per_area(self) -> bool:
        return "" not in self.values

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (a fit's ``model_config``), values inline."""
        return {
            "group": self.group,
            "name": self.name,
            "kind": self.kind,
            "values": dict(self.values),
            "observation": self.observation,
            "detection": None if self.detection is None else self.detection.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvidenceSource:
        det = d.get("detection")
        return cls(
            group=str(d["group"]),
            name=str(d["name"]),
            kind=str(d["kind"]),
            values={str(k): float(v) for k, v in d["values"].items()},
            observation=d.get("observation"),
            detection=None if det is None else Prior.from_spec(det),
        )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _check_value(v: float, kind: str, where: str) -> None:
    if kind == "count" and (v < 0 or v != np.round(v)):
        raise SpecError(f"{where}: a count must be a whole number >= 0, got {v:g}")
    if kind == "lower_bound" and v <= 0:
        raise SpecError(f"{where}: a lower bound must be > 0, got {v:g}")


def _read_values(path: Path, area_col: str, value_col: str, kind: str, where: str) -> dict:
    from ..columns import column, labels, numbers
    from ..io import read_table

    df = read_table(path, f"{where} file")
    areas = labels(column(df, area_col, f"{where} file {path.name}", "area_column"))
    vals = numbers(
        column(df, value_col, f"{where} file {path.name}", "value_column"),
        f"{where} file {path.name}",
        f"column '{value_col}'",
    )
    if len(df) == 0:
        raise SpecError(f"{where}: file {path.name} has no rows")
    if areas.duplicated().any():
        raise SpecError(f"{where}: file {path.name} lists area(s) more than once")
    if np.isnan(vals).any():
        raise SpecError(f"{where}: file {path.name} has empty values")
    for v in vals:
        _check_value(float(v), kind, f"{where} file {path.name}")
    return {str(a): float(v) for a, v in zip(areas, vals, strict=True)}


def check_binomial_detection(prior: Prior, where: str) -> None:
    """Refuse a binomial count's detection prior that allows values outside (0, 1)."""
    if prior.is_fixed:
        bad = not 0 < prior.params["value"] < 1
    elif prior.dist == "Uniform":
        bad = prior.params["upper"] > 1
    else:
        bad = prior.dist != "Beta"
    if bad:
        raise SpecError(
            f"{where}: a binomial detection probability must lie in (0, 1): use a Beta prior, "
            "a Uniform within (0, 1) or a fixed value below 1"
        )


def _detection(raw: Any, observation: str, where: str) -> Prior:
    try:
        prior = Prior.from_spec(raw, f"{where} detection")
        check_support("detection", prior, f"{where} detection")
    except PriorError as exc:
        raise SpecError(str(exc)) from None
    if observation == "binomial":
        check_binomial_detection(prior, f"{where} detection")
    return prior


def parse_source(group: str, name: str, body: Any, resolve, where: str) -> EvidenceSource:
    """One ``[evidence.<group>.<source>]`` table, checked (per-area files read)."""
    w = f"{where}: [evidence.{group}.{name}]"
    if not isinstance(body, dict):
        raise SpecError(f"{w} must be a table with kind and value or file")
    for key in body:
        if key not in KEYS:
            raise SpecError(f"{w}: unknown key '{key}' (keys: {', '.join(KEYS)})")
    kind = body.get("kind")
    if kind not in KINDS:
        raise SpecError(f"{w}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if ("value" in body) == ("file" in body):
        raise SpecError(f"{w}: give either value (national) or file (per area), not both")
    if "file" not in body and ({"area_column", "value_column"} & set(body)):
        raise SpecError(f"{w}: area_column and value_column need file")
    if "value" in body:
        if not _number(body["value"]):
            raise SpecError(f"{w}: value must be a number")
        _check_value(float(body["value"]), kind, w)
        values = {"": float(body["value"])}
    else:
        for key in ("file", "area_column", "value_column"):
            if key in body and not (isinstance(body[key], str) and body[key].strip()):
                raise SpecError(f"{w}: {key} must be a name (text)")
        path = resolve(body["file"]) if resolve else Path(body["file"])
        values = _read_values(
            Path(path), body.get("area_column", "area"), body.get("value_column", "value"), kind, w
        )
    if kind == "lower_bound":
        extra = [k for k in ("observation", "detection") if k in body]
        if extra:
            raise SpecError(f"{w}: {', '.join(extra)}: for kind = 'count' only")
        return EvidenceSource(group, name, kind, values)
    observation = body.get("observation", "poisson")
    if observation not in OBSERVATIONS:
        raise SpecError(
            f"{w}: observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}"
        )
    if "detection" not in body:
        raise SpecError(f"{w}: a count needs a detection prior (detection = {{dist = ...}})")
    return EvidenceSource(
        group, name, kind, values, observation, _detection(body["detection"], observation, w)
    )


def parse_evidence(
    raw: Any, hidden: list[str] | tuple[str, ...], resolve=None, where: str = "spec"
) -> tuple[EvidenceSource, ...]:
    """The sources of a spec's ``[evidence]`` section (``{group: {source: table}}``) or of a
    fit's ``model_config`` (a list of :meth:`EvidenceSource.to_dict`), checked.

    Raises :class:`~bayes_nsum.errors.SpecError` (one line) for a group that is not hidden, an
    unknown key or kind, a bad value or file, a missing or impossible detection prior.
    """
    if not raw:
        return ()
    if isinstance(raw, (list, tuple)):
        return tuple(
            s if isinstance(s, EvidenceSource) else EvidenceSource.from_dict(s) for s in raw
        )
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: [evidence] must be a table of hidden groups")
    contribution_mode(raw, where)
    out = []
    for group, sources in raw.items():
        if group == "contribution":
            continue
        if group not in hidden:
            raise SpecError(
                f"{where}: [evidence.{group}]: '{group}' is not a hidden group "
                f"({', '.join(hidden)})"
            )
        if not isinstance(sources, dict) or not sources:
            raise SpecError(
                f"{where}: [evidence.{group}] must hold one table per source, e.g. "
                f"[evidence.{group}.police]"
            )
        out.extend(parse_source(group, n, b, resolve, where) for n, b in sources.items())
    return tuple(out)


def contribution_mode(raw: Any, where: str = "spec") -> str:
    """``[evidence] contribution``: ``"refit"`` (default: the model is sampled again with each
    source's term switched off), ``"reweight"`` (importance weights on the fit's draws; cheap,
    but blind to any region the fit's draws do not reach) or ``"none"``."""
    mode = raw.get("contribution", "refit") if isinstance(raw, dict) else "refit"
    if mode not in CONTRIBUTION:
        raise SpecError(
            f"{where}: [evidence] contribution must be one of {', '.join(CONTRIBUTION)}, "
            f"got {mode!r} (a hidden group cannot be called 'contribution')"
        )
    return mode


def detection_priors(sources) -> dict[str, Prior]:
    """The default prior of each count source's detection rate, by source label."""
    return {s.label: s.detection for s in sources if s.kind == "count"}


def check_against(sources, hidden, areas: list[str] | None, model_name: str) -> None:
    """Refuse evidence the model cannot use: an unknown group, values per area for a model
    without areas, or areas missing from the area table (one line each)."""
    for s in sources:
        where = f"[evidence.{s.group}.{s.name}]"
        if s.group not in hidden:
            raise SpecError(f"{where}: '{s.group}' is not a hidden group of the data")
        if not s.per_area:
            continue
        if not areas:
            raise SpecError(
                f"{where}: values per area need a model with areas (pooled); the {model_name} "
                "model has one national size: give a national value"
            )
        unknown = [a for a in s.values if a not in areas]
        if unknown:
            raise SpecError(f"{where}: area(s) {', '.join(unknown[:5])} are not in the area table")


# ---------------------------------------------------------------------------------------------
# the log-likelihood terms (PyTensor)
# ---------------------------------------------------------------------------------------------


def _lower_bound(s, log_bound):
    from pymc.distributions.dist_math import normal_lcdf

    return normal_lcdf(0.0, LOWER_BOUND_SOFTNESS, s - log_bound)


def source_loglik(source: EvidenceSource, s, detection=None):
    r"""The log-likelihood of one source given ``s``, the log sizes its values are about (a
    vector, one per value) and its detection rate (a scalar); PyTensor. Its values are a data
    container ``evidence__<label>`` (a compiled model takes other values without compiling)."""
    import pymc as pm
    import pytensor.tensor as pt

    y = pm.Data(f"evidence__{source.label}", np.array(list(source.values.values()), float))
    if source.kind == "lower_bound":
        return pt.sum(_lower_bound(s, pt.log(y)))
    p = detection
    if source.observation == "poisson":
        return pt.sum(y * (pt.log(p) + s) - p * pt.exp(s) - pt.gammaln(y + 1))
    n = pt.maximum(pt.exp(s), y)
    barrier = _lower_bound(s, pt.log(pt.maximum(y, 0.5)))
    comb = pt.gammaln(n + 1) - pt.gammaln(y + 1) - pt.gammaln(n - y + 1)
    return pt.sum(comb + y * pt.log(p) + (n - y) * pt.log1p(-p) + barrier)


def add_evidence(nsum, pm_model, log_size, log_size_area=None) -> None:
    r"""Add each of ``nsum.evidence``'s terms to the PyMC model ``pm_model``, with the
    detection rates (``detection``, dim ``source``, priors ``nsum.priors["detection"]``).

    ``log_size``: (hidden,) tensor of :math:`\log N_H`; ``log_size_area``: (hidden, area)
    tensor of :math:`\log N_{jH}` over ``nsum.data.areas``, for values per area.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from ..priors import create_group_param

    hidden, areas = list(nsum.data.hidden), list(nsum.data.areas)
    if log_size is None:  # the national size: the sum over every area
        log_size = pt.logsumexp(log_size_area, axis=1)
    labels = list(nsum.priors.get("detection", {}))
    with pm_model:
        det = None
        if labels:
            det = create_group_param("detection", nsum.priors["detection"], "source")
        for s in nsum.evidence:
            h = hidden.index(s.group)
            if s.per_area:
                sizes = log_size_area[h, [areas.index(a) for a in s.values]]
            else:
                sizes = log_size[h : h + 1]
            p = det[labels.index(s.label)] if s.kind == "count" else None
            power = pm.Data(f"evidence_power__{s.label}", 1.0)  # 0: the source left out
            pm.Potential(f"evidence_loglik__{s.label}", power * source_loglik(s, sizes, p))
