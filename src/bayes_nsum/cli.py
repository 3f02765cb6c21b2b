"""The ``bayes-nsum`` command line: a thin layer over :mod:`bayes_nsum.analysis`.

Exit status: 0 success; 2 bad input (one line on stderr, no traceback); 3 a fit whose
convergence checks failed (results still written and flagged) unless ``--allow-unconverged``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import BayesNsumError

EXIT_BAD_INPUT = 2
EXIT_UNCONVERGED = 3


def _fmt_number(x) -> str:
    """Counts with thousands separators, small numbers with 4 significant digits."""
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _print_table(df, columns=None) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 120, "display.max_rows", 200, "display.float_format", _fmt_number
    ):
        print((df[columns] if columns else df).to_string(index=False))


def cmd_estimate(args) -> int:
    from .analysis import run_estimate

    table, outdir = run_estimate(args.spec, args.out)
    _print_table(table)
    print(f"wrote {outdir / 'estimates.csv'}")
    return 0


def cmd_validate(args) -> int:
    from .analysis import run_validate

    if args.bayesian:
        from .compare import run_bayesian_validate

        sampler = {
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
            "seed": args.seed,
            "progress": False,
        }
        table, summary, outdir = run_bayesian_validate(
            args.spec, args.out, {k: v for k, v in sampler.items() if v is not None}
        )
    else:
        table, summary, outdir = run_validate(args.spec, args.out)
    _print_table(table)
    print("summary: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))
    print(f"wrote {outdir / 'internal_consistency.csv'}")
    return 0


def cmd_fit(args) -> int:
    from .analysis import run_fit

    sampler = {
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "seed": args.seed,
        "backend": args.backend,
    }
    if args.quiet:
        sampler["progress"] = False
    result, diag, outdir = run_fit(
        args.spec,
        args.out,
        sampler,
        prior_set=args.prior_set,
        report=False if args.no_report else None,
    )
    s = result.summary()
    _print_table(
        s[s.quantity.isin(["size", "prevalence", "one_in_x"])],
        ["area", "group", "quantity", "estimate", "lower", "upper", "r_hat", "ess_bulk"],
    )
    print(f"wrote {outdir}")
    if not diag["passed"]:
        failed = [c["check"] for c in diag["checks"] if not c["passed"]]
        print(f"CONVERGENCE CHECKS FAILED: {', '.join(failed)}", file=sys.stderr)
        for line in diag["advice"]:
            print(f"  - {line}", file=sys.stderr)
        if not args.allow_unconverged:
            return EXIT_UNCONVERGED
    return 0


def cmd_simulate(args) -> int:
    from . import simulate

    if args.design == "ard":
        sim = simulate.simulate_ard(n_respondents=args.n, seed=args.seed)
    elif args.design == "pooled":
        sim = simulate.simulate_pooled(
            n_areas=args.areas, respondents_per_area=args.per_area, seed=args.seed
        )
    elif args.design == "scale_of_harm":
        sim = simulate.simulate_scale_of_harm(
            n_areas=args.areas, respondents_per_area=args.per_area, seed=args.seed
        )
    else:
        sim = simulate.simulate_preset(args.design, n_respondents=args.n, seed=args.seed)
    paths = sim.write(args.out, model=args.model)
    for k, p in paths.items():
        print(f"{k}: {p}")
    return 0


def cmd_demo(args) -> int:
    from .analysis import run_estimate, run_fit
    from .demo import demo_spec

    out = Path(args.out)
    spec = demo_spec(out)
    print("== Classical (Killworth) estimates on the bundled example survey ==")
    table, outdir = run_estimate(spec, out / "classical")
    _print_table(table[table.quantity == "size"])
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
    _print_table(
        s[s.quantity == "size"], ["group", "estimate", "lower", "upper", "r_hat", "ess_bulk"]
    )
    print(f"\ndiagnostics passed: {diag['passed']}; results in {out}")
    return 0


def cmd_calibrate(args) -> int:
    from .analysis import prepare
    from .calibrate import run_sbc
    from .spec import load_spec

    spec = load_spec(args.spec)
    prep = prepare(spec)
    ard = prep.ard
    model = spec.section("model")
    options = {
        k: v
        for k, v in model.items()
        if k in ("degree", "recall_calibration", "barrier_dispersion")
    }
    res = run_sbc(
        model_name=model.get("name", "degree"),
        replications=args.replications,
        n_respondents=args.n or min(ard.n, 500),
        known_prevalence={k: float(ard.known_sizes[k] / ard.total_population) for k in ard.known},
        hidden=tuple(ard.hidden),
        total_population=ard.total_population,
        priors=spec.section("priors") or None,
        options=options,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
    )
    out = Path(args.out) if args.out else spec.output_dir() / "calibration"
    res.save(out)
    _print_table(res.uniformity)
    print(f"calibration {'passed' if res.passed else 'FAILED'}; wrote {out}")
    return 0 if res.passed else EXIT_UNCONVERGED


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bayes-nsum", description=__doc__.splitlines()[0])
    from . import __version__

    p.add_argument("--version", action="version", version=f"bayes_nsum {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("estimate", help="classical scale-up estimates")
    e.add_argument("spec")
    e.add_argument("--out")
    e.set_defaults(func=cmd_estimate)

    v = sub.add_parser("validate", help="internal consistency (each known group held out)")
    v.add_argument("spec")
    v.add_argument("--out")
    v.add_argument(
        "--bayesian",
        action="store_true",
        help="refit the spec's Bayesian model with each known group held out",
    )
    v.add_argument("--draws", type=int)
    v.add_argument("--tune", type=int)
    v.add_argument("--chains", type=int)
    v.add_argument("--seed", type=int)
    v.set_defaults(func=cmd_validate)

    f = sub.add_parser("fit", help="fit the spec's Bayesian model")
    f.add_argument("spec")
    f.add_argument("--out")
    f.add_argument("--draws", type=int)
    f.add_argument("--tune", type=int)
    f.add_argument("--chains", type=int)
    f.add_argument("--seed", type=int)
    f.add_argument("--backend", choices=["nutpie", "pymc", "numpyro"])
    f.add_argument("--prior-set")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.add_argument("--allow-unconverged", action="store_true")
    f.add_argument("--no-report", action="store_true")
    f.set_defaults(func=cmd_fit)

    s = sub.add_parser("simulate", help="simulate a survey with known truth")
    s.add_argument("design", choices=["ard", "pooled", "scale_of_harm", "mccarty", "curitiba"])
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=1000, help="respondents (single-area designs)")
    s.add_argument("--areas", type=int, default=150)
    s.add_argument("--per-area", type=int, default=30)
    s.add_argument("--model", default="killworth", help="[model] name written in the spec")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_simulate)

    d = sub.add_parser("demo", help="run the embedded example end to end")
    d.add_argument("--out", default="results/demo")
    d.add_argument("--classical-only", action="store_true")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("calibrate", help="simulation-based calibration of the spec's model")
    c.add_argument("spec")
    c.add_argument("--replications", type=int, default=20)
    c.add_argument("--n", type=int, help="respondents per simulated survey (default: min(n, 500))")
    c.add_argument("--draws", type=int, default=200)
    c.add_argument("--tune", type=int, default=300)
    c.add_argument("--chains", type=int, default=2)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out")
    c.set_defaults(func=cmd_calibrate)

    for name, helpmsg in _EXTRA_COMMANDS:
        _register_extra(sub, name, helpmsg)
    return p


# Commands contributed by other modules: (name, help); each module exposes add_parser(sub).
_EXTRA_COMMANDS: list[tuple[str, str]] = [
    ("sweep", "scenario sweeps and prior-set comparisons (sweep, compare-priors)"),
    ("compare", "rank Bayesian models of the same data by PSIS-LOO"),
    ("report", "write the HTML report of a results folder"),
]


def _register_extra(sub, name, helpmsg) -> None:
    import importlib

    mod = importlib.import_module(f".cli_{name.replace('-', '_')}", __package__)
    mod.add_parser(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BayesNsumError as exc:
        print(f"bayes-nsum: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bayes-nsum: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
