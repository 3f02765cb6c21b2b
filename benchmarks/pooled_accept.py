"""The pooled model's target acceptance rate with nutpie (why ``target_accept = "auto"`` gives
it 0.7).

    OPENBLAS_NUM_THREADS=1 python benchmarks/pooled_accept.py \\
        --out benchmarks/results/pooled_accept_2026-12-01

Fits the pooled model at its defaults (4 chains x (300 tuning + 1000 draws), nutpie, 2 cores)
except the target acceptance rate of the step-size adaptation, on the three 150-area surveys of
``benchmarks/pooled_tune.py`` (issue 13's held-out 150 x 30 survey, and the accuracy study's
5-100 respondents per area with gamma or log-normal area effects of sd 1), and records the
sampling time, the leapfrog steps per draw, the adapted step size, the divergences and the
convergence gate (``NSUMResult.diagnostics``: every parameter but the per-respondent degrees).

NUTS doubles its trajectory until it turns back, so a draw costs 2^depth - 1 steps: a step size
just too small for depth 4 costs 31 steps instead of 15. Writes ``OUT/pooled_accept.json``
(one record per fit) and prints each record as it is done.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_nsum.analysis import prepare
from bayes_nsum.estimators.pooled import PooledModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pooled_tune import DESIGNS, survey  # noqa: E402

ACCEPT = (0.8, 0.7, 0.6)


def one_fit(design: str, seed: int, target_accept: float, tune: int, draws: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        ard = prepare(survey(design, seed).write(Path(d), model="pooled")["spec"]).ard
    t0 = time.perf_counter()
    res = PooledModel(ard).fit(
        tune=tune, draws=draws, seed=seed, target_accept=target_accept, progress=False
    )
    wall = time.perf_counter() - t0
    dg = res.diagnostics()
    stats = res.tree["sample_stats"].to_dataset()
    return {
        "design": design,
        "seed": seed,
        "target_accept": target_accept,
        "tune": tune,
        "draws": draws,
        "chains": 4,
        "fit_s": round(wall, 1),
        "sample_s": round(res.timings["sample_s"], 1),
        "steps_per_draw": round(float(stats["n_steps"].mean()), 1),
        "step_size": round(float(np.mean(stats["step_size"].values)), 3),
        "mean_accept": round(float(stats["mean_tree_accept"].mean()), 3),
        "divergences": int(dg["divergences"]),
        "passed": bool(dg["passed"]),
        "max_r_hat": round(float(dg["max_r_hat"]), 4),
        "min_ess_bulk": round(float(dg["min_ess_bulk"])),
        "min_ess_tail": round(float(dg["min_ess_tail"])),
        "failed": [c["check"] for c in dg["checks"] if not c["passed"]],
        "lowest_ess_bulk": next(c["worst"] for c in dg["checks"] if c["check"] == "ess_bulk"),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--accept", default=",".join(map(str, ACCEPT)), help="comma-separated rates")
    p.add_argument("--seeds", default="1", help="comma-separated seeds")
    p.add_argument("--tune", type=int, default=300)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--out", default="benchmarks/out/pooled_accept")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        for design in a.designs.split(","):
            for rate in (float(r) for r in a.accept.split(",")):
                rows.append(one_fit(design, seed, rate, a.tune, a.draws))
                print(json.dumps(rows[-1]), flush=True)
                (out / "pooled_accept.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
