"""``bayes-nsum compare-priors SPEC --prior-sets A,B``: one model under several prior sets.

Exit status: 0 success; 1 some fits failed; 2 bad input; 3 some fits did not pass the
convergence checks (unless ``--allow-unconverged``).
"""

from __future__ import annotations

import sys

from .common import EXIT_SCENARIOS_FAILED, EXIT_UNCONVERGED, print_table, sampler_overrides
from .sweep import add_cluster_options


def run(args) -> int:
    from ..sweep import compare_priors

    sets = [s.strip() for s in args.prior_sets.split(",") if s.strip()]
    res = compare_priors(
        args.spec,
        sets,
        out=args.out,
        model=args.model,
        scheduler=args.scheduler,
        workers=args.workers,
        ignore_spec_priors=args.ignore_spec_priors,
        sampler=sampler_overrides(args),
        prior_predictive_draws=args.prior_predictive_draws,
        echo=None if args.quiet else print,
    )
    t = res.table
    sizes = t[(t["quantity"] == "size") & (t["area"].fillna("") == "")]
    print()
    print_table(
        sizes,
        ["prior_set", "group", "estimate", "lower", "upper", "r_hat", "ess_bulk", "converged"],
    )
    if len(res.sensitivity):
        flagged = res.sensitivity[
            res.sensitivity["diagnosis"].isin(
                ["prior-data conflict", "strong prior / weak likelihood"]
            )
        ]
        if len(flagged):
            print("\nPrior-sensitive quantities (power-scaling):")
            print_table(
                flagged, ["prior_set", "variable", "group", "prior", "likelihood", "diagnosis"]
            )
    for note in res.notes:
        print(f"note: {note}")
    print(f"wrote {res.out / 'comparison.csv'}, {res.out / 'comparison.png'}")
    failed = t.loc[t["status"] != "complete", "prior_set"].drop_duplicates().tolist()
    if failed:
        errors = t[t["status"] != "complete"].drop_duplicates("prior_set")
        for row in errors.itertuples():
            print(f"prior set {row.prior_set}: {row.status}: {row.error}", file=sys.stderr)
        return EXIT_SCENARIOS_FAILED
    conv = t.drop_duplicates("prior_set")
    bad = conv.loc[conv["converged"].astype(str).str.lower() != "true", "prior_set"].tolist()
    if bad:
        print(
            f"CONVERGENCE CHECKS FAILED for prior set(s): {', '.join(map(str, bad))}",
            file=sys.stderr,
        )
        if not args.allow_unconverged:
            return EXIT_UNCONVERGED
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser(
        "compare-priors",
        help="fit one model under several prior sets, side by side",
        description="Fit the spec's model to its data under each prior set; write one table "
        "and one plot with every set side by side, power-scaling sensitivity and prior "
        "predictive checks.",
    )
    c.add_argument("spec")
    c.add_argument(
        "--prior-sets",
        required=True,
        help="comma-separated prior set names or TOML paths, e.g. maltiel2015,weakly_informative",
    )
    c.add_argument("--model", help="model name replacing the spec's [model] name")
    c.add_argument(
        "--ignore-spec-priors",
        action="store_true",
        help="drop the spec's own [priors], which otherwise override every set",
    )
    c.add_argument(
        "--prior-predictive-draws",
        type=int,
        default=500,
        help="prior draws per set for the prior predictive checks (0: skip)",
    )
    c.add_argument("--allow-unconverged", action="store_true")
    add_cluster_options(c)
    c.set_defaults(func=run)
