"""Multi-area designs: :func:`simulate_pooled` (partially pooled negative binomial) and its
Scale-of-Harm-like instance :func:`simulate_scale_of_harm`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    _negbin,
    _per_group,
    _pos_check,
    _survey_frame,
    _tau_check,
    _truth_frame,
)

#: Default share of an area's population in each denominator column of :func:`simulate_pooled`.
DEFAULT_DENOMINATOR_SHARES = {"children": 0.35, "adults": 0.6}

_prev_check = _bounded(lambda v: 0 < v < 0.5, "in (0, 0.5)")
_nonneg_check = _bounded(lambda v: v >= 0, ">= 0")


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
    area_distribution: str = "lognormal",
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
    area_distribution : {"lognormal", "gamma"}
        Distribution of the area effects. ``"lognormal"`` (default): as above. ``"gamma"``: the
        study's own model, :math:`\rho_{jk} = -\log p_{jk} \sim \mathrm{Gamma}` with mean
        :math:`-\log\mu_k` and sd :math:`\sigma_{\mathrm{area},k}` (right-skewed in
        :math:`\rho`: a longer tail of areas with low prevalence), so :math:`\mu_k` is the
        prevalence at the mean of :math:`\rho` rather than the median.

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

    mu, sigma = _check_real(mu, "mu"), _pos_check(_check_real(sigma, "sigma"), "sigma")
    if area_distribution not in ("lognormal", "gamma"):
        raise DataError(
            f"area_distribution must be 'lognormal' or 'gamma', got {area_distribution!r}"
        )

    default_prev = dict(zip(known, _default_prevalence(len(known), 0.005, 0.05), strict=True))
    default_prev |= dict(zip(hidden, _default_prevalence(len(hidden), 0.001, 0.01), strict=True))
    if prevalence is not None and not isinstance(prevalence, Mapping):
        raise DataError("prevalence must be a dict of group -> median prevalence")
    prev_k = _per_group(prevalence, groups, "prevalence", _prev_check, default_prev)
    sd_k = _per_group(sigma_area, groups, "sigma_area", _nonneg_check, 0.3)
    shape_default = {g: (2.0 if g in known else 0.5) for g in groups}
    shape_k = _per_group(nb_shape, groups, "nb_shape", _pos_check, shape_default)

    shares = dict(DEFAULT_DENOMINATOR_SHARES if denominator_shares is None else denominator_shares)
    for c, s in shares.items():
        if not isinstance(c, str) or not c or c in ("area", "population", *groups):
            raise DataError(f"denominator_shares: bad column name {c!r}")
        shares[c] = _tau_check(s, f"denominator_shares[{c!r}]")
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
    if area_distribution == "lognormal":
        z = area_rng.standard_normal((J, K))
        log_p = log_mu + sd * z
    else:  # gamma rho = -log p with mean -log mu and sd sd; degenerate where sd = 0
        safe_sd = np.where(sd > 0, sd, 1.0)
        a = np.where(sd > 0, (log_mu / safe_sd) ** 2, 1.0)
        log_p = np.where(sd > 0, -area_rng.gamma(a, -log_mu / a, size=(J, K)), log_mu)
        z = (log_p - log_mu) / safe_sd  # standardised, as for "lognormal"
    p = np.minimum(np.exp(log_p), 0.4999)
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

    cells = [
        (a, g, size[j, k], base[j, k]) for j, a in enumerate(areas) for k, g in enumerate(groups)
    ]
    cells += [("", g, size[:, k].sum(), base[:, k].sum()) for k, g in enumerate(groups)]

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
        "area_distribution": area_distribution,
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
        truth=_truth_frame(cells),
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
