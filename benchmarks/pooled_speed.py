"""Time the pooled model: the Scale of Harm design sizes and national scale.

    python benchmarks/pooled_speed.py --per-area 30,100 --out benchmarks/out/pooled
    python benchmarks/pooled_speed.py --areas 1600 --per-area 100 --out benchmarks/out/national
    python benchmarks/pooled_speed.py --areas 1600 --per-area 100 --tune 300 --draws 500 \\
        --log-every 20 --out benchmarks/out/national_log   # progress lines every 20 s
    python benchmarks/pooled_speed.py --areas 1600 --per-area 100 --backend nutpie-jax \\
        --draws 500 --tune 500 --out benchmarks/out/national_gpu   # GPU: pip install '.[jax]'

Simulates ``AREAS`` areas x ``PER_AREA`` respondents of the study-like design (4 known and 2
hidden groups, the sparse hidden group at NB shape 0.3, area sd 0.3) with
:func:`bayes_nsum.simulate.simulate_pooled`, fits the pooled model at its shipped defaults
(4 chains x 1000 draws after ``tune = "auto"``: 300 tuning steps with nutpie, 1000 with
NumPyro; ``area_effects = "auto"``) with the chosen
backend, and records wall time of the fit (simulation excluded; compile, sampling, derived
quantities and prior draws included), compile and sampling time, the smallest bulk ESS and
largest R-hat over *every* parameter and over the areas' hidden prevalences (their computation
is timed apart, as ``diagnostics_s``), leapfrog steps per draw, JAX's devices for the JAX
backends, and the peak resident memory. Writes ``OUT/pooled_speed.json`` (one record per size).

The national target (issue 16): 1,600 areas x 100 respondents (160,000), min ESS >= 400 over
every parameter, in under 15 minutes on 2 CPU cores and under 2 minutes on one GPU with JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_nsum.analysis import prepare
from bayes_nsum.estimators.pooled import PooledModel
from bayes_nsum.result import array_diagnostics
from bayes_nsum.simulate import simulate_pooled
from bayes_nsum.spec import BACKENDS


def run(
    areas: int,
    per_area: int,
    seed: int,
    backend: str,
    draws: int,
    tune: int | None,
    cores: int,
    progress: bool = False,
    chains: int = 4,
    target_accept: float | None = None,
) -> dict:
    shapes = {"hidden_1": 0.3, "hidden_2": 0.5}
    sim = simulate_pooled(n_areas=areas, respondents_per_area=per_area, nb_shape=shapes, seed=seed)
    with tempfile.TemporaryDirectory() as d:
        ard = prepare(sim.write(Path(d), model="pooled")["spec"]).ard
    print(f"{len(ard.counts)} respondents simulated; fitting with {backend}", flush=True)
    t0 = time.perf_counter()
    model = PooledModel(ard)
    res = model.fit(
        chains=chains,
        draws=draws,
        tune=tune,
        target_accept=target_accept,
        cores=cores,
        progress=progress,
        seed=seed,
        backend=backend,
    )
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    pa = res.posterior["prevalence_area"].transpose("chain", "draw", "hidden", "area").values
    dg = array_diagnostics(pa.reshape(pa.shape[0], pa.shape[1], -1))
    diag = res.diagnostics()
    stats = res.tree["sample_stats"]
    steps = stats["n_steps"] if "n_steps" in stats else stats.get("tree_size")
    devices = ""
    if backend in ("numpyro", "nutpie-jax"):
        import jax

        devs = jax.devices()
        devices = f"{len(devs)} x {devs[0].platform} ({devs[0].device_kind})"
    return {
        "areas": areas,
        "per_area": per_area,
        "respondents": int(len(ard.counts)),
        "backend": backend,
        "chains": chains,
        "draws": draws,
        "tune": int(res.settings["tune"]),
        "target_accept": float(res.settings["target_accept"]),
        "cores": cores,
        "wall_s": wall,
        **{k: float(v) for k, v in res.timings.items()},
        "diagnostics_s": time.perf_counter() - t1,
        "steps_per_draw": float(steps.mean()) if steps is not None else float("nan"),
        "jax_devices": devices,
        "min_ess_bulk_prev_area": float(np.nanmin(dg["ess_bulk"])),
        "max_r_hat_prev_area": float(np.nanmax(dg["r_hat"])),
        "min_ess_bulk_all": diag["min_ess_bulk"],
        "max_r_hat_all": diag["max_r_hat"],
        "divergences": diag["divergences"],
        "centred_groups": [
            g for g, c in zip(model.pooled_groups, model.centring, strict=True) if c
        ],
    }


def log_progress(every: float) -> None:
    """Print the chains' progress every ``every`` seconds while nutpie samples (iterations done,
    leapfrog steps so far, the last step size), so that a run stopped by a time limit still
    says how far it got and how many steps its iterations took. Wraps ``nutpie.sample`` once
    for this process (every fit of the run)."""
    import functools

    import nutpie

    last = [0.0]

    def callback(chains) -> None:
        now = time.monotonic()
        if now - last[0] < every:
            return
        last[0] = now
        done = sum(c.finished_draws for c in chains)
        steps = sum(c.total_num_steps for c in chains)
        state = ", ".join(
            f"{c.finished_draws} ({'tuning' if c.tuning else 'draws'}, step {c.step_size:.3g})"
            if c.started
            else "waiting"
            for c in chains
        )
        print(
            f"progress: {done} iterations, {steps} leapfrog steps "
            f"({steps / max(done, 1):.1f} per iteration); chains: {state}",
            flush=True,
        )

    nutpie.sample = functools.partial(
        nutpie.sample, progress_callback=callback, progress_rate=int(1000 * min(every, 10))
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--areas", type=int, default=150)
    p.add_argument("--per-area", default="30")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--backend", default="nutpie", choices=BACKENDS)
    p.add_argument("--cores", type=int, default=2, help="parallel chains (nutpie, pymc)")
    p.add_argument("--progress", action="store_true", help="show the sampler's progress")
    p.add_argument(
        "--log-every", type=float, default=0.0, help="print nutpie's progress every S seconds"
    )
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=None, help="default: the model's own (auto)")
    p.add_argument("--target-accept", type=float, default=None, help="default: the package's (0.8)")
    p.add_argument("--out", default="benchmarks/out/pooled")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.log_every > 0 and a.backend.startswith("nutpie"):
        log_progress(a.log_every)
    res = []
    for n in a.per_area.split(","):
        r = run(
            a.areas,
            int(n),
            a.seed,
            a.backend,
            a.draws,
            a.tune,
            a.cores,
            a.progress,
            a.chains,
            a.target_accept,
        )
        r.update(
            {
                "machine": os.environ.get("BENCH_LABEL", ""),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
        print(json.dumps(r), flush=True)
        res.append(r)
        (out / "pooled_speed.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
