"""Sampler backends behind one function, and model fitting.

Backends:

* ``nutpie`` (default): the model is compiled with nutpie's numba backend and sampled in Rust.
* ``nutpie-jax``: nutpie's sampler (same adaptation and draws format) on a model compiled with
  JAX, for a GPU: the log density and its gradient run on JAX's default device. Needs the
  optional ``jax`` extra. On CPUs the numba backend is faster.
* ``pymc``: PyMC's own NUTS (C backend; slow to compile the first time, cached afterwards).
* ``numpyro``: JAX/NumPyro NUTS through PyMC's ``sample_jax_nuts`` (chains vectorised); needs
  the optional ``jax`` extra (``pip install bayes_nsum[jax]``).

Every backend is seeded; the same model, data, settings and seed give identical draws.

Ctrl-C during sampling always stops the command (:func:`noticed_interrupt`): a backend that
catches the interrupt and returns the draws so far (nutpie does) is overruled, so that an
interrupted fit never goes on to write results.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import xarray as xr

from .errors import BayesNsumError
from .spec import BACKENDS, NUTPIE_BACKENDS, SAMPLER_DEFAULTS

#: tuning steps per chain where ``tune = "auto"`` and the model names no number of its own
DEFAULT_TUNE = 1000


def sampler_settings(model=None, **overrides: Any) -> dict[str, Any]:
    """Defaults updated by the non-None overrides, checked.

    ``tune = "auto"`` (the default) becomes ``model.default_tune(backend)`` (see
    :meth:`~bayes_nsum.estimators.base.NSUMModel.default_tune`), or :data:`DEFAULT_TUNE` without a
    model, so the returned settings, which a fit records, always hold the number used.
    """
    unknown = [k for k in overrides if k not in SAMPLER_DEFAULTS]
    if unknown:
        raise BayesNsumError(
            f"unknown sampler setting(s) {', '.join(unknown)}; use {', '.join(SAMPLER_DEFAULTS)}"
        )
    out = {**SAMPLER_DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    if out["backend"] not in BACKENDS:
        raise BayesNsumError(f"unknown backend '{out['backend']}'; use {', '.join(BACKENDS)}")
    if out["tune"] == "auto":
        out["tune"] = DEFAULT_TUNE if model is None else int(model.default_tune(out["backend"]))
    for key in ("draws", "tune", "chains", "cores"):
        if int(out[key]) < 1:
            raise BayesNsumError(f"sampler setting {key} must be >= 1")
    return out


@contextlib.contextmanager
def noticed_interrupt() -> Iterator[None]:
    """Raise KeyboardInterrupt after the block if Ctrl-C (SIGINT) arrived during it, even when
    code inside swallowed the interrupt. The interrupt is still delivered at once (the previous
    handler runs). Does nothing outside the main thread (e.g. in a Dask worker)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        got.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if got:
        raise KeyboardInterrupt


