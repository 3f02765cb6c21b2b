"""``bayes-nsum demo``: an example analysis end to end.

The default example is the Scale of Harm design (:mod:`bayes_nsum.demo`): a synthetic survey of
150 municipalities, child victims (per child) and adult offenders (per adult), fitted with the
partially pooled model; national and per-area prevalences with credible intervals, "1 in X",
maps and the HTML report. ``--example rwanda`` runs the earlier example (the Rwanda survey,
classical estimates and the random degree model). ``BAYES_NSUM_FAST=1`` shortens the sampling
(the numbers are then rougher, and the convergence checks may fail).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .common import print_fit_summary, print_table

#: sampler settings of the Scale of Harm demo: the shipped defaults, so that the demo passes
#: its own convergence gate (4 x 500 draws did not: max R-hat 1.011 on one area's rate)
DEMO_SAMPLER = {"draws": 1000, "tune": "auto", "chains": 4, "cores": 2}
FAST_SAMPLER = {"draws": 150, "tune": 150, "chains": 2, "cores": 2}
#: post-fit steps of the demo (``bayes-nsum fit`` runs every one)
DEMO_STEPS = ("predictive",)


def _fast() -> bool:
    return os.environ.get("BAYES_NSUM_FAST") == "1"


def run_scale_of_harm(args) -> int:
    import pandas as pd

    from ..analysis import run_estimate, run_fit
    from ..demo import write_scale_of_harm_example

    out = Path(args.out)
    spec_path = write_scale_of_harm_example(out / "example")
    print(f"Scale of Harm example (synthetic, 150 municipalities x 30 respondents): {spec_path}")
    print("\n== Classical (per-area Killworth) estimates, national rows ==")
    table, _ = run_estimate(spec_path, out / "classical")
    print_table(table[(table.area == "") & (table.quantity.isin(["size", "prevalence"]))])
    if args.classical_only:
        return 0
    print("\n== Partially pooled model (the Scale of Harm model) ==")
    sampler = {**(FAST_SAMPLER if _fast() else DEMO_SAMPLER), "progress": not args.quiet}
    warn = lambda line: print(f"bayes-nsum: warning: {line}", file=sys.stderr)  # noqa: E731
    # the demo runs the posterior predictive checks only (the other post-fit steps, e.g. each
    # respondent's log-likelihood, take longer than the fit): `bayes-nsum fit` runs them all
    _, diag, outdir = run_fit(
        spec_path, out / "pooled", sampler, steps=DEMO_STEPS, command="demo", warn=warn
    )
    print_fit_summary(outdir)
    truth = pd.read_csv(spec_path.parent / "truth.csv", keep_default_na=False)
    summary = pd.read_csv(outdir / "summary.csv", keep_default_na=False)
    for g in ("victims", "offenders"):
        true = truth[(truth.area == "") & (truth.group == g) & (truth.quantity == "prevalence")]
        est = summary[(summary.area == "") & (summary.group == g)]
        est = est[est.quantity == "prevalence"]
        if len(true) and len(est):
            t, r = float(true["value"].iloc[0]), est.iloc[0]
            inside = float(r["lower"]) <= t <= float(r["upper"])
            print(
                f"{g}: true national prevalence (simulation) {100 * t:.3g}%: "
                f"{'inside' if inside else 'OUTSIDE'} the credible interval"
            )
    maps = sorted((outdir / "maps").glob("*.png"))
    print(
        f"\nreport: {outdir / 'report.html'} (the demo runs the posterior predictive checks "
        f"only; 'bayes-nsum fit {spec_path}' runs every check)"
    )
    if maps:
        print(f"maps: {outdir / 'maps'} ({len(maps)} images)")
    if not diag["passed"]:
        print(
            "note: the convergence checks failed at the demo's sampler settings; see the "
            "report's diagnostics before reading the numbers",
            file=sys.stderr,
        )
    return 0


def run_rwanda(args) -> int:
    from ..analysis import run_estimate, run_fit
    from ..demo import demo_spec

    out = Path(args.out)
    spec = demo_spec(out)
    print("== Classical (Killworth) estimates on the bundled Rwanda survey ==")
    table, outdir = run_estimate(spec, out / "classical")
    print_table(table[table.quantity == "size"])
    if args.classical_only:
        return 0
    print("\n== Bayesian degree model (nutpie) on the same survey ==")
    fast = _fast()
    sampler = {
        "draws": 200 if fast else 1000,
        "tune": 200 if fast else "auto",
        "chains": 2 if fast else 4,
        "progress": not args.quiet,
    }
    result, diag, outdir = run_fit(
        spec.with_value("model.name", "degree"), out / "bayesian", sampler
    )
    s = result.summary()
    print_table(
        s[s.quantity == "size"], ["group", "estimate", "lower", "upper", "r_hat", "ess_bulk"]
    )
    print(f"\ndiagnostics passed: {diag['passed']}; results in {out}")
    return 0


def run(args) -> int:
    if args.example == "rwanda":
        return run_rwanda(args)
    return run_scale_of_harm(args)


def add_parser(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="run an example analysis end to end",
        description="Run an example analysis end to end. The default, scale-of-harm, fits the "
        "partially pooled model to a synthetic survey of 150 municipalities (victims per child, "
        "offenders per adult): national and per-area prevalences, '1 in X', maps and the HTML "
        "report (about 100 s on two cores; BAYES_NSUM_FAST=1: shorter). rwanda "
        "runs the classical estimator and the random degree model on the bundled Rwanda survey.",
    )
    d.add_argument("--out", default="results/demo")
    d.add_argument(
        "--example",
        choices=["scale-of-harm", "rwanda"],
        default="scale-of-harm",
        help="which example (default scale-of-harm)",
    )
    d.add_argument("--classical-only", action="store_true", help="no Bayesian fit")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=run)
