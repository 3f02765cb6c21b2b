"""The :class:`Simulation` container, the simulators' argument checkers and small helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from ..errors import DataError

_RESERVED = ("id", "area", "weight")


@dataclass
class Simulation:
    """A simulated ARD survey together with the truth that generated it.

    Attributes
    ----------
    survey : pandas.DataFrame
        One row per respondent: ``id`` (str, unique), ``area`` (str, multi-area designs only),
        ``weight`` (float, all 1.0), then one int64 column per group, known groups first, then
        hidden groups.
    known_sizes : pandas.DataFrame
        Columns ``group``, ``size``: national sizes of the known groups.
    total_population : float
        N, the size of the frame population.
    known, hidden : list of str
        Group names, in the order of the survey columns.
    truth : pandas.DataFrame
        Tidy table with columns ``area`` (``""`` for national), ``group``, ``quantity``
        (``"size"`` or ``"prevalence"``) and ``value``, for hidden AND known groups. A prevalence is
        relative to the group's denominator (default: the total population, or the area's
        population).
    params : dict
        Every true parameter (plain python or numpy values).
    area_table : pandas.DataFrame or None
        Multi-area designs: ``area``, ``population``, one column per known group (its size in the
        area), and the denominator columns named in ``denominators``.
    denominators : dict or None
        Per hidden group: a number (national denominator) or the name of an ``area_table`` column.
    degrees : numpy.ndarray or None
        True respondent degrees d_i (integers for the binomial likelihood).
    covariates : list of str or None
        Survey columns holding respondent covariates (written as ``[data] covariates``).
    """

    survey: pd.DataFrame
    known_sizes: pd.DataFrame
    total_population: float
    known: list[str]
    hidden: list[str]
    truth: pd.DataFrame
    params: dict
    area_table: pd.DataFrame | None = None
    denominators: dict[str, float | str] | None = None
    degrees: np.ndarray | None = None
    covariates: list[str] | None = None

    def write(
        self, directory: str | Path, name: str = "sim", model: str = "killworth"
    ) -> dict[str, Path]:
        """Write the simulation as files plus an analysis spec.

        Writes ``survey.csv``, ``known_sizes.csv``, ``truth.csv``, ``area_table.csv`` (multi-area
        designs only) and ``spec.toml`` into ``directory`` (created if missing). Paths inside the
        spec are relative to the spec file. Single-area specs name ``known_sizes``; multi-area
        specs name ``area = "area"`` and ``area_table`` instead (``total_population`` is kept).

        Parameters
        ----------
        directory : str or Path
            Target folder.
        name : str
            Label of the simulation, written as a comment on the first line of ``spec.toml``.
        model : str
            Value of ``[model] name`` in the spec (default ``"killworth"``).

        Returns
        -------
        dict of str to Path
            Keys ``survey``, ``known_sizes``, ``truth``, ``spec`` and ``area_table`` (if any).

        Notes
        -----
        The national rows of ``truth.csv`` have an empty ``area``; read the file with
        ``pandas.read_csv(path, keep_default_na=False)`` to get ``""`` back instead of NaN.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {f: directory / f"{f}.csv" for f in ("survey", "known_sizes", "truth")}
        for f, path in paths.items():
            getattr(self, f).to_csv(path, index=False)

        data: dict[str, Any] = {"survey": "survey.csv"}
        if self.area_table is not None:
            paths["area_table"] = directory / "area_table.csv"
            self.area_table.to_csv(paths["area_table"], index=False)
            data["area"] = "area"
            data["area_table"] = "area_table.csv"
        else:
            data["known_sizes"] = "known_sizes.csv"
        data["total_population"] = _toml_number(self.total_population)
        if self.covariates:
            data["covariates"] = list(self.covariates)

        groups: dict[str, Any] = {"known": list(self.known), "hidden": list(self.hidden)}
        if self.denominators:
            groups["denominators"] = {
                g: (v if isinstance(v, str) else _toml_number(v))
                for g, v in self.denominators.items()
            }
        spec = {
            "data": data,
            "groups": groups,
            "model": {"name": model},
            "output": {"dir": "results"},
        }
        paths["spec"] = directory / "spec.toml"
        header = f"# bayes_nsum simulation {name!r} (seed {self.params.get('seed')})\n"
        paths["spec"].write_text(header + tomli_w.dumps(spec), encoding="utf-8")
        return paths


