"""Single national frame: :func:`simulate_ard` (Maltiel et al. 2015; Zheng et al. 2006)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import DataError
from .core import (
    Simulation,
    _bounded,
    _check_names,
    _check_positive_int,
    _check_real,
    _negbin,
    _per_group,
    _pos_check,
    _survey_frame,
    _tau_check,
    _truth_frame,
)

_rho_check = _bounded(lambda v: 0.0 < v < 1.0, "in (0, 1)")
_omega_check = _bounded(lambda v: v >= 1.0, ">= 1 (1 = Poisson)")


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
    from ..estimators.components import gamma_shape_rate  # imports pytensor: only when needed

    shape, rate = (float(v) for v in gamma_shape_rate(mu, sigma))
    return rng.gamma(shape, 1 / rate, size=n), {"gamma_shape": shape, "gamma_scale": 1 / rate}


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
    N = _pos_check(total_population, "total_population")
    if degree not in ("lognormal", "gamma"):
        raise DataError(f"degree must be 'lognormal' or 'gamma', got {degree!r}")
    if likelihood not in ("binomial", "poisson", "negbin"):
        raise DataError(f"likelihood must be 'binomial', 'poisson' or 'negbin', got {likelihood!r}")
    mu, sigma = _check_real(mu, "mu"), _pos_check(_check_real(sigma, "sigma"), "sigma")

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
    in_frame = _bounded(lambda v: 0 < v <= N, f"in (0, total_population={N:g}]")
    sizes = {
        g: in_frame(s, f"{arg}[{g!r}]")
        for arg, src in (("known_sizes", known_sizes), ("hidden_sizes", hidden_sizes))
        for g, s in src.items()
    }

    rho_k = _per_group(rho, groups, "rho", _rho_check)
    ones = dict.fromkeys(known, 1.0)  # known groups: no transmission bias, frame degree
    tau_k = ones | _per_group(tau, hidden, "tau", _tau_check, 1.0)
    if degree_ratio is not None and not isinstance(degree_ratio, Mapping):
        raise DataError("degree_ratio must be a dict of hidden group -> ratio")
    ratio_k = ones | _per_group(degree_ratio, hidden, "degree_ratio", _pos_check, 1.0)
    if likelihood == "negbin":
        omega_k = _per_group(omega, groups, "omega", _omega_check, 2.0)
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
        truth=_truth_frame(("", g, sizes[g], denoms.get(g, N) if denoms else N) for g in groups),
        params=params,
        denominators=None if denoms is None else dict(denoms),
        degrees=d,
    )
