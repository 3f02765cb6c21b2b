"""Running a sweep: one scenario into its folder, on Dask or in-process (see :mod:`.plan`).

**Running.** Each scenario gets an id, a stable hash of its overrides, and its own folder
``OUT/scenarios/<id>/`` holding ``scenario.json``, the results (``summary.csv`` and, for a
Bayesian model, ``posterior.nc`` and ``diagnostics.json``), and last of all, written
atomically, the completion marker ``_COMPLETE.json`` (which also records a hash of the
scenario's full spec). A re-run skips scenarios whose marker is present and whose spec is
unchanged; a folder without the marker (an interrupted run) or with a stale spec is run again.
A scenario that raises is recorded (``_FAILED.json`` with the error and traceback) and does not
stop the others. Scenarios run on a Dask ``LocalCluster`` (2 worker processes, 1 thread each,
by default) or on an existing cluster (``scheduler`` address); any object with ``submit(fn,
*args)`` returning futures with ``result()`` can be passed as ``executor`` (e.g.
:class:`SyncExecutor` runs everything in-process, for tests and debugging).

Progress: a line when each scenario starts (sent from the worker as a Dask event, or called
in-process by :class:`SyncExecutor` and thread pools) and one when it ends, with its own
duration, the sweep's elapsed time, and whether its fit passed its convergence checks.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BayesNsumError
from ..io import write_csv, write_json
from ..result import DENOMINATED, SUMMARY_COLUMNS, denominator_labels
from ..spec import Spec
from .gather import SweepResult, gather_sweep
from .plan import (
    FAILED,
    MARKER,
    SCENARIO_FILE,
    STATUS_COMPLETE,
    STATUS_FAILED,
    Scenario,
    Sweep,
    scenario_state,
)

# ---------------------------------------------------------------------------------------------
# running one scenario
# ---------------------------------------------------------------------------------------------


def _reset_folder(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _classical_summary(table: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Classical estimates in the ``summary.csv`` layout (denominators named, no convergence)."""
    out = table.reindex(columns=SUMMARY_COLUMNS)
    out["denominator"] = [
        labels.get(g, "") if q in DENOMINATED else ""
        for g, q in zip(out["group"], out["quantity"], strict=True)
    ]
    out["converged"] = np.nan
    return out


#: compiled models of this process by :meth:`NSUMModel.structure_key` (each Dask worker keeps
#: its own): scenarios that change only data or prior values reuse one compilation
_COMPILED: dict[str, Any] = {}


def compiled_for(model, settings: Mapping[str, Any]):
    """The model compiled for nutpie, from this process's cache when a model of the same
    structure was compiled before, with this model's data and prior values swapped in; None
    for the other backends (they compile inside their sampling call)."""
    from ..fit import compile_nutpie

    if settings.get("backend", "nutpie") != "nutpie":
        return None
    key = model.structure_key()
    if key not in _COMPILED:
        _COMPILED[key] = compile_nutpie(model.model)
        return _COMPILED[key]
    compiled = _COMPILED[key]
    used = {v.name for v in compiled.shared_var_keys}
    return compiled.with_data(**{k: v for k, v in model.data_values().items() if k in used})


