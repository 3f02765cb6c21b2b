"""Sampling speed, ESS per second, compile times and peak memory of the Bayesian models.

Each configuration runs in its own subprocess (so peak memory is its own). Usage::

    python benchmarks/speed.py --models combined --n 1000 --backends nutpie
    python benchmarks/speed.py --models degree,combined --n 1000,100000 --out benchmarks/out

The design follows issue 3: one area, 20 known groups (the Curitiba preset's sizes), two hidden
groups (prevalences 0.4% and 0.1%) with barrier effects and transmission bias, 4 chains x 1000
draws after 1000 tuning steps. Results go to ``OUT/speed.json`` and ``OUT/speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def one(
    model_name: str,
    n: int,
    backend: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    data_rho: str = "preset",
) -> dict:
    import numpy as np

    from bayes_nsum import simulate
    from bayes_nsum.estimators import MODELS
    from bayes_nsum.fit import compile_nutpie, sample_compiled, sampler_settings
    from bayes_nsum.result import array_diagnostics

    preset = simulate.load_preset("curitiba")
    N = preset["total_population"]
    hidden = {"victims": 0.004 * N, "offenders": 0.001 * N}
    rho = {**preset["rho"], "victims": 0.05, "offenders": 0.05}
    rho = {k: v for k, v in rho.items() if k in preset["known_sizes"] or k in hidden}
    if data_rho != "preset":  # one barrier dispersion for every known group
        rho = {k: (float(data_rho) if k in preset["known_sizes"] else v) for k, v in rho.items()}
    sim = simulate.simulate_ard(
        n_respondents=n,
        known_sizes=preset["known_sizes"],
        hidden_sizes=hidden,
        total_population=N,
        mu=preset["mu"],
        sigma=preset["sigma"],
        likelihood="poisson",
        rho=rho,
        tau={"victims": 0.6, "offenders": 0.5},
        seed=seed,
    )
    from bayes_nsum.data import ARD

    counts = sim.survey.set_index("id")[sim.known + sim.hidden].astype(float)
    ks = sim.known_sizes.set_index("group")["size"].astype(float)
    ard = ARD(
        counts=counts,
        known=tuple(sim.known),
        hidden=tuple(sim.hidden),
        known_sizes=ks,
        total_population=float(N),
    )
    tau_prior = {
        "victims": {"dist": "Beta", "mean": 0.6, "concentration": 20},
        "offenders": {"dist": "Beta", "mean": 0.5, "concentration": 20},
    }
    base_name, _, variant = model_name.partition(":")
    priors = {"tau": tau_prior} if base_name in ("transmission", "combined") else None
    # "combined:group/latent": barrier_dispersion = "group", degree_integration = "latent"
    variant, _, integration = variant.partition("/")
    options = {"barrier_dispersion": variant} if variant else {}
    if integration:
        options["degree_integration"] = integration
    model = MODELS[base_name](ard, priors=priors, **options)
    settings = sampler_settings(
        model, draws=draws, tune=tune, chains=chains, seed=seed, backend=backend, progress=False
    )
    t_build = time.perf_counter()
    out = {
        "model": model_name,
        "n": n,
        "backend": backend,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "n_groups": len(ard.groups),
        "data_rho": data_rho,
        "distinct_keys": len(model.stats.key_count),
    }
    pm_model = model.model
    out["build_s"] = time.perf_counter() - t_build  # statistics, grids, PyMC graph
    if getattr(model, "grid_degrees", False):
        plan = model.grid_plan
        out["grid_rows"] = len(plan.count)
        out["grid_buckets"] = len(plan.bounds)
        out["grid_nodes_per_row"] = plan.nodes / len(plan.count)
    out["loadavg_start"] = os.getloadavg()[0]  # other jobs on the machine
    if backend == "nutpie":
        t0 = time.perf_counter()
        compiled = compile_nutpie(pm_model)
        out["compile_cold_s"] = time.perf_counter() - t0
        out["compile_warm_s"] = float("nan")
        if not os.environ.get("BENCH_SKIP_WARM"):  # a second compile (numba's cache)
            t0 = time.perf_counter()
            compile_nutpie(pm_model)
            out["compile_warm_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        tree = sample_compiled(compiled, settings)
        out["sample_s"] = time.perf_counter() - t0
        # CPU seconds of the sampling (all threads): less sensitive to other jobs than wall time
        out["sample_cpu_s"] = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
    else:
        from bayes_nsum.fit import sample

        timings: dict = {}
        t0 = time.perf_counter()
        tree = sample(pm_model, settings, timings)
        out["sample_s"] = time.perf_counter() - t0  # includes compilation for these backends
        out["compile_cold_s"] = float("nan")
        out["compile_warm_s"] = float("nan")
    post = model.derive(tree["posterior"].to_dataset())
    size = post["size"].transpose("chain", "draw", "hidden").values
    d = array_diagnostics(size)
    out["min_ess_bulk_size"] = float(np.nanmin(d["ess_bulk"]))
    out["max_r_hat_size"] = float(np.nanmax(d["r_hat"]))
    out["ess_per_s"] = out["min_ess_bulk_size"] / out["sample_s"]
    stats = tree["sample_stats"].to_dataset()
    div = stats["diverging"] if "diverging" in stats else None
    out["divergences"] = int(np.asarray(div).sum()) if div is not None else -1
    if "n_steps" in stats:
        out["mean_leapfrog_steps"] = float(np.asarray(stats["n_steps"]).mean())
    truth = sim.truth.query("quantity == 'size'").set_index("group")["value"]
    for h in sim.hidden:
        lo, hi = np.quantile(post["size"].sel(hidden=h).values, [0.05, 0.95])
        out[f"covered_{h}"] = bool(lo <= truth[h] <= hi)
        out[f"size_{h}"] = [float(lo), float(post["size"].sel(hidden=h).median()), float(hi)]
        out[f"truth_{h}"] = float(truth[h])
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["loadavg_end"] = os.getloadavg()[0]
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="combined")
    p.add_argument("--n", default="1000")
    p.add_argument("--backends", default="nutpie")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--label", default=os.environ.get("BENCH_LABEL", "this machine"))
    p.add_argument(
        "--data-rho",
        default="preset",
        help="barrier dispersion of the known groups in the simulated survey: 'preset' (the "
        "Curitiba preset's per-group values) or one number for all known groups",
    )
    a = p.parse_args()
    if a.one:
        res = one(a.models, int(a.n), a.backends, a.draws, a.tune, a.chains, a.seed, a.data_rho)
        print("RESULT " + json.dumps(res))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for m in a.models.split(","):
        for n in a.n.split(","):
            for b in a.backends.split(","):
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    "--models",
                    m,
                    "--n",
                    n,
                    "--backends",
                    b,
                    "--draws",
                    str(a.draws),
                    "--tune",
                    str(a.tune),
                    "--chains",
                    str(a.chains),
                    "--seed",
                    str(a.seed),
                    "--data-rho",
                    a.data_rho,
                ]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                if line:
                    r = json.loads(line[-1][7:])
                else:
                    r = {
                        "model": m,
                        "n": int(n),
                        "backend": b,
                        "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300],
                    }
                r["wall_s"] = time.perf_counter() - t0
                r["machine"] = a.label
                results.append(r)
                print(json.dumps(r), flush=True)
    (out / "speed.json").write_text(json.dumps(results, indent=1))
    cols = [
        "machine",
        "model",
        "n",
        "backend",
        "chains",
        "draws",
        "compile_cold_s",
        "compile_warm_s",
        "sample_s",
        "sample_cpu_s",
        "min_ess_bulk_size",
        "ess_per_s",
        "max_r_hat_size",
        "divergences",
        "peak_rss_mib",
        "error",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    (out / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
