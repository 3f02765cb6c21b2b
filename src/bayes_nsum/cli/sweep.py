"""``bayes-nsum sweep SPEC SWEEP``: a grid of scenarios through Dask (see :mod:`bayes_nsum.sweep`).

Exit status: 0 success; 1 some scenarios failed; 2 bad input (including a factor that no
scenario's model uses: checked before anything runs); 3 some scenarios finished but failed their
convergence checks (unless ``--allow-unconverged``). Failures take precedence over unconverged
scenarios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    EXIT_SCENARIOS_FAILED,
    EXIT_UNCONVERGED,
    add_sampler_options,
    positive_int,
    print_table,
    sampler_overrides,
)


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (default: a local cluster)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="worker processes of the local Dask cluster (default 2)",
    )
    add_sampler_options(p, " (every scenario)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    from ..spec import load_spec
    from ..sweep import Scenario, load_sweep, run_sweep

    spec = load_spec(args.spec)
    plan = load_sweep(args.sweep, spec)
    for warning in plan.warnings:
        print(f"bayes-nsum: warning: {warning}", file=sys.stderr)
    for key, value in sampler_overrides(args).items():
        if value is not None:
            plan.fixed[f"sampler.{key}"] = value
    out = Path(args.out) if args.out else spec.output_dir() / "sweeps" / Path(args.sweep).stem
    n = len(plan.scenarios())
    print(f"{n} scenarios ({plan.design}) -> {out}")
    res = run_sweep(
        plan,
        out,
        scheduler=args.scheduler,
        workers=args.workers,
        echo=None if args.quiet else print,
    )
    if len(res.effects):
        print("\nLargest effects on each hidden size (other factors at baseline):")
        top = res.effects.groupby("group", sort=False).head(3).copy()
        for side in ("low", "high"):  # levels whose scenario did not converge are marked
            top[f"{side}_level"] = [
                f"{level}{'' if ok else ' (not converged)'}"
                for level, ok in zip(top[f"{side}_level"], top[f"{side}_converged"], strict=True)
            ]
        print_table(top, ["group", "factor", "baseline", "low_level", "low", "high_level", "high"])
    print(
        f"\n{res.n_complete}/{res.n_scenarios} scenarios complete "
        f"({res.n_skipped} already done before this run), {res.n_failed} failed, "
        f"{res.n_unconverged} not converged"
    )
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.nc'}, {out / 'tornado.png'}")
    if res.unconverged:
        print("SCENARIOS THAT FAILED THEIR CONVERGENCE CHECKS:", file=sys.stderr)
        for u in res.unconverged:
            label = Scenario.from_overrides(u["overrides"]).label()
            print(f"  not converged: {u['scenario']} ({label})", file=sys.stderr)
    if res.failures:
        print("FAILED SCENARIOS:", file=sys.stderr)
        for f in res.failures:
            print(f"  {f['scenario']}: {f['error']}", file=sys.stderr)
        return EXIT_SCENARIOS_FAILED
    if res.unconverged and not args.allow_unconverged:
        return EXIT_UNCONVERGED
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser(
        "sweep",
        help="run a grid of scenarios (sweep file) through Dask",
        description="Run every scenario of a sweep file (TOML [grid] of dotted spec paths) on a "
        "Dask cluster, skipping scenarios already finished; write sweep.csv, sweep.nc and a "
        "tornado plot. A factor that no scenario's model uses is an error before anything runs. "
        "Exit 1 if some scenario failed, 3 if some finished but failed their convergence checks.",
    )
    s.add_argument("spec")
    s.add_argument("sweep", help="sweep file (TOML)")
    s.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="exit 0 even if some scenarios failed their convergence checks (still flagged)",
    )
    add_cluster_options(s)
    s.set_defaults(func=run)
