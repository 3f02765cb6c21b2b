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
* :func:`write_fit` -- every file of a results folder; :func:`save_fit` writes them into a
  staging folder moved into place at the end (an interrupted or failed write leaves the previous
  results as they were, and a failed write keeps the posterior where the message says);
  :func:`run_fit` chains them.

Every command checks its output folder (:func:`bayes_nsum.preflight.check_output`) and the spec
(:func:`prepare`) before any work (the checks: :mod:`bayes_nsum.preflight`).

Disclosure control: a results folder holds no respondent id and no respondent-level table
unless the spec sets ``[output] respondent_level = true`` (then ``degrees.csv`` and
``preprocess_changes.csv`` go to ``restricted/``); per-area rows of areas with fewer than
``[output] min_area_respondents`` respondents are suppressed (:mod:`bayes_nsum.disclosure`).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from . import __version__, classical
from .config import CLASSICAL_MODELS
from .data import ARD, load_survey
from .disclosure import restricted_dir, suppress_small_areas
from .errors import BayesNsumError, DataError, OutputError, SpecError
from .io import StagedFolder, write_csv, write_json
from .preflight import (
    check_answers,
    check_output,
    check_sampler_settings,
    check_spec,
    prior_search_dirs,
)
from .preprocess import PreprocessLog, preprocess
from .report.maps import boundaries_record, map_warnings
from .roster import roster_log_table
from .spec import Spec, load_spec

__all__ = (
    "CLASSICAL_MODELS POST_FIT_STEPS Prepared Fit prepare provenance classical_estimates "
    "run_estimate run_validate model_class build_model fit_and_check write_fit save_fit run_fit "
    "check_model prior_search_dirs FIT_OUTPUTS"
).split()

#: every entry a ``fit`` may write in its results folder (stale ones of an earlier run are
#: replaced or removed; other entries, e.g. ``internal_consistency.csv``, are left alone)
FIT_OUTPUTS = tuple(
    "posterior.nc summary.csv diagnostics.json provenance.json preprocess_log.csv "
    "preprocess_changes.csv classical_estimates.csv classical_estimates_error.json ppc.csv "
    "ppc_error.json degrees.csv degrees_summary.csv degrees_error.json evidence_error.json "
    "log_likelihood_error.json sensitivity.csv sensitivity_note.json sensitivity_error.json "
    "roster_log.csv report.html maps restricted evidence_contribution.csv".split()
)
_EST = "estimates.csv provenance.json preprocess_log.csv preprocess_changes.csv roster_log.csv"
ESTIMATE_OUTPUTS = tuple(f"{_EST} restricted".split())
VALIDATE_OUTPUTS = ("internal_consistency.csv", "internal_consistency.json")


@dataclass
class Prepared:
    """Data ready for estimation plus the record of how it got there."""

    spec: Spec
    raw: ARD
    ard: ARD
    log: PreprocessLog
    #: problems that do not stop the analysis (printed by the command line, in provenance.json)
    warnings: list[str] = field(default_factory=list)


def prepare(spec: Spec | str | Path | dict) -> Prepared:
    """Check the spec (:func:`bayes_nsum.preflight.check_spec`), then load, validate and
    pre-process the data it names and refuse implausible answers
    (:func:`bayes_nsum.preflight.check_answers`, after top-coding).

    Respondents are labelled by their survey row (1 = first respondent) throughout, so
    that no message names a respondent id; the ids stay in ``raw.ids`` for the restricted
    tables.
    """
    spec = check_spec(load_spec(spec))
    raw = load_survey(spec)
    # preprocess() never changes the frame it is given: no copy needed (a large survey)
    frame = raw.counts if raw.area is None else raw.counts.assign(area=raw.area)
    where = f"survey {Path(raw.source).name}"
    try:
        cleaned, log = preprocess(
            frame,
            list(raw.known),
            list(raw.hidden),
            spec.section("preprocess") or None,
            area_table=raw.area_table,
        )
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    counts = cleaned[raw.groups]
    ard = raw.with_counts(counts)
    if ard.n == 0:
        raise DataError(f"{where}: the survey is empty after pre-processing")
    check_answers(ard, spec.max_answer, where)
    warnings = map_warnings(spec, raw.areas)
    return Prepared(spec=spec, raw=raw, ard=ard, log=log, warnings=warnings)