def _toml_number(x: float) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _check_names(names: Sequence[str], arg: str) -> list[str]:
    names = list(names)
    for g in names:
        if not isinstance(g, str) or not g:
            raise DataError(f"{arg}: group names must be non-empty strings, got {g!r}")
        if g in _RESERVED:
            raise DataError(f"{arg}: group name {g!r} is reserved for a survey column")
    dup = sorted({g for g in names if names.count(g) > 1})
    if dup:
        raise DataError(f"{arg}: duplicate group names {dup}")
    return names


def _check_positive_int(x: Any, arg: str, minimum: int = 1) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < minimum:
        raise DataError(f"{arg} must be an integer >= {minimum}, got {x!r}")
    return int(x)


def _check_real(x: Any, arg: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise DataError(f"{arg} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise DataError(f"{arg} must be finite, got {x!r}")
    return v


def _bounded(ok: Callable[[float], bool], bound: str) -> Callable[[Any, str], float]:
    """A checker of a finite number ``v`` with ``ok(v)``; its error says "{arg} must be {bound}"."""

    def check(x: Any, arg: str) -> float:
        v = _check_real(x, arg)
        if not ok(v):
            raise DataError(f"{arg} must be {bound}, got {x!r}")
        return v

    return check


_tau_check = _bounded(lambda v: 0.0 < v <= 1.0, "in (0, 1]")
_pos_check = _bounded(lambda v: v > 0, "> 0")


def _per_group(
    value: Mapping[str, float] | float | None,
    groups: Sequence[str],
    arg: str,
    check: Callable[[Any, str], float],
    default: Mapping[str, Any] | float | None = None,
) -> dict[str, Any]:
    """Expand a scalar / dict / None argument to a per-group dict, ``default`` where not given."""
    groups = list(groups)
    fill = default if isinstance(default, Mapping) else dict.fromkeys(groups, default)
    if value is None:
        return {g: fill[g] for g in groups}
    if isinstance(value, Mapping):
        bad = [g for g in value if g not in groups]
        if bad:
            raise DataError(f"{arg}: unknown or not allowed group(s) {bad}; allowed: {groups}")
        return {g: (check(value[g], f"{arg}[{g!r}]") if g in value else fill[g]) for g in groups}
    return dict.fromkeys(groups, check(value, arg))


def _survey_frame(
    counts: np.ndarray, groups: list[str], area: np.ndarray | None = None
) -> pd.DataFrame:
    n = counts.shape[0]
    width = max(5, len(str(n)))
    cols: dict[str, Any] = {"id": [f"R{i:0{width}d}" for i in range(1, n + 1)]}
    if area is not None:
        cols["area"] = [str(a) for a in area]
    cols["weight"] = np.ones(n, dtype=float)
    for k, g in enumerate(groups):
        cols[g] = counts[:, k].astype(np.int64)
    return pd.DataFrame(cols)


def _negbin(rng: np.random.Generator, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """NB2 draws with the given mean and shape r (variance mean + mean^2 / r); 0 where mean is 0."""
    mean, shape = np.broadcast_arrays(np.asarray(mean, float), np.asarray(shape, float))
    out = np.zeros(mean.shape, dtype=np.int64)
    pos = mean > 0
    if np.any(pos):
        r = shape[pos]
        out[pos] = rng.negative_binomial(r, r / (r + mean[pos]))
    return out


def _truth_frame(cells: Iterable[tuple[str, str, float, float]]) -> pd.DataFrame:
    """The tidy truth table: a size and a prevalence row per (area, group, size, denominator)."""
    rows: list[tuple[str, str, str, float]] = []
    for area, group, size, denom in cells:
        prev = size / denom if denom > 0 else float("nan")
        rows += [(area, group, "size", float(size)), (area, group, "prevalence", float(prev))]
    return pd.DataFrame(rows, columns=["area", "group", "quantity", "value"])
