"""Documented larger simulation-based calibration run for one model.

    python benchmarks/sbc_run.py --model degree --replications 100 --out benchmarks/out/sbc_degree

Writes sbc_ranks.csv, sbc_uniformity.csv, sbc.json and sbc_ranks.png (see bayes_nsum.checks.calibration).
"""

from __future__ import annotations

import argparse
import time

from bayes_nsum.checks.calibration import run_sbc


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="degree")
    p.add_argument("--replications", type=int, default=100)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--tune", type=int, default=400)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", required=True)
    p.add_argument("--barrier-dispersion", default=None, choices=["group", "shared"])
    p.add_argument("--hidden-groups", type=int, default=1)
    p.add_argument("--n-areas", type=int, default=20, help="areas (models that need areas)")
    a = p.parse_args()
    t0 = time.perf_counter()
    res = run_sbc(
        a.model,
        replications=a.replications,
        n_respondents=a.n,
        draws=a.draws,
        tune=a.tune,
        chains=2,
        thin_to=99,
        bins=10,
        seed=a.seed,
        options={"barrier_dispersion": a.barrier_dispersion} if a.barrier_dispersion else None,
        hidden=tuple(f"hidden_{k + 1}" for k in range(a.hidden_groups)),
        n_areas=a.n_areas,
    )
    res.settings["wall_s"] = time.perf_counter() - t0
    res.save(a.out)
    print(res.uniformity.to_string(index=False))
    print(f"passed={res.passed} wall_s={res.settings['wall_s']:.0f}")


if __name__ == "__main__":
    main()
