"""``bayes-nsum compare SPEC1 SPEC2 ...``: rank Bayesian models of the same data by PSIS-LOO."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_UNCONVERGED, add_sampler_options, positive_int, sampler_overrides


def run(args: argparse.Namespace) -> int:
    """Fit (or reuse) each spec's model, rank by LOO, write compare.csv/.json/.html."""
    import pandas as pd

    from ..compare import compare_specs, write_comparison
    from ..preflight import check_output

    check_output(args.out)

    sampler = sampler_overrides(args)
    if args.quiet:
        sampler["progress"] = False
    comp = compare_specs(
        args.specs,
        reuse=args.reuse,
        out=Path(args.out) / "fits" if args.fits_under_out else None,
        sampler=sampler,
        ic=args.ic,
        max_draws=args.max_draws,
        echo=None if args.quiet else (lambda m: print(m, file=sys.stderr)),
    )
    cols = [
        "rank",
        "model",
        "model_name",
        "elpd_loo",
        "se",
        "elpd_diff",
        "dse",
        "p_loo",
        "n_bad_k",
        "ic_mean_abs_rel_error",
        "converged",
    ]
    with pd.option_context("display.width", 140, "display.float_format", "{:,.4g}".format):
        print(comp.table[cols].to_string(index=False))
    for _, r in comp.table.iterrows():
        if r["warning"]:
            print(f"warning: {r['model']}: {r['warning']}", file=sys.stderr)
    for note in comp.notes:
        print(f"note: {note}", file=sys.stderr)
    paths = write_comparison(comp, args.out)
    print(f"wrote {paths['table']}, {paths['html']}")
    if not comp.table["converged"].all() and not args.allow_unconverged:
        bad = ", ".join(comp.table.loc[~comp.table["converged"], "model"])
        print(f"CONVERGENCE CHECKS FAILED for: {bad}", file=sys.stderr)
        return EXIT_UNCONVERGED
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``compare`` command on an argparse sub-parsers object."""
    p = sub.add_parser(
        "compare",
        help="rank Bayesian models of the same data by PSIS-LOO",
        description="Fit each spec's model (or, with --reuse, load it from the spec's output "
        "folder), compute PSIS-LOO per respondent (degree integrated out), rank the models and "
        "show Pareto-k warnings beside each model's internal-consistency error.",
    )
    p.add_argument("specs", nargs="+", help="two or more spec files (same data, other models)")
    p.add_argument("--out", default="results/compare", help="folder for compare.csv/.json/.html")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse posterior.nc in each output folder when it was written from the "
        "same spec and data",
    )
    p.add_argument(
        "--fits-under-out",
        action="store_true",
        help="write the fits in OUT/fits/<spec name>/ instead of each spec's [output] dir",
    )
    p.add_argument(
        "--ic",
        choices=["quick", "bayes", "none"],
        default="quick",
        help="internal consistency beside LOO: quick (reuses the fit; default), "
        "bayes (one refit per known group; slow) or none",
    )
    p.add_argument(
        "--max-draws",
        type=positive_int,
        default=1000,
        help="posterior draws used by LOO per model (default 1000)",
    )
    add_sampler_options(p)
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="exit 0 even if a fit failed its convergence checks",
    )
    p.set_defaults(func=run)
    return p
