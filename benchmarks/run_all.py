"""Run the speed benchmarks and regenerate their page (``make benchmarks``).

    python benchmarks/run_all.py [--out benchmarks/out/latest] [--page docs/benchmarks/latest.md]

Runs, one after the other on this machine: ``speed.py`` (degree, combined and combined with a
shared barrier dispersion at n = 1,000), ``pooled_speed.py`` (150 areas x 30) and
``sweep_speed.py`` (a three-scenario data-only sweep of the Scale of Harm example), then writes
one table per model with sampling time, bulk ESS per second and peak memory beside the previous
release's numbers (``benchmarks/results/refactor_check/old_*.json``, commit b7e3add, measured
on the project's 2-core machine). With pystan installed (``pip install -e '.[bench]'``, which
``make benchmarks`` does) it then runs ``stan_pooled.py``: the pooled model and an independent
Stan implementation of the study's model on the same simulated survey of 150 areas, in the same
run, and adds that table to the page. About 10 minutes on 2 idle cores without the Stan
comparison, about 25 with it.

The other benchmark scripts are studies that take from minutes to many hours each; every one
is in :data:`STUDIES` with the command that made its documented results. ``--list`` prints
them, ``--study NAME`` (repeatable) runs the named ones after the speed set, ``--all`` runs every
one (a day or more on 2 cores). ``tests/test_docs.py`` checks that every script in
``benchmarks/`` is either run by the speed set or listed here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREVIOUS = HERE / "results" / "refactor_check"


#: name -> (script and arguments, what it writes, about how long on 2 idle cores)
STUDIES: dict[str, tuple[list[str], str, str]] = {
    "barrier_100k": (
        ["benchmarks/speed.py", "--models", "combined:group/quadrature", "--n", "100000",
         "--chains", "2", "--draws", "400", "--tune", "400",
         "--out", "benchmarks/results/barrier_grid_n100k"],
        "docs/benchmarks/speed.md (per-group dispersion at n = 100,000)", "7 min",
    ),
    "barrier_gradient": (
        ["benchmarks/barrier_grid_gradient.py", "100000"],
        "console (CPU ms per gradient, docs/benchmarks/speed.md)", "2 min",
    ),
    "pooled_gradient": (
        ["benchmarks/pooled_gradient.py", "--areas", "1600", "--per-area", "100"],
        "benchmarks/out/pooled_gradient (docs/benchmarks/pooled.md)", "5 min",
    ),
    "pooled_national": (
        ["benchmarks/pooled_speed.py", "--areas", "1600", "--per-area", "100",
         "--out", "benchmarks/results/national_cpu"],
        "docs/benchmarks/speed.md (national pooled model)", "hours",
    ),
    "pooled_tune": (
        ["benchmarks/pooled_tune.py", "--out", "benchmarks/results/pooled_tune"],
        "docs/benchmarks/pooled.md (tuning steps)", "10 min",
    ),
    "pooled_tune_seeds": (
        ["benchmarks/pooled_tune.py", "--designs", "150x30", "--seed", "2", "--sampler-seeds",
         "2,3,4,5,6,7", "--settings", "300:1000,1000:1000",
         "--out", "benchmarks/results/pooled_tune_seeds"],
        "docs/benchmarks/pooled.md (tuning steps, a second survey)", "10 min",
    ),
    "pooled_accept": (
        ["benchmarks/pooled_accept.py", "--out", "benchmarks/results/pooled_accept"],
        "docs/benchmarks/pooled.md (target acceptance)", "8 min",
    ),
    "pooled_prior": (
        ["benchmarks/pooled_prior.py", "--out", "benchmarks/results/pooled_prior"],
        "docs/benchmarks/pooled.md (the area-spread prior)", "30 min",
    ),
    "classical": (
        ["benchmarks/compare_classical.py"], "docs/benchmarks/classical_vs_bayesian.md", "15 min",
    ),
    "pooled_vs_killworth": (
        ["benchmarks/pooled_vs_killworth.py", "--seeds", "3", "--draws", "500"],
        "docs/benchmarks/pooled.md", "40 min",
    ),
    "stan_seeds": (
        ["benchmarks/stan_seeds.py", "--seeds", "11,12,13,14,15", "--run"],
        "docs/benchmarks/stan_pooled_seeds.md", "3 hours",
    ),
    "stan_seeds_gamma": (
        ["benchmarks/stan_seeds.py", "--seeds", "21,22,23,24", "--area-dist", "gamma", "--run"],
        "docs/benchmarks/stan_pooled_seeds_gamma.md", "3 hours",
    ),
    "sbc": (
        ["benchmarks/sbc_run.py", "--model", "combined", "--replications", "100", "--n", "300",
         "--draws", "300", "--tune", "400", "--out", "benchmarks/out/sbc_combined"],
        "docs/benchmarks/calibration.md (one model per run; merge seeds with sbc_merge.py)",
        "hours",
    ),
    "roster": (
        ["benchmarks/roster_study.py", "--replications", "3", "--draws", "1000",
         "--out", "benchmarks/out/roster"],
        "docs/guide/roster.md", "10 min per 3 surveys",
    ),
    "evidence": (
        ["benchmarks/evidence_study.py", "--replications", "30", "--out",
         "benchmarks/results/evidence"],
        "docs/guide/evidence.md", "1 hour",
    ),
    "weights": (
        ["benchmarks/weights_study.py", "--replications", "40", "--out",
         "benchmarks/results/weights"],
        "docs/guide/weights.md", "1 hour",
    ),
    "weights_rwanda": (
        ["benchmarks/weights_rwanda.py", "--out", "benchmarks/results/weights_rwanda"],
        "docs/guide/weights.md", "5 min",
    ),
    "validate_large": (
        ["benchmarks/validate_large.py"], "benchmarks/out/validate_large (docs/guide/data-protection.md)",
        "5 min",
    ),
}  # fmt: skip
#: scripts that other scripts run or that merge results (not studies of their own)
HELPERS = {"run_all.py", "sbc_merge.py", "stan_pooled.py", "sweep_speed.py", "speed.py",
           "pooled_speed.py"}  # fmt: skip


def run(args: list[str]) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.is_file() else []


def row(label: str, new: dict | None, old: dict | None, ess_key: str) -> str:
    def cells(d):
        if not d:
            return ["-", "-", "-"]
        ess = d.get(ess_key) or float("nan")
        s = d.get("sample_s") or float("nan")
        mem = d.get("peak_rss_mib") or float("nan")
        return [f"{s:,.1f}", f"{ess / s:,.0f}", f"{mem:,.0f}"]

    return "| " + " | ".join([label, *cells(new), *cells(old)]) + " |"


def page(out: Path) -> str:
    speed = {d["model"]: d for d in _load(out / "speed" / "speed.json")}
    old_speed = {d["model"]: d for d in _load(PREVIOUS / "old_speed.json")}
    pooled = _load(out / "pooled" / "pooled_speed.json")
    old_pooled = _load(PREVIOUS / "old_pooled.json")
    head = (
        "| configuration | sampling (s) | ESS / s | peak memory (MiB) | previous: sampling (s) "
        "| previous: ESS / s | previous: peak memory (MiB) |\n|---|---|---|---|---|---|---|"
    )
    lines = [
        "# Latest benchmark run",
        "",
        f"Generated by `python benchmarks/run_all.py` on {time.strftime('%Y-%m-%d')} "
        '(`make benchmarks`); "previous" is the release before the one-definition refactor '
        "(commit b7e3add) on the same kind of machine. ESS is the smallest bulk ESS of the hidden "
        "sizes (single-area models) or of the area prevalences (pooled).",
        "",
    ]
    for model in ("degree", "combined", "combined:shared"):
        lines += [f"## {model} (n = 1,000)", "", head]
        lines.append(row(model, speed.get(model), old_speed.get(model), "min_ess_bulk_size"))
        lines.append("")
    lines += ["## pooled (150 areas x 30)", "", head]
    lines.append(
        row(
            "pooled",
            pooled[0] if pooled else None,
            old_pooled[0] if old_pooled else None,
            "min_ess_bulk_prev_area",
        )  # fmt: skip
    )
    sweep = out / "sweep_speed" / "sweep_speed.json"
    if sweep.is_file():
        s = json.loads(sweep.read_text())
        lines += [
            "",
            "## A three-scenario data-only sweep (compiled once)",
            "",
            f"Sweep {s['sweep_s']:.0f} s against one fit {s['one_fit_s']:.0f} s "
            f"(ratio {s['ratio']:.2f}); per scenario, time beyond sampling: "
            + ", ".join(f"{x['seconds'] - (x['sample_s'] or 0):.1f} s" for x in s["scenarios"])
            + ".",
        ]
    stan = out / "stan_pooled.md"
    if stan.is_file():  # the pooled model and the study's Stan model, same data, same run
        text = stan.read_text().split("\n", 1)[1]
        lines += ["", "## The pooled model against the study's model in Stan", text]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/out/latest")
    p.add_argument("--page", default="docs/benchmarks/latest.md")
    p.add_argument("--page-only", action="store_true", help="regenerate the page from --out")
    p.add_argument("--study", action="append", default=[], choices=sorted(STUDIES))
    p.add_argument("--all", action="store_true", help="also run every study (a day or more)")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    a = p.parse_args()
    if a.list:
        for name, (args, writes, took) in STUDIES.items():
            print(f"{name:22s} {took:>22s}  python {' '.join(args)}\n{'':47s}-> {writes}")
        return
    out = (ROOT / a.out).resolve()
    if out.is_relative_to(ROOT):  # commands on the page name paths from the repository root
        out = out.relative_to(ROOT)
    if not a.page_only:
        run(["benchmarks/speed.py", "--models", "degree,combined,combined:shared", "--n", "1000",
             "--out", str(out / "speed")])  # fmt: skip
        run(["benchmarks/pooled_speed.py", "--per-area", "30", "--out", str(out / "pooled")])
        run(["benchmarks/sweep_speed.py", "--out", str(out / "sweep_speed")])
        if importlib.util.find_spec("stan") is None:
            print("pystan is not installed (pip install -e '.[bench]'): Stan comparison skipped")
        else:
            # its own results folder: the default one holds the documented run's records
            run(["benchmarks/stan_pooled.py", "--out", str(out / "stan_pooled.md"),
                 "--results", str(out / "stan_pooled")])  # fmt: skip
    (ROOT / a.page).write_text(page(ROOT / out))
    print(f"wrote {a.page}")
    for name in STUDIES if a.all else a.study:
        args, writes, took = STUDIES[name]
        print(f"study {name} (about {took}) -> {writes}", flush=True)
        run(args)


if __name__ == "__main__":
    main()
