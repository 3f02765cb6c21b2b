"""A data-only sweep compiles once: time of a 3-scenario sweep against one fit.

    python benchmarks/sweep_speed.py --out benchmarks/results/sweep_speed

The Scale of Harm example (models/scale_of_harm_example/spec.toml, the pooled model, 150 areas
x 30 respondents) swept over three top-codes of the known groups' answers (only the data change,
so every scenario after the first reuses the first one's compiled model), 2 chains x 300 draws
after 300 tuning steps, in one process (the in-process executor: the compile cache lives in the
process, as it does in each Dask worker). Reported: the sweep's wall time, each scenario's time
and its sampling time (the rest is building, compiling or reusing, post-fit work and writing),
and a single fit of the baseline scenario through the same path for comparison.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "models" / "scale_of_harm_example" / "spec.toml"
SAMPLER = {"sampler.draws": 300, "sampler.tune": 300, "sampler.chains": 2}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/out/sweep_speed")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from bayes_nsum.sweep import SyncExecutor, load_sweep, run_sweep
    from bayes_nsum.sweep import run as sweep_run

    grid = {"preprocess.topcode": [{"known": 30}, {"known": 20}, {"known": 50}]}
    plan = load_sweep({"grid": grid, "set": SAMPLER}, SPEC)
    with tempfile.TemporaryDirectory() as d:
        sweep_run._COMPILED.clear()
        t0 = time.perf_counter()
        res = run_sweep(plan, Path(d) / "sweep", executor=SyncExecutor())
        sweep_s = time.perf_counter() - t0
        scenarios = []
        for s in plan.scenarios():
            folder = Path(d) / "sweep" / "scenarios" / s.id
            marker = json.loads((folder / "_COMPLETE.json").read_text())
            prov = json.loads((folder / "provenance.json").read_text())
            timings = prov.get("timings", {})
            scenarios.append(
                {
                    "scenario": s.label(),
                    "seconds": marker["seconds"],
                    "sample_s": timings.get("sample_s"),
                    "compile_s": timings.get("compile_s", 0.0),
                }
            )
        # one fit of the baseline scenario through the same path, with a cold cache
        sweep_run._COMPILED.clear()
        base = plan.scenarios()[0]
        t0 = time.perf_counter()
        sweep_run.run_scenario(
            plan.spec_for(base), base.id, base.overrides, Path(d) / "one", plan.options
        )
        one_s = time.perf_counter() - t0
    result = {
        "sweep_s": sweep_s,
        "one_fit_s": one_s,
        "ratio": sweep_s / one_s,
        "n_complete": res.n_complete,
        "scenarios": scenarios,
    }
    print(json.dumps(result, indent=1))
    (out / "sweep_speed.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
