"""The analysis workflow in one place: spec -> data -> pre-processing -> model -> fit -> files.

One path serves every command that fits a model (``fit``, ``sweep``, ``compare``,
``validate --bayesian``, ``calibrate``):

* :func:`prepare` -- load, validate and pre-process the data a spec names;
* :func:`build_model` -- the spec's ``[model]`` section (one typed
  :class:`~bayes_nsum.config.ModelConfig`) turned into a model object, refusing keys the model
  does not read;
* :func:`fit_and_check` -- sample, then the post-fit steps (:data:`POST_FIT_STEPS`: posterior
  predictive replicates, per-respondent log-likelihood, respondents' network sizes,
  power-scaling sensitivity), each failure recorded, never skipped silently;
* :func:`write_fit` -- every file of a results folder; :func:`run_fit` chains the three.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from . import __version__, classical
from .config import CLASSICAL_MODELS
from .data import ARD, load_survey
from .errors import BayesNsumError, DataError, SpecError
from .io import write_csv, write_json
from .preprocess import PreprocessLog, preprocess
from .spec import Spec, load_spec

__all__ = [
    "CLASSICAL_MODELS",
    "POST_FIT_STEPS",
    "Prepared",
    "Fit",
    "prepare",
    "provenance",
    "classical_estimates",
    "run_estimate",
    "run_validate",
    "model_class",
    "build_model",
    "fit_and_check",
    "write_fit",
    "run_fit",
]


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
    return spec.model.classical_options()


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

#: post-fit steps, in order; each adds a group to the fit or a table beside it
POST_FIT_STEPS = ("predictive", "log_likelihood", "degrees", "sensitivity")


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


def build_model(
    prep: Prepared,
    priors: dict | None = None,
    prior_set: str | None = None,
    name: str | None = None,
    ard: ARD | None = None,
    spec_priors: bool = True,
):
    """The Bayesian model a spec describes (not yet fitted).

    A ``[model]`` key the model does not read is an error naming the model; a key read only by
    the classical baseline (``classical_estimates.csv``) is kept as a note in ``model.notes``
    (printed by the command line and written to the provenance).

    Parameters
    ----------
    prep : Prepared
    priors : dict, optional
        Priors over the spec's ``[priors]`` (user layer).
    prior_set : str, optional
        Prior set replacing the spec's ``[model] prior_set``.
    name : str, optional
        Model replacing the spec's ``[model] name``.
    ard : ARD, optional
        Data replacing the prepared data (e.g. a known group held out as hidden).
    spec_priors : bool
        Use the spec's ``[priors]`` below ``priors`` (default).
    """
    spec = prep.spec
    cfg = spec.model if name is None else spec.model.with_name(name)
    if cfg.is_classical:
        from .estimators import MODELS

        raise SpecError(
            f"{spec.where}: [model] name '{cfg.name}' is a classical estimator, not a Bayesian "
            f"model ({', '.join(MODELS)})"
        )
    cls = model_class(cfg.name)
    options, classical_only, unused = cfg.split(cls.options_used)
    if unused:
        raise SpecError(
            f"{spec.where}: [model] {', '.join(unused)} not used by the {cfg.name} model "
            f"(its options: {', '.join(cls.options_used) or 'none'})"
        )
    if "survey_weights" in cfg.given and (ard or prep.ard).weights is None:
        raise SpecError(
            f"{spec.where}: [model] survey_weights is set but [data] names no weight column: "
            "it would change nothing"
        )
    user_priors = spec.section("priors") if spec_priors else {}
    if priors:
        user_priors = {**user_priors, **priors}
    model = cls(
        prep.ard if ard is None else ard,
        priors=user_priors or None,
        prior_set=prior_set or cfg.prior_set,
        prior_search=prior_search_dirs(spec),
        **options,
    )
    model.notes = [
        f"[model] {k} is read by the classical baseline (classical_estimates.csv) only, not by "
        f"the {cfg.name} model"
        for k in classical_only
    ]
    return model


@dataclass
class Fit:
    """A fit and what the post-fit steps made of it.

    Attributes
    ----------
    result : NSUMResult
        The fit; its tree holds ``posterior_predictive`` and ``log_likelihood`` when those
        steps ran.
    tables : dict
        ``ppc``, ``degrees``, ``sensitivity`` tables (those computed).
    problems : dict
        Step -> why it could not be computed.
    """

    result: Any
    tables: dict[str, pd.DataFrame]
    problems: dict[str, str]


def fit_and_check(
    model,
    settings: dict[str, Any],
    steps: tuple[str, ...] = POST_FIT_STEPS,
    topcode: dict[str, float] | None = None,
    prob: float = 0.9,
    compiled=None,
    with_prior: bool = True,
) -> Fit:
    """Sample a model, then run the post-fit steps (see :data:`POST_FIT_STEPS`).

    ``compiled`` (a nutpie-compiled model, e.g. with new data swapped in) is sampled instead of
    compiling the model; ``with_prior=False`` skips the ``prior`` group.
    """
    from .checks.degrees import respondent_degrees
    from .checks.loo import log_likelihood
    from .checks.predictive import posterior_predictive, ppc_of_tree
    from .checks.sensitivity import power_scaling_sensitivity

    bad = [s for s in steps if s not in POST_FIT_STEPS]
    if bad:
        raise BayesNsumError(f"unknown post-fit step(s) {', '.join(bad)}")
    result = model.fit(compiled=compiled, with_prior=with_prior, **settings)
    tree = result.tree
    post = tree["posterior"].to_dataset()
    seed = int(result.settings["seed"])
    tables: dict[str, pd.DataFrame] = {}
    problems: dict[str, str] = {}
    for step in steps:
        try:
            if step == "predictive":
                rep = posterior_predictive(model, post, seed=seed, topcode=topcode)
                tree["posterior_predictive"] = xr.DataTree(rep)
                tables["ppc"] = ppc_of_tree(tree, prob)
            elif step == "log_likelihood":
                tree["log_likelihood"] = xr.DataTree(log_likelihood(model, post))
            elif step == "degrees":
                tables["degrees"] = respondent_degrees(model, post, prob)
            else:
                tables["sensitivity"] = power_scaling_sensitivity(result, model)
        except Exception as exc:  # noqa: BLE001 - every failure is reported beside the results
            problems[step] = f"{type(exc).__name__}: {exc}"
    return Fit(result=result, tables=tables, problems=problems)


#: post-fit table -> file name
_TABLE_FILES = {"ppc": "ppc.csv", "degrees": "degrees.csv", "sensitivity": "sensitivity.csv"}
_STEP_TABLE = {"predictive": "ppc", "degrees": "degrees", "sensitivity": "sensitivity"}


def write_fit(
    fit: Fit,
    prep: Prepared,
    outdir: Path,
    command: str = "fit",
    report: bool = True,
    baseline: bool = True,
) -> dict[str, Any]:
    """Write a results folder; returns the diagnostics.

    Files: posterior.nc, summary.csv, diagnostics.json, provenance.json, the pre-processing
    logs, classical_estimates.csv (the baseline beside every Bayesian result), the post-fit
    tables (ppc.csv, degrees.csv, sensitivity.csv; ``<step>_error.json`` where a step failed)
    and report.html. ``baseline=False`` leaves out the classical baseline.
    """
    result, spec = fit.result, prep.spec
    model = result.model
    prov = provenance(
        prep,
        result.settings,
        command=command,
        model=model.config(),
        notes=list(getattr(model, "notes", [])),
        timings=result.timings,
        post_fit_problems=fit.problems,
    )
    result.provenance = {"provenance": prov}
    result.tree.attrs["provenance"] = prov
    outdir.mkdir(parents=True, exist_ok=True)
    result.save(outdir, spec.interval_prob, spec.interval_kind, spec.diagnostics)
    diag = result.diagnostics(spec.diagnostics)
    write_json(prov, outdir / "provenance.json")
    prep.log.write(outdir)
    try:
        if baseline:
            write_csv(classical_estimates(prep), outdir / "classical_estimates.csv")
    except BayesNsumError as exc:
        # the baseline cannot always be computed (e.g. an area where every degree is zero):
        # say so in a file beside the results rather than skipping it silently
        write_json({"error": str(exc)}, outdir / "classical_estimates_error.json")
    for key, table in fit.tables.items():
        write_csv(table, outdir / _TABLE_FILES[key])
        if key == "sensitivity":
            write_json({"note": table.attrs.get("note", "")}, outdir / "sensitivity_note.json")
    for step, err in fit.problems.items():
        write_json({"error": err}, outdir / f"{_STEP_TABLE.get(step, step)}_error.json")
    if report:
        from .report import write_report

        write_report(outdir)
    return diag


def run_fit(
    spec,
    out: str | Path | None = None,
    sampler: dict[str, Any] | None = None,
    prior_set: str | None = None,
    report: bool | None = None,
    steps: tuple[str, ...] = POST_FIT_STEPS,
    command: str = "fit",
):
    """``bayes-nsum fit``: fit the spec's Bayesian model and write its results folder.

    Returns ``(result, diagnostics, outdir)``; see :func:`write_fit` for the files.
    """
    prep = prepare(spec)
    model = build_model(prep, prior_set=prior_set)
    settings = {**prep.spec.sampler, **{k: v for k, v in (sampler or {}).items() if v is not None}}
    outdir = prep.spec.output_dir(out)
    fit = fit_and_check(
        model,
        settings,
        steps,
        topcode=topcode_caps(prep.log.to_dict().get("steps", [])),
        prob=prep.spec.interval_prob,
    )
    want_report = prep.spec.section("output").get("report", True) if report is None else report
    diag = write_fit(fit, prep, outdir, command=command, report=bool(want_report))
    return fit.result, diag, outdir


def topcode_caps(steps: list[dict]) -> dict[str, float]:
    """Caps of the ``topcode`` steps of a pre-processing record."""
    from .checks.predictive import topcode_caps as caps

    return caps(steps)
