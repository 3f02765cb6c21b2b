"""Everything a command needs, checked before any work starts.

A bad input stops a command before it reads more than it must, samples anything or writes a
file: exit status 2 and one line on stderr naming the file, key, column or rows (rows by
position, never by respondent id; answers are never quoted). The checks, in the order a command
meets them, and where each lives:

* the spec file exists, is UTF-8 and valid TOML: :func:`bayes_nsum.spec.read_toml`;
* every key of every section, its type and range (thresholds finite, model name known,
  ``[model]`` options, ``[output]`` keys): :meth:`bayes_nsum.spec.Spec.check` and
  :class:`bayes_nsum.config.ModelConfig`;
* ``[roster]``: its layout, columns and categories: :func:`bayes_nsum.roster.check_roster`
  (from :func:`check_spec`); the roster file itself when the data are loaded
  (:func:`bayes_nsum.roster.derive`);
* ``[evidence]``: hidden groups, kinds, values and per-area files, detection priors:
  :func:`bayes_nsum.estimators.evidence.parse_evidence` (from :func:`check_spec`); against the
  model (areas, options) when it is built (:meth:`~bayes_nsum.estimators.base.NSUMModel`);
* ``[priors]``: each name a parameter of some model, the syntax, parameters in range, fixed
  values and prior supports inside the parameter's own (a transmission rate in (0, 1], a
  degree ratio > 0, ...); the named prior set found and valid: :func:`check_spec`;
* the output folder creatable and writable, before any data is read: :func:`check_output`;
* survey and size files readable, columns present, counts numeric (no true/false values,
  dates or text), no repeated column name, ids present and unique:
  :func:`bayes_nsum.data.load_survey` and :func:`bayes_nsum.io.read_table`;
* ``[data] covariates`` only with a model that reads them, ``[model] bias_covariates`` among
  them: :meth:`bayes_nsum.config.ModelConfig.check_covariates` (from the spec check); each
  covariate numeric with no missing value: :func:`bayes_nsum.data.load_survey`; not constant:
  when the model is built (:class:`bayes_nsum.estimators.correlated.CorrelatedModel`);
* the ``[preprocess]`` rules: :func:`bayes_nsum.preprocess.preprocess`;
* implausible answers (after top-coding): :func:`check_answers`;
* the model: the options it reads, the priors against its parameters and groups:
  :func:`bayes_nsum.analysis.build_model`, for every command whose spec names a Bayesian
  model (``estimate`` and ``validate`` included).

:func:`bayes_nsum.analysis.prepare` runs the spec and data checks; each command checks its
output folder with :func:`check_output` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .data import ARD
from .errors import DataError, format_rows
from .io import check_output_dir
from .priors import check_prior_names, load_prior_set, parse_priors
from .roster import check_roster
from .spec import Spec, check_sampler

__all__ = [
    "check_spec",
    "check_output",
    "check_answers",
    "check_sampler_settings",
    "prior_search_dirs",
]


def prior_search_dirs(spec: Spec) -> list[Path]:
    """Where named prior sets are looked up: next to the spec (``priors/``) and above it."""
    dirs = []
    base = spec.base_dir
    for d in (base / "priors", base.parent / "priors", base / "models" / "priors"):
        if d.is_dir():
            dirs.append(d)
    return dirs


def check_spec(spec: Spec) -> Spec:
    """The checks of a spec beyond :meth:`~bayes_nsum.spec.Spec.check`: its ``[roster]``
    section, its ``[priors]`` (names, syntax, ranges, supports) and its named prior set.

    Raises
    ------
    SpecError
        One line naming the ``[roster]`` key at fault.
    PriorError
        One line naming the prior and what is wrong with it.
    """
    if "roster" in spec.raw:
        check_roster(spec.raw["roster"], spec.raw["data"].get("area", "area"), spec.where)
    if spec.raw.get("evidence"):  # (the estimators package loads PyMC: only when needed)
        from .estimators.evidence import parse_evidence

        parse_evidence(spec.raw["evidence"], spec.hidden, spec.resolve, spec.where)
    priors = spec.raw.get("priors")
    where = f"{spec.where}: [priors]"
    check_prior_names(priors, where)
    parse_priors(priors, where)
    prior_set = spec.model.prior_set
    if prior_set:
        load_prior_set(prior_set, prior_search_dirs(spec))
    return spec


def check_output(path: str | Path, what: str = "output folder") -> Path:
    """Refuse an output folder that cannot be created or written (see
    :func:`bayes_nsum.io.check_output_dir`); creates nothing."""
    return check_output_dir(path, what)


def check_sampler_settings(settings: dict[str, Any], where: str = "sampler settings") -> None:
    """Check sampler settings with command-line overrides applied (None: not given)."""
    check_sampler(dict(settings), where)


def check_answers(ard: ARD, max_answer: float, where: str = "survey") -> None:
    """Refuse implausible answers (run after pre-processing, so top-coding can cap them).

    An answer is implausible above ``max_answer`` (``[data] max_answer``, default 10,000: far
    above any personal network), above the known group's size for a known group, or above the
    frame population. The message names the column and the rows, never the values.
    """
    sizes = ard.known_sizes
    for g in ard.groups:
        x = ard.counts[g].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ceiling = f"above the ceiling of {max_answer:,.0f} (raise [data] max_answer if real)"
            tests = [(x > max_answer, ceiling)]
            if g in ard.known:
                size = float(sizes[g])
                tests.append((x > size, f"larger than the known group itself ({size:,.0f} people)"))
            tests.append((x > ard.total_population, "larger than the frame population"))
        for mask, why in tests:
            if mask.any():
                rows = ard.counts.index[mask]
                raise DataError(
                    f"{where}: column '{g}' has answers {why} in rows {format_rows(rows)}; "
                    "correct them, or cap them with [preprocess] topcode"
                )
