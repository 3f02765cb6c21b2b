"""Sampler backends: the JAX-compiled model for nutpie ("nutpie-jax", for a GPU), NumPyro's own
sampling time, and a clear error where JAX is missing. Sampling is mocked; the real backends
run in benchmarks/ (docs/benchmarks/pooled.md)."""

from __future__ import annotations

import sys
import types

import pytest
import xarray as xr

from bayes_nsum import fit
from bayes_nsum.errors import BayesNsumError
from bayes_nsum.spec import BACKENDS


def fake_jax(monkeypatch, **modules) -> None:
    """Stand-ins for JAX and NumPyro (not installed in CI; the calls under test are mocked)."""
    for name in ("jax", "numpyro", *modules):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    for name, attrs in modules.items():
        for key, value in attrs.items():
            setattr(sys.modules[name], key, value)


def test_nutpie_jax_compiles_log_density_and_gradient_with_jax(monkeypatch):
    import nutpie

    fake_jax(monkeypatch)
    seen = {}

    def fake_compile(model, **kwargs):
        seen.update(kwargs)
        return "compiled"

    monkeypatch.setattr(nutpie, "compile_pymc_model", fake_compile)
    monkeypatch.setattr(fit, "sample_compiled", lambda compiled, settings: (compiled, settings))
    timings = {}
    settings = fit.sampler_settings(backend="nutpie-jax")
    assert fit.sample(object(), settings, timings) == ("compiled", settings)
    assert seen == {"backend": "jax", "gradient_backend": "jax"}
    assert {"compile_s", "sample_s"} <= set(timings)
    seen.clear()
    fit.sample(object(), fit.sampler_settings(), {})
    assert seen == {}  # the default backend stays numba
    assert "nutpie-jax" in BACKENDS


def test_numba_model_is_compiled_without_fast_math_and_the_flag_is_restored(monkeypatch):
    """Fast-math made freshly compiled and cached code differ in the last digits, so reruns of a
    spec drew other numbers (docs/reference/outputs.md); the user's own setting is left as it
    was."""
    import nutpie
    import pytensor

    seen = []
    monkeypatch.setattr(
        nutpie,
        "compile_pymc_model",
        lambda model, **kw: seen.append(pytensor.config.numba__fastmath) or "compiled",
    )
    before = pytensor.config.numba__fastmath
    assert fit.compile_nutpie(object()) == "compiled"
    assert seen == [False]
    assert pytensor.config.numba__fastmath == before


def test_jax_backends_say_what_to_install_when_jax_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(BayesNsumError, match=r"backend 'nutpie-jax' needs JAX: pip install"):
        fit.compile_nutpie(object(), jax=True)
    with pytest.raises(BayesNsumError, match=r"backend 'numpyro' needs JAX and NumPyro"):
        fit.sample(object(), fit.sampler_settings(backend="numpyro"), {})


def test_numpyro_records_its_own_sampling_time(monkeypatch):
    def fake_sample(**kwargs):
        assert kwargs["chain_method"] == "vectorized" and kwargs["nuts_sampler"] == "numpyro"
        post = xr.Dataset(attrs={"sampling_time": 12.5})
        return xr.DataTree.from_dict({"posterior": post})

    fake_jax(monkeypatch, **{"pymc.sampling.jax": {"sample_jax_nuts": fake_sample}})
    timings = {}
    fit.sample(object(), fit.sampler_settings(backend="numpyro"), timings)
    assert timings["sampler_s"] == 12.5


def test_gate_counts_numpyro_trees_at_the_maximal_depth():
    """NumPyro (through PyMC) reports tree depths but no "reached the maximum" flag; the gate
    must still count them, not pass the check by default."""
    import numpy as np

    from bayes_nsum.result import compute_diagnostics

    rng = np.random.default_rng(0)

    def depth_check(depth):
        tree = xr.DataTree.from_dict(
            {
                "posterior": xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(4, 100)))}),
                "sample_stats": xr.Dataset(
                    {
                        "diverging": (("chain", "draw"), np.zeros((4, 100), bool)),
                        "tree_depth": (("chain", "draw"), depth),
                    }
                ),
            }
        )
        checks = compute_diagnostics(tree)["checks"]
        return {c["check"]: c for c in checks}["treedepth_share"]

    depth = np.full((4, 100), 4)
    depth[:, :10] = 10  # 10% of the draws at NumPyro's maximal depth
    check = depth_check(depth)
    assert check["value"] == pytest.approx(0.1) and not check["passed"]
    check = depth_check(np.full((4, 100), 9))
    assert check["value"] == 0.0 and check["passed"]
