"""Self-contained HTML report of a fit: one file, images embedded as PNG, opens offline.

``write_report(results_dir)`` reads the files ``bayes-nsum fit`` wrote (summary.csv,
diagnostics.json, provenance.json, posterior.nc, pre-processing logs, classical_estimates.csv and,
if present, internal_consistency.csv) and writes ``report.html`` with: headline estimates,
convergence diagnostics (failures flagged at the top), the data and its pre-processing, the model
and every prior, posterior plots of sizes and prevalences, per-area intervals and maps
(:mod:`.areas`; maps written to ``maps/`` too, with ``[data] boundaries``), posterior
predictive checks (``ppc.csv``, written by the fit), internal consistency, sensitivity, and the
software versions, spec and data hashes. The report reads the results folder only: it computes
no predictive check and needs no spec or survey file.

Headline numbers are rounded to what their precision supports (:func:`headline`).

The report holds no respondent-level information: group summaries of the answers, never a
respondent's row or id (respondent-level tables, written only on request, stay in the folder's
``restricted/`` subfolder and are not shown), and per-area estimates only for areas with enough
respondents (suppressed areas are listed by name).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BayesNsumError
from ..io import write_text
from ..result import SUMMARY_COLUMNS
from .areas import area_section, boundaries_of, maps_section, respondents_per_area
from .page import (
    REPORT_GROUPS,
    _esc,
    _fmt,
    _img,
    _Page,
    _problem,
    _read_csv,
    _read_json,
    _table,
    headline,
    load_tree,
    percent_headline,
    prior_text,
    visibility_text,
)

# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def _diagnostics_section(parts: list[str], diag: dict) -> None:
    rows = []
    for c in diag.get("checks", []):
        rows.append(
            {
                "check": c.get("check"),
                "value": c.get("value"),
                "threshold": c.get("threshold"),
                "rule": c.get("direction"),
                "passed": "yes" if c.get("passed") else "FAILED",
                "worst parameters": ", ".join(str(w) for w in (c.get("worst") or [])[:5]),
            }
        )
    df = pd.DataFrame(rows)
    parts.append(_table(df, lambda r: "fail" if r["passed"] == "FAILED" else ""))
    parts.append(
        f"<p class='note'>{_fmt(diag.get('n_draws', ''))} posterior draws. R-hat is rank-"
        "normalised; ESS bulk and tail must exceed the thresholds for every reported quantity; "
        "any divergent transition fails the fit.</p>"
    )


def _denominators(summary: pd.DataFrame, tree) -> dict[str, str]:
    """Hidden group -> its denominator population: the ``denominator`` column of summary.csv,
    else (a folder written before it existed) the fit's ``constant_data``."""
    if "denominator" in summary.columns:
        rows = summary[(summary["quantity"] == "size") & (summary["area"] == "")]
        got = {str(g): str(v) for g, v in zip(rows["group"], rows["denominator"], strict=True)}
        got = {g: v for g, v in got.items() if v and v != "nan"}
        if got:
            return got
    if tree is None or "constant_data" not in tree.children:
        return {}
    from ..result import NSUMResult

    return NSUMResult(tree=tree).denominators()


