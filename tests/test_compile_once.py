"""Sweeps compile once per model structure (issue 16): models that differ only in data or prior
values share a structure key and one compiled model; anything compiled into the graph (fixed
values, prior families, options, dims, known sizes) changes the key."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bayes_nsum.estimators import MODELS


def test_structure_key_ignores_data_and_prior_values(small_prep):
    ard = small_prep.ard
    tau = {"dist": "Beta", "mean": 0.6, "concentration": 10}
    # latent degrees: the grid form plans its grids from the answers (its key includes them)
    a = MODELS["combined"](ard, priors={"tau": tau}, degree_integration="latent")
    other_answers = replace(ard, counts=ard.counts.fillna(0) + 1)
    b = MODELS["combined"](
        other_answers, priors={"tau": {**tau, "mean": 0.4}}, degree_integration="latent"
    )
    assert a.structure_key() == b.structure_key()
    assert (
        a.data_values()["prior__tau__alpha"].tolist()
        != b.data_values()["prior__tau__alpha"].tolist()
    )
    # compiled in: a fixed value, a prior family, an option, the known sizes, the model
    assert a.structure_key() != MODELS["combined"](ard, priors={"tau": 0.5}).structure_key()
    assert a.structure_key() != MODELS["combined"](ard, priors={"tau": tau, "mu": {
        "dist": "Normal", "mu": 5, "sigma": 1}}).structure_key()  # fmt: skip
    assert (
        a.structure_key()
        != MODELS["combined"](ard, priors={"tau": tau}, degree="gamma").structure_key()
    )
    sizes = ard.known_sizes * 1.1
    assert (
        a.structure_key()
        != MODELS["combined"](replace(ard, known_sizes=sizes), priors={"tau": tau}).structure_key()
    )
    assert a.structure_key() != MODELS["barrier"](ard).structure_key()


def test_sweep_reuses_the_compiled_model(small_prep, monkeypatch):
    import bayes_nsum.fit
    from bayes_nsum.sweep import run

    calls = []

    class Compiled:
        def __init__(self, model):
            self.shared_var_keys = list(model.data_vars)
            self.data = None

        def with_data(self, **data):
            new = Compiled.__new__(Compiled)
            new.shared_var_keys, new.data = self.shared_var_keys, data
            return new

    def fake_compile(pm_model):
        calls.append(pm_model)
        return Compiled(pm_model)

    monkeypatch.setattr(bayes_nsum.fit, "compile_nutpie", fake_compile)
    monkeypatch.setattr(run, "_COMPILED", {})
    ard = small_prep.ard
    first = MODELS["degree"](ard, priors={"mu": {"dist": "Uniform", "lower": 3, "upper": 8}})
    second = MODELS["degree"](
        replace(ard, counts=ard.counts.fillna(0) * 2),
        priors={"mu": {"dist": "Uniform", "lower": 4, "upper": 7}},
    )
    settings = {"backend": "nutpie"}
    c1 = run.compiled_for(first, settings)
    c2 = run.compiled_for(second, settings)
    assert len(calls) == 1 and c1.data is None  # compiled once, for the first model
    np.testing.assert_array_equal(c2.data["prior__mu__lower"], 4.0)
    np.testing.assert_array_equal(c2.data["ard_totals"], second.stats.totals)
    assert run.compiled_for(first, {"backend": "pymc"}) is None


def test_keep_heap_applies_glibc_settings_once_and_can_be_turned_off(monkeypatch):
    """Sampling asks glibc to keep freed memory (see bayes_nsum.fit.keep_heap): applied on
    Linux, skipped with BAYES_NSUM_KEEP_HEAP=0, and each setting accepted by mallopt."""
    import sys

    from bayes_nsum import fit

    run = fit.keep_heap.__wrapped__  # uncached, so that the environment is read again
    monkeypatch.setenv("BAYES_NSUM_KEEP_HEAP", "0")
    assert run() is False
    monkeypatch.delenv("BAYES_NSUM_KEEP_HEAP")
    assert run() is sys.platform.startswith("linux")
    # nutpie sampling calls it (cached: once per process)
    calls = []
    monkeypatch.setattr(fit, "keep_heap", lambda: calls.append(1))
    monkeypatch.setattr("nutpie.sample", lambda *a, **k: "tree")
    settings = fit.sampler_settings(draws=1, tune=1, chains=1, seed=1)
    assert fit.sample_compiled(object(), settings) == "tree" and calls == [1]
