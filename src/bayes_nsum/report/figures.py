"""Figures of the report: predictive checks, posteriors, per-area intervals, internal consistency
and model comparison.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
state, no display needed); :func:`figure_to_base64` turns one into a PNG for embedding in HTML.
Every axis is labelled with its quantity and unit.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..io import atomic_write

OBS_COLOR = "#c0392b"
REP_COLOR = "#2c6fbb"
EXTREME_P = 0.025

STAT_LABELS = {
    "mean": "mean answer (people known)",
    "sd": "standard deviation of answers (people known)",
    "share_zero": "share of respondents answering 0",
    "p90": "90th percentile of answers (people known)",
}


def figure_to_base64(fig: Figure, dpi: int = 100) -> str:
    """PNG of a figure, base64-encoded (for ``<img src="data:image/png;base64,...">``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _thousands(x, _pos=None) -> str:
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:g}M"
    if ax >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _percent(x, _pos=None) -> str:
    return f"{100 * x:.3g}%"


def ppc_statistics_figure(ppc: pd.DataFrame, statistics=tuple(STAT_LABELS)) -> Figure:
    """Observed statistic (red cross) against its replicated distribution (blue interval and
    dot), one panel per statistic, one row per group. Groups whose predictive p-value is below
    0.025 or above 0.975 are marked with an asterisk."""
    stats = [s for s in statistics if s in set(ppc["statistic"])]
    groups = list(dict.fromkeys(ppc["group"]))
    fig = Figure(figsize=(4.2 * max(len(stats), 1), 0.9 + 0.32 * len(groups)))
    axes = fig.subplots(1, max(len(stats), 1), sharey=True, squeeze=False)[0]
    ypos = np.arange(len(groups))[::-1]
    for ax, stat in zip(axes, stats, strict=False):
        sub = ppc[ppc["statistic"] == stat].set_index("group").reindex(groups)
        ax.hlines(
            ypos,
            sub["lower"],
            sub["upper"],
            color=REP_COLOR,
            lw=3,
            alpha=0.6,
            label="replicated (interval)",
        )
        ax.plot(sub["replicated_mean"], ypos, "o", color=REP_COLOR, ms=4, label="replicated mean")
        ax.plot(sub["observed"], ypos, "x", color=OBS_COLOR, ms=7, mew=2, label="observed")
        ax.set_xlabel(STAT_LABELS.get(stat, stat))
        ax.grid(axis="x", alpha=0.3)
        if stat == "share_zero":
            ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    labels = []
    for g in groups:
        p = ppc[(ppc["group"] == g) & ppc["statistic"].isin(stats)]["p_value"]
        flag = bool(((p < EXTREME_P) | (p > 1 - EXTREME_P)).any())
        labels.append(f"{g} *" if flag else g)
    axes[0].set_yticks(ypos, labels)
    axes[0].set_ylabel("group (* = a p-value below 0.025 or above 0.975)")
    axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=3, fontsize=8, frameon=False)
    fig.suptitle(
        "Posterior predictive checks: observed versus replicated surveys",
        y=1.0 + 0.35 / max(len(groups), 1),
    )
    return fig