def _estimates_section(parts, summary: pd.DataFrame, kind: str, d: Path, prov: dict, tree) -> None:
    nat = summary[summary["area"] == ""]
    sizes = nat[nat["quantity"] == "size"]
    dens = _denominators(summary, tree)
    for _, r in sizes.iterrows():
        g = r["group"]
        inv = nat[(nat["group"] == g) & (nat["quantity"] == "one_in_x")]
        prev = nat[(nat["group"] == g) & (nat["quantity"] == "prevalence")]
        inv_x = float(inv["estimate"].iloc[0]) if len(inv) else None
        text = headline(r, inv_x, kind, denominator=dens.get(g, ""))
        line = f"<p class='headline'><b>{_esc(g)}</b>: {_esc(text)}"
        if len(prev):
            prev_text = percent_headline(prev.iloc[0], kind, denominator=dens.get(g, ""))
            line += f"; prevalence {_esc(prev_text)}"
        parts.append(line + "</p>")
    priors = (prov.get("model") or {}).get("priors") or {}
    if visible := visibility_text(priors, list(dict.fromkeys(sizes["group"]))):
        parts.append(f"<p>{_esc(visible)}</p>")
    parts.append(
        "<p class='note'>Size in people: posterior median with the credible interval, rounded "
        "to the second significant figure of the interval width. Prevalence is relative to "
        "each group's denominator population (named in the denominator column: the frame "
        'population unless the spec names one); "1 in X" is its inverse.</p>'
    )
    main = nat[nat["quantity"].isin(["size", "prevalence", "one_in_x"])]
    # the summary.csv columns, less the (empty) area of national rows
    cols = [c for c in SUMMARY_COLUMNS if c != "area" and c in main.columns]
    parts.append(_table(main[cols]))
    other = nat[~nat["quantity"].isin(["size", "prevalence", "one_in_x"])]
    if len(other):
        parts.append("<details><summary>Other parameters</summary>")
        parts.append(_table(other[[c for c in cols if c in other.columns]]))
        parts.append("</details>")
    cpath = d / "classical_estimates.csv"
    if cpath.is_file():
        cl = _read_csv(cpath)
        if "area" in cl.columns:
            cl = cl[cl["area"] == ""]
        parts.append("<h3>Classical baseline (Killworth scale-up)</h3>")
        parts.append(_table(cl))
    elif (d / "classical_estimates_error.json").is_file():
        err = json.loads((d / "classical_estimates_error.json").read_text())
        parts.append(
            f"<p class='note'>Classical baseline not computed: {_esc(err.get('error'))}</p>"
        )


def _data_section(parts, tree, prov: dict, info_known: list[str], d: Path) -> None:
    n_raw = prov.get("n_respondents_raw")
    n = prov.get("n_respondents")
    if tree is not None and "observed_data" in tree.children:
        obs = tree["observed_data"].to_dataset()
        y = obs["y"].transpose("respondent", "group")
        n = y.sizes["respondent"]
        known_sizes = {}
        if "constant_data" in tree.children and "known_size" in tree["constant_data"]:
            ks = tree["constant_data"]["known_size"]
            known_sizes = {
                str(k): float(v) for k, v in zip(ks["known"].values, ks.values, strict=True)
            }
        rows = []
        for g in y["group"].values:
            col = y.sel(group=g).values.astype(float)
            ok = col[~np.isnan(col)]
            row = {
                "group": str(g),
                "type": "known" if str(g) in info_known else "hidden",
                "mean answer": float(ok.mean()) if len(ok) else np.nan,
                "share zero": float((ok == 0).mean()) if len(ok) else np.nan,
                "90th percentile": float(np.quantile(ok, 0.9)) if len(ok) else np.nan,
                "missing": int(np.isnan(col).sum()),
            }
            if str(g) in known_sizes:
                row["known size"] = known_sizes[str(g)]
            rows.append(row)
        parts.append(_table(pd.DataFrame(rows)))
    parts.append(
        f"<p>{_fmt(n)} respondents analysed"
        + (f" ({_fmt(n_raw)} in the survey before pre-processing)" if n_raw is not None else "")
        + ". Answers are counts of people known in each group.</p>"
    )
    tp = ((prov.get("spec") or {}).get("data") or {}).get("total_population")
    if tp is not None:
        parts.append(f"<p>Frame population N = {_fmt(float(tp))}.</p>")
    roster = prov.get("roster")
    if roster:
        parts.append("<h3>Known-group sizes from the household roster</h3>")
        parts.append(
            f"<p>{_esc(roster.get('estimator', ''))}; populations from "
            f"{_esc(roster.get('population', ''))}; {_fmt(roster.get('members'))} members "
            f"rostered in {_fmt(roster.get('areas_with_roster'))} areas.</p>"
        )
        cats = roster.get("categories") or {}
        parts.append(_table(pd.DataFrame({"column": list(cats), "members": list(cats.values())})))
        if (d / "roster_log.csv").is_file():
            parts.append("<details><summary>Every derived value (roster_log.csv)</summary>")
            parts.append(_table(_read_csv(d / "roster_log.csv")))
            parts.append("</details>")
    parts.append("<h3>Pre-processing</h3>")
    steps = (prov.get("preprocess") or {}).get("steps") or []
    if steps:
        srows = [
            {
                "rule": s.get("rule"),
                "settings": json.dumps(s.get("settings"), default=str),
                "answers / respondents changed": sum((s.get("counts") or {}).values()),
            }
            for s in steps
        ]
        parts.append(_table(pd.DataFrame(srows)))
    log = d / "preprocess_log.csv"
    if log.is_file():
        lg = pd.read_csv(log, keep_default_na=False)
        changed = lg[lg["n_changed"] > 0] if "n_changed" in lg.columns else lg
        if len(changed):
            parts.append("<p>Changes per rule and group:</p>")
            parts.append(_table(changed))
        else:
            parts.append("<p>No answer was changed by pre-processing.</p>")
    if (d / "restricted").is_dir():
        parts.append(
            "<p class='note'>Respondent-level tables (pre-processing changes, network sizes) "
            "are in the folder's restricted/ subfolder; they are not shown in this report.</p>"
        )
    if not steps and not log.is_file():
        parts.append("<p class='note'>No pre-processing record in this folder.</p>")


