"""Building blocks of the HTML pages: rounding of headline numbers, the words that name a
denominator population and the visibility assumption, escaped tables, embedded figures and the
page skeleton (one self-contained file, images embedded as PNG)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesNsumError
from ..result import DENOMINATED, FRAME_POPULATION

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1150px;margin:auto;
padding:0 1em 3em;color:#222;line-height:1.4}
h1{border-bottom:2px solid #2c6fbb;padding-bottom:.2em}h2{margin-top:1.8em;color:#1d4f8a}
.tbl{border-collapse:collapse;font-size:.88em;margin:.5em 0}
.tbl td,.tbl th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
.tbl th{background:#f3f6fa}.tbl td:first-child,.tbl th:first-child{text-align:left}
.bad{color:#b00;font-weight:bold}tr.fail td{background:#fde8e8;color:#900}
.banner{border:3px solid #b00;background:#fde8e8;padding:.6em 1em;margin:1em 0;font-size:1.05em}
.ok{border:2px solid #2a7;background:#eaf8f0;padding:.4em 1em;margin:1em 0}
.note{color:#555;font-size:.9em}.headline{font-size:1.15em;margin:.3em 0}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.82em}
nav a{margin-right:.8em;font-size:.9em}details{margin:.5em 0}
"""


# ---------------------------------------------------------------------------------------------
# rounding of headline numbers
# ---------------------------------------------------------------------------------------------


def _pow10(x: float) -> float:
    return 10.0 ** math.floor(math.log10(abs(x)))


def precision_step(lower: float, upper: float, estimate: float) -> float:
    """Rounding step of an estimate and its interval: the place of the second significant
    figure of the interval width (three significant figures of the estimate if the width is
    zero or undefined)."""
    width = float(upper) - float(lower)
    if np.isfinite(width) and width > 0:
        return _pow10(width) / 10
    if np.isfinite(estimate) and estimate != 0:
        return _pow10(estimate) / 100
    return 1.0


def round_to(x: float, step: float) -> str:
    """``x`` rounded to a multiple of ``step`` (at least one significant figure of ``x`` is
    kept), with thousands separators."""
    if not np.isfinite(x):
        return "n/a"
    if x != 0:
        step = min(step, _pow10(x))
    value = round(x / step) * step
    if step >= 1:
        return f"{int(round(value)):,}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"


