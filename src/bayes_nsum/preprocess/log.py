"""The pre-processing log: every step with its settings and every changed cell or dropped row.

Written to a results folder as ``preprocess_log.csv`` (counts per rule and group: no
respondent-level information). The respondent-by-respondent listing is respondent-level data:
it is written only on request (``[output] respondent_level = true``), to the restricted
subfolder (``restricted/preprocess_changes.csv``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..disclosure import restricted_dir
from ..io import write_csv

CHANGE_COLUMNS = ["rule", "group", "respondent", "old", "new", "detail"]
SUMMARY_COLUMNS = ["rule", "group", "n_changed"]


@dataclass
class PreprocessLog:
    """Record of every pre-processing step and every change it made.

    Attributes
    ----------
    changes : list of dict
        One entry per changed cell or dropped respondent, with keys ``rule``, ``group``,
        ``respondent``, ``old``, ``new`` and ``detail``. A whole-respondent drop has group ``""``
        and ``old``/``new`` NaN.
    steps : list of dict
        One entry per step that ran: ``{"rule": str, "settings": dict, "counts": dict}``, where
        ``settings`` are the resolved settings of the step and ``counts`` maps every group that the
        step looked at to its number of changes (zeros included; for a drop, also ``""`` to the
        number of respondents dropped).
    """

    changes: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)

    def add_change(
        self, rule: str, group: str, respondent: Any, old: float, new: float, detail: str = ""
    ) -> None:
        """Append one change (a changed cell or, with ``group=""``, a dropped respondent)."""
        self.changes.append(
            {
                "rule": rule,
                "group": group,
                "respondent": str(respondent),
                "old": _py_float(old),
                "new": _py_float(new),
                "detail": detail,
            }
        )

    def add_step(self, rule: str, settings: dict, counts: Mapping[str, int]) -> None:
        """Append one step with its resolved settings and per-group change counts."""
        self.steps.append(
            {
                "rule": rule,
                "settings": _jsonable(settings),
                "counts": {str(g): int(n) for g, n in counts.items()},
            }
        )

    def summary(self) -> pd.DataFrame:
        """Number of changes per rule and group.

        Returns
        -------
        pandas.DataFrame
            Columns ``rule``, ``group``, ``n_changed``; one row per rule x group that a step looked
            at, in the order the steps ran, including groups with no change. For
            ``missing_left_for_model`` the count is the number of missing answers left in place.
        """
        rows = [
            {"rule": step["rule"], "group": g, "n_changed": n}
            for step in self.steps
            for g, n in step.get("counts", {}).items()
        ]
        if not rows:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS}).astype(
                {"n_changed": "int64"}
            )
        out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        out = out.groupby(["rule", "group"], sort=False, as_index=False)["n_changed"].sum()
        out["n_changed"] = out["n_changed"].astype("int64")
        return out

    def to_frame(self) -> pd.DataFrame:
        """The respondent-by-respondent listing of changes.

        Returns
        -------
        pandas.DataFrame
            Columns ``rule``, ``group``, ``respondent``, ``old``, ``new``, ``detail``.
        """
        if not self.changes:
            return pd.DataFrame(
                {
                    c: pd.Series(dtype=float if c in ("old", "new") else object)
                    for c in CHANGE_COLUMNS
                }
            )
        out = pd.DataFrame(self.changes, columns=CHANGE_COLUMNS)
        out["old"] = out["old"].astype(float)
        out["new"] = out["new"].astype(float)
        return out

    def write(
        self,
        directory: str | os.PathLike,
        respondent_level: bool = False,
        ids: Mapping[str, str] | pd.Series | None = None,
    ) -> dict[str, Path]:
        """Write the summary and, on request, the listing as CSV files, each atomically.

        Parameters
        ----------
        directory : path-like
            Folder to write into (created if needed).
        respondent_level : bool
            Also write the respondent-by-respondent listing, to
            ``restricted/preprocess_changes.csv`` (default: the summary only).
        ids : mapping or Series, optional
            Respondent label (the survey row, as :func:`bayes_nsum.analysis.prepare` labels
            respondents) -> respondent id: adds an ``id`` column to the listing.

        Returns
        -------
        dict of str to pathlib.Path
            ``{"summary": .../preprocess_log.csv}`` and, with ``respondent_level``,
            ``"changes": .../restricted/preprocess_changes.csv``.
        """
        directory = Path(directory)
        paths = {"summary": write_csv(self.summary(), directory / "preprocess_log.csv")}
        if respondent_level:
            table = self.to_frame()
            if ids is not None:
                ids = pd.Series(ids)
                by_label = pd.Series(ids.to_numpy(), index=ids.index.astype(str))
                table.insert(3, "id", table["respondent"].map(by_label).astype(object))
            paths["changes"] = write_csv(
                table, restricted_dir(directory) / "preprocess_changes.csv"
            )
        return paths

    def to_dict(self) -> dict:
        """JSON-able summary for provenance: the steps with their settings and counts.

        Returns
        -------
        dict
            ``{"steps": [...], "n_changes": int, "n_changes_by_rule": {rule: int}}``.
        """
        by_rule: dict[str, int] = {}
        for change in self.changes:
            by_rule[change["rule"]] = by_rule.get(change["rule"], 0) + 1
        return {
            "steps": _jsonable(self.steps),
            "n_changes": len(self.changes),
            "n_changes_by_rule": by_rule,
        }


def _py_float(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _jsonable(obj: Any) -> Any:
    """Convert numpy / pandas scalars and containers to plain Python for JSON."""
    if isinstance(obj, (Mapping, pd.Series)):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) else f
    return obj
