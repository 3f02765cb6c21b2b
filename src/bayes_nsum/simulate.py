"""Generative simulators of aggregated relational data (ARD) with known truth.

Every simulator returns a :class:`Simulation`: the survey answers ("how many people do you know in
group k"), the known-group sizes, the frame population and a tidy table of the true sizes and
prevalences, plus every true parameter. They are used by the tests, simulation-based calibration,
benchmarks and the demo, so the layout of :class:`Simulation` is a contract (see its docstring).

Three designs are provided:

* :func:`simulate_ard` -- one national frame, the Maltiel et al. (2015) family of models (random
  degree, barrier effects, transmission bias) and the Zheng et al. (2006) overdispersed model.
* :func:`simulate_pooled` -- many areas (municipalities), the partially pooled negative-binomial
  design of Nyarko-Agyei et al. (arXiv 2407.13267); :func:`simulate_scale_of_harm` is a
  Scale-of-Harm-like instance of it.
* :func:`simulate_preset` -- :func:`simulate_ard` with the McCarty (US) or Curitiba group sizes
  and parameters bundled in ``bayes_nsum/data/presets`` (:func:`load_preset`).

All randomness comes from ``numpy.random.default_rng(seed)``: the same seed gives identical output.
The degree draws use their own child stream, so with a fixed seed the respondents' degrees do not
depend on the count model (barrier, transmission, likelihood) chosen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import tomli_w

from .errors import DataError

__all__ = [
    "Simulation",
    "simulate_ard",
    "simulate_pooled",
    "simulate_scale_of_harm",
    "load_preset",
    "simulate_preset",
    "PRESETS",
    "lognormal_moments",
    "SCALE_OF_HARM_KNOWN",
    "SCALE_OF_HARM_HIDDEN",
]

#: Names accepted by :func:`load_preset` and :func:`simulate_preset`.
PRESETS = ("mccarty", "curitiba")

_RESERVED = ("id", "area", "weight")


# ---------------------------------------------------------------------------------------------
# The result container
# ---------------------------------------------------------------------------------------------
@dataclass
class Simulation:
    """A simulated ARD survey together with the truth that generated it.

    Attributes
    ----------
    survey : pandas.DataFrame
        One row per respondent: ``id`` (str, unique), ``area`` (str, multi-area designs only),
        ``weight`` (float, all 1.0), then one int64 column per group, known groups first, then
        hidden groups.
    known_sizes : pandas.DataFrame
        Columns ``group``, ``size``: national sizes of the known groups.
    total_population : float
        N, the size of the frame population.
    known, hidden : list of str
        Group names, in the order of the survey columns.
    truth : pandas.DataFrame
        Tidy table with columns ``area`` (``""`` for national), ``group``, ``quantity``
        (``"size"`` or ``"prevalence"``) and ``value``, for hidden AND known groups. A prevalence is
        relative to the group's denominator (default: the total population, or the area's
        population).
    params : dict
        Every true parameter (plain python or numpy values).
    area_table : pandas.DataFrame or None
        Multi-area designs: ``area``, ``population``, one column per known group (its size in the
        area), and the denominator columns named in ``denominators``.
    denominators : dict or None
        Per hidden group: a number (national denominator) or the name of an ``area_table`` column.
    degrees : numpy.ndarray or None
        True respondent degrees d_i (integers for the binomial likelihood).
    """

    survey: pd.DataFrame
    known_sizes: pd.DataFrame
    total_population: float
    known: list[str]
    hidden: list[str]
    truth: pd.DataFrame
    params: dict
    area_table: pd.DataFrame | None = None
    denominators: dict[str, float | str] | None = None
    degrees: np.ndarray | None = None

    def write(
        self, directory: str | Path, name: str = "sim", model: str = "killworth"
    ) -> dict[str, Path]:
        """Write the simulation as files plus an analysis spec.

        Writes ``survey.csv``, ``known_sizes.csv``, ``truth.csv``, ``area_table.csv`` (multi-area
        designs only) and ``spec.toml`` into ``directory`` (created if missing). Paths inside the
        spec are relative to the spec file. Single-area specs name ``known_sizes``; multi-area
        specs name ``area = "area"`` and ``area_table`` instead (``total_population`` is kept).

        Parameters
        ----------
        directory : str or Path
            Target folder.
        name : str
            Label of the simulation, written as a comment on the first line of ``spec.toml``.
        model : str
            Value of ``[model] name`` in the spec (default ``"killworth"``).

        Returns
        -------
        dict of str to Path
            Keys ``survey``, ``known_sizes``, ``truth``, ``spec`` and ``area_table`` (if any).

        Notes
        -----
        The national rows of ``truth.csv`` have an empty ``area``; read the file with
        ``pandas.read_csv(path, keep_default_na=False)`` to get ``""`` back instead of NaN.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {
            "survey": directory / "survey.csv",
            "known_sizes": directory / "known_sizes.csv",
            "truth": directory / "truth.csv",
        }
        self.survey.to_csv(paths["survey"], index=False)
        self.known_sizes.to_csv(paths["known_sizes"], index=False)
        self.truth.to_csv(paths["truth"], index=False)

        data: dict[str, Any] = {"survey": "survey.csv"}
        if self.area_table is not None:
            paths["area_table"] = directory / "area_table.csv"
            self.area_table.to_csv(paths["area_table"], index=False)
            data["area"] = "area"
            data["area_table"] = "area_table.csv"
        else:
            data["known_sizes"] = "known_sizes.csv"
        data["total_population"] = _toml_number(self.total_population)

        groups: dict[str, Any] = {"known": list(self.known), "hidden": list(self.hidden)}
        if self.denominators:
            groups["denominators"] = {
                g: (v if isinstance(v, str) else _toml_number(v))
                for g, v in self.denominators.items()
            }
        spec = {
            "data": data,
            "groups": groups,
            "model": {"name": model},
            "output": {"dir": "results"},
        }
        paths["spec"] = directory / "spec.toml"
        header = f"# bayes_nsum simulation {name!r} (seed {self.params.get('seed')})\n"
        paths["spec"].write_text(header + tomli_w.dumps(spec), encoding="utf-8")
        return paths