def ppc_distribution_figure(ppc: pd.DataFrame, max_cols: int = 4) -> Figure:
    """Distribution of answers per group: observed share of respondents in each answer bin
    (red) and the replicated interval and mean (blue)."""
    dist = ppc[ppc["statistic"].str.startswith("dist:")]
    groups = list(dict.fromkeys(dist["group"]))
    ncol = min(max_cols, max(len(groups), 1))
    nrow = max(math.ceil(len(groups) / ncol), 1)
    fig = Figure(figsize=(3.3 * ncol, 2.6 * nrow + 0.4))
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False).ravel())
    for ax, g in zip(axes, groups, strict=False):
        sub = dist[dist["group"] == g]
        bins = [s.split(":", 1)[1] for s in sub["statistic"]]
        x = np.arange(len(bins))
        ax.bar(x, sub["observed"], color=OBS_COLOR, alpha=0.45, label="observed")
        err = np.vstack(
            [sub["replicated_mean"] - sub["lower"], sub["upper"] - sub["replicated_mean"]]
        )
        ax.errorbar(
            x,
            sub["replicated_mean"],
            yerr=np.clip(err, 0, None),
            fmt="o",
            ms=3,
            color=REP_COLOR,
            label="replicated",
        )
        ax.set_xticks(x, bins, fontsize=7)
        ax.set_title(g, fontsize=9)
        ax.set_xlabel("answer (people known)", fontsize=8)
        ax.set_ylabel("share of respondents", fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(_percent))
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    if groups:
        axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def posterior_figure(
    posterior, hidden: list[str], prob: float = 0.9, summary: pd.DataFrame | None = None
) -> Figure:
    """Histograms of the posterior draws of each hidden group's national size and prevalence,
    with the posterior median (solid) and the interval bounds (dashed) from ``summary`` when
    given (else the equal-tailed interval of the draws)."""
    quantities = [q for q in ("size", "prevalence") if q in posterior]
    fig = Figure(figsize=(4.6 * max(len(quantities), 1), 2.4 * max(len(hidden), 1) + 0.3))
    axes = fig.subplots(max(len(hidden), 1), max(len(quantities), 1), squeeze=False)
    for i, h in enumerate(hidden):
        for j, q in enumerate(quantities):
            ax = axes[i, j]
            da = posterior[q]
            if "hidden" in da.dims:
                da = da.sel(hidden=h)
            x = np.asarray(da.values, float).ravel()
            ax.hist(x, bins=50, color=REP_COLOR, alpha=0.6)
            row = None
            if summary is not None:
                m = summary[
                    (summary["group"] == h)
                    & (summary["quantity"] == q)
                    & (summary["area"].fillna("") == "")
                ]
                row = m.iloc[0] if len(m) else None
            if row is not None:
                med, lo, hi = float(row["estimate"]), float(row["lower"]), float(row["upper"])
            else:
                tail = (1 - prob) / 2
                med = float(np.median(x))
                lo, hi = (float(v) for v in np.quantile(x, [tail, 1 - tail]))
            ax.axvline(med, color="k", lw=1.5)
            for v in (lo, hi):
                ax.axvline(v, color="k", lw=1, ls="--")
            if q == "size":
                ax.set_xlabel(f"{h}: size (people)")
                ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
            else:
                ax.set_xlabel(f"{h}: prevalence (% of denominator population)")
                ax.xaxis.set_major_formatter(FuncFormatter(_percent))
            ax.set_ylabel("posterior draws (count)")
            ax.set_yticks([])
    fig.suptitle(f"Posterior distributions (line: median; dashed: {prob:.0%} interval)")
    fig.tight_layout()
    return fig


#: most areas drawn in one per-area plot; beyond it, the highest and lowest half of that each
MAX_AREAS_SHOWN = 200


