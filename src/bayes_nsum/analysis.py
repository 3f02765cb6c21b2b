"""The analysis workflow in one place: spec -> data -> pre-processing -> model -> fit -> files.

The command line, sweeps, comparisons and calibration all call these functions, so no step is
implemented twice.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, classical
from .data import ARD, load_survey
from .errors import BayesNsumError, DataError, SpecError
from .io import write_csv, write_json
from .preprocess import PreprocessLog, preprocess
from .spec import Spec, load_spec

CLASSICAL_MODELS = ("killworth",)


@dataclass
class Prepared:
    """Data ready for estimation plus the record of how it got there."""

    spec: Spec
    raw: ARD
    ard: ARD
    log: PreprocessLog


def prepare(spec: Spec | str | Path | dict) -> Prepared:
    """Load, validate and pre-process the data a spec names."""
    spec = load_spec(spec)
    raw = load_survey(spec)
    frame = raw.counts.copy()
    if raw.area is not None:
        frame["area"] = raw.area
    where = f"survey {Path(raw.source).name}"
    try:
        cleaned, log = preprocess(
            frame, list(raw.known), list(raw.hidden), spec.section("preprocess") or None
        )
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    counts = cleaned[raw.groups]
    ard = raw.with_counts(counts)
    if ard.n == 0:
        raise DataError(f"{where}: the survey is empty after pre-processing")
    return Prepared(spec=spec, raw=raw, ard=ard, log=log)


def versions() -> dict[str, str]:
    """Versions of Python, this package and its main dependencies."""
    out = {"python": platform.python_version(), "bayes_nsum": __version__}
    for pkg in ("pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas", "xarray", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(prep: Prepared, settings: dict[str, Any] | None = None, **extra: Any) -> dict:
    """Everything needed to trace and re-run a result."""
    return {
        "versions": versions(),
        "spec": prep.spec.to_dict(),
        "spec_path": str(prep.spec.path) if prep.spec.path else None,
        "spec_hash": prep.spec.digest(),
        "data_hash": prep.ard.data_hash(),
        "raw_data_hash": prep.raw.data_hash(),
        "n_respondents": prep.ard.n,
        "n_respondents_raw": prep.raw.n,
        "preprocess": prep.log.to_dict(),
        "sampler": settings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------


def _classical_options(spec: Spec) -> dict[str, Any]:
    m = spec.section("model")
    return {
        "method": m.get("method", "mle"),
        "n_boot": int(m.get("n_boot", 200)),
        "degree_ratio": m.get("degree_ratio"),
        "transmission": m.get("transmission"),
    }


def classical_estimates(prep: Prepared, seed: int | None = None) -> pd.DataFrame:
    """Killworth scale-up estimates (national, and per area when there are areas)."""
    spec, ard = prep.spec, prep.ard
    opts = _classical_options(spec)
    seed = int(spec.sampler["seed"] if seed is None else seed)
    common = dict(
        weights=ard.weights,
        method=opts["method"],
        degree_ratio=opts["degree_ratio"],
        transmission=opts["transmission"],
        strata=ard.strata,
        cluster=ard.cluster,
        n_boot=opts["n_boot"],
        interval_prob=spec.interval_prob,
        seed=seed,
    )
    if ard.has_areas:
        return classical.per_area_estimates(
            ard.counts,
            ard.area,
            ard.area_table,
            list(ard.hidden),
            denominators=ard.denominators or None,
            known_groups=list(ard.known),
            **common,
        )
    dens = {g: v for g, v in ard.denominators.items() if not isinstance(v, str)}
    return classical.estimate_table(
        ard.counts[ard.groups],
        ard.known_sizes,
        ard.total_population,
        list(ard.hidden),
        denominators=dens or None,
        **common,
    )


def run_estimate(spec, out: str | Path | None = None) -> tuple[pd.DataFrame, Path]:
    """``bayes-nsum estimate``: classical estimates, pre-processing log and provenance."""
    prep = prepare(spec)
    table = classical_estimates(prep)
    outdir = prep.spec.output_dir(out)
    write_csv(table, outdir / "estimates.csv")
    prep.log.write(outdir)
    write_json(provenance(prep, None, command="estimate"), outdir / "provenance.json")
    return table, outdir


def run_validate(spec, out: str | Path | None = None) -> tuple[pd.DataFrame, dict, Path]:
    """``bayes-nsum validate``: classical internal consistency (each known group held out)."""
    prep = prepare(spec)
    ard = prep.ard
    opts = _classical_options(prep.spec)
    table = classical.internal_consistency(
        ard.counts[list(ard.known)],
        ard.known_sizes,
        ard.total_population,
        weights=ard.weights,
        method=opts["method"],
    )
    summary = classical.summarize_internal_consistency(table)
    outdir = prep.spec.output_dir(out)
    write_csv(table, outdir / "internal_consistency.csv")
    write_json(
        {"summary": summary, **provenance(prep, None, command="validate")},
        outdir / "internal_consistency.json",
    )
    return table, summary, outdir


# ---------------------------------------------------------------------------------------------
# Bayesian
# ---------------------------------------------------------------------------------------------


def model_class(name: str):
    from .estimators import MODELS

    if name not in MODELS:
        raise SpecError(
            f"[model] name '{name}' is not a Bayesian model; use one of "
            f"{', '.join(list(MODELS) + list(CLASSICAL_MODELS))}"
        )
    return MODELS[name]


def prior_search_dirs(spec: Spec) -> list[Path]:
    """Where named prior sets are looked up: next to the spec (``priors/``) and above it."""
    dirs = []
    base = spec.base_dir
    for d in (base / "priors", base.parent / "priors", base / "models" / "priors"):
        if d.is_dir():
            dirs.append(d)
    return dirs


def build_model(prep: Prepared, priors: dict | None = None, prior_set: str | None = None):
    """The Bayesian model a spec describes (not yet fitted)."""
    spec = prep.spec
    msec = spec.section("model")
    name = msec.get("name", "killworth")
    cls = model_class(name)
    options = {
        k: v
        for k, v in msec.items()
        if k not in ("name", "prior_set", "method", "n_boot", "degree_ratio", "transmission")
    }
    user_priors = spec.section("priors")
    if priors:
        user_priors = {**user_priors, **priors}
    return cls(
        prep.ard,
        priors=user_priors or None,
        prior_set=prior_set or msec.get("prior_set"),
        prior_search=prior_search_dirs(spec),
        **options,
    )


def write_sensitivity(result, model, outdir: Path) -> Path:
    """Power-scaling prior/likelihood sensitivity of a fit, written to ``sensitivity.csv``.

    Where it cannot be computed the reason is written to ``sensitivity_error.json`` instead
    (never skipped silently).
    """
    from .prior_checks import power_scaling_sensitivity

    try:
        table = power_scaling_sensitivity(result, model)
    except Exception as exc:  # noqa: BLE001 - any failure is reported beside the results
        return write_json(
            {"error": f"{type(exc).__name__}: {exc}"}, outdir / "sensitivity_error.json"
        )
    return write_csv(table, outdir / "sensitivity.csv")


def write_degrees(result, prep: Prepared, outdir: Path) -> Path:
    """Every respondent's posterior network size, written to ``degrees.csv``
    (:func:`bayes_nsum.ppc.respondent_degrees`); a failure is written to
    ``degrees_error.json`` instead (never skipped silently)."""
    from .ppc import respondent_degrees

    try:
        table = respondent_degrees(result.tree, data=prep.ard, prob=prep.spec.interval_prob)
    except Exception as exc:  # noqa: BLE001 - any failure is reported beside the results
        return write_json({"error": f"{type(exc).__name__}: {exc}"}, outdir / "degrees_error.json")
    return write_csv(table, outdir / "degrees.csv")


def run_fit(
    spec,
    out: str | Path | None = None,
    sampler: dict[str, Any] | None = None,
    prior_set: str | None = None,
    report: bool | None = None,
):
    """``bayes-nsum fit``: fit the spec's Bayesian model and write its files.

    Returns ``(result, diagnostics, outdir)``. Files: posterior.nc, summary.csv,
    diagnostics.json, provenance.json, preprocess logs, classical_estimates.csv (the
    baseline beside every Bayesian result), degrees.csv (each respondent's network size),
    sensitivity.csv and report.html.
    """
    prep = prepare(spec)
    model = build_model(prep, prior_set=prior_set)
    settings = {**prep.spec.sampler, **{k: v for k, v in (sampler or {}).items() if v is not None}}
    result = model.fit(**settings)
    prov = provenance(
        prep, result.settings, command="fit", model=model.config(), timings=result.timings
    )
    result.provenance = {"provenance": prov}
    result.tree.attrs["provenance"] = prov
    outdir = prep.spec.output_dir(out)
    result.save(outdir, prep.spec.interval_prob, prep.spec.interval_kind, prep.spec.diagnostics)
    diag = result.diagnostics(prep.spec.diagnostics)
    write_json(prov, outdir / "provenance.json")
    prep.log.write(outdir)
    try:
        write_csv(classical_estimates(prep), outdir / "classical_estimates.csv")
    except BayesNsumError as exc:
        # the baseline cannot always be computed (e.g. an area where every degree is zero):
        # say so in a file beside the results rather than skipping it silently
        write_json({"error": str(exc)}, outdir / "classical_estimates_error.json")
    write_sensitivity(result, model, outdir)
    write_degrees(result, prep, outdir)
    want_report = prep.spec.section("output").get("report", True) if report is None else report
    if want_report:
        from .report import write_report

        write_report(outdir)
    return result, diag, outdir
