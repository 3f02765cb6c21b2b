"""``bayes-nsum simulate DESIGN --out DIR``: a survey with known truth, and a spec for it."""

from __future__ import annotations

from ..config import HIDDEN_SAMPLE_MODELS, MODEL_NAMES
from ..errors import SpecError
from .common import positive_int, seed_int


def run(args) -> int:
    from .. import simulate
    from ..preflight import check_output

    check_output(args.out)
    gnsum = args.design == "gnsum"
    model = args.model or ("gnsum" if gnsum else "killworth")
    if gnsum != (model in HIDDEN_SAMPLE_MODELS):
        raise SpecError(
            f"--model {model}: the gnsum design (a hidden-population sample) goes with the "
            f"models {', '.join(HIDDEN_SAMPLE_MODELS)}, and they with it only"
        )

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
    elif gnsum:
        sim = simulate.simulate_gnsum(
            n_respondents=args.n, n_hidden_sample=args.hidden_sample, seed=args.seed
        )
    else:
        sim = simulate.simulate_preset(args.design, n_respondents=args.n, seed=args.seed)
    paths = sim.write(args.out, model=model)
    for k, p in paths.items():
        print(f"{k}: {p}")
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("simulate", help="simulate a survey with known truth")
    s.add_argument(
        "design", choices=["ard", "pooled", "scale_of_harm", "mccarty", "curitiba", "gnsum"]
    )
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=positive_int, default=1000, help="respondents (single-area designs)")
    s.add_argument("--areas", type=positive_int, default=150)
    s.add_argument("--per-area", type=positive_int, default=30)
    s.add_argument("--hidden-sample", type=positive_int, default=200, help="members (gnsum design)")
    s.add_argument(
        "--model",
        default=None,
        choices=MODEL_NAMES,
        help="[model] name written in the spec (default killworth; gnsum for the gnsum design)",
    )
    s.add_argument("--seed", type=seed_int, default=0)
    s.set_defaults(func=run)
