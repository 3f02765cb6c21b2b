"""``bayes-nsum fit SPEC``: fit the spec's Bayesian model and write its results folder."""

from __future__ import annotations

import sys

from ..spec import BACKENDS
from .common import EXIT_UNCONVERGED, add_sampler_options, print_fit_summary, sampler_overrides


def report_convergence(diag: dict, allow_unconverged: bool) -> int:
    """Print failed convergence checks with advice; the exit status."""
    if diag["passed"]:
        return 0
    failed = [c["check"] for c in diag["checks"] if not c["passed"]]
    print(f"CONVERGENCE CHECKS FAILED: {', '.join(failed)}", file=sys.stderr)
    for line in diag["advice"]:
        print(f"  - {line}", file=sys.stderr)
    return 0 if allow_unconverged else EXIT_UNCONVERGED


def run(args) -> int:
    from ..analysis import run_fit

    sampler = {**sampler_overrides(args), "backend": args.backend}
    if args.quiet:
        sampler["progress"] = False
    result, diag, outdir = run_fit(
        args.spec,
        args.out,
        sampler,
        prior_set=args.prior_set,
        report=False if args.no_report else None,
        warn=lambda line: print(f"bayes-nsum: warning: {line}", file=sys.stderr),
    )
    for note in getattr(result.model, "notes", []):
        print(f"note: {note}", file=sys.stderr)
    print_fit_summary(outdir)
    return report_convergence(diag, args.allow_unconverged)


def add_parser(sub) -> None:
    f = sub.add_parser("fit", help="fit the spec's Bayesian model")
    f.add_argument("spec")
    f.add_argument("--out")
    add_sampler_options(f)
    f.add_argument("--backend", choices=BACKENDS)
    f.add_argument("--prior-set")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.add_argument("--allow-unconverged", action="store_true")
    f.add_argument("--no-report", action="store_true")
    f.set_defaults(func=run)
