"""Simulation-based calibration: a small run in CI (slow tier).

With R = 8 replications a chi-square test has little power, so this test checks that the harness
runs end to end, that the compiled model is re-used (all replications share one compile), that
ranks are in range, and that no parameter is grossly miscalibrated: a uniformity p-value below
0.001 (Bonferroni over 3 parameters keeps the false-alarm rate below 0.3%). The documented larger
run (docs/benchmarks/calibration.md) is what shows calibration.
"""

from __future__ import annotations

import pytest

from bayes_nsum.checks.calibration import run_sbc

pytestmark = pytest.mark.slow


def test_sbc_degree_model_small(tmp_path):
    res = run_sbc(
        "degree", replications=8, n_respondents=150, draws=100, tune=200, thin_to=49, bins=5, seed=2
    )
    assert set(res.uniformity["parameter"]) == {"mu", "sigma", "log_visible[hidden_1]"}
    assert res.ranks["rank"].between(0, 49).all()
    assert len(res.ranks) == 8 * 3
    assert (res.uniformity["p_value"] > 0.001).all(), res.uniformity
    paths = res.save(tmp_path)
    assert paths["plot"].exists() and paths["ranks"].exists()


def test_sbc_overdispersed_and_shared_barrier_small():
    """The harness runs the overdispersed model and the shared-dispersion barrier model (their
    R >= 100 runs are in docs/benchmarks/calibration.md). R = 4 cannot test uniformity; this
    checks that the right parameters are ranked and the ranks lie in range."""
    od = run_sbc(
        "overdispersed", replications=4, n_respondents=100, draws=60, tune=120, thin_to=29, seed=4
    )
    params = set(od.uniformity["parameter"])
    assert {"sigma_alpha", "mu_beta", "sigma_beta", "beta[hidden_1]"} <= params
    assert "inv_omega[known_00]" in params and "alpha" not in params
    assert od.ranks["rank"].between(0, 29).all()
    sh = run_sbc(
        "barrier",
        replications=3,
        n_respondents=100,
        draws=60,
        tune=120,
        thin_to=29,
        seed=5,
        options={"barrier_dispersion": "shared"},
    )
    assert set(sh.uniformity["parameter"]) == {
        "mu",
        "sigma",
        "log_visible[hidden_1]",
        "rho[hidden_1]",
        "rho_known",
    }
    assert sh.ranks["rank"].between(0, 29).all()
