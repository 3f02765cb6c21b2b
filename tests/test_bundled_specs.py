"""Every analysis spec bundled in models/ loads, prepares and builds its model (fast tier).

The Bayesian models are built and their log density is evaluated at the initial point (no
sampling; FAST_COMPILE, no C compilation). Sweeps are parsed against the spec they name.
The slow tier fits the Rwanda specs for real (notebooks and docs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayes_nsum.analysis import build_model, prepare

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(
    p
    for p in (ROOT / "models").rglob("*.toml")
    if "priors" not in p.parts and "sweeps" not in p.parts
)


def test_specs_found():
    names = {p.name for p in SPECS}
    assert {"rwanda_example.toml", "rwanda_combined.toml", "rwanda_combined_shared.toml"} <= names
    assert any(p.parent.name == "scale_of_harm_example" for p in SPECS)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "models")))
def test_bundled_spec_builds(path):
    prep = prepare(path)
    name = prep.spec.section("model").get("name", "killworth")
    if name == "killworth":
        assert prep.ard.n > 0
        return
    model = build_model(prep)
    pm_model = model.model
    logp = pm_model.compile_logp(mode="FAST_COMPILE")(pm_model.initial_point())
    assert np.isfinite(logp)


def test_bundled_sweep_parses():
    from bayes_nsum.sweep import load_sweep

    sweep = load_sweep(
        ROOT / "models" / "sweeps" / "rwanda_sweep.toml", ROOT / "models" / "rwanda_example.toml"
    )
    assert len(sweep.scenarios()) == 34  # as its header says
