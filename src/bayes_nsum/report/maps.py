"""Choropleth maps of per-area results (``[data] boundaries``), and synthetic boundaries.

Maps need GeoPandas, an optional extra (``pip install 'bayes_nsum[maps]'``): without it
:func:`geopandas_missing` returns the one-line message that the report and the command line
show instead, and nothing fails. The boundaries file is anything GeoPandas reads (GeoJSON,
shapefile, GeoPackage, ...) with a column of area codes (``[data] boundaries_key``, default
``area``) matching the area table's.

For each hidden group, :func:`area_maps` draws two maps from the group's per-area
``summary.csv`` rows: the prevalence (posterior median) and the width of its credible interval.
Areas without respondents (their estimates are predictions from the pooling distribution) are
hatched; suppressed areas (fewer respondents than ``[output] min_area_respondents``) are grey
and carry no value; areas of the boundaries file without an estimate are white. The polygons are
drawn with Matplotlib directly (no ``pyplot``), like every figure of the report.

:func:`grid_geojson` writes simple square polygons, one per area, for synthetic examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath

from ..columns import labels
from ..errors import DataError
from ..io import atomic_write, write_text

#: the message shown where maps would be, when GeoPandas is not installed
MAPS_EXTRA = (
    "maps need GeoPandas, an optional extra: pip install 'bayes_nsum[maps]' "
    "(then 'bayes-nsum report FOLDER' draws them)"
)
PREDICTED_HATCH = "////"
SUPPRESSED_COLOR = "#bdbdbd"


def geopandas_missing() -> str | None:
    """None when GeoPandas can be imported, else the one-line message :data:`MAPS_EXTRA`."""
    try:
        import geopandas  # noqa: F401
    except ImportError:
        return MAPS_EXTRA
    return None


def read_boundaries(path: str | Path, key: str = "area"):
    """Read a boundaries file (GeoPandas) with its area codes as text in column ``area``.

    Raises
    ------
    DataError
        The file is missing or unreadable, or has no column ``key`` (naming it).
    """
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise DataError(f"boundaries file not found: {path} ([data] boundaries)")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line
        text = " ".join(str(exc).split())[:160]
        raise DataError(f"boundaries file {path}: could not be read ({text})") from None
    if key not in gdf.columns:
        cols = ", ".join(str(c) for c in gdf.columns if c != "geometry")
        raise DataError(
            f"boundaries file {path}: column '{key}' ([data] boundaries_key) not found; "
            f"columns are {cols}"
        )
    out = gdf[[key, "geometry"]].copy()
    out["area"] = labels(out[key])
    return out[["area", "geometry"]]


def boundaries_record(spec) -> dict[str, str] | None:
    """The spec's boundaries file (absolute path) and key column, as the provenance records
    them for the report (None without ``[data] boundaries``)."""
    data = spec.section("data")
    if "boundaries" not in data:
        return None
    return {
        "path": str(spec.resolve(data["boundaries"])),
        "key": data.get("boundaries_key", "area"),
    }


def map_warnings(spec, areas: Iterable[str]) -> list[str]:
    """Check a spec's boundaries (:func:`check_boundaries`) before any work; its warnings."""
    rec = boundaries_record(spec)
    return [] if rec is None else check_boundaries(rec["path"], rec["key"], areas)


def check_boundaries(path: str | Path, key: str, areas: Iterable[str]) -> list[str]:
    """Read a boundaries file as :func:`read_boundaries` does; the warnings it deserves
    (areas of the area table it does not draw). Without GeoPandas: only that the file exists,
    and the warning that maps need the extra."""
    if (missing := geopandas_missing()) is not None:
        if not Path(path).exists():
            raise DataError(f"boundaries file not found: {path} ([data] boundaries)")
        return [f"[data] boundaries is set but {missing}; the fit goes on without maps"]
    gdf = read_boundaries(path, key)
    absent = [a for a in areas if a not in set(gdf["area"])]
    if absent:
        shown = ", ".join(absent[:5]) + (
            f" (and {len(absent) - 5} more)" if len(absent) > 5 else ""
        )
        return [f"boundaries file {Path(path).name}: no polygon for areas {shown}; not mapped"]
    return []


