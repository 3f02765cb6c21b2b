"""Cost of one log-density gradient of the pooled model, and of compiling it for nutpie.

    OPENBLAS_NUM_THREADS=1 python benchmarks/pooled_gradient.py --areas 1600 --per-area 100 \\
        --out benchmarks/results/national

Same simulated design as ``benchmarks/pooled_speed.py`` (4 known and 2 hidden groups, hidden NB
shapes 0.3 and 0.5). Times the nutpie compilation, then the PyTensor (C backend) log-density
and its gradient at the model's initial point (mean of 20 calls after one warm-up), and counts
the free parameters. Writes ``OUT/pooled_gradient.json``. With the number of leapfrog steps per
iteration this bounds the sampling time from below: iterations x steps x gradient / cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_nsum.analysis import prepare
from bayes_nsum.estimators.pooled import PooledModel
from bayes_nsum.simulate import simulate_pooled


def per_call(fn, point, calls: int = 20) -> float:
    fn(point)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(point)
    return (time.perf_counter() - t0) / calls


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--areas", type=int, default=1600)
    p.add_argument("--per-area", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/pooled_gradient")
    a = p.parse_args()
    shapes = {"hidden_1": 0.3, "hidden_2": 0.5}
    sim = simulate_pooled(
        n_areas=a.areas, respondents_per_area=a.per_area, nb_shape=shapes, seed=a.seed
    )
    with tempfile.TemporaryDirectory() as d:
        ard = prepare(sim.write(Path(d), model="pooled")["spec"]).ard
    model = PooledModel(ard).model
    import nutpie

    t0 = time.perf_counter()
    nutpie.compile_pymc_model(model)
    compile_s = time.perf_counter() - t0
    point = model.initial_point()
    rec = {
        "areas": a.areas,
        "per_area": a.per_area,
        "respondents": int(ard.n),
        "free_parameters": int(sum(np.size(v) for v in point.values())),
        "nutpie_compile_s": compile_s,
        "logp_ms": 1000 * per_call(model.compile_logp(), point),
        "dlogp_ms": 1000 * per_call(model.compile_dlogp(), point),
    }
    print(json.dumps(rec))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pooled_gradient.json").write_text(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
