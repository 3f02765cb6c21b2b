"""Partially pooled NSUM vs per-area Killworth on the published multi-area simulation design.

Design (Nyarko-Agyei et al., arXiv 2407.13267; :func:`bayes_nsum.simulate.simulate_pooled`):
150 areas whose respondent counts cycle through 5, 10, 15, 20, 30, 50, 100; 4 known and 2 hidden
groups; per-area log-prevalences (sd 0.3); NB2 counts (shape 2 known, 0.5 hidden). For every
area and hidden group we compare the posterior median (pooled model, both anchors) and the
per-area Killworth MLE (:func:`bayes_nsum.classical.per_area_estimates`, rescaled-bootstrap
percentile intervals) with the truth: mean absolute relative error (MARE) of the prevalence and
coverage of the 90% intervals, by respondents per area.

Usage::

    python benchmarks/pooled_vs_killworth.py --quick          # 1 seed, 2 chains x 300 draws
    python benchmarks/pooled_vs_killworth.py --seeds 3 --draws 500 --timing

``--timing`` also fits the 150 areas x 30 respondents Scale-of-Harm-sized design with 4 chains x
1000 draws (1000 tuning) on 2 cores and reports wall time and the smallest bulk ESS over every
area's hidden prevalence. Writes ``docs/benchmarks/pooled.md`` and
``docs/benchmarks/pooled_vs_killworth.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_nsum.analysis import prepare
from bayes_nsum.classical import per_area_estimates
from bayes_nsum.estimators.pooled import PooledModel
from bayes_nsum.simulate import simulate_pooled

SIZES = (5, 10, 15, 20, 30, 50, 100)
ROOT = Path(__file__).resolve().parents[1]


def simulate(seed: int, n_areas: int = 150):
    n_per = np.resize(np.array(SIZES), n_areas)
    return simulate_pooled(n_areas=n_areas, respondents_per_area=n_per, seed=seed)


def load(sim, folder: Path):
    return prepare(sim.write(folder, model="pooled")["spec"]).ard


def truth_table(sim) -> pd.DataFrame:
    t = sim.truth[(sim.truth.area != "") & (sim.truth.quantity == "prevalence")]
    t = t[t.group.isin(sim.hidden)].rename(columns={"value": "truth"})
    return t[["area", "group", "truth"]]


def pooled_rows(ard, anchor: str, settings: dict) -> tuple[pd.DataFrame, dict]:
    t0 = time.perf_counter()
    res = PooledModel(ard, anchor=anchor).fit(**settings)
    wall = time.perf_counter() - t0
    s = res.summary()
    s = s[(s.area != "") & (s.quantity == "prevalence")]
    diag = res.diagnostics()
    info = {
        "wall_s": wall,
        "sample_s": res.timings.get("sample_s", float("nan")),
        "max_r_hat": diag["max_r_hat"],
        "min_ess_prev_area": float(s.ess_bulk.min()),
        "divergences": diag["divergences"],
    }
    return s[["area", "group", "estimate", "lower", "upper"]], info


def killworth_rows(ard, n_boot: int, seed: int) -> pd.DataFrame:
    tab = per_area_estimates(
        ard.counts,
        ard.area,
        ard.area_table,
        list(ard.hidden),
        denominators=ard.denominators or None,
        known_groups=list(ard.known),
        n_boot=n_boot,
        interval_prob=0.9,
        seed=seed,
    )
    tab = tab[(tab["area"] != "") & (tab["quantity"] == "prevalence")]
    return tab[["area", "group", "estimate", "lower", "upper"]]


def score(est: pd.DataFrame, truth: pd.DataFrame, n_per: pd.Series, method: str) -> pd.DataFrame:
    m = truth.merge(est, on=["area", "group"], how="left")
    m["n_per_area"] = m.area.map(n_per)
    m["abs_rel_err"] = np.abs(m.estimate / m.truth - 1)
    m["covered"] = (m.lower <= m.truth) & (m.truth <= m.upper)
    m["method"] = method
    return m


def timing_run(seed: int, respondents_per_area: int = 30) -> dict:
    """The timing fit of ``--timing``: :func:`pooled_speed.run` on 150 areas at the defaults."""
    from pooled_speed import run

    return run(150, respondents_per_area, seed, "nutpie", draws=1000, tune=1000)


def plot(scores: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method, g in scores.groupby("method", sort=False):
        agg = g.groupby("n_per_area").agg(mare=("abs_rel_err", "mean"), cov=("covered", "mean"))
        axes[0].plot(agg.index, agg["mare"], marker="o", label=method)
        axes[1].plot(agg.index, agg["cov"], marker="o", label=method)
    axes[0].set(xscale="log", xlabel="respondents per area", ylabel="MARE of area prevalence")
    axes[1].axhline(0.9, color="grey", ls="--", lw=1)
    axes[1].set(
        xscale="log", xlabel="respondents per area", ylabel="90% interval coverage", ylim=(0, 1.02)
    )
    axes[0].legend()
    fig.suptitle("Hidden-group prevalence per area: pooled NSUM vs per-area Killworth")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(scores: pd.DataFrame, fits: list[dict], timing: dict | None, args) -> str:
    tab = (
        scores.groupby(["method", "n_per_area"], sort=False)
        .agg(
            MARE=("abs_rel_err", "mean"),
            coverage90=("covered", "mean"),
            undefined=("estimate", lambda s: int(s.isna().sum())),
        )
        .unstack("method")
    )
    methods = list(dict.fromkeys(scores.method))
    lines = [
        "| respondents per area | "
        + " | ".join(f"MARE {m}" for m in methods)
        + " | "
        + " | ".join(f"cover90 {m}" for m in methods)
        + " |",
        "|---" * (1 + 2 * len(methods)) + "|",
    ]
    for n in tab.index:
        row = [f"{tab.loc[n, ('MARE', m)]:.3f}" for m in methods]
        row += [f"{tab.loc[n, ('coverage90', m)]:.2f}" for m in methods]
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    overall = scores.groupby("method", sort=False).agg(
        MARE=("abs_rel_err", "mean"), cov=("covered", "mean")
    )
    lines.append(
        "| **all** | "
        + " | ".join(f"**{overall.loc[m, 'MARE']:.3f}**" for m in methods)
        + " | "
        + " | ".join(f"**{overall.loc[m, 'cov']:.2f}**" for m in methods)
        + " |"
    )
    fit_lines = [
        f"| {f['seed']} | {f['anchor']} | {f['wall_s']:.0f} | {f['sample_s']:.0f} | "
        f"{f['min_ess_prev_area']:.0f} | {f['max_r_hat']:.3f} | {f['divergences']} |"
        for f in fits
    ]
    n_cells = int(len(scores) / len(methods))
    out = [
        "# Pooled NSUM vs per-area Killworth",
        "",
        "Generated by `python benchmarks/pooled_vs_killworth.py "
        + " ".join(args.argv)
        + "` "
        + f"({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        "2 shared CPU cores).",
        "",
        "Design: `simulate_pooled` with 150 areas whose numbers of respondents cycle through "
        "5, 10, 15, 20, 30, 50, 100 (about 21 areas each, 4,930 respondents), 4 known and 2 hidden "
        "groups (median prevalence 0.1% and 1%), area sd 0.3 of every log-prevalence, NB2 shapes "
        "2 (known) and 0.5 (hidden), log-degree N(5.5, 0.6). "
        f"Seeds: {', '.join(str(s) for s in args.seed_list)}; {n_cells} (area, hidden group) "
        "cells in all. Pooled model fitted with nutpie, "
        f"{args.chains} chains x {args.draws} draws ({args.draws} tuning) -- modest because the "
        "CPU was shared; per-area Killworth (MLE) with "
        f"{args.n_boot} rescaled-bootstrap replicates, 90% percentile intervals. MARE = mean "
        "absolute relative error of the posterior median (Killworth: point estimate) of each "
        "area's hidden prevalence; cover90 = share of 90% intervals holding the truth.",
        "",
        *lines,
        "",
        "![MARE and coverage by respondents per area](pooled_vs_killworth.png)",
        "",
        "Fits:",
        "",
        "| seed | anchor | wall s | sampling s | min bulk ESS (area prevalences) | max R-hat | "
        "divergences |",
        "|---|---|---|---|---|---|---|",
        *fit_lines,
        "",
        "## The two anchors",
        "",
        '* `anchor = "likelihood"` (default): the known groups\' per-area shares N_jk / P_j are '
        "data in the likelihood; only hidden groups have pooled area effects, and respondents' "
        "degrees are learnt on the known groups' absolute scale.",
        '* `anchor = "posthoc"` (the original study): every group has pooled area effects, the '
        "mean log-degree is fixed (5.5) and each draw is rescaled per area afterwards so that the "
        "known groups sum to their sizes. The known sizes then inform the hidden estimates only "
        "through that ratio, and areas with few respondents inherit the noise of their pooled "
        "known-group rates.",
        "",
        *calibration_lines(scores),
        "",
        "Per-area Killworth intervals for areas with few respondents are often degenerate (every "
        "bootstrap replicate gives 0 when no respondent of the area reported the hidden group), "
        "which is why its coverage collapses there; a zero estimate has relative error 1.",
    ]
    if timing is not None:
        met = timing["min_ess_bulk_prev_area"] >= 400 and timing["wall_s"] < 300
        out += [
            "",
            "## Speed: 150 areas x 30 respondents, 4 chains x 1000 draws",
            "",
            "`simulate_pooled(n_areas=150, respondents_per_area=30, nb_shape={hidden_1: 0.3, "
            "hidden_2: 0.5})` (4,500 respondents, 4 known + 2 hidden groups, the sparser hidden "
            'group at NB shape 0.3), `anchor = "likelihood"`, nutpie, 4 chains x (1000 tuning + '
            "1000 draws), `cores = 2`, on the shared 2-core machine (other jobs were running, "
            "so these times are upper bounds)"
            + (
                f", numbers read from `{args.timing_json}`, saved from an earlier `--timing` run "
                "of this script:"
                if getattr(args, "timing_json", None)
                else ":"
            ),
            "",
            f"* wall time {timing['wall_s']:.0f} s (compile {timing.get('compile_s', 0):.0f} s, "
            f"sampling {timing.get('sample_s', 0):.0f} s);",
            f"* smallest bulk ESS over every area's hidden prevalence "
            f"{timing['min_ess_bulk_prev_area']:.0f} (R-hat <= "
            f"{timing['max_r_hat_prev_area']:.3f}); over all parameters "
            f"{timing['min_ess_bulk_all']:.0f} (R-hat <= {timing['max_r_hat_all']:.3f}); "
            f"{timing['divergences']} divergences;",
            f"* target (< 300 s, ESS >= 400): {'met' if met else 'NOT met'}.",
        ]
    return "\n".join(out) + "\n"


def calibration_lines(scores: pd.DataFrame) -> list[str]:
    """Which anchor is better calibrated on this run, with the Monte Carlo error of coverage."""
    out = []
    for method, g in scores.groupby("method", sort=False):
        if not method.startswith("pooled"):
            continue
        cov, n = float(g.covered.mean()), len(g)
        se = np.sqrt(0.9 * 0.1 / n)
        out.append(
            f"* {method}: coverage {cov:.3f} of {n} cells (nominal 0.90, binomial se {se:.3f}), "
            f"MARE {g.abs_rel_err.mean():.3f}, median interval width / truth "
            f"{float(((g.upper - g.lower) / g.truth).median()):.2f}."
        )
    return [
        "",
        "Calibration on this run (cells within one fit share the global parameters, so the "
        "binomial se understates the real Monte Carlo error):",
        "",
        *out,
    ]


def main(argv: list[str] | None = None) -> None:
    import sys

    import matplotlib

    matplotlib.use("Agg")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 2 chains x 300 draws")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--anchors", default="likelihood,posthoc")
    p.add_argument("--timing", action="store_true", help="also time the 150x30 4x1000 fit")
    p.add_argument(
        "--timing-json",
        help="report the timing saved by an earlier --timing run (JSON) instead of re-running it",
    )
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks"))
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.seeds, args.chains, args.draws = 1, 2, 300
    args.seed_list = list(range(1, args.seeds + 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores, fits = [], []
    for seed in args.seed_list:
        sim = simulate(seed)
        truth = truth_table(sim)
        n_per = sim.survey.groupby("area").size()
        with tempfile.TemporaryDirectory() as d:
            ard = load(sim, Path(d))
        for anchor in args.anchors.split(","):
            settings = dict(
                chains=args.chains,
                draws=args.draws,
                tune=args.draws,
                cores=2,
                progress=False,
                seed=seed,
            )
            est, info = pooled_rows(ard, anchor, settings)
            fits.append({"seed": seed, "anchor": anchor, **info})
            scores.append(score(est, truth, n_per, f"pooled ({anchor})"))
            print(f"seed {seed} {anchor}: {info}", flush=True)
        scores.append(score(killworth_rows(ard, args.n_boot, seed), truth, n_per, "killworth"))
    scores = pd.concat(scores, ignore_index=True)
    timing = timing_run(seed=1) if args.timing else None
    if timing:
        print("timing:", json.dumps(timing), flush=True)
        (out / "pooled_timing.json").write_text(json.dumps(timing, indent=1), encoding="utf-8")
    elif args.timing_json:
        timing = json.loads(Path(args.timing_json).read_text(encoding="utf-8"))
    plot(scores, out / "pooled_vs_killworth.png")
    (out / "pooled.md").write_text(markdown(scores, fits, timing, args), encoding="utf-8")
    print((out / "pooled.md").read_text())


if __name__ == "__main__":
    main()