def _model_section(parts, prov: dict, tree) -> None:
    cfg = prov.get("model") or {}
    name = cfg.get("model") or (tree.attrs.get("model") if tree is not None else None)
    parts.append(
        f"<p>Model: <b>{_esc(name)}</b>"
        + (f"; prior set: {_esc(cfg.get('prior_set'))}" if cfg.get("prior_set") else "")
        + "</p>"
    )
    if cfg.get("options"):
        parts.append(
            _table(
                pd.DataFrame([{"option": k, "value": str(v)} for k, v in cfg["options"].items()])
            )
        )
    rows = []
    for param, value in (cfg.get("priors") or {}).items():
        if isinstance(value, Mapping) and "dist" not in value:
            for g, p in value.items():
                rows.append({"parameter": param, "group": g, "prior": prior_text(p)})
        else:
            rows.append({"parameter": param, "group": "(all)", "prior": prior_text(value)})
    if rows:
        parts.append("<h3>Priors (every parameter)</h3>")
        parts.append(_table(pd.DataFrame(rows)))
        parts.append(
            "<p class='note'>Transmission rates (tau) and degree ratios (delta) are not "
            "identified by the data: their posteriors equal their priors and the sizes inherit "
            "them.</p>"
        )
    else:
        parts.append("<p class='note'>No model configuration recorded in the provenance.</p>")


def _ppc_section(parts, d: Path) -> pd.DataFrame | None:
    from .figures import ppc_distribution_figure, ppc_statistics_figure

    path = d / "ppc.csv"
    if not path.is_file():
        err = d / "ppc_error.json"
        why = json.loads(err.read_text()).get("error", "?") if err.is_file() else "no ppc.csv"
        parts.append(f"<p class='bad'>Posterior predictive checks not available: {_esc(why)}</p>")
        return None
    table = pd.read_csv(path)
    extreme = table[(table["p_value"] < 0.025) | (table["p_value"] > 0.975)]
    parts.append(
        "<p>Replicated surveys are drawn from the fitted model (one per posterior draw; new "
        "respondents with degrees from the fitted degree distribution; top-coded like the data). "
        "Each statistic of the observed answers is compared with its replicated distribution; "
        "the p-value is P(replicated &gt; observed) + P(equal)/2: values near 0 or 1 show a "
        "feature of the data the model does not reproduce.</p>"
    )
    if len(extreme):
        parts.append(
            f"<p class='bad'>{len(extreme)} of {len(table)} checks have p-values below 0.025 "
            "or above 0.975:</p>"
        )
        parts.append(_table(extreme))
    else:
        parts.append("<p class='ok'>No predictive p-value below 0.025 or above 0.975.</p>")
    parts.append(_img(ppc_statistics_figure(table), "posterior predictive checks"))
    parts.append(_img(ppc_distribution_figure(table), "distribution of answers"))
    parts.append("<details><summary>All checks (ppc.csv)</summary>")
    parts.append(
        _table(table, lambda r: "fail" if (r["p_value"] < 0.025 or r["p_value"] > 0.975) else "")
    )
    parts.append("</details>")
    return table


