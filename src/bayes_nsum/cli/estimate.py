"""``bayes-nsum estimate SPEC``: classical scale-up estimates."""

from __future__ import annotations

from .common import print_table


def run(args) -> int:
    from ..analysis import run_estimate

    table, outdir = run_estimate(args.spec, args.out)
    print_table(table)
    print(f"wrote {outdir / 'estimates.csv'}")
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser("estimate", help="classical scale-up estimates")
    e.add_argument("spec")
    e.add_argument("--out")
    e.set_defaults(func=run)
