"""Parameter recovery on simulated surveys (slow tier: real sampling).

Each model is fitted to data simulated from its own generative assumptions, and the true hidden
sizes must lie inside a credible interval. Tolerance: the suite checks 12 hidden sizes; if each
were held to its 90% interval, a correct model would fail somewhere with probability
1 - 0.9^12 = 72%, so the assertion uses the 99% interval (false alarm about 11% for the whole
suite, fixed once the seeds are fixed) and the 90% verdict is printed. Whether the 90% intervals
have 90% coverage is what the SBC harness checks over many replications (tests/test_calibration.py
and the R = 100 runs in docs/benchmarks/calibration.md). The seeds were not chosen by looking at
results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_nsum import simulate
from bayes_nsum.data import ARD
from bayes_nsum.estimators import MODELS

pytestmark = pytest.mark.slow

SAMPLER = {"draws": 300, "tune": 400, "chains": 2, "seed": 11, "progress": False}


def _ard(sim: simulate.Simulation) -> ARD:
    counts = sim.survey.set_index("id")[sim.known + sim.hidden].astype(float)
    ks = sim.known_sizes.set_index("group")["size"].astype(float)
    return ARD(
        counts=counts,
        known=tuple(sim.known),
        hidden=tuple(sim.hidden),
        known_sizes=ks,
        total_population=float(sim.total_population),
    )


def _truth(sim: simulate.Simulation) -> pd.Series:
    t = sim.truth
    return t[(t.quantity == "size") & (t.area.fillna("") == "")].set_index("group")["value"]


def _check_covered(result, sim, prob=0.99):
    truth = _truth(sim)
    s90 = result.summary(0.9)
    s90 = s90[(s90.quantity == "size") & (s90.area == "")].set_index("group")
    for h in sim.hidden:
        inside = s90.loc[h, "lower"] <= truth[h] <= s90.loc[h, "upper"]
        print(
            f"{h}: truth {truth[h]:.0f}, 90% interval [{s90.loc[h, 'lower']:.0f}, "
            f"{s90.loc[h, 'upper']:.0f}] {'covers' if inside else 'MISSES'}"
        )
    s = result.summary(prob)
    sizes = s[(s.quantity == "size") & (s.area == "")].set_index("group")
    for h in sim.hidden:
        lo, hi = sizes.loc[h, "lower"], sizes.loc[h, "upper"]
        assert lo <= truth[h] <= hi, (
            f"{h}: truth {truth[h]:.0f} outside the {prob:.0%} interval [{lo:.0f}, {hi:.0f}]"
        )
    return sizes


KNOWN = {f"k{i:02d}": float(p) * 1e6 for i, p in enumerate(np.geomspace(0.002, 0.03, 10))}
HIDDEN = {"victims": 4000.0, "offenders": 1500.0}


@pytest.mark.parametrize(
    ("name", "sim_kwargs", "priors"),
    [
        ("degree", {"likelihood": "poisson"}, None),
        (
            "transmission",
            {"likelihood": "poisson", "tau": {"victims": 0.6, "offenders": 0.5}},
            {
                "tau": {
                    "victims": {"dist": "Beta", "mean": 0.6, "concentration": 30},
                    "offenders": {"dist": "Beta", "mean": 0.5, "concentration": 30},
                }
            },
        ),
        ("barrier", {"likelihood": "poisson", "rho": 0.05}, None),
        (
            "combined",
            {"likelihood": "poisson", "rho": 0.05, "tau": {"victims": 0.6, "offenders": 0.5}},
            {
                "tau": {
                    "victims": {"dist": "Beta", "mean": 0.6, "concentration": 30},
                    "offenders": {"dist": "Beta", "mean": 0.5, "concentration": 30},
                }
            },
        ),
        (
            "combined:shared",
            {"likelihood": "poisson", "rho": 0.05, "tau": {"victims": 0.6, "offenders": 0.5}},
            {
                "tau": {
                    "victims": {"dist": "Beta", "mean": 0.6, "concentration": 30},
                    "offenders": {"dist": "Beta", "mean": 0.5, "concentration": 30},
                }
            },
        ),
    ],
)
def test_maltiel_family_recovers_hidden_sizes(name, sim_kwargs, priors):
    sim = simulate.simulate_ard(
        n_respondents=400,
        known_sizes=KNOWN,
        hidden_sizes=HIDDEN,
        total_population=1e6,
        mu=5.0,
        sigma=0.7,
        seed=3,
        **sim_kwargs,
    )
    name, _, variant = name.partition(":")
    options = {"barrier_dispersion": variant} if variant else {}
    model = MODELS[name](_ard(sim), priors=priors, **options)
    result = model.fit(**SAMPLER)
    _check_covered(result, sim)
    post = result.posterior
    # the degree distribution is recovered too (90% intervals of mu and sigma)
    for p, true in (("mu", 5.0), ("sigma", 0.7)):
        lo, hi = np.quantile(post[p].values, [0.05, 0.95])
        # log-normal vs gamma mismatch is not at play here: both simulated and fitted lognormal
        assert lo - 0.1 <= true <= hi + 0.1, f"{p}: {true} outside [{lo:.2f}, {hi:.2f}] +- 0.1"
    if name in ("transmission", "combined"):
        # tau is not identified: its posterior is its prior (mean within 0.05 of the prior mean)
        assert abs(float(post["tau"].sel(hidden="victims").mean()) - 0.6) < 0.05
    if variant == "shared":
        # every known group was simulated with rho = 0.05 (90% interval, +- 0.02 slack)
        lo, hi = np.quantile(post["rho_known"].values, [0.05, 0.95])
        assert lo - 0.02 <= 0.05 <= hi + 0.02, f"rho_known: 0.05 outside [{lo:.3f}, {hi:.3f}]"


def test_overdispersed_recovers_sizes_and_known_groups():
    sim = simulate.simulate_ard(
        n_respondents=400,
        known_sizes=KNOWN,
        hidden_sizes=HIDDEN,
        total_population=1e6,
        mu=5.0,
        sigma=0.7,
        likelihood="negbin",
        omega=2.0,
        seed=5,
    )
    ard = _ard(sim)
    result = MODELS["overdispersed"](ard).fit(**SAMPLER)
    _check_covered(result, sim)
    post = result.posterior
    # known groups' implied sizes: exp(beta_k + C) * N reproduces N_k. The scaling makes their
    # sum exact; each group should be within a factor 1.5 (Zheng et al. report errors of this
    # order for single groups with a few hundred respondents).
    beta = post["beta"].assign_coords(group=ard.groups)
    implied = (np.exp(beta.sel(group=list(ard.known)) + post["scale_c"]) * 1e6).median(
        ("chain", "draw")
    )
    ratio = implied.values / ard.known_sizes.loc[list(ard.known)].values
    assert np.all((ratio > 1 / 1.5) & (ratio < 1.5)), ratio
    # overdispersion recovered: omega around the true 2 for the larger groups
    omega = float(post["omega"].median())
    assert 1.3 < omega < 3.0


def test_same_spec_data_and_seed_give_identical_numbers(tmp_path):
    """Reproducibility: two fits with the same seed are identical; another seed differs."""
    sim = simulate.simulate_ard(
        n_respondents=150,
        known_sizes=KNOWN,
        hidden_sizes=HIDDEN,
        total_population=1e6,
        likelihood="poisson",
        seed=8,
    )
    settings = {"draws": 100, "tune": 100, "chains": 2, "progress": False}
    a = MODELS["degree"](_ard(sim)).fit(seed=5, **settings).summary()
    b = MODELS["degree"](_ard(sim)).fit(seed=5, **settings).summary()
    c = MODELS["degree"](_ard(sim)).fit(seed=6, **settings).summary()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["estimate"], c["estimate"])
