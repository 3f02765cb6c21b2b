"""Merge SBC runs made in parallel (different seeds) into one rank table and uniformity test.

    python benchmarks/sbc_merge.py OUT DIR1 DIR2 ...

Each DIR holds the ``sbc_ranks.csv`` and ``sbc.json`` that ``benchmarks/sbc_run.py`` writes;
replications are renumbered, the chi-square uniformity test is recomputed on the pooled ranks
(same bins), and OUT gets the same files as a single run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bayes_nsum.checks.calibration import SBCResult, uniformity_table


def main() -> None:
    out, *dirs = sys.argv[1:]
    frames, settings, offset = [], None, 0
    for d in dirs:
        r = pd.read_csv(Path(d) / "sbc_ranks.csv")
        r["replication"] += offset
        offset = int(r["replication"].max()) + 1
        frames.append(r)
        s = json.loads((Path(d) / "sbc.json").read_text())
        if settings is None:
            settings = {**s, "seeds": [s["seed"]], "wall_s": [s.get("wall_s")]}
        else:
            settings["seeds"].append(s["seed"])
            settings["wall_s"].append(s.get("wall_s"))
            settings["replications"] += s["replications"]
    ranks = pd.concat(frames, ignore_index=True)
    settings.pop("passed", None)
    settings.pop("seed", None)
    res = SBCResult(
        ranks=ranks, uniformity=uniformity_table(ranks, settings["bins"]), settings=settings
    )
    res.save(out)
    print(res.uniformity.to_string(index=False))
    print(f"passed={res.passed} replications={ranks['replication'].nunique()}")


if __name__ == "__main__":
    main()
