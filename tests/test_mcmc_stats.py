"""The vectorised convergence diagnostics give ArviZ's numbers.

ArviZ (``arviz_stats``) computes R-hat, ESS and MCSE one quantity at a time; ``mcmc_stats``
computes them for every quantity at once. Tolerance: 1e-9 relative. Both compute the same
formulas in double precision, so they differ only by rounding (FFT sizes and summation order are
the same); a wrong truncation of the autocorrelation sum would change an ESS by far more.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_nsum import mcmc_stats

RTOL = 1e-9


def _ar1(rng, chains, draws, k, phi, offsets=0.0):
    x = np.empty((chains, draws, k))
    x[:, 0] = rng.normal(size=(chains, k))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=(chains, k))
    return x + offsets


def _arviz(x):
    da = xr.DataArray(x, dims=("chain", "draw", "q"))
    with np.errstate(all="ignore"):
        return {
            "r_hat": da.azstats.rhat().values,
            "ess_bulk": da.azstats.ess(method="bulk").values,
            "ess_tail": da.azstats.ess(method="tail", prob=(0.05, 0.95)).values,
            "mcse_mean": da.azstats.mcse(method="mean").values,
        }


def _cases():
    rng = np.random.default_rng(20261201)
    yield "independent, odd draws", rng.normal(size=(4, 101, 6))
    for phi in (0.5, 0.95, 0.995, -0.6):
        yield f"AR(1) {phi}", _ar1(rng, 4, 200, 5, phi)
    yield "random walk", np.cumsum(rng.normal(size=(3, 60, 4)), axis=1)
    yield "chains apart", _ar1(rng, 4, 120, 3, 0.3, offsets=np.arange(4)[:, None, None] * 1.5)
    yield "ties", np.round(rng.normal(size=(4, 150, 4)) * 2)
    yield (
        "mostly one value",
        np.where(rng.random((4, 100, 3)) < 0.9, 1.0, rng.normal(size=(4, 100, 3))),
    )
    yield "skewed", np.exp(_ar1(rng, 2, 300, 4, 0.7) * 1.5)
    # short chains, many quantities: the truncation's edge cases (e.g. a last even
    # autocorrelation <= 0 inside a pair whose sum is >= 0) occur among them
    yield "short, many quantities", _ar1(np.random.default_rng(0), 4, 30, 20, 0.2)
    yield "one chain", _ar1(rng, 1, 200, 3, 0.4)
    yield "shortest", rng.normal(size=(2, 4, 3))
    yield "two chains, five draws", rng.normal(size=(2, 5, 2))


@pytest.mark.parametrize("name, x", list(_cases()), ids=[c[0] for c in _cases()])
def test_same_numbers_as_arviz(name, x):
    got, ref = mcmc_stats.diagnostics(x), _arviz(x)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=RTOL, equal_nan=True, err_msg=key)


def test_constant_missing_and_too_short():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 50, 3))
    x[:, :, 1] = 2.5  # constant: ESS is the number of draws, as in ArviZ; R-hat undefined
    x[0, 7, 2] = np.nan  # a missing draw: nothing is computed for that quantity
    got, ref = mcmc_stats.diagnostics(x), _arviz(x)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=RTOL, equal_nan=True, err_msg=key)
    assert got["ess_bulk"][1] == 200 and np.isnan(got["r_hat"][1])
    assert all(np.isnan(v[2]) for v in got.values())
    short = mcmc_stats.diagnostics(rng.normal(size=(4, 3, 2)))
    assert all(np.isnan(v).all() and v.shape == (2,) for v in short.values())


def test_trailing_shape_is_kept():
    x = np.random.default_rng(4).normal(size=(2, 40, 3, 5))
    got = mcmc_stats.diagnostics(x)
    assert all(v.shape == (3, 5) for v in got.values())
    flat = mcmc_stats.diagnostics(x.reshape(2, 40, 15))
    for key in got:
        np.testing.assert_array_equal(got[key].reshape(15), flat[key])