# ---------------------------------------------------------------------------------------------
# Validation helpers (each raises DataError with a one-line message naming the argument)
# ---------------------------------------------------------------------------------------------
def _toml_number(x: float) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _check_names(names: Sequence[str], arg: str) -> list[str]:
    names = list(names)
    for g in names:
        if not isinstance(g, str) or not g:
            raise DataError(f"{arg}: group names must be non-empty strings, got {g!r}")
        if g in _RESERVED:
            raise DataError(f"{arg}: group name {g!r} is reserved for a survey column")
    dup = sorted({g for g in names if names.count(g) > 1})
    if dup:
        raise DataError(f"{arg}: duplicate group names {dup}")
    return names


def _check_positive_int(x: Any, arg: str, minimum: int = 1) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < minimum:
        raise DataError(f"{arg} must be an integer >= {minimum}, got {x!r}")
    return int(x)


def _check_real(x: Any, arg: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise DataError(f"{arg} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise DataError(f"{arg} must be finite, got {x!r}")
    return v


def _per_group(
    value: Mapping[str, float] | float | None,
    groups: Sequence[str],
    arg: str,
    check,
    allowed: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """Expand a scalar / dict / None argument to a per-group dict (None where not given)."""
    allowed = list(groups) if allowed is None else list(allowed)
    if value is None:
        return {g: None for g in groups}
    if isinstance(value, Mapping):
        bad = [g for g in value if g not in allowed]
        if bad:
            raise DataError(f"{arg}: unknown or not allowed group(s) {bad}; allowed: {allowed}")
        return {g: (check(value[g], f"{arg}[{g!r}]") if g in value else None) for g in groups}
    v = check(value, arg)
    return {g: v for g in groups}


def _rho_check(x: Any, arg: str) -> float:
    v = _check_real(x, arg)
    if not 0.0 < v < 1.0:
        raise DataError(f"{arg} must be in (0, 1), got {x!r}")
    return v


def _tau_check(x: Any, arg: str) -> float:
    v = _check_real(x, arg)
    if not 0.0 < v <= 1.0:
        raise DataError(f"{arg} must be in (0, 1], got {x!r}")
    return v


def _pos_check(x: Any, arg: str) -> float:
    v = _check_real(x, arg)
    if v <= 0:
        raise DataError(f"{arg} must be > 0, got {x!r}")
    return v


def _omega_check(x: Any, arg: str) -> float:
    v = _check_real(x, arg)
    if v < 1.0:
        raise DataError(f"{arg} must be >= 1 (1 = Poisson), got {x!r}")
    return v


def _ids(n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"R{i:0{width}d}" for i in range(1, n + 1)]


def _survey_frame(
    counts: np.ndarray, groups: list[str], area: np.ndarray | None = None
) -> pd.DataFrame:
    n = counts.shape[0]
    cols: dict[str, Any] = {"id": _ids(n)}
    if area is not None:
        cols["area"] = [str(a) for a in area]
    cols["weight"] = np.ones(n, dtype=float)
    for k, g in enumerate(groups):
        cols[g] = counts[:, k].astype(np.int64)
    return pd.DataFrame(cols)


def _negbin(rng: np.random.Generator, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """NB2 draws with the given mean and shape r (variance mean + mean^2 / r); 0 where mean is 0."""
    mean, shape = np.broadcast_arrays(np.asarray(mean, float), np.asarray(shape, float))
    out = np.zeros(mean.shape, dtype=np.int64)
    pos = mean > 0
    if np.any(pos):
        r = shape[pos]
        out[pos] = rng.negative_binomial(r, r / (r + mean[pos]))
    return out


def lognormal_moments(mu: float, sigma: float) -> tuple[float, float]:
    """Mean and variance of d when log d ~ Normal(mu, sigma)."""
    mean = math.exp(mu + sigma**2 / 2)
    var = math.expm1(sigma**2) * mean**2
    return mean, var


def _draw_degrees(
    rng: np.random.Generator, n: int, degree: str, mu: float, sigma: float
) -> tuple[np.ndarray, dict[str, float]]:
    if degree == "lognormal":
        return rng.lognormal(mu, sigma, size=n), {}
    mean, var = lognormal_moments(mu, sigma)
    shape = mean**2 / var  # = 1 / (exp(sigma^2) - 1)
    scale = var / mean
    return rng.gamma(shape, scale, size=n), {"gamma_shape": shape, "gamma_scale": scale}


def _truth_rows(area: str, group: str, size: float, denom: float) -> list[dict[str, Any]]:
    prev = size / denom if denom > 0 else float("nan")
    return [
        {"area": area, "group": group, "quantity": "size", "value": float(size)},
        {"area": area, "group": group, "quantity": "prevalence", "value": float(prev)},
    ]


def _truth_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["area", "group", "quantity", "value"])


# ---------------------------------------------------------------------------------------------
# Single-area simulator
# ---------------------------------------------------------------------------------------------
def simulate_ard(
    n_respondents: int = 500,
    known_sizes: Mapping[str, float] | None = None,
    hidden_sizes: Mapping[str, float] | None = None,
    total_population: float = 1_000_000,
    degree: Literal["lognormal", "gamma"] = "lognormal",
    mu: float = 5.0,
    sigma: float = 0.8,
    likelihood: Literal["binomial", "poisson", "negbin"] = "binomial",
    rho: Mapping[str, float] | float | None = None,
    tau: Mapping[str, float] | float | None = None,
    degree_ratio: Mapping[str, float] | None = None,
    omega: Mapping[str, float] | float | None = None,
    denominators: Mapping[str, float] | None = None,
    seed: int | None = 0,
) -> Simulation:
    r"""Simulate a national ARD survey (Maltiel et al. 2015; Zheng et al. 2006).

    For respondents :math:`i = 1..n` and groups :math:`k` (known, then hidden) with sizes
    :math:`N_k` in a frame population of size :math:`N`:

    .. math::

        \log d_i &\sim \mathrm{Normal}(\mu, \sigma)
            \quad\text{(or } d_i \sim \mathrm{Gamma} \text{ with the same mean and variance)} \\
        m_k &= N_k / N \\
        q_{ik} &= m_k \quad\text{or, with a barrier,}\quad
            q_{ik} \sim \mathrm{Beta}\big(m_k(1/\rho_k - 1),\; (1 - m_k)(1/\rho_k - 1)\big) \\
        p_{ik} &= \tau_k\, r_k\, q_{ik}

    where :math:`\tau_k` is the transmission rate (1 for known groups) and :math:`r_k` the degree
    ratio of hidden-group members (1 unless given). Then, by ``likelihood``:

    * ``"binomial"``: :math:`y_{ik} \sim \mathrm{Binomial}(\max(1, \mathrm{round}(d_i)), p_{ik})`;
      the stored degrees are the rounded integers.
    * ``"poisson"``: :math:`y_{ik} \sim \mathrm{Poisson}(d_i\, p_{ik})` (continuous degrees).
    * ``"negbin"``: :math:`y_{ik} \sim \mathrm{NegBin}` with mean :math:`\mu_{ik} = d_i p_{ik}` and
      variance :math:`\omega_k \mu_{ik}` (Zheng et al. 2006; :math:`\omega_k = 1` is Poisson), i.e.
      NB2 with shape :math:`\mu_{ik} / (\omega_k - 1)`.

    The gamma degree has shape :math:`1/(e^{\sigma^2} - 1)` and scale
    :math:`e^{\mu + \sigma^2/2}(e^{\sigma^2} - 1)`, matching the log-normal's mean
    :math:`e^{\mu + \sigma^2/2}` and variance :math:`(e^{\sigma^2} - 1) e^{2\mu + \sigma^2}`.

    Parameters
    ----------
    n_respondents : int
        Number of respondents n.
    known_sizes : dict of str to float, optional
        Known-group sizes. Default: 10 groups ``known_01`` .. ``known_10`` whose prevalences are
        spread log-uniformly (a geometric grid) from 0.001 to 0.03 of N, sizes rounded.
    hidden_sizes : dict of str to float, optional
        Hidden-group sizes (the estimands). Default ``{"hidden_1": 0.005 * N}``. May be empty.
    total_population : float
        Frame population N. Every size must be in (0, N].
    degree : {"lognormal", "gamma"}
        Degree distribution.
    mu, sigma : float
        Log-normal degree parameters (sigma > 0); the gamma matches their mean and variance.
    likelihood : {"binomial", "poisson", "negbin"}
        Count model.
    rho : dict or float, optional
        Barrier dispersion per group, in (0, 1). A float applies to every group; groups missing
        from a dict have no barrier. None: no barrier.
    tau : dict or float, optional
        Transmission rate per hidden group, in (0, 1]. Known groups always have 1.
    degree_ratio : dict, optional
        Per hidden group, the mean degree of its members relative to the frame (> 0); multiplies
        the group's rate. ``tau * degree_ratio * N_k / N`` must not exceed 1.
    omega : dict or float, optional
        Overdispersion (>= 1) per group for ``likelihood="negbin"`` (default 2.0 for every group).
        Not allowed with the other likelihoods.
    denominators : dict of str to float, optional
        Per hidden group, the denominator population of its prevalence (e.g. the number of
        children); must be >= the group's size. Default: N.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Simulation
        ``truth`` has national rows (``area == ""``) for every group; ``degrees`` the true d_i.
    """
    n = _check_positive_int(n_respondents, "n_respondents")
    N = _check_real(total_population, "total_population")
    if N <= 0:
        raise DataError(f"total_population must be > 0, got {total_population!r}")
    if degree not in ("lognormal", "gamma"):
        raise DataError(f"degree must be 'lognormal' or 'gamma', got {degree!r}")
    if likelihood not in ("binomial", "poisson", "negbin"):
        raise DataError(f"likelihood must be 'binomial', 'poisson' or 'negbin', got {likelihood!r}")
    mu = _check_real(mu, "mu")
    sigma = _check_real(sigma, "sigma")
    if sigma <= 0:
        raise DataError(f"sigma must be > 0, got {sigma!r}")

    if known_sizes is None:
        prev = np.geomspace(0.001, 0.03, 10)
        known_sizes = {
            f"known_{k + 1:02d}": max(1.0, float(round(p * N))) for k, p in enumerate(prev)
        }
    if hidden_sizes is None:
        hidden_sizes = {"hidden_1": 0.005 * N}
    if not isinstance(known_sizes, Mapping) or not known_sizes:
        raise DataError("known_sizes must be a non-empty dict of group -> size")
    if not isinstance(hidden_sizes, Mapping):
        raise DataError("hidden_sizes must be a dict of group -> size")
    known = _check_names(list(known_sizes), "known_sizes")
    hidden = _check_names(list(hidden_sizes), "hidden_sizes")
    both = [g for g in hidden if g in known]
    if both:
        raise DataError(f"hidden_sizes: group(s) {both} are also in known_sizes")
    groups = known + hidden
    sizes: dict[str, float] = {}
    for arg, src in (("known_sizes", known_sizes), ("hidden_sizes", hidden_sizes)):
        for g, s in src.items():
            v = _check_real(s, f"{arg}[{g!r}]")
            if not 0 < v <= N:
                raise DataError(f"{arg}[{g!r}] must be in (0, total_population={N:g}], got {s!r}")
            sizes[g] = v

    rho_k = _per_group(rho, groups, "rho", _rho_check)
    tau_h = _per_group(tau, hidden, "tau", _tau_check)
    if degree_ratio is not None and not isinstance(degree_ratio, Mapping):
        raise DataError("degree_ratio must be a dict of hidden group -> ratio")
    ratio_h = _per_group(degree_ratio, hidden, "degree_ratio", _pos_check)
    if likelihood == "negbin":
        omega_k = _per_group(2.0 if omega is None else omega, groups, "omega", _omega_check)
        omega_k = {g: (2.0 if v is None else v) for g, v in omega_k.items()}
    elif omega is not None:
        raise DataError(f"omega is only used with likelihood='negbin', not {likelihood!r}")
    else:
        omega_k = None
    denoms: dict[str, float] | None = None
    if denominators is not None:
        if not isinstance(denominators, Mapping):
            raise DataError("denominators must be a dict of hidden group -> number")
        bad = [g for g in denominators if g not in hidden]
        if bad:
            raise DataError(f"denominators: {bad} are not hidden groups; hidden: {hidden}")
        denoms = {}
        for g, v in denominators.items():
            if isinstance(v, str):
                raise DataError(
                    f"denominators[{g!r}]: a column name needs an area table; give a number"
                )
            d = _check_real(v, f"denominators[{g!r}]")
            if d < sizes[g]:
                raise DataError(f"denominators[{g!r}] = {v!r} is smaller than the group's size")
            denoms[g] = d

    tau_k = {g: 1.0 for g in known} | {g: (1.0 if tau_h[g] is None else tau_h[g]) for g in hidden}
    ratio_k = {g: 1.0 for g in known} | {
        g: (1.0 if ratio_h[g] is None else ratio_h[g]) for g in hidden
    }
    m = {g: sizes[g] / N for g in groups}
    for g in hidden:
        if tau_k[g] * ratio_k[g] * m[g] > 1:
            raise DataError(f"degree_ratio[{g!r}]: tau * degree_ratio * N_k / N exceeds 1")

    rng = np.random.default_rng(seed)
    deg_rng, barrier_rng, count_rng = rng.spawn(3)
    d, degree_extra = _draw_degrees(deg_rng, n, degree, mu, sigma)
    if likelihood == "binomial":
        d = np.maximum(1, np.rint(d)).astype(np.int64)

    counts = np.zeros((n, len(groups)), dtype=np.int64)
    for k, g in enumerate(groups):
        if rho_k[g] is None:
            q = np.full(n, m[g])
        else:
            if m[g] >= 1.0:
                raise DataError(f"rho[{g!r}]: a barrier needs a group smaller than the population")
            c = 1.0 / rho_k[g] - 1.0
            q = barrier_rng.beta(m[g] * c, (1.0 - m[g]) * c, size=n)
        p = np.minimum(tau_k[g] * ratio_k[g] * q, 1.0)
        if likelihood == "binomial":
            counts[:, k] = count_rng.binomial(d, p)
        elif likelihood == "poisson" or omega_k[g] == 1.0:
            counts[:, k] = count_rng.poisson(d * p)
        else:
            mean = d * p
            counts[:, k] = _negbin(count_rng, mean, mean / (omega_k[g] - 1.0))

    rows: list[dict[str, Any]] = []
    for g in groups:
        den = denoms.get(g, N) if denoms else N
        rows += _truth_rows("", g, sizes[g], den)

    params: dict[str, Any] = {
        "design": "ard",
        "seed": seed,
        "n_respondents": n,
        "total_population": N,
        "degree": degree,
        "mu": mu,
        "sigma": sigma,
        "degree_mean": lognormal_moments(mu, sigma)[0],
        "degree_var": lognormal_moments(mu, sigma)[1],
        **degree_extra,
        "likelihood": likelihood,
        "sizes": dict(sizes),
        "prevalence": dict(m),
        "barrier": rho is not None,
        "rho": dict(rho_k),
        "tau": dict(tau_k),
        "degree_ratio": dict(ratio_k),
        "omega": None if omega_k is None else dict(omega_k),
        "denominators": None if denoms is None else dict(denoms),
    }
    return Simulation(
        survey=_survey_frame(counts, groups),
        known_sizes=pd.DataFrame({"group": known, "size": [sizes[g] for g in known]}),
        total_population=N,
        known=known,
        hidden=hidden,
        truth=_truth_frame(rows),
        params=params,
        area_table=None,
        denominators=None if denoms is None else dict(denoms),
        degrees=d,
    )


# ---------------------------------------------------------------------------------------------
# Multi-area (partially pooled) simulator
# ---------------------------------------------------------------------------------------------
#: Default share of an area's population in each denominator column of :func:`simulate_pooled`.
DEFAULT_DENOMINATOR_SHARES = {"children": 0.35, "adults": 0.6}


def _default_prevalence(n: int, lo: float, hi: float) -> np.ndarray:
    if n == 1:
        return np.array([math.sqrt(lo * hi)])
    return np.geomspace(lo, hi, n)


def simulate_pooled(
    n_areas: int = 150,
    respondents_per_area: int | Sequence[int] | np.ndarray = 30,
    n_known: int | None = None,
    n_hidden: int | None = None,
    known_names: Sequence[str] | None = None,
    hidden_names: Sequence[str] | None = None,
    prevalence: Mapping[str, float] | None = None,
    sigma_area: Mapping[str, float] | float = 0.3,
    area_population: Sequence[float] | np.ndarray | None = None,
    mu: float = 5.5,
    sigma: float = 0.6,
    nb_shape: Mapping[str, float] | float | None = None,
    denominators: Mapping[str, str] | None = None,
    denominator_shares: Mapping[str, float] | None = None,
    seed: int | None = 0,
) -> Simulation:
    r"""Simulate a multi-area ARD survey from a partially pooled negative-binomial NSUM model.

    The design of the simulation study of Nyarko-Agyei, Moser, Seymour et al. ("A Partially Pooled
    NSUM Model", arXiv 2407.13267): areas :math:`j = 1..J` (``"A001"``, ...) with populations
    :math:`P_j`, respondent :math:`i` living in area :math:`j(i)`, groups :math:`k`:

    .. math::

        z_{jk} &\sim \mathrm{Normal}(0, 1) \\
        p_{jk} &= \min\big(\exp(\log\mu_k + \sigma_{\mathrm{area},k}\, z_{jk}),\; 0.4999\big) \\
        N_{jk} &= \mathrm{round}(p_{jk} B_{jk}) \\
        \delta_i &\sim \mathrm{Normal}(\mu, \sigma), \qquad d_i = e^{\delta_i} \\
        y_{ik} &\sim \mathrm{NegBin2}\big(\text{mean } d_i N_{j(i)k} / P_{j(i)},\;
            \text{shape } w_k\big)

    (NB2: variance :math:`m + m^2 / w_k`). :math:`B_{jk}` is the group's denominator in area j:
    the population :math:`P_j`, or for a hidden group with a denominator column (e.g.
    ``"children"``) that column, :math:`\mathrm{round}(s P_j)` with share s from
    ``denominator_shares``. So a hidden group's ``prevalence`` is relative to its denominator
    (victims per child), while its contacts are drawn from the whole frame at rate
    :math:`N_{jk}/P_j`. In the Stan parametrisation of the paper, mean
    :math:`= \exp(\delta_i - \rho_{jk})` with :math:`\rho_{jk} = -\log(N_{jk}/P_j)`.

    Parameters
    ----------
    n_areas : int
        Number of areas J.
    respondents_per_area : int or array of int
        Respondents per area (each >= 1), one number for all areas or one per area.
    n_known, n_hidden : int, optional
        Numbers of known / hidden groups (default 4 and 2, or the length of the names given).
    known_names, hidden_names : list of str, optional
        Group names (default ``known_01``.., ``hidden_1``..).
    prevalence : dict of str to float, optional
        Median prevalence :math:`\mu_k` of each group across areas, in (0, 0.5), relative to the
        group's denominator. Default: known groups on a geometric grid from 0.5% to 5%, hidden
        groups from 0.1% to 1%. Groups missing from a dict get their default.
    sigma_area : float or dict
        Sd of the area effect on each group's log prevalence (>= 0, default 0.3).
    area_population : array, optional
        Area populations (> 0). Default: log-normal with median 50,000 and log-sd 1, clipped to
        [5,000, 2,000,000] and rounded (a realistic spread of municipal sizes).
    mu, sigma : float
        Mean and sd of the log degree :math:`\delta_i` (default 5.5 and 0.6, as in Scale of Harm).
    nb_shape : float or dict, optional
        NB2 shape :math:`w_k` per group (> 0). Default 2 for known groups, 0.5 for hidden groups;
        groups missing from a dict get their default.
    denominators : dict of str to str, optional
        Hidden group -> name of an area-table denominator column (a key of
        ``denominator_shares``). The column is added to ``area_table``.
    denominator_shares : dict of str to float, optional
        Share of the area population in each denominator column (in (0, 1]); default
        ``{"children": 0.35, "adults": 0.6}``.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Simulation
        ``survey`` has an ``area`` column; ``area_table`` has ``area``, ``population``, one column
        per known group and the denominator columns used; ``truth`` has per-area rows and national
        rows (``area == ""``: sizes summed over areas, prevalence relative to the summed
        denominator) for every group; ``total_population`` is the sum of the area populations.
    """
    J = _check_positive_int(n_areas, "n_areas")
    if isinstance(respondents_per_area, int | np.integer) and not isinstance(
        respondents_per_area, bool
    ):
        n_per = np.full(J, _check_positive_int(respondents_per_area, "respondents_per_area"))
    else:
        try:
            n_per = np.asarray(respondents_per_area)
        except Exception:
            raise DataError("respondents_per_area must be an int or an array of ints") from None
        if n_per.shape != (J,):
            raise DataError(
                f"respondents_per_area must have one entry per area ({J}), got shape {n_per.shape}"
            )
        if not np.issubdtype(n_per.dtype, np.integer) or np.any(n_per < 1):
            raise DataError("respondents_per_area must hold integers >= 1")
        n_per = n_per.astype(np.int64)

    if known_names is None:
        nk = 4 if n_known is None else _check_positive_int(n_known, "n_known")
        known = [f"known_{k + 1:02d}" for k in range(nk)]
    else:
        known = _check_names(known_names, "known_names")
        if not known:
            raise DataError("known_names must name at least one group")
        if n_known is not None and n_known != len(known):
            raise DataError(f"n_known={n_known!r} but known_names has {len(known)} names")
    if hidden_names is None:
        nh = 2 if n_hidden is None else _check_positive_int(n_hidden, "n_hidden", minimum=0)
        hidden = [f"hidden_{k + 1}" for k in range(nh)]
    else:
        hidden = _check_names(hidden_names, "hidden_names")
        if n_hidden is not None and n_hidden != len(hidden):
            raise DataError(f"n_hidden={n_hidden!r} but hidden_names has {len(hidden)} names")
    both = [g for g in hidden if g in known]
    if both:
        raise DataError(f"hidden_names: group(s) {both} are also known groups")
    groups = known + hidden
    K = len(groups)

    mu = _check_real(mu, "mu")
    sigma = _check_real(sigma, "sigma")
    if sigma <= 0:
        raise DataError(f"sigma must be > 0, got {sigma!r}")

    default_prev = dict(zip(known, _default_prevalence(len(known), 0.005, 0.05), strict=True))
    if hidden:
        default_prev |= dict(
            zip(hidden, _default_prevalence(len(hidden), 0.001, 0.01), strict=True)
        )

    def _prev_check(x: Any, arg: str) -> float:
        v = _check_real(x, arg)
        if not 0 < v < 0.5:
            raise DataError(f"{arg} must be in (0, 0.5), got {x!r}")
        return v

    if prevalence is not None and not isinstance(prevalence, Mapping):
        raise DataError("prevalence must be a dict of group -> median prevalence")
    prev_k = _per_group(prevalence, groups, "prevalence", _prev_check)
    prev_k = {g: (default_prev[g] if v is None else v) for g, v in prev_k.items()}

    def _sd_check(x: Any, arg: str) -> float:
        v = _check_real(x, arg)
        if v < 0:
            raise DataError(f"{arg} must be >= 0, got {x!r}")
        return v

    sd_k = _per_group(sigma_area, groups, "sigma_area", _sd_check)
    sd_k = {g: (0.3 if v is None else v) for g, v in sd_k.items()}
    shape_k = _per_group(nb_shape, groups, "nb_shape", _pos_check)
    shape_k = {
        g: (v if v is not None else (2.0 if g in known else 0.5)) for g, v in shape_k.items()
    }

    shares = dict(DEFAULT_DENOMINATOR_SHARES if denominator_shares is None else denominator_shares)
    for c, s in shares.items():
        if not isinstance(c, str) or not c or c in ("area", "population", *groups):
            raise DataError(f"denominator_shares: bad column name {c!r}")
        v = _check_real(s, f"denominator_shares[{c!r}]")
        if not 0 < v <= 1:
            raise DataError(f"denominator_shares[{c!r}] must be in (0, 1], got {s!r}")
        shares[c] = v
    denoms: dict[str, str] = {}
    if denominators is not None:
        if not isinstance(denominators, Mapping):
            raise DataError("denominators must be a dict of hidden group -> column name")
        for g, c in denominators.items():
            if g not in hidden:
                raise DataError(f"denominators: {g!r} is not a hidden group; hidden: {hidden}")
            if not isinstance(c, str) or c not in shares:
                raise DataError(
                    f"denominators[{g!r}] must name a denominator column {sorted(shares)}, got {c!r}"
                )
            denoms[g] = c

    rng = np.random.default_rng(seed)
    pop_rng, area_rng, deg_rng, count_rng = rng.spawn(4)
    if area_population is None:
        pop = np.rint(np.clip(pop_rng.lognormal(math.log(50_000), 1.0, size=J), 5_000, 2_000_000))
    else:
        try:
            pop = np.asarray(area_population, dtype=float)
        except (TypeError, ValueError):
            raise DataError("area_population must be an array of numbers") from None
        if pop.shape != (J,):
            raise DataError(f"area_population must have one entry per area ({J}), got {pop.shape}")
        if not np.all(np.isfinite(pop)) or np.any(pop <= 0):
            raise DataError("area_population must hold finite numbers > 0")

    areas = [f"A{j + 1:03d}" for j in range(J)]
    den_cols = {c: np.rint(shares[c] * pop) for c in dict.fromkeys(denoms.values())}
    base = np.column_stack([den_cols[denoms[g]] if g in denoms else pop for g in groups])

    log_mu = np.log([prev_k[g] for g in groups])
    sd = np.array([sd_k[g] for g in groups])
    z = area_rng.standard_normal((J, K))
    p = np.minimum(np.exp(log_mu + sd * z), 0.4999)
    size = np.rint(p * base)
    rate = size / pop[:, None]

    area_idx = np.repeat(np.arange(J), n_per)
    n = area_idx.size
    delta = deg_rng.normal(mu, sigma, size=n)
    d = np.exp(delta)
    shapes = np.array([shape_k[g] for g in groups])
    counts = _negbin(count_rng, d[:, None] * rate[area_idx], shapes[None, :])

    pop_col = pop.astype(np.int64) if np.all(pop == np.rint(pop)) else pop
    area_table = pd.DataFrame({"area": areas, "population": pop_col})
    for k, g in enumerate(known):
        area_table[g] = size[:, k].astype(np.int64)
    for c, v in den_cols.items():
        area_table[c] = v.astype(np.int64)

    rows: list[dict[str, Any]] = []
    for j, a in enumerate(areas):
        for k, g in enumerate(groups):
            rows += _truth_rows(a, g, size[j, k], base[j, k])
    for k, g in enumerate(groups):
        rows += _truth_rows("", g, size[:, k].sum(), base[:, k].sum())

    params: dict[str, Any] = {
        "design": "pooled",
        "seed": seed,
        "n_areas": J,
        "areas": areas,
        "groups": groups,
        "respondents_per_area": n_per,
        "area_population": pop,
        "total_population": float(pop.sum()),
        "mu": mu,
        "sigma": sigma,
        "delta": delta,
        "prevalence": dict(prev_k),
        "log_mu": {g: float(v) for g, v in zip(groups, log_mu, strict=True)},
        "sigma_area": dict(sd_k),
        "area_z": z,
        "area_effects": sd * z,
        "area_prevalence": p,
        "area_sizes": size,
        "area_rate": rate,
        "nb_shape": dict(shape_k),
        "denominators": dict(denoms) or None,
        "denominator_shares": {c: shares[c] for c in den_cols},
    }
    return Simulation(
        survey=_survey_frame(counts, groups, area=np.asarray(areas)[area_idx]),
        known_sizes=pd.DataFrame(
            {"group": known, "size": [float(size[:, k].sum()) for k in range(len(known))]}
        ),
        total_population=float(pop.sum()),
        known=known,
        hidden=hidden,
        truth=_truth_frame(rows),
        params=params,
        area_table=area_table,
        denominators=dict(denoms) or None,
        degrees=d,
    )


#: Known groups of :func:`simulate_scale_of_harm` and their median prevalence among the whole
#: population (rough Philippine magnitudes: ~1M teachers, ~0.4M nurses practising in-country, ~2M
#: professional drivers, ~0.6M security guards, ~3.5M college students, ~4M construction workers,
#: and the child age bands of a population in which about 35% are aged 0-17).
SCALE_OF_HARM_KNOWN: dict[str, float] = {
    "teachers": 0.010,
    "nurses": 0.004,
    "drivers": 0.020,
    "security_guards": 0.005,
    "students": 0.030,
    "construction_workers": 0.040,
    "children_0_2": 0.060,
    "children_3_5": 0.060,
    "children_6_12": 0.135,
    "children_13_17": 0.095,
}

#: Hidden groups of :func:`simulate_scale_of_harm`: (median prevalence, denominator column).
SCALE_OF_HARM_HIDDEN: dict[str, tuple[float, str]] = {
    "victims": (0.010, "children"),
    "offenders": (0.003, "adults"),
}


def simulate_scale_of_harm(
    n_areas: int = 150, respondents_per_area: int | Sequence[int] | np.ndarray = 30, seed: int = 0
) -> Simulation:
    """Simulate a Scale-of-Harm-like multi-area survey (via :func:`simulate_pooled`).

    Mimics the design of the IJM / Rights Lab Scale of Harm study (Philippines, 2022): ten known
    groups (occupations and child age bands) and two hidden groups,

    * ``victims``: children abused to produce sexual exploitation material, median 1 in 100
      children (denominator column ``children`` = 35% of each area's population);
    * ``offenders``: adults who traffick children for that purpose, median 3 in 1,000 adults
      (denominator column ``adults`` = 60% of the population).

    Known-group median prevalences (of the whole population; see :data:`SCALE_OF_HARM_KNOWN`):
    teachers 1%, nurses 0.4%, drivers 2%, security guards 0.5%, (college) students 3%,
    construction workers 4%, children aged 0-2 6%, 3-5 6%, 6-12 13.5%, 13-17 9.5%.
    Every group's log prevalence varies across areas with sd 0.3; areas have log-normal
    populations (median 50,000); log degree ~ Normal(5.5, 0.6); NB2 shape 2 for known and 0.5
    for hidden groups. The child age bands vary across areas independently of the ``children``
    column (a simplification).

    Parameters
    ----------
    n_areas : int
        Number of municipalities (the study had about 149).
    respondents_per_area : int or array of int
        Respondents per municipality.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Simulation
        With ``area_table`` columns ``area``, ``population``, the ten known groups, ``children``
        and ``adults``, and ``denominators == {"victims": "children", "offenders": "adults"}``.
    """
    prevalence = dict(SCALE_OF_HARM_KNOWN) | {g: v[0] for g, v in SCALE_OF_HARM_HIDDEN.items()}
    return simulate_pooled(
        n_areas=n_areas,
        respondents_per_area=respondents_per_area,
        known_names=list(SCALE_OF_HARM_KNOWN),
        hidden_names=list(SCALE_OF_HARM_HIDDEN),
        prevalence=prevalence,
        denominators={g: v[1] for g, v in SCALE_OF_HARM_HIDDEN.items()},
        denominator_shares=dict(DEFAULT_DENOMINATOR_SHARES),
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# Presets from published designs
# ---------------------------------------------------------------------------------------------
def load_preset(name: str) -> dict[str, Any]:
    """Load the parameters of a published NSUM simulation design.

    Reads ``bayes_nsum/data/presets/{name}_groups.csv`` (columns ``group``, ``size``, ``type``
    (``known`` / ``unknown``), ``rho_sim``, ``tau_sim``, ``prevalence``) and
    ``{name}_params.csv`` (``N``, ``mu``, ``sigma``).

    * ``"mccarty"``: the US design of McCarty et al. (2001) as used by Maltiel et al. (2015),
      N = 250,000,000, 29 known groups, one hidden group of 500,000, mu = 5.36, sigma = 0.80.
    * ``"curitiba"``: the Curitiba (Brazil) 2010 household survey, N = 1,817,434, 20 known
      groups, hidden group heavy drug users (65,000; tau = 0.542), mu = 4.86, sigma = 0.94.

    Parameters
    ----------
    name : {"mccarty", "curitiba"}

    Returns
    -------
    dict
        ``known_sizes`` and ``hidden_sizes`` (dict group -> size), ``total_population``,
        ``mu``, ``sigma``, ``rho`` (barrier dispersion of every group) and ``tau``
        (transmission rate of each hidden group).
    """
    if name not in PRESETS:
        raise DataError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
    folder = files("bayes_nsum") / "data" / "presets"
    with (folder / f"{name}_groups.csv").open("r", encoding="utf-8") as fh:
        groups = pd.read_csv(fh)
    with (folder / f"{name}_params.csv").open("r", encoding="utf-8") as fh:
        par = pd.read_csv(fh).iloc[0]
    known = groups[groups["type"] == "known"]
    hidden = groups[groups["type"] != "known"]
    return {
        "known_sizes": {
            str(g): float(s) for g, s in zip(known["group"], known["size"], strict=True)
        },
        "hidden_sizes": {
            str(g): float(s) for g, s in zip(hidden["group"], hidden["size"], strict=True)
        },
        "total_population": float(par["N"]),
        "mu": float(par["mu"]),
        "sigma": float(par["sigma"]),
        "rho": {str(g): float(r) for g, r in zip(groups["group"], groups["rho_sim"], strict=True)},
        "tau": {str(g): float(t) for g, t in zip(hidden["group"], hidden["tau_sim"], strict=True)},
    }


def simulate_preset(
    name: str,
    n_respondents: int = 1000,
    barrier: bool = True,
    transmission: bool = True,
    seed: int | None = 0,
) -> Simulation:
    """Simulate a survey with the groups and parameters of a published design.

    Calls :func:`simulate_ard` (log-normal degree, binomial likelihood) with the values of
    :func:`load_preset`: barrier dispersions ``rho`` if ``barrier``, transmission rates ``tau``
    if ``transmission``.

    Parameters
    ----------
    name : {"mccarty", "curitiba"}
    n_respondents : int
    barrier, transmission : bool
        Include the preset's barrier effects / transmission bias.
    seed : int, optional

    Returns
    -------
    Simulation
    """
    p = load_preset(name)
    sim = simulate_ard(
        n_respondents=n_respondents,
        known_sizes=p["known_sizes"],
        hidden_sizes=p["hidden_sizes"],
        total_population=p["total_population"],
        degree="lognormal",
        mu=p["mu"],
        sigma=p["sigma"],
        likelihood="binomial",
        rho=p["rho"] if barrier else None,
        tau=p["tau"] if transmission else None,
        seed=seed,
    )
    sim.params["preset"] = name
    return sim
