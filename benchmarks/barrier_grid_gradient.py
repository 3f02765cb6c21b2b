"""CPU time of one log-likelihood + gradient evaluation of the per-group barrier model with the
degrees integrated out on grids (``degree_integration = "quadrature"``), on the survey of
``benchmarks/speed.py`` (Curitiba preset, 22 groups). Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/barrier_grid_gradient.py 100000

Prints the grid plan (distinct rows, buckets, nodes per row), the time to plan and to compile
the function with numba, and the CPU milliseconds per evaluation (process time, so that other
jobs on the machine matter less than for wall time).
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import numpy as np
import pytensor
import pytensor.tensor as pt

from bayes_nsum import simulate
from bayes_nsum.estimators.barrier_grid import grid_loglik, plan_grids
from bayes_nsum.estimators.components import CountStats


def main(n: int) -> None:
    preset = simulate.load_preset("curitiba")
    total = preset["total_population"]
    hidden = {"victims": 0.004 * total, "offenders": 0.001 * total}
    rho = {**preset["rho"], "victims": 0.05, "offenders": 0.05}
    rho = {k: v for k, v in rho.items() if k in preset["known_sizes"] or k in hidden}
    sim = simulate.simulate_ard(
        n_respondents=n,
        known_sizes=preset["known_sizes"],
        hidden_sizes=hidden,
        total_population=total,
        mu=preset["mu"],
        sigma=preset["sigma"],
        likelihood="poisson",
        rho=rho,
        tau={"victims": 0.6, "offenders": 0.5},
        seed=1,
    )
    groups = sim.known + sim.hidden
    y = sim.survey[groups].to_numpy(float)
    p = np.array([preset["known_sizes"][g] / total for g in sim.known] + [0.004 * 0.6, 0.001 * 0.5])
    r = np.array([rho[g] for g in groups])
    t0 = time.perf_counter()
    plan = plan_grids(y, np.log(p[: len(sim.known)]))
    print(
        f"plan {time.perf_counter() - t0:.1f} s: {len(plan.count)} distinct rows, "
        f"{len(plan.bounds)} buckets, {plan.nodes / len(plan.count):.1f} nodes per row"
    )
    stats = CountStats.from_matrix(y, n_known=len(sim.known))
    lr, lshape = pt.dvector("log_rate"), pt.dvector("log_shape")
    mu, sigma = pt.dscalar("mu"), pt.dscalar("sigma")
    keys = SimpleNamespace(**{k[4:]: pt.as_tensor(v) for k, v in plan.data_dict().items()})
    st = SimpleNamespace(
        **{k[4:]: pt.as_tensor(v) for k, v in stats.data_dict().items()}, weighted=False
    )
    total_ll = grid_loglik(st, keys, plan, lr, pt.exp(lshape), mu, sigma)
    grads = pt.grad(total_ll, [lr, lshape, mu, sigma])
    t0 = time.perf_counter()
    fn = pytensor.function([lr, lshape, mu, sigma], [total_ll, *grads], mode="NUMBA")
    print(f"compile {time.perf_counter() - t0:.1f} s")
    vals = [np.log(p), np.log(p * (1 / r - 1)), preset["mu"], preset["sigma"]]
    fn(*vals)
    t0, w0 = time.process_time(), time.perf_counter()
    reps = 10
    for _ in range(reps):
        fn(*vals)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    print(
        f"n = {n}: {cpu / reps * 1000:.1f} CPU ms per evaluation ({wall / reps * 1000:.1f} ms wall)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
