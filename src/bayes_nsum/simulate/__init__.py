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
* :func:`simulate_gnsum` -- :func:`simulate_ard` plus a sample of the hidden population
  (generalized NSUM; Feehan & Salganik 2016).
* :func:`simulate_correlated` -- covariates on the network size and on group-specific biases,
  correlated respondent-by-group biases (Laga, Bao & Niu 2023).
* :func:`simulate_preset` -- :func:`simulate_ard` with the McCarty (US) or Curitiba group sizes
  and parameters bundled in ``bayes_nsum/data/presets`` (:func:`load_preset`).

All randomness comes from ``numpy.random.default_rng(seed)``: the same seed gives identical output.
The degree draws use their own child stream, so with a fixed seed the respondents' degrees do not
depend on the count model (barrier, transmission, likelihood) chosen.
"""

from .core import Simulation
from .correlated import simulate_correlated
from .gnsum import GNSUMSimulation, simulate_gnsum
from .pooled import (
    DEFAULT_DENOMINATOR_SHARES,
    SCALE_OF_HARM_HIDDEN,
    SCALE_OF_HARM_KNOWN,
    simulate_pooled,
    simulate_scale_of_harm,
)
from .presets import PRESETS, load_preset, simulate_preset
from .single import lognormal_moments, simulate_ard

__all__ = [
    "Simulation",
    "simulate_ard",
    "simulate_gnsum",
    "simulate_correlated",
    "GNSUMSimulation",
    "simulate_pooled",
    "simulate_scale_of_harm",
    "load_preset",
    "simulate_preset",
    "PRESETS",
    "lognormal_moments",
    "SCALE_OF_HARM_KNOWN",
    "SCALE_OF_HARM_HIDDEN",
    "DEFAULT_DENOMINATOR_SHARES",
]
