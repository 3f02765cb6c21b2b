"""Published designs: :func:`load_preset` reads the bundled McCarty (US) and Curitiba group sizes
and parameters; :func:`simulate_preset` simulates a survey with them."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import pandas as pd

from ..errors import DataError
from .core import Simulation
from .single import simulate_ard

#: Names accepted by :func:`load_preset` and :func:`simulate_preset`.
PRESETS = ("mccarty", "curitiba")


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

    def by_group(rows: pd.DataFrame, column: str) -> dict[str, float]:
        return {str(g): float(v) for g, v in zip(rows["group"], rows[column], strict=True)}

    return {
        "known_sizes": by_group(known, "size"),
        "hidden_sizes": by_group(hidden, "size"),
        "total_population": float(par["N"]),
        "mu": float(par["mu"]),
        "sigma": float(par["sigma"]),
        "rho": by_group(groups, "rho_sim"),
        "tau": by_group(hidden, "tau_sim"),
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
