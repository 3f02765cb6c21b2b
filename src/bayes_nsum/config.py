"""The spec's ``[model]`` section as one typed configuration.

:data:`MODEL_OPTIONS` is the single source of every ``[model]`` key: its default, the values it
accepts and its one-line description (the spec schema and the spec reference page are built
from it). :class:`ModelConfig` is the checked section. A model class lists the options it
reads (``NSUMModel.options_used``); the workflow splits a config into the options the chosen
model reads, the keys meant for the classical baseline, and keys nobody reads (an error).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

#: the model a spec runs when ``[model] name`` is absent
DEFAULT_MODEL = "killworth"
#: classical estimators (everything else is a Bayesian model of :mod:`bayes_nsum.estimators`)
CLASSICAL_MODELS = ("killworth", "gnsum")
#: models that read ``[data] hidden_sample`` (generalized NSUM); for every other model the key
#: is an error, and these need it
HIDDEN_SAMPLE_MODELS = ("gnsum", "gnsum_bayes")
#: ``[model]`` keys of the Killworth estimator that the generalized scale-up estimator (the
#: classical baseline of every spec with a hidden sample) does not read
KILLWORTH_ONLY = ("method", "degree_ratio", "transmission")
#: models that read ``[data] covariates`` (for every other model the key is an error)
COVARIATE_MODELS = ("overdispersed", "correlated")
#: every model name a spec may give (``tests/test_hardening.py`` checks it against
#: ``bayes_nsum.estimators.MODELS``; listed here so that a spec is checked without importing
#: PyMC)
MODEL_NAMES = (
    *CLASSICAL_MODELS,
    "degree",
    "barrier",
    "transmission",
    "combined",
    "overdispersed",
    "correlated",
    "pooled",
    "gnsum_bayes",
)


def _choice(*values: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in values else "must be " + " or ".join(f"'{x}'" for x in values)

    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _count(v: Any) -> str | None:
    ok = isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
    return None if ok else "must be an integer >= 0"


def _names(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v)
    return None if ok and len(set(v)) == len(v) else "must be a list of distinct column names"


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a name"


def _rate_table(upper_open: bool) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, Mapping) or not v:
            return "must be a table: hidden group -> number"
        for g, x in v.items():
            num = isinstance(x, numbers.Real) and not isinstance(x, bool)
            if not num or not math.isfinite(x) or x <= 0 or (not upper_open and x > 1):
                want = "> 0" if upper_open else "in (0, 1]"
                return f"value of '{g}' must be a number {want}"
        return None

    return check


@dataclass(frozen=True)
class Option:
    """One ``[model]`` key: default, check (returns a message or None) and description."""

    default: Any
    doc: str
    check: Callable[[Any], str | None] = field(repr=False, default=lambda v: None)
    classical: bool = False


MODEL_OPTIONS: dict[str, Option] = {
    "degree": Option(
        "lognormal",
        "degree distribution: 'lognormal' (default) or 'gamma'",
        _choice("lognormal", "gamma"),
    ),
    "recall_calibration": Option(
        False, "fit a recall-error calibration on the known groups (bool)", _bool
    ),
    "barrier_dispersion": Option(
        "group",
        "barrier/combined: 'group' (one rho per group, latent degrees; default) or 'shared' "
        "(one rho for the known groups, degrees integrated out; fast at any n)",
        _choice("group", "shared"),
    ),
    "degree_integration": Option(
        "auto",
        "barrier/combined with barrier_dispersion = 'group': each respondent's log-degree "
        "'quadrature' (integrated out on shared grids; faster at large n; lognormal degree "
        "only), 'latent' (sampled, one parameter per respondent) or 'auto' (default: latent "
        "up to 20,000 respondents, quadrature above for the lognormal degree)",
        _choice("auto", "quadrature", "latent"),
    ),
    "anchor": Option(
        "likelihood",
        "pooled model: 'likelihood' (default) or 'posthoc' scaling by known groups",
        _choice("likelihood", "posthoc"),
    ),
    "correlated": Option(
        False, "pooled model: correlated respondent-by-group biases with an LKJ prior", _bool
    ),
    "area_effects": Option(
        "auto",
        "pooled model: parametrisation of the area effects: 'auto' (default: centred for groups "
        "whose answers inform each area's rate more than the pooling prior does, non-centred "
        "otherwise), 'centred' or 'non-centred'",
        _choice("auto", "centred", "non-centred"),
    ),
    "known_shares": Option(
        "fixed",
        "pooled model: known groups' per-area shares 'fixed' (the area table; default) or "
        "'roster' (parameters with a binomial likelihood of the household-roster counts of "
        "[data] roster, so that their uncertainty reaches the hidden estimates)",
        _choice("fixed", "roster"),
    ),
    "zero_inflation": Option(
        False,
        "pooled model: structural zeros per group (a share zero_prob of respondents cannot "
        "report the group at all)",
        _bool,
    ),
    "transmission_by_area": Option(
        False,
        "pooled model: transmission rates vary by area around each hidden group's tau "
        "(partial pooling on the logit scale, spread tau_area_sd)",
        _bool,
    ),
    "bias_covariates": Option(
        [],
        "correlated model: [data] covariates whose effects also differ by group (group-specific "
        "deviations from their effect on the network size; default none)",
        _names,
    ),
    "survey_weights": Option(
        True,
        "Bayesian models: use [data] weight as a weighted pseudo-likelihood with the "
        "Williams-Savitsky design adjustment (default true when the spec names weights)",
        _bool,
    ),
    "method": Option(
        "mle", "classical estimator: 'mle' (default) or 'pimle'", _choice("mle", "pimle"), True
    ),
    "n_boot": Option(
        200, "classical: number of rescaled-bootstrap replicates (default 200)", _count, True
    ),
    "degree_ratio": Option(
        None, "classical: table hidden group -> degree ratio", _rate_table(True), True
    ),
    "transmission": Option(
        None, "classical: table hidden group -> transmission rate", _rate_table(False), True
    ),
}

#: keys of ``[model]`` that are not options of a model
GENERAL_KEYS: dict[str, str] = {
    "name": "model name: killworth, gnsum (classical), degree, barrier, transmission, combined, "
    "overdispersed, correlated, pooled, gnsum_bayes",
    "prior_set": "named prior set (models/priors/NAME.toml or a bundled set)",
}


def schema_section() -> dict[str, str]:
    """The ``[model]`` part of the spec schema (key -> description)."""
    return {
        "name": GENERAL_KEYS["name"],
        **{k: o.doc for k, o in MODEL_OPTIONS.items() if not o.classical},
        "prior_set": GENERAL_KEYS["prior_set"],
        **{k: o.doc for k, o in MODEL_OPTIONS.items() if o.classical},
    }


@dataclass(frozen=True)
class ModelConfig:
    """The checked ``[model]`` section.

    Attributes
    ----------
    name : str
        Model name (``killworth`` when the spec names none).
    given : dict
        The options the spec sets, as written (checked); defaults are not filled in.
    prior_set : str or None
    """

    name: str = DEFAULT_MODEL
    given: dict[str, Any] = field(default_factory=dict)
    prior_set: str | None = None

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | None, where: str = "spec") -> ModelConfig:
        """Check a ``[model]`` table; a bad key or value is a one-line :class:`SpecError`."""
        section = dict(section or {})
        name = section.pop("name", DEFAULT_MODEL)
        if (msg := _text(name)) is not None:
            raise SpecError(f"{where}: [model] name {msg}, got {name!r}")
        if name not in MODEL_NAMES:
            close = difflib.get_close_matches(name, MODEL_NAMES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SpecError(
                f"{where}: [model] name '{name}' is not a model{hint}; use one of "
                f"{', '.join(MODEL_NAMES)}"
            )
        prior_set = section.pop("prior_set", None)
        if prior_set is not None and (msg := _text(prior_set)) is not None:
            raise SpecError(f"{where}: [model] prior_set {msg}, got {prior_set!r}")
        for key, value in section.items():
            opt = MODEL_OPTIONS.get(key)
            if opt is None:
                raise SpecError(f"{where}: unknown key '{key}' in [model]")
            if (msg := opt.check(value)) is not None:
                raise SpecError(f"{where}: [model] {key} {msg}, got {value!r}")
        return cls(name=str(name), given=section, prior_set=prior_set)

    @property
    def is_classical(self) -> bool:
        return self.name in CLASSICAL_MODELS

    def value(self, key: str) -> Any:
        """The option's value: as given, else its default."""
        return self.given.get(key, MODEL_OPTIONS[key].default)

    def classical_options(self) -> dict[str, Any]:
        """Options of the classical estimator (defaults filled in)."""
        return {k: self.value(k) for k, o in MODEL_OPTIONS.items() if o.classical}

    def split(self, used: tuple[str, ...]) -> tuple[dict[str, Any], list[str], list[str]]:
        """Options for a model that reads ``used``.

        Returns
        -------
        options : dict
            Every used option with its value (given or default).
        classical_only : list of str
            Given keys that only the classical baseline reads (a warning for a Bayesian fit).
        unused : list of str
            Given keys that neither the model nor the baseline reads (an error).
        """
        options = {k: self.value(k) for k in used}
        classical = [k for k in self.given if k not in used and MODEL_OPTIONS[k].classical]
        unused = [k for k in self.given if k not in used and not MODEL_OPTIONS[k].classical]
        return options, classical, unused

    def check_hidden_sample(self, has_sample: bool, where: str = "spec") -> None:
        """Refuse ``[data] hidden_sample`` for a model that does not read it, a generalized
        NSUM model without it, and Killworth-only keys beside a hidden sample (the classical
        baseline is then the generalized scale-up estimator, which does not read them)."""
        if has_sample and self.name not in HIDDEN_SAMPLE_MODELS:
            raise SpecError(
                f"{where}: [data] hidden_sample is not used by the {self.name} model (models "
                f"that use it: {', '.join(HIDDEN_SAMPLE_MODELS)})"
            )
        if not has_sample and self.name in HIDDEN_SAMPLE_MODELS:
            raise SpecError(
                f"{where}: the {self.name} model needs [data] hidden_sample (a survey of the "
                "hidden group's members)"
            )
        given = [k for k in KILLWORTH_ONLY if has_sample and k in self.given]
        if given:
            raise SpecError(
                f"{where}: [model] {', '.join(given)} not used with a hidden sample (the "
                "generalized scale-up estimator takes the visibility from the hidden sample)"
            )

    def check_covariates(self, covariates: list | None, where: str = "spec") -> None:
        """Refuse ``[data] covariates`` for a model that does not read them, and
        ``[model] bias_covariates`` naming a column that is not one of them."""
        if covariates and self.name not in COVARIATE_MODELS:
            raise SpecError(
                f"{where}: [data] covariates are not used by the {self.name} model (models "
                f"that use them: {', '.join(COVARIATE_MODELS)})"
            )
        extra = [c for c in self.given.get("bias_covariates", []) if c not in (covariates or [])]
        if extra:
            raise SpecError(
                f"{where}: [model] bias_covariates '{extra[0]}' is not one of [data] covariates"
            )

    def with_name(self, name: str) -> ModelConfig:
        return ModelConfig(name=name, given=dict(self.given), prior_set=self.prior_set)
