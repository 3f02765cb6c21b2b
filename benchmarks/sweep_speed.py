"""A data-only sweep compiles once: time of a 3-scenario sweep against one fit.

    python benchmarks/sweep_speed.py --out benchmarks/results/sweep_speed

The Scale of Harm example (models/scale_of_harm_example/spec.toml, the pooled model, 150 areas
x 30 respondents) swept over three top-codes of the known groups' answers (only the data change,
so every scenario after the first reuses the first one's compiled model), 2 chains x 300 draws
after 300 tuning steps, in one process (the in-process executor: the compile cache lives in the
process, as it does in each Dask worker). Reported: the sweep's wall time, each scenario's time
and its sampling time (the rest is building, compiling or reusing, post-fit work and writing),
and a single fit of the baseline scenario through the same path for comparison. The sweep and
the single fit each run in a fresh process, as a user's two commands would, so that neither
inherits the other's warm caches; ``ratio`` compares them from after the imports,
``ratio_whole_processes`` with start-up and imports included. (Until 2026-12-01 the single fit
ran after the sweep in the same process, with only the compiled-model cache cleared, so it
skipped the process's first-use work that the sweep's first scenario paid.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "models" / "scale_of_harm_example" / "spec.toml"
SAMPLER = {"sampler.draws": 300, "sampler.tune": 300, "sampler.chains": 2}
GRID = {"preprocess.topcode": [{"known": 30}, {"known": 20}, {"known": 50}]}


def part_sweep(d: Path) -> dict:
    """The sweep, timed from after the imports; each scenario's time and sampling time."""
    from bayes_nsum.sweep import SyncExecutor, load_sweep, run_sweep

    plan = load_sweep({"grid": GRID, "set": SAMPLER}, SPEC)
    t0 = time.perf_counter()
    res = run_sweep(plan, d / "sweep", executor=SyncExecutor())
    sweep_s = time.perf_counter() - t0
    scenarios = []
    for s in plan.scenarios():
        folder = d / "sweep" / "scenarios" / s.id
        marker = json.loads((folder / "_COMPLETE.json").read_text())
        timings = json.loads((folder / "provenance.json").read_text()).get("timings", {})
        scenarios.append(
            {
                "scenario": s.label(),
                "seconds": marker["seconds"],
                "sample_s": timings.get("sample_s"),
                "compile_s": timings.get("compile_s", 0.0),
            }
        )
    return {"sweep_s": sweep_s, "n_complete": res.n_complete, "scenarios": scenarios}


def part_one(d: Path) -> dict:
    """One fit of the sweep's first scenario through the same path, timed from after the
    imports."""
    from bayes_nsum.sweep import load_sweep
    from bayes_nsum.sweep import run as sweep_run

    plan = load_sweep({"grid": GRID, "set": SAMPLER}, SPEC)
    base = plan.scenarios()[0]
    t0 = time.perf_counter()
    sweep_run.run_scenario(plan.spec_for(base), base.id, base.overrides, d / "one", plan.options)
    return {"one_fit_s": time.perf_counter() - t0}


def in_fresh_process(part: str) -> dict:
    """Run one part in a new Python process (cold caches, as a user's command) and return
    its record plus the process's whole wall time (start-up and imports included)."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--part", part], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{part} failed:\n{done.stderr[-3000:]}")
    rec = json.loads(done.stdout.strip().splitlines()[-1])
    rec[f"{part}_process_s"] = wall
    return rec


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/out/sweep_speed")
    p.add_argument("--part", choices=["sweep", "one"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.part:  # a child process: one part, its record on the last line of stdout
        with tempfile.TemporaryDirectory() as d:
            rec = part_sweep(Path(d)) if a.part == "sweep" else part_one(Path(d))
        print(json.dumps(rec))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {**in_fresh_process("sweep"), **in_fresh_process("one")}
    result["ratio"] = result["sweep_s"] / result["one_fit_s"]
    result["ratio_whole_processes"] = result["sweep_process_s"] / result["one_process_s"]
    print(json.dumps(result, indent=1))
    (out / "sweep_speed.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
