"""The embedded example analyses of ``bayes-nsum demo``.

* **Scale of Harm** (the default): the synthetic multi-area survey of
  ``models/scale_of_harm_example/`` (150 municipalities x 30 respondents, victims per child and
  offenders per adult), regenerated exactly from its seed by :func:`write_scale_of_harm_example`
  (survey, area table, truth, grid boundaries for the maps and the spec), so that an installed
  package needs no data files for it;
* **Rwanda**: the Rwanda-design survey bundled with the package (MIT licence), with the
  classical estimator and the random degree model (:func:`demo_spec`).
"""

from __future__ import annotations

from pathlib import Path

from .data import example_dir
from .io import write_text
from .spec import Spec

EXAMPLE_HIDDEN = ["sex.workers", "msm", "idu", "clients"]
EXAMPLE_TOTAL_POPULATION = 10_718_378

#: the simulation behind ``models/scale_of_harm_example`` (``simulate_scale_of_harm``)
SCALE_OF_HARM_DESIGN = {"n_areas": 150, "respondents_per_area": 30, "seed": 2022}

#: ``models/scale_of_harm_example/spec.toml`` (written by :func:`write_scale_of_harm_example`;
#: a test checks that the shipped file equals it)
SCALE_OF_HARM_SPEC = """\
# Synthetic Scale-of-Harm-like survey: simulate_scale_of_harm(n_areas=150, respondents_per_area=30,
# seed=2022) written with Simulation.write(model="pooled"). 150 municipalities x 30 respondents,
# ten known groups with per-area sizes (area_table.csv), hidden groups victims (per child) and
# offenders (per adult). truth.csv holds the true sizes and prevalences (per area and national);
# boundaries.geojson is a grid of squares, one per municipality, for the maps (synthetic).
# This is what `bayes-nsum demo` fits (it regenerates these files from the seed).
[data]
survey = "survey.csv"
area = "area"
area_table = "area_table.csv"
total_population = 9850139
boundaries = "boundaries.geojson"
boundaries_key = "area"

[groups]
known = [
    "teachers",
    "nurses",
    "drivers",
    "security_guards",
    "students",
    "construction_workers",
    "children_0_2",
    "children_3_5",
    "children_6_12",
    "children_13_17",
]
hidden = [
    "victims",
    "offenders",
]

[groups.denominators]
victims = "children"
offenders = "adults"

[model]
name = "pooled"
anchor = "likelihood"  # or "posthoc" (the original study's scaling)
correlated = false

[sampler]
seed = 2022

[output]
dir = "results"  # next to this file
"""


def write_scale_of_harm_example(folder: str | Path) -> Path:
    """Write the Scale of Harm example into ``folder``: ``survey.csv``, ``area_table.csv``,
    ``known_sizes.csv``, ``truth.csv`` (regenerated from the seed: identical to
    ``models/scale_of_harm_example``), ``boundaries.geojson`` (a grid, one square per area)
    and ``spec.toml`` (:data:`SCALE_OF_HARM_SPEC`). Returns the spec's path."""
    from .report.maps import write_grid_geojson
    from .simulate import simulate_scale_of_harm

    folder = Path(folder)
    sim = simulate_scale_of_harm(**SCALE_OF_HARM_DESIGN)
    paths = sim.write(folder, model="pooled")
    write_grid_geojson(sim.area_table["area"], folder / "boundaries.geojson", columns=15)
    return write_text(SCALE_OF_HARM_SPEC, paths["spec"])


def demo_raw(out: str | Path = "results/demo") -> dict:
    """The Rwanda example analysis as a spec dict (paths point into the installed package)."""
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
    """The Rwanda example analysis as a :class:`~bayes_nsum.spec.Spec`."""
    return Spec.from_dict(demo_raw(out))
