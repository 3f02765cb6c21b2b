"""Priors as data.

A :class:`Prior` is a small, immutable description of a distribution (family + parameters) that
can be written in a spec, stored in a result's attrs and turned into a PyMC variable. Model
priors are a ``model_config``-style dict ``{parameter name: Prior or {group: Prior}}`` merged in
the order user > prior set > model default; the caller's objects are never mutated, and a name
that matches no parameter (or a group that is not one of the parameter's groups) is an error.

Spec syntax::

    [priors]
    mu = {dist = "Uniform", lower = 3, upper = 8}
    [priors.tau]
    victims = {dist = "Beta", mean = 0.6, concentration = 20}
    offenders = {dist = "Beta", lower = 0.3, upper = 0.8}   # a 90% range
    clients = 0.6                                          # fixed at 0.6
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BayesNsumError, PriorError


def _positive(fam: str, p: dict, *keys: str) -> None:
    for k in keys:
        if p[k] <= 0:
            raise PriorError(f"{fam} prior needs {' > 0 and '.join(keys)} > 0")


def _beta(p: dict) -> dict:
    if "mean" in p:
        m, c = p["mean"], p["concentration"]
        if not (0 < m < 1) or c <= 0:
            raise PriorError("Beta prior needs 0 < mean < 1 and concentration > 0")
        return {"alpha": m * c, "beta": (1 - m) * c}
    if "lower" in p:
        return _beta_from_range(p["lower"], p["upper"], p.get("prob", 0.9))
    _positive("Beta", p, "alpha", "beta")
    return p


def _uniform(p: dict) -> dict:
    if not p["lower"] < p["upper"]:
        raise PriorError("Uniform prior needs lower < upper")
    return p


def _gamma(p: dict) -> dict:
    if "mu" in p:
        _positive("Gamma", p, "mu", "sigma")
        return {"alpha": (p["mu"] / p["sigma"]) ** 2, "beta": p["mu"] / p["sigma"] ** 2}
    _positive("Gamma", p, "alpha", "beta")
    return p


def _checked(*keys: str):
    def canon(p: dict) -> dict:
        for k in keys:
            if p[k] <= 0:
                raise PriorError(f"prior needs {k} > 0")
        return p

    return canon


@dataclass(frozen=True)
class Family:
    """A prior family: the parameter sets a spec may use, the conversion to the PyMC
    distribution's parameters (which also checks them), and whether its density is flat."""

    forms: tuple[tuple[str, ...], ...]
    canonical: Any
    flat: Any = staticmethod(lambda p: False)


