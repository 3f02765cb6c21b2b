"""``bayes-nsum calibrate SPEC``: simulation-based calibration of the spec's model."""

from __future__ import annotations

from pathlib import Path

from .common import EXIT_UNCONVERGED, positive_int, print_table, seed_int


def run(args) -> int:
    from ..analysis import model_class, prepare
    from ..checks.calibration import run_sbc
    from ..errors import SpecError
    from ..preflight import check_output
    from ..spec import load_spec

    spec = load_spec(args.spec)
    out = check_output(Path(args.out) if args.out else spec.output_dir() / "calibration")
    prep = prepare(spec)
    spec, ard = prep.spec, prep.ard
    cfg = spec.model
    if cfg.is_classical:
        raise SpecError(f"{spec.where}: calibrate needs a Bayesian model, not '{cfg.name}'")
    options, _, unused = cfg.split(model_class(cfg.name).options_used)
    if unused:
        raise SpecError(
            f"{spec.where}: [model] {', '.join(unused)} not used by the {cfg.name} model"
        )
    res = run_sbc(
        model_name=cfg.name,
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
    res.save(out)
    print_table(res.uniformity)
    print(f"calibration {'passed' if res.passed else 'FAILED'}; wrote {out}")
    return 0 if res.passed else EXIT_UNCONVERGED


def add_parser(sub) -> None:
    c = sub.add_parser("calibrate", help="simulation-based calibration of the spec's model")
    c.add_argument("spec")
    c.add_argument("--replications", type=positive_int, default=20)
    c.add_argument(
        "--n", type=positive_int, help="respondents per simulated survey (default: min(n, 500))"
    )
    c.add_argument("--draws", type=positive_int, default=200)
    c.add_argument("--tune", type=positive_int, default=300)
    c.add_argument("--chains", type=positive_int, default=2)
    c.add_argument("--seed", type=seed_int, default=0)
    c.add_argument("--out")
    c.set_defaults(func=run)
