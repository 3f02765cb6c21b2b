"""``bayes-nsum report RESULTS_DIR``: (re)write the self-contained HTML report of a fit."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace) -> int:
    """Write ``report.html`` (and ``ppc.csv`` if missing or stale) in the results folder."""
    from .report import write_report

    path = write_report(
        args.results_dir, ppc_draws=args.ppc_draws, recompute_ppc=args.recompute_ppc
    )
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``report`` command on an argparse sub-parsers object."""
    p = sub.add_parser(
        "report",
        help="write the HTML report of a results folder (also done after every fit)",
        description="Write report.html in a folder written by 'bayes-nsum fit': estimates, "
        "diagnostics, data and pre-processing, model and priors, posterior and per-area plots, "
        "posterior predictive checks, internal consistency (if internal_consistency.csv is "
        "there) and provenance. One self-contained file; opens offline.",
    )
    p.add_argument("results_dir", help="folder written by 'bayes-nsum fit'")
    p.add_argument(
        "--ppc-draws",
        type=int,
        default=200,
        help="replicated surveys for the predictive checks (default 200)",
    )
    p.add_argument(
        "--recompute-ppc", action="store_true", help="recompute ppc.csv even if it is up to date"
    )
    p.set_defaults(func=cmd_report)
    return p