def area_interval_figure(
    rows: pd.DataFrame,
    group: str,
    quantity: str = "prevalence",
    predicted=(),
    max_areas: int = MAX_AREAS_SHOWN,
) -> Figure:
    """Per-area estimates of one hidden group (summary rows), sorted, with their intervals and
    every area's name (small font, tall figure: readable at 150 areas; beyond ``max_areas``
    the highest and lowest ``max_areas / 2``). Areas in ``predicted`` (no respondents) are
    drawn hollow and their names end in an asterisk."""
    sub = rows.dropna(subset=["estimate"]).sort_values("estimate").reset_index(drop=True)
    n_all = len(sub)
    if n_all > max_areas:
        half = max_areas // 2
        sub = pd.concat([sub.iloc[:half], sub.iloc[-half:]], ignore_index=True)
    n = len(sub)
    fig = Figure(figsize=(7.5, max(2.5, 1.2 + 0.125 * n)))
    ax = fig.subplots()
    y = np.arange(n)
    pred = sub["area"].astype(str).isin({str(a) for a in predicted}).to_numpy()
    ax.hlines(y, sub["lower"], sub["upper"], color=REP_COLOR, lw=1.3, alpha=0.7)
    ax.plot(sub["estimate"][~pred], y[~pred], "o", color="k", ms=2.5, label="with respondents")
    if pred.any():
        ax.plot(
            sub["estimate"][pred],
            y[pred],
            "o",
            mfc="white",
            mec="k",
            ms=3,
            label="no respondents (predicted) *",
        )
        ax.legend(fontsize=7, loc="lower right")
    prob = float(sub["interval_prob"].iloc[0]) if "interval_prob" in sub and n else 0.9
    if quantity == "prevalence":
        ax.set_xlabel(f"{group}: prevalence (% of the area's denominator population)")
        ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    elif quantity == "size":
        ax.set_xlabel(f"{group}: size (people)")
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    else:
        ax.set_xlabel(f"{group}: {quantity}")
    names = [f"{a} *" if p else str(a) for a, p in zip(sub["area"], pred, strict=True)]
    ax.set_yticks(y, names, fontsize=6 if n <= 160 else 5)
    ax.set_ylim(-0.8, n - 0.2)
    shown = f"{n_all} areas" if n == n_all else f"highest and lowest {n // 2} of {n_all} areas"
    ax.set_ylabel(f"area (sorted by estimate; {shown})")
    ax.set_title(f"Per-area posterior medians and {prob:.0%} intervals")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def internal_consistency_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Held-out estimates of the known groups against their true sizes (log scales), with the
    intervals when the table has ``lower``/``upper``; the diagonal is perfect agreement."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    t = table.dropna(subset=["true_size", "estimate"])
    x, y = t["true_size"].to_numpy(float), t["estimate"].to_numpy(float)
    if {"lower", "upper"} <= set(t.columns) and t[["lower", "upper"]].notna().all().all():
        err = np.vstack([y - t["lower"].to_numpy(float), t["upper"].to_numpy(float) - y])
        ax.errorbar(
            x,
            y,
            yerr=np.clip(err, 0, None),
            fmt="o",
            color=REP_COLOR,
            ms=4,
            capsize=2,
            label="held-out estimate and interval",
        )
    else:
        ax.plot(x, y, "o", color=REP_COLOR, ms=4, label="held-out estimate")
    pos = np.concatenate([x[x > 0], y[y > 0]])
    if len(pos):
        lo, hi = pos.min() / 1.5, pos.max() * 1.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="estimate = true size")
        ax.set_xscale("log")
        ax.set_yscale("log")
    for xi, yi, g in zip(x, y, t["group"], strict=True):
        ax.annotate(str(g), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("true size of the known group (people)")
    ax.set_ylabel("estimate with the group held out (people)")
    ax.set_title(title or "Internal consistency: each known group held out in turn")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def comparison_figure(table: pd.DataFrame) -> Figure:
    """Each model's ELPD (PSIS-LOO) difference from the best model with the standard error of
    the difference (the paired SE, much smaller than each model's own SE), best at the top.
    Models whose fit failed its convergence checks (``converged`` False) get a hollow marker
    and "(not converged)" beside their name."""
    t = table.sort_values("rank")
    ok = (
        np.array([str(v).lower() not in ("false", "0", "0.0") for v in t["converged"]])
        if "converged" in t
        else np.ones(len(t), bool)
    )
    fig = Figure(figsize=(6.5, 1.3 + 0.45 * len(t)))
    ax = fig.subplots()
    y = np.arange(len(t))[::-1]
    for good in (True, False):
        m = ok == good
        if not m.any():
            continue
        ax.errorbar(
            t["elpd_diff"].to_numpy()[m],
            y[m],
            xerr=2 * t["dse"].to_numpy()[m],
            fmt="o",
            color=REP_COLOR,
            mfc=REP_COLOR if good else "white",
            capsize=3,
            label="difference ± 2 SE of the difference"
            + ("" if good else " (hollow: not converged)"),
        )
    ax.axvline(0, color="k", lw=1)
    names = [f"{m}{'' if g else ' (not converged)'}" for m, g in zip(t["model"], ok, strict=True)]
    ax.set_yticks(y, names)
    ax.set_xlabel("ELPD difference from the best model, PSIS-LOO (log-probability units)")
    ax.set_ylabel("model")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    if not ok.all():
        ax.set_title("Fits that failed their convergence checks: LOO not trustworthy", color="#b00")
    fig.tight_layout()
    return fig


__all__ = [
    "figure_to_base64",
    "ppc_statistics_figure",
    "ppc_distribution_figure",
    "posterior_figure",
    "area_interval_figure",
    "internal_consistency_figure",
    "comparison_figure",
]


def plot_prior_predictive(
    sets: xr.Dataset | Mapping[str, xr.Dataset], path: str | Path, observed: dict | None = None
) -> Path:
    """Plot prior predictive intervals (one colour per prior set) beside the survey.

    Three panels: the per-draw median degree; the mean answer to each group (log scale, survey
    values as black dots); the hidden groups' sizes. Bars are 90% intervals with the median.

    Parameters
    ----------
    sets : Dataset or mapping label -> Dataset
        Output(s) of :func:`sample_prior_predictive`.
    path : path
        Image file to write (PNG).
    observed : dict, optional
        The survey's statistics
        (:func:`bayes_nsum.checks.prior_predictive.observed_stats`).

    Returns
    -------
    Path
        The image written.
    """
    import matplotlib
    from matplotlib.figure import Figure

    if isinstance(sets, xr.Dataset):
        sets = {str(sets.attrs.get("prior_set", "prior")): sets}
    labels = list(sets)
    first = sets[labels[0]]
    groups = [str(g) for g in first["group"].values]
    hidden = [str(h) for h in first["hidden"].values]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = Figure(figsize=(15, max(4.0, 0.28 * len(groups) + 1.5)))
    axes = fig.subplots(
        1,
        3,
        gridspec_kw={"width_ratios": [1, 2, 1.4]},
    )
    width = 0.8 / max(len(labels), 1)

    def bars(ax, values_of, names, obs=None):
        for j, lab in enumerate(labels):
            vals = [values_of(sets[lab], n) for n in names]
            q = np.array([np.quantile(v, [0.05, 0.5, 0.95]) for v in vals])
            pos = np.arange(len(names)) + (j - (len(labels) - 1) / 2) * width
            ax.errorbar(
                q[:, 1],
                pos,
                xerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]],
                fmt="o",
                ms=3,
                color=colors[j % len(colors)],
                label=lab,
            )
        if obs is not None:
            ax.plot(obs, np.arange(len(names)), "kD", ms=4, label="survey")
        ax.set_yticks(np.arange(len(names)), names)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xscale("log")

    bars(
        axes[0],
        lambda ds, _n: ds["median_degree"].values,
        ["median degree"],
        [observed["median_degree"]] if observed else None,
    )
    axes[0].set_title("degree (per-draw median)")
    bars(
        axes[1],
        lambda ds, g: np.maximum(ds["mean_answer"].sel(group=g).values, 1e-4),
        groups,
        [max(observed["mean_answer"][g], 1e-4) for g in groups] if observed else None,
    )
    axes[1].set_title("mean answer per group (floored at 1e-4)")
    bars(axes[2], lambda ds, h: ds["size"].sel(hidden=h).values, hidden)
    axes[2].set_title("hidden group size")
    handles, names = axes[1].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    fig.suptitle("Prior predictive checks (90% intervals, median)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out = atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    return out


def _log_axis(ax) -> None:
    """Log x axis (call after plotting) with plain tick labels at 1, 2 and 5 times powers of
    ten, or at every integer multiple when the axis spans less than a factor of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    narrow = lo > 0 and hi / lo < 10
    subs = tuple(float(k) for k in range(1, 10)) if narrow else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.6g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_tornado(effects: pd.DataFrame, path: str | Path, note: str = "") -> Path:
    """Write :func:`tornado_figure` as a PNG; returns the path."""
    fig = tornado_figure(effects, note)
    return atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))


def tornado_figure(effects: pd.DataFrame, note: str = "") -> Figure:
    """Tornado plot: per hidden group, the range each factor spans relative to the baseline.

    Bars run from ``low_ratio`` to ``high_ratio`` on a log axis (1 = the baseline estimate),
    largest range on top, labelled with the levels at each end. The half of a bar whose end
    comes from a scenario that failed its convergence checks (``low_converged`` or
    ``high_converged`` False) is hatched and its level marked "(not converged)"; a panel whose
    baseline scenario did not converge says so in its title. ``note`` is printed above the
    panels.
    """
    from matplotlib.figure import Figure

    def flags(e: pd.DataFrame, col: str) -> np.ndarray:
        if col not in e:
            return np.ones(len(e), bool)
        return np.array([str(v).lower() not in ("false", "0", "0.0") for v in e[col]])

    groups = list(dict.fromkeys(effects["group"]))
    n_f = max(int(effects.groupby("group").size().max()), 1)
    fig = Figure(figsize=(10, 1.2 + len(groups) * (0.45 * n_f + 0.9) + (0.4 if note else 0)))
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, group in zip(axes[:, 0], groups, strict=True):
        e = effects[effects["group"] == group].iloc[::-1]
        y = np.arange(len(e))
        lo = e["low_ratio"].astype(float).to_numpy()
        hi = e["high_ratio"].astype(float).to_numpy()
        ok_lo, ok_hi = flags(e, "low_converged"), flags(e, "high_converged")
        halves = ((lo, np.ones_like(lo), ok_lo), (np.ones_like(hi), hi, ok_hi))
        for a, b, ok in halves:  # baseline -> low end, baseline -> high end
            for good in (True, False):
                m = ok == good
                ax.barh(
                    y[m],
                    (b - a)[m],
                    left=a[m],
                    color="#4c72b0" if good else "#c0392b",
                    alpha=0.8 if good else 0.35,
                    hatch=None if good else "///",
                    height=0.6,
                )
        for yi, (a, b, la, lb) in enumerate(
            zip(lo, hi, e["low_level"], e["high_level"], strict=True)
        ):
            la = f"{_short(la)}{'' if ok_lo[yi] else ' (not converged)'}"
            lb = f"{_short(lb)}{'' if ok_hi[yi] else ' (not converged)'}"
            ax.text(a, yi, f"{la} ", ha="right", va="center", fontsize=7)
            ax.text(b, yi, f" {lb}", ha="left", va="center", fontsize=7)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(y, list(e["factor"]))
        ax.set_xscale("log")
        finite = np.concatenate([lo, hi])
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if len(finite):
            ax.set_xlim(finite.min() / 1.8, finite.max() * 1.8)
        _log_axis(ax)
        base = float(e["baseline"].iloc[0])
        title = f"{group}: {e['quantity'].iloc[0]} relative to baseline ({base:,.4g})"
        if not flags(e, "baseline_converged").all():
            title += " - baseline scenario NOT CONVERGED"
        ax.set_title(title, fontsize=10)
    axes[-1, 0].set_xlabel("estimate / baseline estimate (other factors at baseline)")
    if note:
        fig.suptitle(note, fontsize=10, color="#b00")
    fig.tight_layout()
    return fig


def _short(value, width: int = 40) -> str:
    """A level label for a plot: whole when short, else cut at a word with an ellipsis."""
    text = str(value)
    return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + "…"


def _label(value) -> str:
    """A table cell as text: tables and lists as compact JSON, missing as ""."""
    import json

    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (str, bool, int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def plot_comparison(table: pd.DataFrame, path: str | Path, quantity: str = "size") -> Path:
    """Write :func:`prior_sets_figure` as a PNG; returns the path."""
    fig = prior_sets_figure(table, quantity)
    return atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))


def prior_sets_figure(table: pd.DataFrame, quantity: str = "size") -> Figure:
    """Side-by-side estimates and intervals of every prior set, one panel per hidden group.

    Filled markers: converged fits; hollow markers: convergence checks failed (those sets are
    also listed in the panel title, as are sets whose fit failed).
    """
    import matplotlib
    from matplotlib.figure import Figure

    sets = list(dict.fromkeys(table["prior_set"].map(_label)))
    t = table[
        (table["quantity"] == quantity)
        & (table["area"].fillna("") == "")
        & (table["status"] == "complete")
    ]
    groups = list(dict.fromkeys(t["group"])) or ["(none)"]
    failed = sorted(set(table.loc[table["status"] != "complete", "prior_set"].map(_label)))
    bad = t["converged"].astype(str).str.lower().isin(["false", "0", "0.0"])
    unconverged = sorted(set(t.loc[bad, "prior_set"].map(_label)))
    ncol = min(len(groups), 2)
    nrow = -(-len(groups) // ncol)
    fig = Figure(figsize=(6.5 * ncol, nrow * (0.45 * len(sets) + 1.6) + 0.6))
    axes = fig.subplots(
        nrow,
        ncol,
        squeeze=False,
        sharey=True,
    )
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax in axes.ravel()[len(groups) :]:
        ax.set_visible(False)
    for ax, group in zip(axes.ravel(), groups, strict=False):
        g = t[t["group"] == group]
        for j, name in enumerate(sets):
            r = g[g["prior_set"].map(_label) == name]
            if r.empty:
                continue
            r = r.iloc[0]
            est, lo, hi = float(r["estimate"]), float(r["lower"]), float(r["upper"])
            ok = str(r["converged"]).lower() in ("true", "1", "1.0")
            c = colors[j % len(colors)]
            ax.errorbar(
                [est],
                [j],
                xerr=[[est - lo], [hi - est]],
                fmt="o",
                color=c,
                mfc=c if ok else "white",
                ms=6,
                capsize=3,
            )
        ax.set_yticks(np.arange(len(sets)), sets)
        ax.set_ylim(-0.6, len(sets) - 0.4)
        _log_axis(ax)
        title = f"{group} ({quantity})"
        if failed:
            title += f"\nfailed: {', '.join(failed)}"
        if unconverged:
            title += f"\nnot converged: {', '.join(unconverged)}"
        ax.set_title(title, fontsize=10)
    fig.suptitle("Estimate and interval under each prior set (hollow: not converged)")
    fig.tight_layout()
    return fig
