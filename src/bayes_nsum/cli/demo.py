"""``bayes-nsum demo``: the embedded example analysis end to end."""

from __future__ import annotations

import os
from pathlib import Path

from .common import print_table


def run(args) -> int:
    from ..analysis import run_estimate, run_fit
    from ..demo import demo_spec

    out = Path(args.out)
    spec = demo_spec(out)
    print("== Classical (Killworth) estimates on the bundled example survey ==")
    table, outdir = run_estimate(spec, out / "classical")
    print_table(table[table.quantity == "size"])
    if args.classical_only:
        return 0
    print("\n== Bayesian degree model (nutpie) on the same survey ==")
    fast = os.environ.get("BAYES_NSUM_FAST") == "1"
    sampler = {
        "draws": 200 if fast else 1000,
        "tune": 200 if fast else 1000,
        "chains": 2 if fast else 4,
        "progress": not args.quiet,
    }
    result, diag, outdir = run_fit(
        spec.with_value("model.name", "degree"), out / "bayesian", sampler
    )
    s = result.summary()
    print_table(
        s[s.quantity == "size"], ["group", "estimate", "lower", "upper", "r_hat", "ess_bulk"]
    )
    print(f"\ndiagnostics passed: {diag['passed']}; results in {out}")
    return 0


def add_parser(sub) -> None:
    d = sub.add_parser("demo", help="run the embedded example end to end")
    d.add_argument("--out", default="results/demo")
    d.add_argument("--classical-only", action="store_true")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=run)