def _ic_section(parts, d: Path) -> None:
    from .figures import internal_consistency_figure

    table = pd.read_csv(d / "internal_consistency.csv")
    meta = {}
    if (d / "internal_consistency.json").is_file():
        meta = json.loads((d / "internal_consistency.json").read_text())
    method = meta.get("method") or ("bayesian" if "lower" in table.columns else "classical")
    what = (
        "Bayesian refit with each known group held out"
        if method == "bayesian"
        else "classical scale-up with each known group held out"
    )
    parts.append(f"<p>Method: {_esc(what)}.</p>")
    summ = meta.get("summary")
    if summ:
        parts.append(_table(pd.DataFrame([summ])))
    parts.append(_img(internal_consistency_figure(table), "internal consistency"))
    parts.append(_table(table))


def _provenance_section(parts, prov: dict, tree) -> None:
    versions = prov.get("versions") or {}
    if versions:
        parts.append("<h3>Software versions</h3>")
        parts.append(
            _table(pd.DataFrame([{"package": k, "version": v} for k, v in versions.items()]))
        )
    keys = ["spec_path", "spec_hash", "data_hash", "raw_data_hash", "command", "created"]
    rows = [{"item": k, "value": str(prov.get(k))} for k in keys if k in prov]
    if tree is not None:
        rows.append(
            {
                "item": "bayes_nsum version (fit)",
                "value": str(tree.attrs.get("bayes_nsum_version", "")),
            }
        )
    if rows:
        parts.append("<h3>Identification</h3>")
        parts.append(_table(pd.DataFrame(rows)))
    if prov.get("sampler"):
        parts.append("<h3>Sampler settings</h3>")
        parts.append(
            _table(
                pd.DataFrame([{"setting": k, "value": str(v)} for k, v in prov["sampler"].items()])
            )
        )
    if prov.get("timings"):
        parts.append(
            _table(
                pd.DataFrame(
                    [{"timing": k, "seconds": float(v)} for k, v in prov["timings"].items()]
                )
            )
        )
    if prov.get("spec"):
        parts.append("<h3>Spec</h3>")
        try:
            import tomli_w

            text = tomli_w.dumps(prov["spec"])
        except (TypeError, ValueError):
            text = json.dumps(prov["spec"], indent=1, default=str)
        parts.append(f"<pre>{_esc(text)}</pre>")
    if not prov:
        parts.append("<p class='bad'>No provenance.json in this folder.</p>")


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