def significant(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant figures with thousands separators."""
    if not np.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    return round_to(x, _pow10(x) / 10 ** (digits - 1))


def _interval_label(prob: float, kind: str = "eti") -> str:
    return f"{prob:.0%} {'HDI' if kind == 'hdi' else 'CrI'}"


def denominator_words(label: Any) -> tuple[str, str]:
    """The words naming a denominator population (a ``summary.csv`` ``denominator`` cell).

    Returns
    -------
    (str, str)
        What follows "1 in X" and what follows a prevalence: ``("people", "of the frame
        population")`` for the frame population; ``("of the denominator population
        (2,600,000)", "of the denominator population (2,600,000)")`` for a national number; for
        an area-table column its name as a plural noun, underscores as spaces (``children`` ->
        ``("children", "of children")``); ``("", "")`` when the cell is empty or missing.
    """
    if not isinstance(label, str) or not label.strip():
        return "", ""
    label = label.strip()
    if label == FRAME_POPULATION:
        return "people", f"of the {FRAME_POPULATION}"
    if label.startswith("denominator "):
        words = f"of the denominator population ({label.split(' ', 1)[1]})"
        return words, words
    noun = label.replace("_", " ")
    return noun, f"of {noun}"


def headline(
    row: Mapping[str, Any],
    one_in_x: float | None = None,
    kind: str = "eti",
    denominator: str | None = None,
) -> str:
    """One-line statement of a size: ``"34,000 (90% CrI 28,000 to 40,000); about 1 in 310"``.

    Parameters
    ----------
    row : mapping
        ``estimate``, ``lower``, ``upper`` and ``interval_prob`` (a ``summary.csv`` row of
        quantity ``size``); may hold ``one_in_x`` too.
    one_in_x : float, optional
        Posterior median of "1 in X" (default: ``row["one_in_x"]`` if present).
    kind : {"eti", "hdi"}
        Interval kind, for the label (CrI = equal-tailed credible interval).
    denominator : str, optional
        The row's denominator population (default: ``row["denominator"]`` if present), named
        after "1 in X" (:func:`denominator_words`): "about 1 in 92 children".

    Notes
    -----
    The estimate and both bounds are rounded to the place of the second significant figure of
    the interval width (so a width of 12,000 rounds to thousands); a bound smaller than that
    keeps its first significant figure. "1 in X" is given to two significant figures.
    """
    est, lo, hi = (float(row[k]) for k in ("estimate", "lower", "upper"))
    prob = float(row.get("interval_prob", 0.9))
    step = precision_step(lo, hi, est)
    text = (
        f"{round_to(est, step)} ({_interval_label(prob, kind)} {round_to(lo, step)} to "
        f"{round_to(hi, step)})"
    )
    if one_in_x is None and "one_in_x" in row:
        one_in_x = row["one_in_x"]
    if one_in_x is not None and np.isfinite(float(one_in_x)):
        noun = denominator_words(row.get("denominator") if denominator is None else denominator)
        text += f"; about 1 in {significant(float(one_in_x))}" + (f" {noun[0]}" if noun[0] else "")
    return text


def percent_headline(
    row: Mapping[str, Any], kind: str = "eti", denominator: str | None = None
) -> str:
    """A prevalence row as percentages with the same rounding rule as :func:`headline`; the
    denominator population (``denominator``, default ``row["denominator"]`` if present) is
    named after the estimate: ``"1.08% of children (90% CrI 0.93% to 1.25%)"``."""
    est, lo, hi = (100 * float(row[k]) for k in ("estimate", "lower", "upper"))
    step = precision_step(lo, hi, est)
    prob = float(row.get("interval_prob", 0.9))
    of = denominator_words(row.get("denominator") if denominator is None else denominator)[1]
    return (
        f"{round_to(est, step)}%{' ' + of if of else ''} ({_interval_label(prob, kind)} "
        f"{round_to(lo, step)}% to {round_to(hi, step)}%)"
    )


def prior_text(p: Any) -> str:
    """A prior as recorded in the provenance (``{"dist": ..., params}``) in words."""
    if not isinstance(p, Mapping):
        return str(p)
    dist = p.get("dist", "?")
    if dist == "Fixed":
        return f"fixed at {p.get('value'):g}"
    inner = ", ".join(
        f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
        for k, v in p.items()
        if k != "dist"
    )
    return f"{dist}({inner})"


def _per_group(priors: Mapping[str, Any], name: str, hidden: list[str]) -> dict[str, Any]:
    """Group -> prior of a per-hidden-group parameter (absent groups left out)."""
    value = priors.get(name)
    if isinstance(value, Mapping) and "dist" not in value:
        return {g: value[g] for g in hidden if g in value}
    return {} if value is None else dict.fromkeys(hidden, value)


def _is_one(p: Any) -> bool:
    return isinstance(p, Mapping) and p.get("dist") == "Fixed" and float(p.get("value", 0)) == 1


def visibility_text(priors: Mapping[str, Any], hidden: list[str]) -> str:
    """What the sizes are, in words: visible counts, or corrected for visibility.

    Parameters
    ----------
    priors : mapping
        The fitted model's priors as recorded in ``provenance.json`` (``model`` -> ``priors``).
    hidden : list of str
        The hidden groups.

    Returns
    -------
    str
        For groups whose transmission rate ``tau`` has a prior other than "fixed at 1": the
        sizes are corrected for visibility with that prior (and for the degree ratio ``delta``
        where it is not fixed at 1). For the other groups: the sizes are of the population
        visible to respondents.
    """
    tau = {g: p for g, p in _per_group(priors, "tau", hidden).items() if not _is_one(p)}
    delta = {g: p for g, p in _per_group(priors, "delta", hidden).items() if not _is_one(p)}
    visible = [g for g in hidden if g not in tau]
    out = []
    if tau:
        which = "; ".join(f"{g}: {prior_text(p)}" for g, p in tau.items())
        out.append(
            "Sizes are corrected for visibility: the transmission rate tau (the share of the "
            "group's members whose membership their contacts know) has the prior "
            f"{which}. The data do not inform tau, so these sizes inherit that prior."
        )
    if visible:
        out.append(
            f"Sizes of {', '.join(visible)} are of the population visible to "
            "respondents (members whom respondents know to be in the group): the fit has no "
            "transmission (visibility) correction for them (no tau, or tau fixed at 1). If only "
            "a share tau of members is visible to their contacts, the true sizes are larger by "
            "a factor 1/tau; give [priors.tau] to correct for it."
        )
    if delta:
        which = "; ".join(f"{g}: {prior_text(p)}" for g, p in delta.items())
        out.append(
            "Sizes are corrected for the degree ratio delta (members' networks relative to "
            f"everyone else's), prior {which}."
        )
    return " ".join(out)


def area_table(rows: pd.DataFrame, noun: str = "") -> pd.DataFrame:
    """The per-area table of one hidden group: one row per area with the size and its
    interval, the prevalence and "1 in X" (posterior medians; ``noun`` names the denominator
    population after "1 in X", :func:`denominator_words`) and the largest R-hat.

    Parameters
    ----------
    rows : pandas.DataFrame
        The group's per-area ``summary.csv`` rows (quantities ``size``, ``prevalence``,
        ``one_in_x``).
    noun : str
        Words after "1 in X" (e.g. ``"children"``).
    """
    areas = list(dict.fromkeys(rows["area"]))
    of = {q: rows[rows["quantity"] == q].set_index("area").reindex(areas) for q in DENOMINATED}
    out = pd.DataFrame(index=pd.Index(areas, name="area"))
    if of["size"]["estimate"].notna().any():
        for col, src in (("size", "estimate"), ("size lower", "lower"), ("size upper", "upper")):
            out[col] = of["size"][src]

    def pct(v: float) -> str:
        return f"{100 * v:.3g}%" if np.isfinite(v) else "n/a"

    prev = of["prevalence"]
    if prev["estimate"].notna().any():
        out["prevalence (interval)"] = [
            f"{pct(e)} ({pct(lo)} to {pct(hi)})"
            for e, lo, hi in zip(prev["estimate"], prev["lower"], prev["upper"], strict=True)
        ]
    if of["one_in_x"]["estimate"].notna().any():
        out["1 in X"] = [
            f"1 in {significant(v)}{' ' + noun if noun else ''}" if np.isfinite(v) else ""
            for v in of["one_in_x"]["estimate"]
        ]
    if "r_hat" in rows:
        out["max r_hat"] = rows.groupby("area")["r_hat"].max().reindex(areas)
    return out.reset_index()


# ---------------------------------------------------------------------------------------------
# HTML helpers
# ---------------------------------------------------------------------------------------------


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return "" if np.isnan(x) else str(x)
        ax = abs(x)
        if ax != 0 and (ax >= 1e6 or ax < 1e-3):
            return f"{x:.4g}"
        if ax >= 100:
            return f"{x:,.0f}"
        return f"{x:.4g}"
    if x is None:
        return ""
    return str(x)


def _table(df: pd.DataFrame, row_class=None, max_rows: int | None = None) -> str:
    """An HTML table (escaped); ``row_class(row) -> str`` styles rows."""
    if max_rows is not None and len(df) > max_rows:
        df = df.head(max_rows)
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        cls = row_class(r) if row_class else ""
        cells = "".join(f"<td>{_esc(_fmt(v))}</td>" for v in r.to_numpy())
        body.append(f"<tr class='{cls}'>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return (
        f"<table class='tbl'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _img(fig, alt: str) -> str:
    from .figures import figure_to_base64

    data = figure_to_base64(fig)
    return f"<img alt='{_esc(alt)}' src='data:image/png;base64,{data}'>"


def _read_csv(path: Path) -> pd.DataFrame:
    """A results table with ``area`` and ``group`` as text ("" for national rows)."""
    header = pd.read_csv(path, nrows=0).columns
    text = {c: str for c in ("area", "group") if c in header}
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=text)
    for c in text:
        df[c] = df[c].fillna("")
    return df


class _Page:
    def __init__(self, title: str) -> None:
        self.title = title
        self.sections: list[tuple[str, str, list[str]]] = []
        self.top: list[str] = []

    def section(self, sid: str, title: str) -> list[str]:
        parts: list[str] = []
        self.sections.append((sid, title, parts))
        return parts

    def render(self) -> str:
        nav = "".join(f"<a href='#{sid}'>{_esc(t)}</a>" for sid, t, _ in self.sections)
        out = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{_esc(self.title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{_esc(self.title)}</h1>",
            *self.top,
            f"<nav>{nav}</nav>",
        ]
        for sid, title, parts in self.sections:
            out.append(f"<section id='{sid}'><h2>{_esc(title)}</h2>")
            out.extend(parts)
            out.append("</section>")
        out.append("</body></html>")
        return "\n".join(out)


def _problem(parts: list[str], what: str, exc: Exception) -> None:
    parts.append(f"<p class='bad'>{_esc(what)} could not be produced: {_esc(exc)}</p>")


#: what the report reads of a fit: these groups, without the per-respondent posterior draws
REPORT_GROUPS = ("posterior", "observed_data", "constant_data")


def load_tree(results_dir: str | Path, groups: tuple[str, ...] | None = None) -> xr.DataTree:
    """Open ``posterior.nc`` of a results folder (loaded, file closed).

    ``groups`` (e.g. :data:`REPORT_GROUPS`) loads only those groups, and of the ``posterior``
    only the variables without a ``respondent`` dim: a report of a 4,500-respondent fit then
    reads about 50 MB of a 400 MB file. Default: the whole tree.
    """
    path = Path(results_dir) / "posterior.nc"
    if not path.is_file():
        raise BayesNsumError(f"{results_dir}: no posterior.nc (run 'bayes-nsum fit' first)")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            if groups is None:
                return tree.load()
            parts = {}
            for name in groups:
                if name not in tree.children:
                    continue
                ds = tree[name].to_dataset()
                if name == "posterior":
                    ds = ds.drop_vars([v for v in ds.data_vars if "respondent" in ds[v].dims])
                parts[name] = ds.load()
            out = xr.DataTree.from_dict(parts)
            out.attrs = dict(tree.attrs)
            return out
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: one line
        raise BayesNsumError(f"{path}: not a readable fit ({type(exc).__name__})") from None


def _read_json(path: Path) -> dict:
    """A JSON file of a results folder; a damaged one is one error line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BayesNsumError(f"{path}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise BayesNsumError(f"{path}: not a table of results")
    return data
