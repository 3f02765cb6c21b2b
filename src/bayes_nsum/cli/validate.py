"""``bayes-nsum validate SPEC``: internal consistency, classical or (``--bayesian``) by refits."""

from __future__ import annotations

from .common import add_sampler_options, print_table, sampler_overrides


def run(args) -> int:
    from ..analysis import run_validate

    if args.bayesian:
        from ..checks.consistency import run_bayesian_validate

        sampler = {**sampler_overrides(args), "progress": False}
        table, summary, outdir = run_bayesian_validate(
            args.spec, args.out, {k: v for k, v in sampler.items() if v is not None}
        )
    else:
        table, summary, outdir = run_validate(args.spec, args.out)
    print_table(table)
    print("summary: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))
    print(f"wrote {outdir / 'internal_consistency.csv'}")
    return 0


def add_parser(sub) -> None:
    v = sub.add_parser("validate", help="internal consistency (each known group held out)")
    v.add_argument("spec")
    v.add_argument("--out")
    v.add_argument(
        "--bayesian",
        action="store_true",
        help="refit the spec's Bayesian model with each known group held out",
    )
    add_sampler_options(v)
    v.set_defaults(func=run)