def write_report(results_dir: str | Path, label: str | Path | None = None) -> Path:
    """Write ``report.html`` in a results folder written by ``bayes-nsum fit``.

    Parameters
    ----------
    results_dir : path
        The folder (needs summary.csv and diagnostics.json; the other files add sections).
    label : path, optional
        The folder's name in the report (default: ``results_dir``; the workflow writes the
        report in a staging folder that becomes ``label``).

    Returns
    -------
    Path
        The report file.
    """
    d = Path(results_dir)
    if not d.is_dir():
        raise BayesNsumError(f"results folder not found: {d}")
    for name in ("summary.csv", "diagnostics.json"):
        if not (d / name).is_file():
            raise BayesNsumError(f"{d}: no {name}; is this a folder written by 'bayes-nsum fit'?")
    try:
        summary = _read_csv(d / "summary.csv")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BayesNsumError(f"{d / 'summary.csv'}: not readable ({type(exc).__name__})") from None
    diag = _read_json(d / "diagnostics.json")
    prov = _read_json(d / "provenance.json") if (d / "provenance.json").is_file() else {}
    tree = load_tree(d, REPORT_GROUPS) if (d / "posterior.nc").is_file() else None
    cfg = prov.get("model") or {}
    model_name = cfg.get("model") or (tree.attrs.get("model") if tree is not None else "?")
    out_cfg = (prov.get("spec") or {}).get("output") or {}
    kind = str(out_cfg.get("interval", "eti"))
    prob = float(
        out_cfg.get("interval_prob", summary["interval_prob"].iloc[0] if len(summary) else 0.9)
    )
    hidden = list(
        cfg.get("hidden") or dict.fromkeys(summary.loc[summary["quantity"] == "size", "group"])
    )

    page = _Page(f"bayes_nsum report: {model_name} model")
    page.top.append(
        f"<p class='note'>Results folder: {_esc(Path(label or d).resolve())}; report written "
        f"{_esc(time.strftime('%Y-%m-%d %H:%M'))}.</p>"
    )
    if not diag.get("passed", False):
        failed = [c["check"] for c in diag.get("checks", []) if not c.get("passed")]
        advice = "".join(f"<li>{_esc(a)}</li>" for a in diag.get("advice", []))
        page.top.append(
            "<div class='banner'><b>CONVERGENCE CHECKS FAILED</b> "
            f"({_esc(', '.join(failed))}): do not report these numbers before fixing the fit."
            f"<ul>{advice}</ul></div>"
        )
    else:
        page.top.append("<div class='ok'>All convergence checks passed.</div>")

    _estimates_section(page.section("estimates", "Estimates"), summary, kind, d, prov, tree)

    parts = page.section("diagnostics", "Convergence diagnostics")
    _diagnostics_section(parts, diag)

    parts = page.section("posteriors", "Posterior distributions")
    if tree is not None and "posterior" in tree.children and hidden:
        from .figures import posterior_figure

        try:
            post = tree["posterior"].to_dataset()
            parts.append(
                _img(
                    posterior_figure(post, hidden, prob, summary),
                    "posterior distributions of sizes and prevalences",
                )
            )
        except (KeyError, ValueError) as exc:
            _problem(parts, "The posterior plot", exc)
    else:
        parts.append("<p class='note'>No posterior draws (posterior.nc) in this folder.</p>")

    if (summary["area"] != "").any():
        dens = _denominators(summary, tree)
        least = int(out_cfg.get("min_area_respondents", 10))
        resp = respondents_per_area(tree)
        area_section(page.section("areas", "Per-area estimates"), summary, dens, least, resp)
        if (shapes := boundaries_of(prov)) is not None:
            maps_section(page.section("maps", "Maps"), summary, dens, shapes, d, resp)

    parts = page.section("ppc", "Posterior predictive checks")
    try:
        _ppc_section(parts, d)
    except (BayesNsumError, KeyError, ValueError) as exc:
        _problem(parts, "The predictive checks", exc)

    if (d / "internal_consistency.csv").is_file():
        parts = page.section("consistency", "Internal consistency")
        try:
            _ic_section(parts, d)
        except (KeyError, ValueError) as exc:
            _problem(parts, "The internal-consistency section", exc)

    if (d / "sensitivity.csv").is_file() or (d / "sensitivity_error.json").is_file():
        _sensitivity_section(page.section("sensitivity", "Prior and likelihood sensitivity"), d)

    if (d / "evidence_contribution.csv").is_file() or (d / "evidence_error.json").is_file():
        _evidence_section(page.section("evidence", "Secondary data: each source's contribution"), d)

    _data_section(
        page.section("data", "Data and pre-processing"), tree, prov, list(cfg.get("known") or []), d
    )
    _model_section(page.section("model", "Model and priors"), prov, tree)
    _provenance_section(page.section("provenance", "Software, spec and data"), prov, tree)
    return write_text(page.render(), d / "report.html")


def _sensitivity_section(parts: list[str], d: Path) -> None:
    """Power-scaling sensitivity (written by the fit as sensitivity.csv), problems flagged."""
    if not (d / "sensitivity.csv").is_file():
        err = json.loads((d / "sensitivity_error.json").read_text()).get("error", "?")
        parts.append(f"<p class='bad'>Sensitivity could not be computed: {_esc(err)}</p>")
        return
    t = _read_csv(d / "sensitivity.csv")
    parts.append(
        "<p>Power-scaling sensitivity (Kallioinen et al. 2024): how much each quantity's "
        "posterior moves when the prior or the likelihood is raised to a power near 1. "
        "A quantity driven by its prior rather than the data (e.g. a transmission rate) is "
        "expected to be prior-sensitive; a prior-data conflict needs attention.</p>"
    )
    flagged = t["diagnosis"].astype(str).str.contains("conflict|strong prior", regex=True)
    if flagged.any():
        names = ", ".join(
            f"{r.variable}{'[' + str(r.group) + ']' if str(r.group) else ''}"
            for r in t[flagged].itertuples()
        )
        parts.append(f"<p class='bad'>Prior-sensitive or in conflict: {_esc(names)}.</p>")
    parts.append(_table(t, row_class=lambda r: "fail" if flagged.loc[r.name] else None))


