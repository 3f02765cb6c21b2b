"""``bayes-nsum report RESULTS_DIR``: (re)write the self-contained HTML report of a fit."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Write ``report.html`` in the results folder (it reads the folder only)."""
    from ..report import write_report

    path = write_report(args.results_dir)
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
    p.set_defaults(func=run)
    return p