def check_model(prep: Prepared, prior_set: str | None = None):
    """Build (never sample) the Bayesian model a spec names, so that its options and priors
    are checked against the model before any work; None for a classical spec."""
    if prep.spec.model.is_classical:
        return None
    return build_model(prep, prior_set=prior_set)


def area_respondents(ard: ARD) -> dict[str, int]:
    """Number of analysed respondents per area (empty without areas)."""
    if ard.area is None:
        return {}
    return {str(a): int(n) for a, n in ard.area.value_counts().items()}


def write_preprocess_log(prep: Prepared, folder: Path) -> dict[str, Path]:
    """``preprocess_log.csv`` and, with ``[output] respondent_level``, the restricted listing;
    with a household roster ``roster_log.csv`` (areas of few rostered households suppressed;
    the full log in ``restricted/`` with ``respondent_level``)."""
    paths = prep.log.write(folder, prep.spec.respondent_level, prep.raw.ids)
    roster = prep.raw.roster
    if roster is not None:
        least = prep.spec.min_area_respondents
        paths["roster_log"] = write_csv(roster_log_table(roster, least), folder / "roster_log.csv")
        if prep.spec.respondent_level:
            write_csv(roster.log, restricted_dir(folder) / "roster_log.csv")
    return paths


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
        "roster": None if prep.raw.roster is None else prep.raw.roster.settings,
        "boundaries": boundaries_record(prep.spec),
        "warnings": prep.warnings,
        "sampler": settings,
        "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------


def classical_estimates(prep: Prepared, seed: int | None = None) -> pd.DataFrame:
    """Killworth scale-up estimates (national, and per area when there are areas); answers
    that ``[preprocess] missing = "model"`` left missing are skipped."""
    spec, ard = prep.spec, prep.ard
    opts = spec.model.classical_options()
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
        missing="skip" if spec.section("preprocess").get("missing") == "model" else "raise",
    )
    if ard.hidden_sample is not None:  # generalized NSUM (classical.gnsum)
        return classical.gnsum_table(ard, **common)
    if ard.has_areas:
        table = classical.per_area_estimates(
            ard.counts,
            ard.area,
            ard.area_table,
            list(ard.hidden),
            denominators=ard.denominators or None,
            known_groups=list(ard.known),
            **common,
        )
        return suppress_small_areas(table, area_respondents(ard), spec.min_area_respondents)
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
    spec = load_spec(spec)
    outdir = check_output(spec.output_dir(out))
    prep = prepare(spec)
    check_model(prep)
    table = classical_estimates(prep)
    with StagedFolder(outdir, ESTIMATE_OUTPUTS) as stage:
        write_csv(table, stage.path / "estimates.csv")
        write_preprocess_log(prep, stage.path)
        write_json(provenance(prep, None, command="estimate"), stage.path / "provenance.json")
    return table, outdir


def run_validate(spec, out: str | Path | None = None) -> tuple[pd.DataFrame, dict, Path]:
    """``bayes-nsum validate``: classical internal consistency (each known group held out)."""
    spec = load_spec(spec)
    outdir = check_output(spec.output_dir(out))
    prep = prepare(spec)
    check_model(prep)
    ard = prep.ard
    opts = prep.spec.model.classical_options()
    table = classical.internal_consistency(
        ard.counts[list(ard.known)],
        ard.known_sizes,
        ard.total_population,
        weights=ard.weights,
        method=opts["method"],
    )
    summary = classical.summarize_internal_consistency(table)
    with StagedFolder(outdir, VALIDATE_OUTPUTS) as stage:
        write_csv(table, stage.path / "internal_consistency.csv")
        write_json(
            {"summary": summary, **provenance(prep, None, command="validate")},
            stage.path / "internal_consistency.json",
        )
    return table, summary, outdir


# ---------------------------------------------------------------------------------------------
# Bayesian
# ---------------------------------------------------------------------------------------------

#: post-fit steps, in order; each adds a group to the fit or a table beside it
POST_FIT_STEPS = ("predictive", "log_likelihood", "degrees", "sensitivity", "evidence")