def _evidence_section(parts: list[str], d: Path) -> None:
    """Each evidence source's contribution (evidence_contribution.csv, written by the fit)."""
    if not (d / "evidence_contribution.csv").is_file():
        err = json.loads((d / "evidence_error.json").read_text()).get("error", "?")
        parts.append(f"<p class='bad'>The contributions could not be computed: {_esc(err)}</p>")
        return
    t = _read_csv(d / "evidence_contribution.csv")
    parts.append(
        "<p>The size of each hidden group with every evidence source (the fit) and without one "
        "(refitted, or the fit's draws reweighted: see method; width_ratio = "
        "interval width without / with). Reweighting cannot reach values the fit excluded: it "
        "understates an informative source's contribution; rows with Pareto k above 0.7 are "
        "marked unreliable. A refit ([evidence] contribution = 'refit') is exact.</p>"
    )
    bad = ~t["reliable"].astype(bool)
    parts.append(_table(t, row_class=lambda r: "fail" if bad.loc[r.name] else None))


def comparison_html(comp) -> str:
    """Self-contained HTML page of a :class:`~bayes_nsum.compare.Comparison`."""
    from .figures import comparison_figure, internal_consistency_figure

    page = _Page("bayes_nsum model comparison")
    t = comp.table
    if not t["converged"].all():
        bad = ", ".join(t.loc[~t["converged"], "model"])
        page.top.append(
            f"<div class='banner'><b>Fits that failed their convergence checks:</b> "
            f"{_esc(bad)}. Their LOO values are not trustworthy.</div>"
        )
    if (t["n_bad_k"] > 0).any():
        page.top.append(
            "<div class='banner'>Some respondents have high Pareto k: the LOO "
            "estimate is unreliable for them (see the table).</div>"
        )
    parts = page.section("ranking", "Ranking by PSIS-LOO")
    shown = [
        c
        for c in [
            "rank",
            "model",
            "model_name",
            "elpd_loo",
            "se",
            "elpd_diff",
            "dse",
            "p_loo",
            "weight",
            "n_bad_k",
            "max_k",
            "ic_method",
            "ic_mean_abs_rel_error",
            "ic_coverage",
            "converged",
            "reused",
            "warning",
        ]
        if c in t.columns
    ]
    parts.append(_table(t[shown], lambda r: "" if bool(r.get("converged", True)) else "fail"))
    parts.append(
        "<p class='note'>Full table, with the output folders: compare.csv. Rows in red: fits "
        "that failed their convergence checks (hollow markers in the plot).</p>"
    )
    parts.append(_img(comparison_figure(t), "model comparison"))
    parts.append(
        "<p class='note'>elpd_loo: expected log predictive density of a new respondent's answers "
        "(degree integrated out), estimated by Pareto-smoothed importance sampling; elpd_diff "
        "and dse: difference from the best model and its standard error. ic_*: internal "
        "consistency (each known group held out).</p>"
    )
    for note in comp.notes:
        parts.append(f"<p class='note'>{_esc(note)}</p>")
    if comp.ic:
        parts = page.section("consistency", "Internal consistency per model")
        for name, table in comp.ic.items():
            parts.append(f"<h3>{_esc(name)}</h3>")
            parts.append(
                _img(
                    internal_consistency_figure(table, f"Internal consistency: {name}"),
                    f"internal consistency of {name}",
                )
            )
            parts.append(_table(table))
    return page.render()


__all__ = ["write_report", "comparison_html", "load_tree"]
