"""Shared fixtures: a tiny simulated survey on disk and a stand-in for MCMC sampling.

The fast tier never runs a sampler. Tests of the fitting path replace
:func:`bayes_nsum.fit.sample` by :func:`fake_sampler`, which returns a DataTree shaped like a
real one (``posterior`` with every free variable and deterministic over ``chain`` x ``draw``, and
``sample_stats``) built from forward draws of the model's priors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from bayes_nsum.analysis import Prepared, prepare
from bayes_nsum.simulate import Simulation, simulate_ard

#: pytensor mode for the few graphs the fast tier compiles: no C compilation, so a cold cache
#: does not cost minutes.
FAST_MODE = "FAST_COMPILE"

SMALL_HIDDEN = {"victims": 5_000.0, "offenders": 2_000.0}
SMALL_N = 1_000_000


@pytest.fixture(scope="session")
def small_sim() -> Simulation:
    """50 respondents, 10 known groups, two hidden groups (victims, offenders), N = 1e6."""
    return simulate_ard(
        n_respondents=50, hidden_sizes=SMALL_HIDDEN, total_population=SMALL_N, seed=11
    )


@pytest.fixture(scope="session")
def small_spec_path(small_sim: Simulation, tmp_path_factory) -> Path:
    """The small simulation written to disk with a spec for the degree model."""
    out = tmp_path_factory.mktemp("small_sim")
    return small_sim.write(out, model="degree")["spec"]


@pytest.fixture(scope="session")
def small_prep(small_spec_path: Path) -> Prepared:
    return prepare(small_spec_path)


def fake_sampler(
    chain_shift: float = 0.0, divergences: int = 0, seed: int = 0
) -> Callable[..., xr.DataTree]:
    """A replacement for :func:`bayes_nsum.fit.sample` that draws from the prior instead.

    Parameters
    ----------
    chain_shift : float
        Added to chain ``c`` of every free variable times ``c``: a large value makes the chains
        disagree, so R-hat fails.
    divergences : int
        Number of draws flagged as divergent in ``sample_stats``.
    seed : int
        Seed of the prior draws.
    """

    def sample(model, settings: dict[str, Any], timings=None) -> xr.DataTree:
        import pymc as pm

        chains, draws = int(settings["chains"]), int(settings["draws"])
        names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potentials.*")
            prior = pm.sample_prior_predictive(
                draws=chains * draws,
                model=model,
                var_names=names,
                random_seed=seed,
                compile_kwargs={"mode": FAST_MODE},
            )["prior"].to_dataset()
        free = {v.name for v in model.free_RVs}
        post = {}
        for name in names:
            da = prior[name].isel(chain=0, drop=True)
            other = [d for d in da.dims if d != "draw"]
            arr = da.transpose("draw", *other).values.reshape(chains, draws, *da.shape[1:])
            if name in free and chain_shift:
                shift = chain_shift * np.arange(chains).reshape((chains, 1) + (1,) * len(other))
                arr = arr + shift
            post[name] = (("chain", "draw", *other), arr)
        coords = {d: prior[d].values for d in prior.dims if d not in ("chain", "draw")}
        coords.update(chain=np.arange(chains), draw=np.arange(draws))
        rng = np.random.default_rng(seed + 1)
        diverging = np.zeros(chains * draws, bool)
        diverging[:divergences] = True
        stats = xr.Dataset(
            {
                "diverging": (("chain", "draw"), diverging.reshape(chains, draws)),
                "energy": (("chain", "draw"), rng.normal(size=(chains, draws))),
                "maxdepth_reached": (("chain", "draw"), np.zeros((chains, draws), bool)),
            },
            coords={"chain": np.arange(chains), "draw": np.arange(draws)},
        )
        if timings is not None:
            timings["sample_s"] = 0.0
        return xr.DataTree.from_dict(
            {"posterior": xr.Dataset(post, coords=coords), "sample_stats": stats}
        )

    return sample


@pytest.fixture
def fake_sampling(monkeypatch) -> Callable[..., Callable[..., xr.DataTree]]:
    """Install :func:`fake_sampler` (with the given options) in place of the real sampler."""
    import bayes_nsum.fit

    def install(**kwargs: Any):
        fake = fake_sampler(**kwargs)
        monkeypatch.setattr(bayes_nsum.fit, "sample", fake)
        return fake

    return install
