"""Paper-ready comparison tables: one row per group and quantity, one column block per prior
set, model or scenario, written as CSV, Markdown and LaTeX.

The Markdown and LaTeX cells read "estimate (lower to upper)", rounded like the report's
headlines (:func:`~bayes_nsum.report.page.headline`: to the second significant figure of the
interval width); a fit that did not pass its convergence checks is marked with a dagger and a
footnote. The CSV keeps every number unrounded.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import write_csv, write_text
from .page import precision_step, round_to

STATS = ("estimate", "lower", "upper")
QUANTITY_NAMES = {"size": "size", "prevalence": "prevalence", "one_in_x": "1 in X"}


def wide_table(long: pd.DataFrame, by: str, quantities=("size", "prevalence")) -> pd.DataFrame:
    """Long comparison rows (``by``, ``area``, ``group``, ``quantity``, ``estimate``, ``lower``,
    ``upper``, optional ``converged``) as one row per (group, quantity) of the national rows
    and one column per (``by`` value, statistic)."""
    t = long[long["quantity"].isin(quantities)].copy()
    if "area" in t:
        t = t[t["area"].fillna("").astype(str) == ""]
    t[by] = t[by].astype(str)
    order = list(dict.fromkeys(t[by]))
    wide = t.pivot_table(index=["group", "quantity"], columns=by, values=list(STATS), sort=False)
    wide = wide.swaplevel(0, 1, axis=1)
    wide = wide.reindex(columns=pd.MultiIndex.from_product([order, STATS]))
    return wide.reindex(sorted(wide.index, key=lambda gq: (gq[0], list(quantities).index(gq[1]))))


def _cell(est: float, lo: float, hi: float, quantity: str) -> str:
    if pd.isna(est):
        return "--"
    if quantity == "prevalence":
        est, lo, hi = 100 * est, 100 * lo, 100 * hi
    step = precision_step(lo, hi, est)
    unit = "%" if quantity == "prevalence" else ""
    return f"{round_to(est, step)}{unit} ({round_to(lo, step)} to {round_to(hi, step)}{unit})"


def _rows(wide: pd.DataFrame, unconverged: set[str]) -> tuple[list[str], list[list[str]]]:
    labels = list(dict.fromkeys(wide.columns.get_level_values(0)))
    header = ["group", "quantity"] + [
        f"{lab}{' †' if lab in unconverged else ''}" for lab in labels
    ]
    rows = []
    for (group, quantity), r in wide.iterrows():
        cells = [_cell(r[(lab, "estimate")], r[(lab, "lower")], r[(lab, "upper")], quantity)
                 for lab in labels]  # fmt: skip
        rows.append([str(group), QUANTITY_NAMES.get(quantity, quantity), *cells])
    return header, rows


def markdown(wide: pd.DataFrame, unconverged: set[str] = frozenset(), prob: float = 0.9) -> str:
    header, rows = _rows(wide, set(unconverged))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    lines.append(f"Posterior median ({prob:.0%} interval).")
    if unconverged:
        lines[-1] += " † did not pass its convergence checks: do not report."
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("†", r"$^\dagger$"),
    ):
        text = text.replace(a, b)  # fmt: skip
    return text


def latex(wide: pd.DataFrame, unconverged: set[str] = frozenset(), prob: float = 0.9) -> str:
    header, rows = _rows(wide, set(unconverged))
    cols = "ll" + "r" * (len(header) - 2)
    out = [r"\begin{tabular}{" + cols + "}", r"\hline"]
    out.append(" & ".join(_tex(h) for h in header) + r" \\")
    out.append(r"\hline")
    out += [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
    out += [r"\hline", r"\end{tabular}"]
    note = f"Posterior median ({prob:.0%} interval)."
    if unconverged:
        note += r" $^\dagger$ did not pass its convergence checks."
    out.append("% " + note)
    return "\n".join(out) + "\n"


def write_wide(
    long: pd.DataFrame, by: str, out: str | Path, stem: str, prob: float = 0.9
) -> dict[str, Path]:
    """Write ``<stem>_wide.csv``, ``.md`` and ``.tex`` of a comparison (see :func:`wide_table`);
    rows of ``long`` with ``converged`` false mark their column."""
    out = Path(out)
    wide = wide_table(long, by)
    bad = set()
    if "converged" in long:
        conv = long.assign(c=long["converged"].astype(str).str.lower())
        bad = {str(v) for v in conv.loc[~conv["c"].isin(["true", "1", "1.0"]), by]}
    flat = wide.copy()
    flat.columns = [f"{lab}: {stat}" for lab, stat in wide.columns]
    paths = {"csv": write_csv(flat.reset_index(), out / f"{stem}_wide.csv")}
    paths["md"] = write_text(markdown(wide, bad, prob), out / f"{stem}_wide.md")
    paths["tex"] = write_text(latex(wide, bad, prob), out / f"{stem}_wide.tex")
    return paths