def _path_of(geom) -> MplPath | None:
    """A Matplotlib path of a (multi)polygon, holes included."""
    polys = getattr(geom, "geoms", [geom])
    verts, codes = [], []
    for poly in polys:
        if getattr(poly, "geom_type", "") != "Polygon" or poly.is_empty:
            continue
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)[:, :2]
            verts.append(xy)
            codes.append([MplPath.MOVETO] + [MplPath.LINETO] * (len(xy) - 2) + [MplPath.CLOSEPOLY])
    if not verts:
        return None
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def choropleth(
    boundaries,
    values: Mapping[str, float],
    label: str,
    title: str,
    predicted: Iterable[str] = (),
    suppressed: Iterable[str] = (),
    cmap: str = "viridis",
    percent: bool = True,
) -> Figure:
    """One map: areas coloured by ``values`` (area -> number), predicted areas hatched,
    suppressed areas grey, areas without a value white; a colour bar labelled ``label``."""
    predicted, suppressed = set(predicted), set(suppressed)
    fig = Figure(figsize=(7.0, 6.5))
    ax = fig.subplots()
    vals = np.array([v for v in values.values() if np.isfinite(v)], float)
    norm = Normalize(
        vmin=float(vals.min()) if len(vals) else 0.0, vmax=float(vals.max()) if len(vals) else 1.0
    )
    colors = colormaps[cmap]
    for area, geom in zip(boundaries["area"], boundaries.geometry, strict=True):
        path = _path_of(geom)
        if path is None:
            continue
        value = values.get(area, np.nan)
        if area in suppressed:
            face, hatch = SUPPRESSED_COLOR, None
        elif np.isfinite(value):
            face, hatch = colors(norm(value)), PREDICTED_HATCH if area in predicted else None
        else:
            face, hatch = "white", None
        edge, lw = ("black", 0.7) if hatch else ("#555555", 0.4)
        ax.add_patch(PathPatch(path, facecolor=face, edgecolor=edge, lw=lw, hatch=hatch))
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel("longitude / easting (boundaries file units)")
    ax.set_ylabel("latitude / northing (boundaries file units)")
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=colors), ax=ax, shrink=0.7)
    bar.set_label(label)
    if percent:
        bar.ax.yaxis.set_major_formatter(lambda x, _pos: f"{100 * x:.3g}%")
    handles = []
    if predicted & set(values):
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="#555555",
                hatch=PREDICTED_HATCH,
                label="no respondents: predicted",
            )
        )
    if suppressed:
        handles.append(
            Patch(
                facecolor=SUPPRESSED_COLOR,
                edgecolor="#555555",
                label="suppressed (few respondents)",
            )
        )
    if handles:
        ax.legend(
            handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=2
        )
    return fig


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "group"


def area_maps(
    boundaries,
    rows: pd.DataFrame,
    group: str,
    predicted: Iterable[str] = (),
    suppressed: Iterable[str] = (),
    of: str = "",
) -> dict[str, Figure]:
    """The prevalence map and the interval-width map of one hidden group.

    Parameters
    ----------
    boundaries : GeoDataFrame
        From :func:`read_boundaries`.
    rows : DataFrame
        The group's per-area ``summary.csv`` rows of quantity ``prevalence`` (suppressed areas
        may be included: their values are empty).
    group : str
    predicted, suppressed : iterable of str
        Areas without respondents; areas suppressed for having too few.
    of : str
        Words naming the denominator population (e.g. "of children").

    Returns
    -------
    dict
        ``{"prevalence": Figure, "interval_width": Figure}``.
    """
    rows = rows.dropna(subset=["estimate"])
    est = dict(zip(rows["area"].astype(str), rows["estimate"].astype(float), strict=True))
    width = dict(
        zip(rows["area"].astype(str), (rows["upper"] - rows["lower"]).astype(float), strict=True)
    )
    prob = float(rows["interval_prob"].iloc[0]) if "interval_prob" in rows and len(rows) else 0.9
    of = f" {of}" if of else ""
    return {
        "prevalence": choropleth(
            boundaries,
            est,
            f"prevalence{of} (posterior median)",
            f"{group}: prevalence per area",
            predicted,
            suppressed,
        ),
        "interval_width": choropleth(
            boundaries,
            width,
            f"width of the {prob:.0%} interval (percentage points)",
            f"{group}: uncertainty (interval width) per area",
            predicted,
            suppressed,
            cmap="magma_r",
        ),
    }


def save_maps(figures: Mapping[str, Figure], folder: str | Path, group: str) -> dict[str, Path]:
    """Write a group's maps as ``<folder>/<group>_<kind>.png``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, fig in figures.items():
        path = folder / f"{_file_name(group)}_{kind}.png"
        out[kind] = atomic_write(
            path, lambda p, f=fig: f.savefig(p, format="png", dpi=120, bbox_inches="tight")
        )
    return out


def grid_geojson(
    areas: Iterable[str],
    key: str = "area",
    columns: int | None = None,
    origin: tuple[float, float] = (117.0, 5.0),
    cell: float = 0.5,
) -> dict[str, Any]:
    """Synthetic boundaries: one square per area on a grid (GeoJSON ``FeatureCollection``),
    row by row from the top left; coordinates in degrees near the Philippines, for examples
    only."""
    areas = [str(a) for a in areas]
    ncol = columns or int(np.ceil(np.sqrt(len(areas) * 1.5)))
    nrow = int(np.ceil(len(areas) / ncol))
    x0, y0 = origin
    features = []
    for i, area in enumerate(areas):
        r, c = divmod(i, ncol)
        x, y = x0 + c * cell, y0 + (nrow - 1 - r) * cell
        ring = [[x, y], [x + cell, y], [x + cell, y + cell], [x, y + cell], [x, y]]
        features.append(
            {
                "type": "Feature",
                "properties": {key: area},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[round(a, 6), round(b, 6)] for a, b in ring]],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_grid_geojson(areas: Iterable[str], path: str | Path, key: str = "area", **grid) -> Path:
    """Write :func:`grid_geojson` to ``path`` (compact JSON, one feature per line)."""
    obj = grid_geojson(areas, key, **grid)
    lines = ",\n".join(json.dumps(f, separators=(",", ":")) for f in obj["features"])
    return write_text('{"type":"FeatureCollection","features":[\n' + lines + "\n]}\n", Path(path))
