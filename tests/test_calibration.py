"""Simulation-based calibration: a small run in CI (slow tier).

With R = 8 replications a chi-square test has little power, so this test checks that the harness
runs end to end, that the compiled model is re-used (all replications share one compile), that
ranks are in range, and that no parameter is grossly miscalibrated: a uniformity p-value below
0.001 (Bonferroni over 3 parameters keeps the false-alarm rate below 0.3%). The documented larger
run (docs/benchmarks/calibration.md) is what shows calibration.
"""

from __future__ import annotations

import pytest

from bayes_nsum.calibrate import run_sbc

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
