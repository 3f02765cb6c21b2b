"""Correlated biases and covariates: :func:`simulate_correlated` (Laga, Bao & Niu 2023)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .core import (
    Simulation,
    _bounded,
    _check_names,
    _check_positive_int,
    _check_real,
    _pos_check,
    _survey_frame,
    _truth_frame,
)

_corr_check = _bounded(lambda v: -1.0 < v < 1.0, "in (-1, 1)")


def simulate_correlated(
    n_respondents: int = 500,
    known_sizes: Mapping[str, float] | None = None,
    hidden_sizes: Mapping[str, float] | None = None,
    total_population: float = 1_000_000,
    mu: float = 5.0,
    sigma: float = 0.5,
    covariate_effects: Mapping[str, float] | None = None,
    bias_effects: Mapping[str, Mapping[str, float]] | None = None,
    bias_sd: float = 0.4,
    correlation: float = 0.3,
    seed: int | None = 0,
) -> Simulation:
    r"""Simulate a national ARD survey with covariates and correlated biases.

    The process of Laga, Bao & Niu (2023): respondent i has covariates
    :math:`x_{ic} \sim N(0, 1)` (independent columns, one per key of ``covariate_effects``) and

    .. math::
        \log d_i &= \mu + x_i^\top\theta + \sigma\,u_i, \quad u_i \sim N(0, 1), \\
        \epsilon_i &\sim \mathrm{MVN}(0, \Sigma), \quad
        \Sigma_{kk'} = s^2 \big(\rho + (1 - \rho)[k = k']\big), \\
        y_{ik} &\sim \mathrm{Poisson}\Big(d_i \frac{N_k}{N}
            \exp\big(\textstyle\sum_c x_{ic}\kappa_{ck} + \epsilon_{ik} - s^2/2\big)\Big),

    :math:`\theta_c` = ``covariate_effects[c]`` (per unit of the covariate, which has sd 1),
    :math:`\kappa_{ck}` = ``bias_effects[c][k]`` (0 where not given), s = ``bias_sd``,
    :math:`\rho` = ``correlation`` (exchangeable). The bias has mean one on the count scale, so
    a respondent with covariates 0 expects :math:`d_i N_k / N` members of group k.

    Parameters
    ----------
    n_respondents, known_sizes, hidden_sizes, total_population, mu, sigma, seed
        As :func:`~bayes_nsum.simulate.simulate_ard` (default groups: 10 known with
        prevalences 0.001 to 0.03, one hidden of 0.005).
    covariate_effects : dict of str to float, optional
        Covariate name -> effect on the log network size per unit. Default
        ``{"x1": 0.3, "x2": -0.2}``.
    bias_effects : dict of str to dict, optional
        Covariate (a key of ``covariate_effects``) -> group -> its effect on the log rate of
        that group's answers beyond the network size.
    bias_sd : float
        Sd s of every group's bias (>= 0; 0: Poisson answers given the degree).
    correlation : float
        Correlation of two groups' biases, in (-1/(G-1), 1).

    Returns
    -------
    Simulation
        The survey has one column per covariate after the groups; ``covariates`` names them;
        ``params`` holds every true value (``theta``, ``kappa``, ``bias_sd``, ``correlation``).
    """
    n = _check_positive_int(n_respondents, "n_respondents")
    N = _pos_check(total_population, "total_population")
    mu, sigma = _check_real(mu, "mu"), _pos_check(_check_real(sigma, "sigma"), "sigma")
    if known_sizes is None:
        prev = np.geomspace(0.001, 0.03, 10)
        known_sizes = {f"known_{k + 1:02d}": float(round(p * N)) for k, p in enumerate(prev)}
    if hidden_sizes is None:
        hidden_sizes = {"hidden_1": 0.005 * N}
    known = _check_names(list(known_sizes), "known_sizes")
    hidden = _check_names(list(hidden_sizes), "hidden_sizes")
    groups = known + hidden
    if len(set(groups)) < len(groups):
        raise DataError("hidden_sizes: a group is also in known_sizes")
    in_frame = _bounded(lambda v: 0 < v <= N, f"in (0, total_population={N:g}]")
    sizes = {g: in_frame(v, f"sizes[{g!r}]") for g, v in {**known_sizes, **hidden_sizes}.items()}
    if covariate_effects is None:
        covariate_effects = {"x1": 0.3, "x2": -0.2}
    names = _check_names(list(covariate_effects), "covariate_effects")
    clash = [c for c in names if c in groups or c in ("id", "area", "weight")]
    if clash:
        raise DataError(f"covariate_effects: '{clash[0]}' is also a group or reserved column")
    theta = np.array(
        [_check_real(covariate_effects[c], f"covariate_effects[{c!r}]") for c in names]
    )
    kappa = np.zeros((len(names), len(groups)))
    for c, row in (bias_effects or {}).items():
        if c not in names:
            raise DataError(f"bias_effects: '{c}' is not a key of covariate_effects")
        for g, v in row.items():
            if g not in groups:
                raise DataError(f"bias_effects[{c!r}]: '{g}' is not a group")
            kappa[names.index(c), groups.index(g)] = _check_real(v, f"bias_effects[{c!r}][{g!r}]")
    s = _check_real(bias_sd, "bias_sd")
    if s < 0:
        raise DataError("bias_sd must be >= 0")
    rho = _corr_check(correlation, "correlation")
    G = len(groups)
    if rho <= -1.0 / (G - 1) if G > 1 else False:
        raise DataError(f"correlation must be > {-1 / (G - 1):.3g} for {G} groups")

    rng = np.random.default_rng(seed)
    cov_rng, deg_rng, bias_rng, count_rng = rng.spawn(4)
    x = cov_rng.standard_normal((n, len(names)))
    log_d = mu + x @ theta + sigma * deg_rng.standard_normal(n)
    corr = np.full((G, G), rho) + (1 - rho) * np.eye(G)
    eps = bias_rng.multivariate_normal(np.zeros(G), s**2 * corr, size=n, method="cholesky")
    m = np.array([sizes[g] / N for g in groups])
    log_mean = log_d[:, None] + np.log(m)[None, :] + x @ kappa + eps - 0.5 * s**2
    counts = count_rng.poisson(np.exp(log_mean))

    survey = _survey_frame(counts, groups)
    for j, c in enumerate(names):
        survey[c] = x[:, j]
    params: dict[str, Any] = {
        "design": "correlated",
        "seed": seed,
        "n_respondents": n,
        "total_population": N,
        "mu": mu,
        "sigma": sigma,
        "theta": dict(zip(names, theta.tolist(), strict=True)),
        "kappa": {
            c: dict(zip(groups, kappa[j].tolist(), strict=True)) for j, c in enumerate(names)
        },
        "bias_sd": s,
        "correlation": rho,
        "sizes": dict(sizes),
        "prevalence": {g: float(v) for g, v in zip(groups, m, strict=True)},
    }
    return Simulation(
        survey=survey,
        known_sizes=pd.DataFrame({"group": known, "size": [sizes[g] for g in known]}),
        total_population=N,
        known=known,
        hidden=hidden,
        truth=_truth_frame(("", g, sizes[g], N) for g in groups),
        params=params,
        degrees=np.exp(log_d),
        covariates=names,
    )
