"""The per-area sections of the report: interval plots and tables, and the maps.

Which areas had respondents is read from the fit's ``constant_data`` (each respondent's area,
by position); areas without respondents are predictions of the pooling distribution and are
marked as such in the plots and maps. Suppressed areas (fewer respondents than ``[output]
min_area_respondents``) are named, never shown with a number.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BayesNsumError
from .page import _esc, _img, _problem, _table, area_table, denominator_words

#: subfolder of a results folder holding the map images
MAPS_DIR = "maps"


def respondents_per_area(tree) -> dict[str, int] | None:
    """Area -> number of analysed respondents, from a fit's ``constant_data`` (None when the
    fit has no areas)."""
    if tree is None or "constant_data" not in tree.children:
        return None
    const = tree["constant_data"]
    if "area_of" not in const or "area" not in const.coords:
        return None
    areas = [str(a) for a in const["area"].values]
    n = np.bincount(np.asarray(const["area_of"].values, int), minlength=len(areas))
    return dict(zip(areas, (int(x) for x in n), strict=True))


def _suppressed(area_rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    if "suppressed" not in area_rows.columns:
        return area_rows, []
    small = area_rows["suppressed"].astype(str).str.lower() == "true"
    return area_rows[~small], list(dict.fromkeys(area_rows.loc[small, "area"]))


def area_section(
    parts: list[str],
    summary: pd.DataFrame,
    dens: Mapping[str, str],
    least: int,
    respondents: Mapping[str, int] | None = None,
) -> None:
    """Per hidden group: the sorted interval plot of every area (names shown; predicted areas
    hollow) and the per-area table."""
    from .figures import area_interval_figure

    area_rows, names = _suppressed(summary[summary["area"] != ""])
    if names:
        parts.append(
            f"<p class='note'>Suppressed: {len(names)} area(s) with fewer than {least} "
            f"respondents ([output] min_area_respondents), shown nowhere in this report or "
            f"in summary.csv: {_esc(', '.join(names))}.</p>"
        )
    predicted = [a for a, n in (respondents or {}).items() if n == 0]
    if predicted:
        parts.append(
            f"<p class='note'>{len(predicted)} area(s) without respondents: their estimates "
            "are predictions from the pooling distribution (hollow markers).</p>"
        )
    for g in dict.fromkeys(area_rows["group"]):
        rows = area_rows[area_rows["group"] == g]
        q = "prevalence" if (rows["quantity"] == "prevalence").any() else "size"
        sub = rows[rows["quantity"] == q]
        if sub.empty:
            continue
        noun, of = denominator_words(dens.get(g, ""))
        parts.append(f"<h3>{_esc(g)}</h3>")
        if of:
            parts.append(f"<p class='note'>Prevalence and \"1 in X\" {_esc(of)} in each area.</p>")
        fig = area_interval_figure(sub, g, q, predicted=predicted)
        parts.append(_img(fig, f"per-area {q} of {g}"))
        parts.append(f"<details><summary>Per-area table ({len(sub)} areas)</summary>")
        main = rows[rows["quantity"].isin(["size", "prevalence", "one_in_x"])]
        parts.append(_table(area_table(main, noun)))
        parts.append("</details>")


def boundaries_of(prov: dict) -> tuple[Path, str] | None:
    """The boundaries file (absolute) and its key column, as the fit recorded them."""
    rec = prov.get("boundaries")
    if isinstance(rec, dict) and rec.get("path"):
        return Path(rec["path"]), str(rec.get("key") or "area")
    return None


def maps_section(
    parts: list[str],
    summary: pd.DataFrame,
    dens: Mapping[str, str],
    boundaries: tuple[Path, str],
    folder: Path,
    respondents: Mapping[str, int] | None = None,
) -> list[Path]:
    """Choropleths of each hidden group's per-area prevalence and interval width, embedded and
    written to ``folder/maps/``; without GeoPandas a note says what to install."""
    from .maps import area_maps, geopandas_missing, read_boundaries, save_maps

    if (missing := geopandas_missing()) is not None:
        parts.append(f"<p class='bad'>No maps: {_esc(missing)}.</p>")
        return []
    try:
        shapes = read_boundaries(*boundaries)
    except BayesNsumError as exc:
        _problem(parts, "The maps", exc)
        return []
    rows = summary[(summary["area"] != "") & (summary["quantity"] == "prevalence")]
    _, suppressed = _suppressed(summary[summary["area"] != ""])
    predicted = [a for a, n in (respondents or {}).items() if n == 0]
    out_dir = folder / MAPS_DIR
    if out_dir.is_dir():
        shutil.rmtree(out_dir)  # maps of an earlier report (e.g. other groups)
    written: list[Path] = []
    parts.append(
        f"<p class='note'>Boundaries: {_esc(boundaries[0].name)}. Hatched: areas without "
        "respondents (predicted); grey: suppressed areas; white: no estimate. The images are "
        f"also in the folder's {MAPS_DIR}/ subfolder.</p>"
    )
    for g in dict.fromkeys(rows["group"]):
        _, of = denominator_words(dens.get(g, ""))
        try:
            figs = area_maps(shapes, rows[rows["group"] == g], g, predicted, suppressed, of)
        except (KeyError, ValueError) as exc:
            _problem(parts, f"The maps of {g}", exc)
            continue
        parts.append(f"<h3>{_esc(g)}</h3>")
        for kind, fig in figs.items():
            parts.append(_img(fig, f"map of the {kind.replace('_', ' ')} of {g}"))
        written.extend(save_maps(figs, out_dir, g).values())
    return written