#: every prior family; each but ``Fixed`` is the PyMC distribution of the same name
FAMILIES: dict[str, Family] = {
    "Beta": Family(
        (
            ("alpha", "beta"),
            ("mean", "concentration"),
            ("lower", "upper"),
            ("lower", "upper", "prob"),
        ),
        _beta,
        lambda p: bool(np.isclose(p["alpha"], 1.0) and np.isclose(p["beta"], 1.0)),
    ),
    "Uniform": Family((("lower", "upper"),), _uniform, lambda p: True),
    "Normal": Family((("mu", "sigma"),), _checked("sigma")),
    "HalfNormal": Family((("sigma",),), _checked("sigma")),
    "LogNormal": Family((("mu", "sigma"),), _checked("sigma")),
    "Gamma": Family((("alpha", "beta"), ("mu", "sigma")), _gamma),
    "Exponential": Family((("lam",),), _checked("lam")),
    "HalfCauchy": Family((("beta",),), _checked("beta")),
    "Fixed": Family((("value",),), lambda p: p, lambda p: True),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution as data.

    Parameters
    ----------
    dist : str
        Family: ``Beta``, ``Uniform``, ``Normal``, ``HalfNormal``, ``LogNormal``, ``Gamma``,
        ``Exponential``, ``HalfCauchy`` (the PyMC distributions of those names) or ``Fixed``
        (a constant).
    params : dict
        Parameters as written by the user. ``Beta`` also accepts ``mean`` and ``concentration``
        (alpha = mean * concentration) or a central ``lower``/``upper`` range holding ``prob``
        (default 0.9) of the mass; ``Gamma`` also ``mu``/``sigma``. :meth:`canonical` converts
        them to the PyMC distribution's parameters.
    """

    dist: str
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if self.dist not in FAMILIES:
            raise PriorError(
                f"unknown prior distribution '{self.dist}' (use {', '.join(FAMILIES)})"
            )
        keys = tuple(sorted(self.params))
        forms = FAMILIES[self.dist].forms
        if not any(keys == tuple(sorted(s)) for s in forms):
            text = " or ".join("(" + ", ".join(s) + ")" for s in forms)
            raise PriorError(f"{self.dist} prior takes parameters {text}; got ({', '.join(keys)})")
        for k, v in self.params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise PriorError(f"{self.dist} prior: parameter {k}={v!r} must be a finite number")
        self.canonical()  # validates values

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def fixed(cls, value: float) -> Prior:
        return cls("Fixed", {"value": float(value)})

    @classmethod
    def beta_mean(cls, mean: float, concentration: float) -> Prior:
        """Beta prior by its mean and concentration alpha + beta."""
        return cls("Beta", {"mean": float(mean), "concentration": float(concentration)})

    @classmethod
    def beta_range(cls, lower: float, upper: float, prob: float = 0.9) -> Prior:
        """Beta prior whose central ``prob`` interval is (lower, upper)."""
        return cls("Beta", {"lower": float(lower), "upper": float(upper), "prob": float(prob)})

    @classmethod
    def from_spec(cls, value: Any, where: str = "prior") -> Prior:
        """Build from a spec value: a number (fixed) or a table with ``dist``."""
        if isinstance(value, Prior):
            return value
        if isinstance(value, bool):
            raise PriorError(f"{where}: a prior must be a number or a table with 'dist'")
        if isinstance(value, (int, float)):
            if not np.isfinite(value):
                raise PriorError(f"{where}: a fixed value must be a finite number")
            return cls.fixed(value)
        if isinstance(value, dict) and "dist" in value:
            params = {k: v for k, v in value.items() if k != "dist"}
            try:
                return cls(str(value["dist"]), params)
            except PriorError as exc:
                raise PriorError(f"{where}: {exc}") from None
        raise PriorError(f"{where}: a prior must be a number or a table with 'dist', got {value!r}")

    # -- conversion -----------------------------------------------------------------------
    @property
    def is_fixed(self) -> bool:
        return self.dist == "Fixed"

    @property
    def is_flat(self) -> bool:
        """Constant density on its support (power-scaling cannot see it)."""
        return bool(FAMILIES[self.dist].flat(self.canonical()))

    def canonical(self) -> dict[str, float]:
        """Parameters of the PyMC distribution (Beta and Gamma as alpha/beta), checked."""
        return dict(FAMILIES[self.dist].canonical(dict(self.params)))

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, **self.params}

    def describe(self) -> str:
        if self.is_fixed:
            return f"fixed at {self.params['value']:g}"
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.dist}({inner})"

    def distribution(self, **kwargs):
        """The unnamed PyMC distribution (``pm.<dist>.dist``); a constant for ``Fixed``."""
        import pymc as pm
        import pytensor.tensor as pt

        if self.is_fixed:
            return pt.constant(self.params["value"], dtype="float64")
        return getattr(pm, self.dist).dist(**self.canonical(), **kwargs)

    def sample(self, rng: np.random.Generator | int | None, size: int = 1) -> np.ndarray:
        """``size`` draws (PyMC's ``pm.draw``)."""
        import pymc as pm

        if self.is_fixed:
            return np.full(size, self.params["value"], dtype=float)
        return np.asarray(
            pm.draw(self.distribution(), draws=size, random_seed=rng, mode="FAST_COMPILE"), float
        )

    def logp(self, x: Any) -> np.ndarray:
        """Log density at ``x`` (PyMC's ``pm.logp``; 0 for ``Fixed``, -inf off the support)."""
        import pymc as pm

        x = np.asarray(x, dtype=float)
        if self.is_fixed:
            return np.zeros_like(x)
        return np.asarray(pm.logp(self.distribution(), x).eval(mode="FAST_COMPILE"), float)

    def create(self, name: str, dims: str | None = None, **kwargs):
        """Create the PyMC random variable (or a constant for ``Fixed``); its parameters are
        data containers (see :func:`prior_data`)."""
        import pymc as pm
        import pytensor.tensor as pt

        if self.is_fixed:
            return pt.constant(self.params["value"], dtype="float64")
        return getattr(pm, self.dist)(
            name, **prior_data(name, self.canonical()), dims=dims, **kwargs
        )


def _beta_from_range(lower: float, upper: float, prob: float) -> dict[str, float]:
    """Beta(alpha, beta) whose central ``prob`` interval is (lower, upper).

    (PyMC's ``find_constrained_prior`` does the same but is deprecated in PyMC 6.4.)
    """
    from scipy import optimize, stats

    if not (0 < lower < upper < 1) or not (0 < prob < 1):
        raise PriorError(
            f"Beta range prior needs 0 < lower < upper < 1 and 0 < prob < 1; "
            f"got lower={lower}, upper={upper}, prob={prob}"
        )
    tail = (1 - prob) / 2

    def loss(log_ab):
        a, b = np.exp(log_ab)
        return [
            stats.beta.ppf(tail, a, b) - lower,
            stats.beta.ppf(1 - tail, a, b) - upper,
        ]

    mid = (lower + upper) / 2
    sd = (upper - lower) / (2 * stats.norm.ppf(1 - tail))
    conc = max(mid * (1 - mid) / sd**2 - 1, 0.5)
    sol = optimize.root(loss, np.log([mid * conc, (1 - mid) * conc]), method="hybr")
    a, b = np.exp(sol.x)
    if not sol.success or np.max(np.abs(loss(sol.x))) > 1e-4:
        raise PriorError(f"no Beta distribution has {prob:.0%} of its mass in ({lower}, {upper})")
    return {"alpha": float(a), "beta": float(b)}


# ---------------------------------------------------------------------------------------------
# where each parameter lives
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Support:
    """The values a model parameter can take: ``lower``/``upper`` with open or closed ends.
    ``strict=False``: only fixed values are checked (the model copes with a prior that strays
    outside, e.g. a Normal prior on a log-share)."""

    lower: float = -np.inf
    upper: float = np.inf
    lower_open: bool = True
    upper_open: bool = True
    strict: bool = True

    def contains(self, x: float) -> bool:
        above = x > self.lower if self.lower_open else x >= self.lower
        below = x < self.upper if self.upper_open else x <= self.upper
        return bool(above and below)

    def describe(self) -> str:
        if np.isinf(self.lower) and np.isinf(self.upper):
            return "any real number"
        if np.isinf(self.upper):
            return f"{'>' if self.lower_open else '>='} {self.lower:g}"
        if np.isinf(self.lower):
            return f"{'<' if self.upper_open else '<='} {self.upper:g}"
        left, right = "(" if self.lower_open else "[", ")" if self.upper_open else "]"
        return f"in {left}{self.lower:g}, {self.upper:g}{right}"


_REAL = Support()
_POSITIVE = Support(0.0)
_SHARE = Support(0.0, 1.0, True, False)  # (0, 1]: 1 means no loss (e.g. tau = 1)
_OPEN_UNIT = Support(0.0, 1.0)

#: every parameter of every model and the values it can take: a prior or fixed value outside
#: them is refused (``tests/test_hardening.py`` checks that every model's parameters are here)
PARAMETERS: dict[str, Support] = {
    "mu": _REAL,
    "sigma": _POSITIVE,
    "log_visible": Support(-np.inf, 0.0, True, False, strict=False),
    "log_prevalence": Support(-np.inf, 0.0, True, False, strict=False),  # gnsum_bayes
    "delta": _POSITIVE,  # degree ratio
    "tau": _SHARE,  # transmission rate
    "rho": _OPEN_UNIT,
    "rho_known": _OPEN_UNIT,
    "gamma": _REAL,
    "sigma_alpha": _POSITIVE,
    "mu_beta": _REAL,
    "sigma_beta": _POSITIVE,
    "inv_omega": _SHARE,
    "log_prev_mean": _REAL,
    "sigma_area": _POSITIVE,
    "nb_shape": _POSITIVE,
    "tau_area_sd": _POSITIVE,
    "zero_prob": _SHARE,  # zero-inflation share
    "bias_sd": _POSITIVE,
    "lkj_eta": _POSITIVE,
    "theta": _REAL,  # covariate effect on log degree (correlated model)
    "kappa": _REAL,  # group-specific covariate deviations (correlated model)
    "detection": _POSITIVE,  # detection rate of an [evidence] count (binomial: below 1)
}

#: the support of each family's distribution (closed ends; ``Uniform`` and ``Fixed`` by value)
_FAMILY_SUPPORT = {
    "Beta": (0.0, 1.0),
    "Normal": (-np.inf, np.inf),
    "HalfNormal": (0.0, np.inf),
    "LogNormal": (0.0, np.inf),
    "Gamma": (0.0, np.inf),
    "Exponential": (0.0, np.inf),
    "HalfCauchy": (0.0, np.inf),
}


def check_support(name: str, prior: Prior, where: str) -> None:
    """Refuse a prior of parameter ``name`` that puts mass (or a fixed value) where the
    parameter cannot be, e.g. a transmission rate fixed at 1.5 or a Normal prior on a scale.
    Parameters not in :data:`PARAMETERS` are not checked here."""
    sup = PARAMETERS.get(name)
    if sup is None:
        return
    if prior.is_fixed:
        value = prior.params["value"]
        if not sup.contains(value):
            raise PriorError(
                f"{where}: fixed value {value:g} is impossible: {name} must be {sup.describe()}"
            )
        return
    if not sup.strict:
        return
    if prior.dist == "Uniform":
        lo, hi = prior.params["lower"], prior.params["upper"]
    else:
        lo, hi = _FAMILY_SUPPORT[prior.dist]
    if lo < sup.lower or hi > sup.upper:
        raise PriorError(
            f"{where}: a {prior.dist} prior gives {name} values it cannot take ({name} must be "
            f"{sup.describe()})"
        )


def check_prior_names(raw: dict[str, Any] | None, where: str = "[priors]") -> None:
    """Refuse a ``[priors]`` entry that names no parameter of any model (with a suggestion)."""
    import difflib

    for name in raw or {}:
        if name not in PARAMETERS:
            close = difflib.get_close_matches(str(name), list(PARAMETERS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PriorError(f"{where} {name}: no model has a parameter '{name}'{hint}")


# ---------------------------------------------------------------------------------------------
# prior configs: {param: Prior | {group: Prior}}
# ---------------------------------------------------------------------------------------------

PriorConfig = dict[str, Any]


def parse_priors(raw: dict[str, Any] | None, where: str = "[priors]") -> PriorConfig:
    """Turn a spec's ``[priors]`` table (or a Python dict) into Prior objects (a new dict)."""
    if raw is not None and not isinstance(raw, dict):
        raise PriorError(f"{where} must be a table of priors by parameter name")
    out: PriorConfig = {}
    for name, value in (raw or {}).items():
        if (
            isinstance(value, Prior)
            or isinstance(value, (int, float))
            or (isinstance(value, dict) and "dist" in value)
        ):
            out[name] = Prior.from_spec(value, f"{where} {name}")
            check_support(name, out[name], f"{where} {name}")
        elif isinstance(value, dict) and value:
            out[name] = {g: Prior.from_spec(v, f"{where} {name}.{g}") for g, v in value.items()}
            for g, p in out[name].items():
                check_support(name, p, f"{where} {name}.{g}")
        else:
            raise PriorError(f"{where} {name}: expected a prior or a table of per-group priors")
    return out


def merge_priors(
    defaults: PriorConfig,
    groups_of: dict[str, list[str] | None],
    *layers: PriorConfig | None,
    model_name: str = "model",
) -> PriorConfig:
    """Merge prior layers over the defaults (later layers win) without mutating any input.

    Parameters
    ----------
    defaults : the model's default priors; its keys are the model's parameters.
    groups_of : parameter -> the groups it is indexed by (None for a scalar parameter).
    layers : override layers, lowest precedence first (e.g. prior set, then user).

    Raises
    ------
    PriorError
        If an override names no parameter of the model, gives per-group priors to a scalar
        parameter, or names a group that the parameter is not indexed by.
    """
    import difflib

    merged: PriorConfig = {}
    for name, value in defaults.items():
        groups = groups_of.get(name)
        if groups is None:
            merged[name] = value
        else:
            base = value if isinstance(value, dict) else dict.fromkeys(groups, value)
            merged[name] = {g: base[g] for g in groups}
    for layer in layers:
        for name, value in (layer or {}).items():
            if name not in defaults:
                close = difflib.get_close_matches(name, list(defaults), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PriorError(
                    f"prior '{name}' matches no parameter of the {model_name} model{hint}; "
                    f"its parameters are: {', '.join(sorted(defaults))}"
                )
            groups = groups_of.get(name)
            if isinstance(value, dict):
                if groups is None:
                    raise PriorError(
                        f"prior '{name}' is one parameter of the {model_name} model, not one per "
                        f"group; give a single prior"
                    )
                unknown = [g for g in value if g not in groups]
                if unknown:
                    raise PriorError(
                        f"prior '{name}': group(s) {', '.join(unknown)} are not among its groups "
                        f"({', '.join(groups)})"
                    )
                merged[name] = {**merged[name], **value}
            elif groups is None:
                merged[name] = value
            else:
                merged[name] = dict.fromkeys(groups, value)
    return copy.deepcopy(merged)


def describe_priors(config: PriorConfig) -> dict[str, Any]:
    """A JSON-able view of a prior config (for attrs, reports and provenance)."""
    out: dict[str, Any] = {}
    for name, value in config.items():
        if isinstance(value, dict):
            out[name] = {g: p.to_dict() for g, p in value.items()}
        else:
            out[name] = value.to_dict()
    return out


def prior_data(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """A prior's parameters as PyMC data containers ``prior__<parameter>__<key>``: a compiled
    model then takes other prior values without compiling again (sweeps and comparisons that
    change only prior values or data reuse it)."""
    import pymc as pm

    return {k: pm.Data(f"prior__{name}__{k}", np.asarray(v, float)) for k, v in params.items()}


def create_group_param(name: str, priors: dict[str, Prior], dim: str):
    """Create one per-group parameter with possibly different priors per group.

    If every group shares a family (and none is fixed) this is one vector variable with the
    given dim; otherwise each free group gets a scalar ``{name}_{group}`` variable and the vector
    is a ``Deterministic`` named ``name`` (fixed groups enter as constants).
    """
    import pymc as pm
    import pytensor.tensor as pt

    groups = list(priors)
    fams = {p.dist for p in priors.values()}
    if len(fams) == 1 and not next(iter(fams)) == "Fixed":
        canon = [priors[g].canonical() for g in groups]
        keys = canon[0].keys()
        if all(c.keys() == keys for c in canon):
            dist = getattr(pm, next(iter(fams)))
            params = {k: np.array([c[k] for c in canon]) for k in keys}
            return dist(name, **prior_data(name, params), dims=dim)
    if all(p.is_fixed for p in priors.values()):
        return pt.constant(np.array([priors[g].params["value"] for g in groups]), dtype="float64")
    parts = [priors[g].create(f"{name}_{g}") for g in groups]
    return pm.Deterministic(name, pt.stack(parts), dims=dim)


# ---------------------------------------------------------------------------------------------
# named prior sets
# ---------------------------------------------------------------------------------------------


def prior_set_dirs(extra: list[Path] | None = None) -> list[Path]:
    dirs = list(extra or [])
    dirs.append(Path(str(files("bayes_nsum") / "data" / "priors")))
    return dirs


def available_prior_sets(extra: list[Path] | None = None) -> list[str]:
    names = set()
    for d in prior_set_dirs(extra):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def load_prior_set(name_or_path: str | Path, search: list[Path] | None = None) -> PriorConfig:
    """Load a named prior set (a TOML file of ``[priors]``-style tables).

    ``name_or_path`` is a path to a ``.toml`` file or a name looked up in ``search`` folders
    (e.g. the project's ``models/priors/``) and then in the sets bundled with the package.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.is_file():
        for d in prior_set_dirs(search):
            cand = d / f"{name_or_path}.toml"
            if cand.is_file():
                path = cand
                break
        else:
            raise PriorError(
                f"prior set '{name_or_path}' not found (available: "
                f"{', '.join(available_prior_sets(search)) or 'none'})"
            )
    from .spec import read_toml

    try:
        raw = read_toml(path, "prior set")
    except BayesNsumError as exc:
        raise PriorError(str(exc)) from None
    body = raw.get("priors", raw)
    if not isinstance(body, dict):
        raise PriorError(f"prior set {path}: [priors] must be a table")
    body = {k: v for k, v in body.items() if k != "description"}
    return parse_priors(body, where=f"prior set {path.name}:")
