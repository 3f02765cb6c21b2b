"""The embedded example: the Rwanda-design survey bundled with the package (MIT licence)."""

from __future__ import annotations

from pathlib import Path

from .data import example_dir
from .spec import Spec

EXAMPLE_HIDDEN = ["sex.workers", "msm", "idu", "clients"]
EXAMPLE_TOTAL_POPULATION = 10_718_378


def demo_raw(out: str | Path = "results/demo") -> dict:
    """The example analysis as a spec dict (paths point into the installed package)."""
    ex = example_dir()
    return {
        "data": {
            "survey": str(ex / "survey.csv"),
            "known_sizes": str(ex / "known_sizes.csv"),
            "total_population": EXAMPLE_TOTAL_POPULATION,
            "weight": "indweight",
            "strata": "region",
            "cluster": "cluster",
        },
        "groups": {"hidden": list(EXAMPLE_HIDDEN)},
        "preprocess": {"topcode": {"known": 30}, "missing": "drop"},
        "model": {"name": "killworth", "n_boot": 200},
        "sampler": {"seed": 20240521},
        "output": {"dir": str(out)},
    }


def demo_spec(out: str | Path = "results/demo") -> Spec:
    return Spec.from_dict(demo_raw(out))