def _fit_scenario(spec: Spec, folder: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """Fit one scenario's spec and write its result files (not the marker), through the
    workflow's one fitting path."""
    from ..analysis import (
        build_model,
        classical_estimates,
        fit_and_check,
        prepare,
        provenance,
        write_fit,
    )
    from ..checks.predictive import topcode_caps

    prep = prepare(spec)
    if spec.model.is_classical:
        prep.log.write(folder, spec.respondent_level, prep.raw.ids)
        labels = denominator_labels(prep.ard.denominators, prep.ard.hidden)
        summary = _classical_summary(classical_estimates(prep), labels)
        write_csv(summary, folder / "summary.csv")
        write_json(provenance(prep, None, command="sweep"), folder / "provenance.json")
        return {"kind": "classical", "converged": None}
    model = build_model(prep)
    steps = ("sensitivity",) if options.get("sensitivity") else ()
    settings = {**spec.sampler, "progress": False}
    fit = fit_and_check(
        model,
        settings,
        steps,
        topcode=topcode_caps(prep.log.to_dict().get("steps", [])),
        prob=spec.interval_prob,
        compiled=compiled_for(model, settings),
        with_prior=False,  # a scenario reports its posterior; prior draws would cost a compile
    )
    diag = write_fit(fit, prep, folder, command="sweep", report=False, baseline=False)
    return {"kind": "bayesian", "converged": bool(diag["passed"])}


def run_scenario(
    spec: Spec,
    scenario: str,
    overrides: Mapping[str, Any],
    folder: str | Path,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one scenario into its folder; never raises for a failure of the analysis.

    The folder is emptied first, then ``scenario.json`` is written, then the results, and
    last the completion marker (atomically). On an exception a failure record (``_FAILED.json``:
    error and traceback) is written instead of the marker.

    Parameters
    ----------
    spec : Spec
        The scenario's full spec (:meth:`Sweep.spec_for`).
    scenario : str
        Scenario id.
    overrides : mapping
        The scenario's grid values (recorded in ``scenario.json``).
    folder : path
        The scenario's result folder (``OUT/scenarios/<id>``).
    options : mapping, optional
        Sweep options (``sensitivity``).

    Returns
    -------
    dict
        ``id``, ``status`` (``"complete"`` or ``"failed"``), ``error``, ``seconds`` and
        ``converged`` (whether a Bayesian fit passed its convergence checks; None for a
        classical scenario or a failure).
    """
    folder = Path(folder)
    t0 = time.perf_counter()
    _reset_folder(folder)
    digest = spec.digest()
    write_json(
        {"id": scenario, "overrides": dict(overrides), "spec_hash": digest, "spec": spec.to_dict()},
        folder / SCENARIO_FILE,
    )
    try:
        info = _fit_scenario(spec, folder, options or {})
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        err = f"{type(exc).__name__}: {exc}"
        write_json(
            {
                "id": scenario,
                "status": STATUS_FAILED,
                "error": err,
                "spec_hash": digest,
                "traceback": traceback.format_exc(),
            },
            folder / FAILED,
        )
        return {
            "id": scenario,
            "status": STATUS_FAILED,
            "error": err,
            "seconds": time.perf_counter() - t0,
            "converged": None,
        }
    seconds = time.perf_counter() - t0
    write_json(
        {
            "id": scenario,
            "status": STATUS_COMPLETE,
            "spec_hash": digest,
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **info,
        },
        folder / MARKER,
    )
    return {
        "id": scenario,
        "status": STATUS_COMPLETE,
        "error": "",
        "seconds": seconds,
        "converged": info.get("converged"),
    }


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------

#: Dask event topic of the "scenario started" messages
PROGRESS_TOPIC = "bayes_nsum-sweep-start"
#: where "started" goes when a scenario runs in this process (set by :func:`run_sweep`)
_LOCAL_START: list[Callable[[str], None]] = []


def _announce_start(scenario: str) -> None:
    """Tell the sweep's driver that a scenario starts: a Dask event from a worker, else the
    in-process callback."""
    try:
        from distributed import get_worker

        get_worker().log_event(PROGRESS_TOPIC, {"id": scenario})
        return
    except (ImportError, ValueError):  # not in a Dask worker
        pass
    for callback in list(_LOCAL_START):
        callback(scenario)


def _tracked(runner: Callable[..., dict[str, Any]], spec, scenario, overrides, folder, options):
    """Run one scenario after announcing its start (what the executors run)."""
    _announce_start(scenario)
    return runner(spec, scenario, overrides, folder, options)


def _duration(seconds: float) -> str:
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# ---------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------


class _Deferred:
    """A future whose task runs, in the calling process, when its result is first asked for."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self._fn, self._args = fn, args
        self._done: cf.Future | None = None

    def result(self, timeout: float | None = None) -> Any:
        if self._done is None:
            self._done = cf.Future()
            try:
                self._done.set_result(self._fn(*self._args))
            except Exception as exc:  # noqa: BLE001 - delivered through the future
                self._done.set_exception(exc)
        return self._done.result(timeout)


class SyncExecutor:
    """Runs each task in the calling process, one at a time in the order submitted, when its
    result is asked for (tests, debugging, no Dask): each scenario's start and end lines
    follow each other."""

    def submit(self, fn: Callable, *args: Any) -> _Deferred:
        return _Deferred(fn, args)

    def as_completed(self, futures: Iterable) -> Iterator:
        return iter(list(futures))


class DaskExecutor:
    """Adapter of a ``distributed.Client`` to the executor interface used by :func:`run_sweep`."""

    def __init__(self, client) -> None:
        self.client = client

    def submit(self, fn: Callable, *args: Any):
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, futures: Iterable) -> Iterator:
        from distributed import as_completed

        return iter(as_completed(list(futures)))

    def on_start(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(scenario)`` when a worker starts a scenario (a Dask event)."""
        self.client.subscribe_topic(PROGRESS_TOPIC, lambda event: callback(event[1]["id"]))

    def stop_progress(self) -> None:
        try:
            self.client.unsubscribe_topic(PROGRESS_TOPIC)
        except (KeyError, ValueError):
            pass


@contextmanager
def dask_executor(scheduler: str | None = None, workers: int = 2) -> Iterator[DaskExecutor]:
    """A Dask executor: a new ``LocalCluster`` or a client of an existing cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``). Its workers need this package
        installed and the spec's data files at the same paths.
    workers : int
        Worker processes of the local cluster (one thread each). Worker processes are not
        daemonic, so samplers that start processes of their own can run in them.

    Notes
    -----
    The local cluster starts its workers with ``multiprocessing`` "spawn": a Python script
    that runs a sweep must do so under ``if __name__ == "__main__":``.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield DaskExecutor(client)
        finally:
            client.close()
        return
    if workers < 1:
        raise BayesNsumError("--workers must be at least 1")
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(
            n_workers=int(workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    try:
        yield DaskExecutor(client)
    finally:
        client.close()
        cluster.close()


def _completed(executor, futures: list) -> Iterator:
    if hasattr(executor, "as_completed"):
        return executor.as_completed(futures)
    if all(isinstance(f, cf.Future) for f in futures):
        return cf.as_completed(futures)
    return iter(futures)


# ---------------------------------------------------------------------------------------------
# running and gathering a sweep
# ---------------------------------------------------------------------------------------------


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    executor: Any = None,
    scheduler: str | None = None,
    workers: int = 2,
    runner: Callable[..., dict[str, Any]] = run_scenario,
    echo: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every scenario not already finished, then gather the results.

    Parameters
    ----------
    sweep : Sweep
        The plan (:func:`load_sweep`).
    out : path
        Output folder; scenario folders go to ``out/scenarios/<id>/``.
    executor : optional
        Object with ``submit(fn, *args)`` returning futures with ``result()`` (optionally
        ``as_completed(futures)``). Default: a Dask cluster (:func:`dask_executor`).
    scheduler, workers :
        Passed to :func:`dask_executor` when no executor is given.
    runner : callable
        The function run per scenario, ``runner(spec, id, overrides, folder, options)``
        (default :func:`run_scenario`). An exception raised by it (or by the executor) marks that
        scenario failed.
    echo : callable, optional
        Called with one progress line per scenario.

    Returns
    -------
    SweepResult
    """
    from ..preflight import check_output, check_spec

    say = echo or (lambda _msg: None)
    if executor is None and scheduler is None and int(workers) < 1:
        raise BayesNsumError(f"--workers must be at least 1, got {workers}")
    out = check_output(out, "sweep output folder")
    # every scenario's spec is built and checked (keys, priors) before anything is written
    specs = [(s, check_spec(sweep.spec_for(s))) for s in sweep.scenarios()]
    out.mkdir(parents=True, exist_ok=True)
    write_json(sweep.describe(), out / "sweep.json")
    todo: list[tuple[Scenario, Spec, Path]] = []
    skipped = 0
    for s, spec in specs:
        folder = out / "scenarios" / s.id
        state = scenario_state(folder, spec.digest())
        if state == "complete" or (state == "failed" and not sweep.options["retry_failed"]):
            skipped += 1
            say(f"[skip] {s.id} already {state} ({s.label()})")
            continue
        todo.append((s, spec, folder))
    if todo:
        if executor is None:
            with dask_executor(scheduler, workers) as ex:
                _run_all(ex, todo, runner, sweep.options, say)
        else:
            _run_all(executor, todo, runner, sweep.options, say)
    result = gather_sweep(sweep, out)
    result.n_skipped = skipped
    result.n_run = len(todo)
    return result


def _run_all(executor, todo, runner, options, say) -> None:
    t0 = time.perf_counter()
    labels = {s.id: s.label() for s, _spec, _folder in todo}

    def started(sid: str) -> None:
        say(f"[start] {sid} ({labels.get(sid, '')}); elapsed {_duration(time.perf_counter() - t0)}")

    remote = hasattr(executor, "on_start")
    if remote:
        executor.on_start(started)
    _LOCAL_START.append(started)
    try:
        _submit_and_wait(executor, todo, runner, options, say, t0)
    finally:
        _LOCAL_START.remove(started)
        if remote and hasattr(executor, "stop_progress"):
            executor.stop_progress()


def _submit_and_wait(executor, todo, runner, options, say, t0: float) -> None:
    futures = {}
    for s, spec, folder in todo:
        futures[
            executor.submit(
                _tracked, runner, spec, s.id, dict(s.overrides), str(folder), dict(options)
            )
        ] = (s, spec, folder)
    done = 0
    for fut in _completed(executor, list(futures)):
        s, spec, folder = futures[fut]
        done += 1
        took = ""
        try:
            res = fut.result()
            status, error = res.get("status", STATUS_FAILED), res.get("error", "")
            if status == STATUS_COMPLETE and res.get("converged") is False:
                status += ", NOT CONVERGED"
            if res.get("seconds") is not None:
                took = f" in {_duration(res['seconds'])}"
        except Exception as exc:  # noqa: BLE001 - a crashed task is one failed scenario
            status, error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"
            try:
                (folder / MARKER).unlink(missing_ok=True)  # an older result is not this one
                write_json(
                    {
                        "id": s.id,
                        "status": STATUS_FAILED,
                        "error": error,
                        "spec_hash": spec.digest(),
                        "traceback": traceback.format_exc(),
                    },
                    folder / FAILED,
                )
            except OSError:
                pass
        elapsed = _duration(time.perf_counter() - t0)
        say(
            f"[{done}/{len(todo)}] {s.id} {status}{took}{': ' + error if error else ''} "
            f"({s.label()}); elapsed {elapsed}"
        )
