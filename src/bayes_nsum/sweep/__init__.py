"""Scenario sweeps and prior-set comparisons, run through Dask (see :mod:`.plan` for the sweep
file).

* :mod:`.plan` -- the sweep file, its scenarios and their folders' state;
* :mod:`.run` -- one scenario into its folder; executors (Dask, in-process);
* :mod:`.gather` -- the scenario folders into ``sweep.csv``, ``sweep.nc`` and the tornado plot;
* :mod:`.priors` -- ``compare-priors``: one model under several prior sets.
"""

from .gather import SweepResult, factor_effects, gather_sweep
from .plan import (
    FAILED,
    KEEP,
    MARKER,
    NONE_DROPPED,
    UNSET,
    Scenario,
    Sweep,
    expand_grid,
    load_sweep,
    scenario_id,
    scenario_state,
)
from .priors import ComparisonResult, compare_priors
from .run import DaskExecutor, SyncExecutor, dask_executor, run_scenario, run_sweep

__all__ = [
    "Sweep",
    "Scenario",
    "SweepResult",
    "ComparisonResult",
    "load_sweep",
    "expand_grid",
    "scenario_id",
    "scenario_state",
    "run_scenario",
    "run_sweep",
    "gather_sweep",
    "factor_effects",
    "compare_priors",
    "SyncExecutor",
    "DaskExecutor",
    "dask_executor",
    "KEEP",
    "MARKER",
    "FAILED",
    "UNSET",
    "NONE_DROPPED",
]