def model_class(name: str):
    from .estimators import MODELS

    if name not in MODELS:
        raise SpecError(
            f"[model] name '{name}' is not a Bayesian model; use one of "
            f"{', '.join(list(MODELS) + list(CLASSICAL_MODELS))}"
        )
    return MODELS[name]


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
        Data replacing the prepared data (a known group held out as hidden; no [evidence]).
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
        evidence=spec.evidence if ard is None else None,
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
    from .checks.evidence import evidence_contribution
    from .checks.loo import log_likelihood
    from .checks.predictive import posterior_predictive, ppc_of_tree
    from .checks.sensitivity import power_scaling_sensitivity

    bad = [s for s in steps if s not in POST_FIT_STEPS]
    if bad:
        raise BayesNsumError(f"unknown post-fit step(s) {', '.join(bad)}")
    result = model.fit(compiled=compiled, with_prior=with_prior, **settings)
    tree, seed = result.tree, int(result.settings["seed"])
    post = tree["posterior"].to_dataset()
    tables, problems = {}, {}  # name -> DataFrame; step -> what failed
    for step in steps:
        t0 = time.perf_counter()  # each step's time joins the sampler's in result.timings
        try:
            if step == "predictive":
                rep = posterior_predictive(model, post, seed=seed, topcode=topcode)
                tree["posterior_predictive"] = xr.DataTree(rep)
                tables["ppc"] = ppc_of_tree(tree, prob)
            elif step == "log_likelihood":
                tree["log_likelihood"] = xr.DataTree(log_likelihood(model, post))
            elif step == "degrees":
                tables["degrees"] = respondent_degrees(model, post, prob)
            elif step == "sensitivity":
                tables["sensitivity"] = power_scaling_sensitivity(result, model)
            else:  # each evidence source's contribution (checks.evidence)
                tables.update(evidence_contribution(result, model, prob))
        except Exception as exc:  # noqa: BLE001 - every failure is reported beside the results
            problems[step] = f"{type(exc).__name__}: {exc}"
        result.timings[f"{step}_s"] = time.perf_counter() - t0
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
    label: str | Path | None = None,
) -> dict[str, Any]:
    """Write a results folder; returns the diagnostics.

    Files: posterior.nc, summary.csv, diagnostics.json, provenance.json, preprocess_log.csv,
    classical_estimates.csv (the baseline beside every Bayesian result), the post-fit tables
    (ppc.csv, sensitivity.csv, degrees_summary.csv; ``<step>_error.json`` where a step failed)
    and report.html. ``baseline=False`` leaves out the classical baseline. Per-area rows of
    areas with too few respondents are suppressed. Respondent-level tables (degrees.csv,
    preprocess_changes.csv, with survey rows and ids) are written to ``restricted/`` only with
    ``[output] respondent_level = true``. ``label`` is the folder's name in the report (when
    ``outdir`` is a staging folder).
    """
    from .checks.degrees import degree_summary

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
    data = getattr(model, "data", prep.ard)
    result.save(
        outdir,
        spec.interval_prob,
        spec.interval_kind,
        spec.diagnostics,
        area_respondents=area_respondents(data),
        min_area_respondents=spec.min_area_respondents,
    )
    diag = result.diagnostics(spec.diagnostics)
    write_json(prov, outdir / "provenance.json")
    write_preprocess_log(prep, outdir)
    try:
        if baseline:
            write_csv(classical_estimates(prep), outdir / "classical_estimates.csv")
    except BayesNsumError as exc:
        # the baseline cannot always be computed (e.g. an area where every degree is zero):
        # say so in a file beside the results rather than skipping it silently
        write_json({"error": str(exc)}, outdir / "classical_estimates_error.json")
    for key, table in fit.tables.items():
        if key == "degrees":
            write_csv(degree_summary(table), outdir / "degrees_summary.csv")
            if spec.respondent_level:
                listing = table.copy()
                listing.insert(1, "row", data.counts.index.to_numpy())
                if data.ids is not None:
                    listing.insert(2, "id", data.ids.to_numpy())
                write_csv(listing, restricted_dir(outdir) / _TABLE_FILES[key])
            continue
        write_csv(table, outdir / _TABLE_FILES.get(key, f"{key}.csv"))
        if key == "sensitivity":
            write_json({"note": table.attrs.get("note", "")}, outdir / "sensitivity_note.json")
    for step, err in fit.problems.items():
        write_json({"error": err}, outdir / f"{_STEP_TABLE.get(step, step)}_error.json")
    if report:
        from .report import write_report

        write_report(outdir, label=label)
    return diag


