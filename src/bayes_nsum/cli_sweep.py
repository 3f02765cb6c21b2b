"""Commands ``bayes-nsum sweep`` and ``bayes-nsum compare-priors`` (see :mod:`bayes_nsum.sweep`).

Both commands are registered by :func:`add_parser`. Exit status: 0 success; 1 some scenarios
failed (``sweep``); 2 bad input; 3 some fits did not pass the convergence checks
(``compare-priors``, unless ``--allow-unconverged``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_SCENARIOS_FAILED = 1


def _sampler_overrides(args) -> dict:
    return {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (default: a local cluster)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of the local Dask cluster (default 2)",
    )
    p.add_argument("--draws", type=int, help="posterior draws per chain (every scenario)")
    p.add_argument("--tune", type=int, help="tuning steps per chain (every scenario)")
    p.add_argument("--chains", type=int, help="chains (every scenario)")
    p.add_argument("--seed", type=int, help="sampler seed (every scenario)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def cmd_sweep(args) -> int:
    from .cli import _print_table
    from .spec import load_spec
    from .sweep import load_sweep, run_sweep

    spec = load_spec(args.spec)
    plan = load_sweep(args.sweep, spec)
    for key, value in _sampler_overrides(args).items():
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
        top = res.effects.groupby("group", sort=False).head(3)
        _print_table(top, ["group", "factor", "baseline", "low_level", "low", "high_level", "high"])
    print(
        f"\n{res.n_complete}/{res.n_scenarios} scenarios complete "
        f"({res.n_skipped} already done before this run), {res.n_failed} failed"
    )
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.nc'}, {out / 'tornado.png'}")
    if res.failures:
        print("FAILED SCENARIOS:", file=sys.stderr)
        for f in res.failures:
            print(f"  {f['scenario']}: {f['error']}", file=sys.stderr)
        return EXIT_SCENARIOS_FAILED
    return 0


def cmd_compare_priors(args) -> int:
    from .cli import EXIT_UNCONVERGED, _print_table
    from .sweep import compare_priors

    sets = [s.strip() for s in args.prior_sets.split(",") if s.strip()]
    res = compare_priors(
        args.spec,
        sets,
        out=args.out,
        model=args.model,
        scheduler=args.scheduler,
        workers=args.workers,
        ignore_spec_priors=args.ignore_spec_priors,
        sampler=_sampler_overrides(args),
        prior_predictive_draws=args.prior_predictive_draws,
        echo=None if args.quiet else print,
    )
    t = res.table
    sizes = t[(t["quantity"] == "size") & (t["area"].fillna("") == "")]
    print()
    _print_table(
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
            _print_table(
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
    """Register ``sweep`` and ``compare-priors`` on the ``bayes-nsum`` subparsers."""
    s = sub.add_parser(
        "sweep",
        help="run a grid of scenarios (sweep file) through Dask",
        description="Run every scenario of a sweep file (TOML [grid] of dotted spec paths) on a "
        "Dask cluster, skipping scenarios already finished; write sweep.csv, sweep.nc and a "
        "tornado plot. Exit 1 if some scenario failed.",
    )
    s.add_argument("spec")
    s.add_argument("sweep", help="sweep file (TOML)")
    _add_common(s)
    s.set_defaults(func=cmd_sweep)

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
    _add_common(c)
    c.set_defaults(func=cmd_compare_priors)
