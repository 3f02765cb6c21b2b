"""Self-contained HTML report of a fit (tables and embedded images; opens offline)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from .io import write_text


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda x: f"{x:,.4g}", border=0,
                      classes="tbl", na_rep="")


def write_report(results_dir: str | Path) -> Path:
    """Write ``report.html`` in a results folder written by ``bayes-nsum fit``."""
    d = Path(results_dir)
    summary = pd.read_csv(d / "summary.csv", keep_default_na=False, na_values=[""])
    diag = json.loads((d / "diagnostics.json").read_text())
    prov = json.loads((d / "provenance.json").read_text()) if (d / "provenance.json").exists() \
        else {}
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>bayes_nsum report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             ".tbl{border-collapse:collapse}.tbl td,.tbl th{padding:2px 8px;border-bottom:1px "
             "solid #ddd}.bad{color:#b00;font-weight:bold}</style></head><body>",
             "<h1>bayes_nsum report</h1>"]
    if not diag.get("passed", False):
        parts.append("<p class='bad'>Convergence checks FAILED: do not report these numbers "
                     "before fixing the fit.</p>")
    parts.append("<h2>Estimates</h2>")
    parts.append(_table(summary))
    parts.append("<h2>Diagnostics</h2>")
    parts.append(_table(pd.DataFrame(diag["checks"])))
    model = prov.get("model", {})
    if model:
        parts.append("<h2>Model and priors</h2>")
        parts.append(f"<p>Model: <b>{html.escape(str(model.get('model')))}</b></p>")
        parts.append("<pre>" + html.escape(json.dumps(model.get("priors"), indent=1)) + "</pre>")
    for name in ("preprocess_log.csv",):
        if (d / name).exists():
            parts.append("<h2>Pre-processing log</h2>")
            parts.append(_table(pd.read_csv(d / name, keep_default_na=False)))
    parts.append("<h2>Provenance</h2><pre>" +
                 html.escape(json.dumps({k: v for k, v in prov.items() if k != "spec"},
                                        indent=1, default=str)) + "</pre>")
    parts.append("</body></html>")
    return write_text("\n".join(parts), d / "report.html")
