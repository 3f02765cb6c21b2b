r"""Generalized NSUM designs: a frame survey and a sample of the hidden population, with truth.

Frame survey: :func:`~bayes_nsum.simulate.single.simulate_ard` with binomial answers, the
hidden group H seen at transmission rate :math:`\tau` and with degree ratio :math:`\delta`
(:math:`y_{iH} \sim \mathrm{Bin}(d_i, \tau\,\delta\,N_H/N)`: by reciprocity a share
:math:`\delta N_H / N` of a frame member's ties lead to H when H's members have :math:`\delta`
times the frame's mean degree).

Hidden sample (Feehan & Salganik 2016), m members of H drawn at random:

.. math::
    \log d^H_j &\sim \mathrm{Normal}(\mu + \log\delta, \sigma), \quad
        \text{rounded to an integer} \ge 1 \\
    y_{jk} &\sim \mathrm{Binomial}(d^H_j, N_k/N) \\
    \tilde v_{jk} &\sim \mathrm{Binomial}(y_{jk}, \tau)

so the visibility (mean in-reports from the frame per member of H) is
:math:`\bar v_{H,F} = \tau\,\delta\,\bar d_F`. The binomial answers and integer degrees are
the papers' process, an independent check of the Poisson approximation of the models.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from .core import Simulation, _check_positive_int, _pos_check, _tau_check
from .single import simulate_ard


@dataclass
class GNSUMSimulation(Simulation):
    """A :class:`Simulation` with a hidden-population sample.

    Attributes
    ----------
    hidden_sample : DataFrame
        One row per member: for each known group k, column ``k`` (:math:`y_{jk}`) and
        ``k_aware`` (:math:`\\tilde v_{jk}`); integers.
    hidden_group : str
        The hidden group sampled.
    hidden_degrees : ndarray
        The members' true degrees.
    """

    hidden_sample: pd.DataFrame | None = None
    hidden_group: str = ""
    hidden_degrees: np.ndarray | None = None

    def write(self, directory: str | Path, name: str = "sim", model: str = "gnsum") -> dict:
        """Write the files of :meth:`Simulation.write` plus ``hidden_sample.csv``, named in the
        spec's ``[data] hidden_sample`` (default model: the classical ``gnsum``)."""
        paths = super().write(directory, name, model)
        paths["hidden_sample"] = Path(directory) / "hidden_sample.csv"
        self.hidden_sample.to_csv(paths["hidden_sample"], index=False)
        text = paths["spec"].read_text(encoding="utf-8")
        header, body = text.split("\n", 1)
        spec = tomllib.loads(body)
        spec["data"]["hidden_sample"] = "hidden_sample.csv"
        spec["data"]["hidden_sample_group"] = self.hidden_group
        paths["spec"].write_text(header + "\n" + tomli_w.dumps(spec), encoding="utf-8")
        return paths


def simulate_gnsum(
    n_respondents: int = 500,
    n_hidden_sample: int = 100,
    known_sizes: Mapping[str, float] | None = None,
    hidden_size: float = 5_000.0,
    total_population: float = 1_000_000.0,
    mu: float = 5.0,
    sigma: float = 0.8,
    tau: float = 0.5,
    degree_ratio: float = 0.8,
    hidden_group: str = "hidden_1",
    seed: int | None = 0,
) -> GNSUMSimulation:
    """Simulate a frame survey and a hidden-population sample with known truth.

    Parameters
    ----------
    n_respondents, n_hidden_sample : int
        Sizes of the frame survey and of the hidden sample.
    known_sizes : dict, optional
        Known-group sizes (default: those of :func:`simulate_ard`).
    hidden_size : float
        True size :math:`N_H` of the hidden group.
    total_population : float
        :math:`N`.
    mu, sigma : float
        Log-normal degree of the frame population.
    tau : float
        Transmission (true-positive) rate in (0, 1].
    degree_ratio : float
        :math:`\\delta`: mean degree of H's members over the frame's.
    hidden_group : str
        Name of the hidden group.
    seed : int
        Seed (the same seed gives the same surveys).
    """
    m = _check_positive_int(n_hidden_sample, "n_hidden_sample")
    tau = _tau_check(tau, "tau")
    delta = _pos_check(degree_ratio, "degree_ratio")
    sim = simulate_ard(
        n_respondents=n_respondents,
        known_sizes=known_sizes,
        hidden_sizes={hidden_group: hidden_size},
        total_population=total_population,
        mu=mu,
        sigma=sigma,
        likelihood="binomial",
        tau={hidden_group: tau},
        degree_ratio={hidden_group: delta},
        seed=seed,
    )
    rng = np.random.default_rng([0 if seed is None else int(seed), 7919])
    d = np.maximum(1, np.round(np.exp(mu + np.log(delta) + sigma * rng.standard_normal(m))))
    d = d.astype(np.int64)
    share = np.array([float(s) for s in sim.known_sizes["size"]]) / float(total_population)
    y = rng.binomial(d[:, None], share[None, :])
    v = rng.binomial(y, tau)
    cols: dict[str, np.ndarray] = {}
    for j, k in enumerate(sim.known):
        cols[k] = y[:, j]
        cols[f"{k}_aware"] = v[:, j]
    mean_degree = float(np.exp(mu + sigma**2 / 2))
    params = {
        **sim.params,
        "n_hidden_sample": m,
        "visibility": tau * delta * mean_degree,
        "hidden_group": hidden_group,
    }
    return GNSUMSimulation(
        survey=sim.survey,
        known_sizes=sim.known_sizes,
        total_population=sim.total_population,
        known=sim.known,
        hidden=sim.hidden,
        truth=sim.truth,
        params=params,
        degrees=sim.degrees,
        hidden_sample=pd.DataFrame(cols),
        hidden_group=hidden_group,
        hidden_degrees=d,
    )