def sample(model, settings: dict[str, Any], timings: dict[str, float] | None = None):
    """Sample a PyMC model with the chosen backend; returns an ArviZ DataTree.

    ``timings`` (if given) receives ``compile_s`` (nutpie backends), ``sampler_s`` (numpyro:
    NumPyro's own loop, JAX compilation included, without PyMC's post-processing) and
    ``sample_s``.
    """
    backend = settings["backend"]
    timings = {} if timings is None else timings
    if backend in NUTPIE_BACKENDS:
        t0 = time.perf_counter()
        compiled = compile_nutpie(model, jax=backend == "nutpie-jax")
        timings["compile_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tree = sample_compiled(compiled, settings)
        timings["sample_s"] = time.perf_counter() - t0
        return tree
    return _sample_pymc(model, settings, timings)


def compile_nutpie(model, jax: bool = False):
    """Compile a PyMC model for nutpie: numba backend, or JAX (log density and gradient) when
    ``jax`` is true.

    The numba code is compiled without fast-math: with it, code that numba compiles afresh and
    the same code loaded from PyTensor's cache can differ in the last digits of the log density
    (reassociated sums), so a run that compiles part of the model anew drew other numbers than a
    rerun of the same spec and seed (see docs/reference/outputs.md).
    """
    import nutpie
    import pytensor

    if not jax:
        with pytensor.config.change_flags(numba__fastmath=False):
            return nutpie.compile_pymc_model(model)
    _require_jax("nutpie-jax")
    return nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax")


def _require_jax(backend: str, numpyro: bool = False) -> None:
    """One-line error naming what to install when JAX (and NumPyro) cannot be imported."""
    try:
        import jax  # noqa: F401

        if numpyro:
            import numpyro as _  # noqa: F401
    except ImportError:
        what = "JAX and NumPyro" if numpyro else "JAX"
        raise BayesNsumError(
            f"backend '{backend}' needs {what}: pip install 'bayes_nsum[jax]'"
        ) from None


#: glibc ``mallopt`` settings for sampling (parameter number, value); see :func:`keep_heap`
_MALLOPT = ((-3, 32 * 2**20), (-1, 2**31), (-2, 64 * 2**20))  # mmap threshold, trim, top pad


@functools.cache
def keep_heap() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse (once per process; Linux only).

    nutpie runs each chain in its own thread, and a gradient of a large model allocates
    temporaries of tens of MB. glibc serves such blocks to threads by ``mmap`` and returns them
    to the system on ``free``, so every gradient faults in fresh zeroed pages: at 100,000
    respondents of the per-group barrier model this was a third of the CPU time, in the kernel.
    Raising the mmap threshold to its 32 MB maximum and the trim threshold, as
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would, keeps those blocks in the
    heap. Peak memory is unchanged; memory freed after sampling may stay with the process.
    Skipped where there is no glibc, or when ``BAYES_NSUM_KEEP_HEAP=0``. Returns whether the
    settings were applied.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("BAYES_NSUM_KEEP_HEAP") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(libc.mallopt(param, value) == 1 for param, value in _MALLOPT)
    except (OSError, AttributeError):
        return False


def sample_compiled(compiled, settings: dict[str, Any]):
    """Sample an already compiled nutpie model (e.g. after ``compiled.with_data(...)``)."""
    import nutpie

    keep_heap()
    seed = int(settings["seed"])
    tree = nutpie.sample(
        compiled,
        draws=int(settings["draws"]),
        tune=int(settings["tune"]),
        chains=int(settings["chains"]),
        cores=int(settings["cores"]),
        seed=seed,
        progress_bar=bool(settings["progress"]),
        save_warmup=False,
        target_accept=float(settings["target_accept"]),
    )
    return tree


def _sample_pymc(model, settings: dict[str, Any], timings: dict[str, float]):
    import pymc as pm

    backend = settings["backend"]
    seed = int(settings["seed"])

    kwargs: dict[str, Any] = {
        "draws": int(settings["draws"]),
        "tune": int(settings["tune"]),
        "chains": int(settings["chains"]),
        "random_seed": seed,
        "target_accept": float(settings["target_accept"]),
        "progressbar": bool(settings["progress"]),
        "compute_convergence_checks": False,
        "model": model,
    }
    if backend == "pymc":
        kwargs["cores"] = int(settings["cores"])
        return pm.sample(**kwargs)
    _require_jax("numpyro", numpyro=True)
    from pymc.sampling.jax import sample_jax_nuts

    try:
        tree = sample_jax_nuts(
            draws=int(settings["draws"]),
            tune=int(settings["tune"]),
            chains=int(settings["chains"]),
            target_accept=float(settings["target_accept"]),
            random_seed=seed,
            model=model,
            progressbar=bool(settings["progress"]),
            chain_method="vectorized",
            compute_convergence_checks=False,
            nuts_sampler="numpyro",
        )
    except Exception as exc:  # noqa: BLE001 - report the backend failure in one line
        raise BayesNsumError(f"numpyro backend failed: {type(exc).__name__}: {exc}") from exc
    # NumPyro's own sampling loop (JAX compilation included), without PyMC's post-processing
    timings["sampler_s"] = float(tree["posterior"].attrs.get("sampling_time", float("nan")))
    return tree


def fit_model(model, compiled=None, with_prior: bool = True, **overrides: Any):
    """Fit an :class:`~bayes_nsum.estimators.base.NSUMModel`; see :meth:`NSUMModel.fit`.

    ``compiled`` is a nutpie-compiled model to sample instead of compiling ``model.model``
    (simulation-based calibration swaps new data into one compiled model); ``with_prior=False``
    skips the ``prior`` group.

    The returned fit is self-describing: ``posterior`` (with the derived quantities),
    ``sample_stats``, ``prior``, ``observed_data`` (answers by position, no respondent ids),
    ``constant_data`` (known sizes, N, areas, area table, weights) and the ``model_config``
    attribute from which :meth:`NSUMModel.from_tree` rebuilds the model.
    """
    import pymc as pm

    from . import __version__
    from .result import NSUMResult

    settings = sampler_settings(model, **overrides)
    t0 = time.perf_counter()
    pm_model = model.model
    t_build = time.perf_counter() - t0
    timings: dict[str, float] = {}
    t1 = time.perf_counter()
    with noticed_interrupt():
        if compiled is not None:
            tree = sample_compiled(compiled, settings)
        else:
            tree = sample(pm_model, settings, timings)
    timings.setdefault("sample_s", time.perf_counter() - t1)
    raw, design = model.adjust_posterior(tree["posterior"].to_dataset())
    derived = model.derive(raw)
    prior_ds = xr.Dataset()
    if with_prior:
        # Prior draws of the free parameters (the likelihood is a Potential, so nothing else).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potentials.*")
            prior = pm.sample_prior_predictive(
                draws=min(500, int(settings["draws"]) * int(settings["chains"])),
                model=pm_model,
                random_seed=int(settings["seed"]) + 1,
                compile_kwargs={"mode": "FAST_COMPILE"},
            )
        prior_ds = prior["prior"].to_dataset() if "prior" in prior.children else prior_ds
        prior_ds = model.derive(prior_ds) if len(prior_ds.data_vars) else prior_ds
    out = xr.DataTree.from_dict(
        {
            "posterior": derived,
            "sample_stats": tree["sample_stats"].to_dataset(),
            "prior": prior_ds,
            "observed_data": model.observed_dataset(),
            "constant_data": model.constant_dataset(),
        }
    )
    out.attrs.update(
        {
            "bayes_nsum_version": __version__,
            "model": model.name,
            "model_config": model.config(),
            "sampler": {**settings},
            "sampling_seconds": timings["sample_s"],
            "build_seconds": t_build,
            "data_hash": model.data.data_hash(),
        }
    )
    if design is not None:
        out.attrs["design_adjustment"] = design
    timings.update({"build_s": t_build, "total_s": time.perf_counter() - t0})
    out.attrs["timings"] = dict(timings)
    return NSUMResult(tree=out, model=model, settings=settings, timings=timings)


__all__ = ["sample", "fit_model", "sampler_settings", "compile_nutpie", "sample_compiled"]
