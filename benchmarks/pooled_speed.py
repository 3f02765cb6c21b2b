"""Time the pooled model on the Scale of Harm design sizes (150 areas x 30 and x 100).

    python benchmarks/pooled_speed.py --per-area 30,100 --out benchmarks/out/pooled

Uses ``timing_run`` of pooled_vs_killworth.py (4 chains x 1000 draws after 1000 tuning steps,
the sparse hidden group at NB shape 0.3). Writes ``OUT/pooled_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from pooled_vs_killworth import timing_run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--per-area", default="30")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/pooled")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = []
    for n in a.per_area.split(","):
        r = timing_run(a.seed, respondents_per_area=int(n))
        r.update(
            {
                "areas": 150,
                "per_area": int(n),
                "machine": os.environ.get("BENCH_LABEL", ""),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
        print(json.dumps(r), flush=True)
        res.append(r)
        (out / "pooled_speed.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
