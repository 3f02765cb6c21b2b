"""How long validating a 2,000,000-row survey takes, and how much memory it needs.

Writes a CSV survey (an id, a weight, 20 known groups and 2 hidden groups; Poisson answers, a
few missing) with its known sizes and a spec (top-coding the known groups at 30, dropping
respondents with missing answers), then times :func:`bayes_nsum.analysis.prepare` in a fresh
process: every check a command makes before any work (spec, priors, files, column types,
repeated names, ids, counts, pre-processing, implausible answers) plus the pre-processing
itself. Peak memory is the fresh process's maximum resident set size (Python and the imported
libraries included).

Usage::

    python benchmarks/validate_large.py                 # 2,000,000 rows, 3 timed runs
    python benchmarks/validate_large.py --rows 200000 --runs 1

The numbers are reported on docs/guide/data-protection.md ("How fast the checks are").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "out" / "validate_large"
N_KNOWN, N_POPULATION = 20, 10_000_000


def write_case(rows: int, folder: Path, seed: int = 1) -> Path:
    """Write survey.csv, known_sizes.csv and spec.toml; returns the spec."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(20_000, 400_000, N_KNOWN).round()
    degree = np.exp(rng.normal(5.5, 0.7, rows))
    cols: dict[str, np.ndarray] = {
        "id": np.char.add("R", np.arange(1, rows + 1).astype(str)),
        "weight": rng.uniform(0.5, 2.0, rows).round(3),
    }
    for k, size in enumerate(sizes):
        cols[f"known_{k + 1:02d}"] = rng.poisson(degree * size / N_POPULATION)
    for name, size in (("victims", 40_000), ("offenders", 15_000)):
        answers = rng.poisson(degree * size / N_POPULATION).astype(float)
        answers[rng.random(rows) < 0.001] = np.nan  # a few missing answers
        cols[name] = answers
    pd.DataFrame(cols).to_csv(folder / "survey.csv", index=False)
    pd.DataFrame({"group": [f"known_{k + 1:02d}" for k in range(N_KNOWN)], "size": sizes}).to_csv(
        folder / "known_sizes.csv", index=False
    )
    spec = folder / "spec.toml"
    spec.write_text(
        "[data]\n"
        'survey = "survey.csv"\n'
        'known_sizes = "known_sizes.csv"\n'
        f"total_population = {N_POPULATION}\n"
        'weight = "weight"\n\n'
        "[groups]\n"
        'hidden = ["victims", "offenders"]\n\n'
        "[preprocess]\n"
        "topcode = { known = 30 }\n"
        'missing = "drop"\n\n'
        "[model]\n"
        'name = "killworth"\n'
    )
    return spec


def measure(spec: Path) -> dict:
    """Time ``prepare(spec)`` in this process; peak resident memory of the process."""
    t0 = time.perf_counter()
    from bayes_nsum.analysis import prepare

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    prep = prepare(spec)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": prep.raw.n,
        "rows_after_preprocessing": prep.ard.n,
        "groups": len(prep.ard.groups),
        "prepare_s": round(seconds, 2),
        "import_s": round(t_import, 2),
        "peak_rss_gib": round(peak_kib / 2**20, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=3, help="timed runs, each in a fresh process")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    folder = args.out / f"rows_{args.rows}"
    spec = folder / "spec.toml"
    if not (folder / "survey.csv").is_file():
        t0 = time.perf_counter()
        write_case(args.rows, folder)
        print(f"wrote {folder} in {time.perf_counter() - t0:.0f} s")
    size_mib = (folder / "survey.csv").stat().st_size / 2**20
    results = []
    for _ in range(args.runs):
        proc = subprocess.run(
            [sys.executable, __file__, "--measure", str(spec)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(results[-1])
    best = min(results, key=lambda r: r["prepare_s"])
    summary = {
        "survey_mib": round(size_mib, 1),
        "runs": results,
        "best_prepare_s": best["prepare_s"],
        "max_peak_rss_gib": max(r["peak_rss_gib"] for r in results),
    }
    (folder / "result.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
