"""How many tuning steps the pooled model needs with nutpie (why ``tune = "auto"`` gives it 300).

    OPENBLAS_NUM_THREADS=1 python benchmarks/pooled_tune.py \\
        --out benchmarks/results/pooled_tune_2026-12-01

Fits the pooled model at its defaults except the number of tuning steps and draws per chain
(4 chains, nutpie, 2 cores), on three 150-area surveys, and records the sampling time and the
convergence gate (``NSUMResult.diagnostics``: every parameter but the per-respondent degrees):

* ``150x30``: ``simulate_pooled(n_areas=150, respondents_per_area=30, nb_shape={hidden_1: 0.3,
  hidden_2: 0.5}, seed=1)``, the held-out survey of issue 13;
* ``gamma``: the accuracy study's design (``benchmarks/stan_pooled.py``): 5 to 100 respondents
  per area, area spread sd 1 drawn from the study's own model (gamma -log prevalences);
* ``lognormal``: the same with log-normal area effects.

Writes ``OUT/pooled_tune.json`` (one record per fit) and prints each record as it is done.

``--sampler-seeds 2,3,4`` fits each survey once per sampler seed (the survey stays the one of
``--seed``), and ``--settings 300:1000,1000:1000`` chooses the (tuning steps, draws) pairs:

    OPENBLAS_NUM_THREADS=1 python benchmarks/pooled_tune.py --designs 150x30 --seed 2 \
        --sampler-seeds 2,3,4,5,6,7 --settings 300:1000,1000:1000 \
        --out benchmarks/results/pooled_tune_seeds_2026-12-01
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bayes_nsum.analysis import prepare
from bayes_nsum.estimators.pooled import PooledModel
from bayes_nsum.simulate import simulate_pooled

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stan_pooled import simulate  # noqa: E402

DESIGNS = ("150x30", "gamma", "lognormal")
SETTINGS = ((300, 1000), (1000, 1000), (300, 500))


def survey(design: str, seed: int):
    if design == "150x30":
        shapes = {"hidden_1": 0.3, "hidden_2": 0.5}
        return simulate_pooled(n_areas=150, respondents_per_area=30, nb_shape=shapes, seed=seed)
    return simulate(seed, 150, design)


def one_fit(
    design: str,
    seed: int,
    tune: int,
    draws: int,
    sampler_seed: int | None = None,
    area_effects: str = "auto",
) -> dict:
    with tempfile.TemporaryDirectory() as d:
        ard = prepare(survey(design, seed).write(Path(d), model="pooled")["spec"]).ard
    sampler_seed = seed if sampler_seed is None else sampler_seed
    t0 = time.perf_counter()
    res = PooledModel(ard, area_effects=area_effects).fit(
        tune=tune, draws=draws, seed=sampler_seed, progress=False
    )
    wall = time.perf_counter() - t0
    dg = res.diagnostics()
    return {
        "design": design,
        "seed": seed,
        "sampler_seed": sampler_seed,
        "tune": tune,
        "draws": draws,
        "chains": 4,
        "area_effects": area_effects,
        "fit_s": round(wall, 1),
        "sample_s": round(res.timings["sample_s"], 1),
        "passed": bool(dg["passed"]),
        "max_r_hat": round(float(dg["max_r_hat"]), 4),
        "min_ess_bulk": round(float(dg["min_ess_bulk"])),
        "min_ess_tail": round(float(dg["min_ess_tail"])),
        "failed": [c["check"] for c in dg["checks"] if not c["passed"]],
        "worst": {c["check"]: c["worst"][:1] for c in dg["checks"] if c["worst"]},
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--seed", type=int, default=1, help="the survey's seed")
    p.add_argument("--sampler-seeds", default="", help="default: the survey's seed")
    p.add_argument("--settings", default=",".join(f"{t}:{d}" for t, d in SETTINGS))
    p.add_argument("--area-effects", default="auto", help="the model's area_effects option")
    p.add_argument("--out", default="benchmarks/out/pooled_tune")
    a = p.parse_args()
    settings = [tuple(int(x) for x in pair.split(":")) for pair in a.settings.split(",")]
    sampler_seeds = [int(s) for s in a.sampler_seeds.split(",")] if a.sampler_seeds else [None]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for design in a.designs.split(","):
        for tune, draws in settings:
            for sampler_seed in sampler_seeds:
                rows.append(one_fit(design, a.seed, tune, draws, sampler_seed, a.area_effects))
                print(json.dumps(rows[-1]), flush=True)
                (out / "pooled_tune.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