def save_fit(
    fit: Fit, prep: Prepared, outdir: Path, command: str = "fit", report: bool = True
) -> dict[str, Any]:
    """:func:`write_fit` into a staging folder that replaces ``outdir``'s entries at the end.

    Ctrl-C or an error while writing leaves ``outdir`` as it was. A failed write never loses
    the posterior: it is kept (in the staging folder, else in the system's temporary folder)
    and the error names the file; an operating-system error (disk full, permissions) is an
    :class:`~bayes_nsum.errors.OutputError`.
    """
    stage = StagedFolder(outdir, FIT_OUTPUTS)
    try:
        with stage:
            try:
                return write_fit(fit, prep, stage.path, command, report, label=outdir)
            except Exception as exc:  # noqa: BLE001 - keep the posterior, then re-raise
                kept = _keep_posterior(fit, stage)
                where = f"the posterior is kept in {kept}" if kept else "no copy could be saved"
                if isinstance(exc, OSError):
                    why = exc.strerror or str(exc)
                    raise OutputError(
                        f"writing the results folder {outdir} failed ({why}); {where}"
                    ) from None
                exc.add_note(f"bayes_nsum: writing {outdir} failed; {where}")
                raise
    except OSError as exc:  # moving the finished folder into place failed
        kept = next((p for p in (stage.path, outdir) if (p / "posterior.nc").is_file()), None)
        where = f"the posterior is in {kept / 'posterior.nc'}" if kept else "no copy is left"
        raise OutputError(
            f"moving the results into {outdir} failed ({exc.strerror or exc}); {where}"
        ) from None


def _keep_posterior(fit: Fit, stage: StagedFolder) -> Path | None:
    """Where the posterior of a fit whose results could not be written is kept: the staging
    folder's ``posterior.nc`` when it was written, else a new copy in the staging folder or in
    the system's temporary folder."""
    import tempfile

    done = stage.path / "posterior.nc"
    if done.is_file():
        stage.keep = True
        return done
    for folder in (stage.path, None):
        try:
            folder = folder or Path(tempfile.mkdtemp(prefix="bayes_nsum-posterior-"))
            path = fit.result.save_posterior(folder / "posterior.nc")
        except Exception:  # noqa: BLE001 - try the next place
            continue
        stage.keep = stage.keep or folder == stage.path
        return path
    return None


def run_fit(
    spec,
    out: str | Path | None = None,
    sampler: dict[str, Any] | None = None,
    prior_set: str | None = None,
    report: bool | None = None,
    steps: tuple[str, ...] = POST_FIT_STEPS,
    command: str = "fit",
    warn=None,
):
    """``bayes-nsum fit``: fit the spec's Bayesian model and write its results folder.

    Everything is checked before sampling: the output folder, the spec, the data, the model
    and the sampler settings with their overrides. Returns ``(result, diagnostics, outdir)``;
    see :func:`write_fit` for the files and :func:`save_fit` for how they are written.
    ``warn`` is called with each warning of the preparation (e.g. maps that cannot be drawn)
    before sampling; the warnings are also recorded in ``provenance.json``.
    """
    spec = load_spec(spec)
    outdir = check_output(spec.output_dir(out))
    prep = prepare(spec)
    for line in prep.warnings if warn else ():
        warn(line)
    model = build_model(prep, prior_set=prior_set)
    settings = {**prep.spec.sampler, **{k: v for k, v in (sampler or {}).items() if v is not None}}
    check_sampler_settings(settings)
    from .checks.predictive import topcode_caps

    fit = fit_and_check(
        model,
        settings,
        steps,
        topcode=topcode_caps(prep.log.to_dict().get("steps", [])),
        prob=prep.spec.interval_prob,
    )
    want_report = prep.spec.section("output").get("report", True) if report is None else report
    diag = save_fit(fit, prep, outdir, command=command, report=bool(want_report))
    return fit.result, diag, outdir
