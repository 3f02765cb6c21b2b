"""Cost of one log-density gradient of the pooled model, and of compiling it for nutpie.

    OPENBLAS_NUM_THREADS=1 python benchmarks/pooled_gradient.py --areas 1600 --per-area 100 \\
        --out benchmarks/results/national

Same simulated design as ``benchmarks/pooled_speed.py`` (4 known and 2 hidden groups, hidden NB
shapes 0.3 and 0.5). Times the nutpie compilation, the joint log density + gradient compiled
with numba as nutpie builds it (what nutpie calls per leapfrog step), and PyTensor's C-backend
log density and gradient, each at the model's initial point (mean of 20 calls after one
warm-up), and counts the free parameters. Writes ``OUT/pooled_gradient.json``. With the number of leapfrog steps per
iteration this bounds the sampling time from below: iterations x steps x gradient / cores.

With ``--jax`` it times the JAX log density and gradient instead (PyMC's JAX graph, jitted, on
JAX's default device, a GPU where there is one): with the input already on the device (the
device's own time), with a NumPy vector in and out (what ``backend = "nutpie-jax"`` pays per
call), and for 4 chains at once (``jax.vmap``, as NumPyro's vectorised chains).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bayes_nsum.analysis import prepare
from bayes_nsum.estimators.pooled import PooledModel
from bayes_nsum.simulate import simulate_pooled


def per_call(fn, point, calls: int = 20) -> float:
    fn(point)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(point)
    return (time.perf_counter() - t0) / calls


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--areas", type=int, default=1600)
    p.add_argument("--per-area", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/pooled_gradient")
    p.add_argument("--jax", action="store_true", help="time the JAX gradient (GPU if present)")
    a = p.parse_args()
    shapes = {"hidden_1": 0.3, "hidden_2": 0.5}
    sim = simulate_pooled(
        n_areas=a.areas, respondents_per_area=a.per_area, nb_shape=shapes, seed=a.seed
    )
    with tempfile.TemporaryDirectory() as d:
        ard = prepare(sim.write(Path(d), model="pooled")["spec"]).ard
    model = PooledModel(ard).model
    point = model.initial_point()
    rec = {
        "areas": a.areas,
        "per_area": a.per_area,
        "respondents": int(ard.n),
        "free_parameters": int(sum(np.size(v) for v in point.values())),
    }
    if a.jax:
        rec.update(jax_timings(model, point))
        name = "pooled_gradient_jax.json"
    else:
        import nutpie

        t0 = time.perf_counter()
        nutpie.compile_pymc_model(model)
        rec["nutpie_compile_s"] = time.perf_counter() - t0
        rec.update(numba_timing(model, point))
        rec["logp_ms"] = 1000 * per_call(model.compile_logp(), point)
        rec["dlogp_ms"] = 1000 * per_call(model.compile_dlogp(), point)
        name = "pooled_gradient.json"
    print(json.dumps(rec), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(rec, indent=1))


def numba_timing(model, point, calls: int = 20) -> dict:
    """Milliseconds per joint log density + gradient compiled with PyTensor's numba backend,
    built as nutpie 0.16 builds the function it calls once per leapfrog step (the log density
    rewritten with PyTensor's "canonicalize" and "stabilize" passes before the gradient is
    taken; the gradient graph differs without them), one core."""
    import pytensor
    import pytensor.tensor as pt
    from pymc.pytensorf import join_nonshared_inputs
    from pytensor.graph import rewrite_graph

    values = model.value_vars
    logp = rewrite_graph(model.logp(), include=["canonicalize", "stabilize"])
    outs, flat_in = join_nonshared_inputs(
        point, [logp, *pytensor.gradient.grad(logp, values)], values
    )
    fn = pytensor.function(
        [flat_in], [outs[0], pt.concatenate([o.ravel() for o in outs[1:]])], mode="NUMBA"
    )
    flat = np.concatenate([np.asarray(point[v.name], float).ravel() for v in values])
    return {"numba_logp_grad_ms": 1000 * per_call(fn, flat, calls)}


def jax_timings(model, point, calls: int = 200) -> dict:
    """Milliseconds per JAX log density + gradient call, three ways (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    from pymc.sampling.jax import get_jaxified_logp

    # PyMC's flag is inverted: negative_logp=False gives the negative log density (the
    # potential NumPyro wants); its gradient costs the same
    potential = get_jaxified_logp(model, negative_logp=False)
    names = [v.name for v in model.value_vars]
    parts = [np.asarray(point[n], float) for n in names]
    sizes = [p.size for p in parts]
    flat = np.concatenate([p.ravel() for p in parts])

    def unflat(x):
        out, i = [], 0
        for p, k in zip(parts, sizes, strict=True):
            out.append(x[i : i + k].reshape(p.shape))
            i += k
        return out

    vg = jax.jit(jax.value_and_grad(lambda x: potential(unflat(x))))
    vg4 = jax.jit(jax.vmap(jax.value_and_grad(lambda x: potential(unflat(x)))))
    x_dev = jnp.asarray(flat)
    x4_dev = jnp.asarray(np.tile(flat, (4, 1)))
    t0 = time.perf_counter()
    jax.block_until_ready(vg(x_dev))
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(vg4(x4_dev))

    def timed(fn) -> float:
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        return 1000 * (time.perf_counter() - t) / calls

    return {
        "jax_device": str(jax.devices()[0].device_kind),
        "jax_compile_s": compile_s,
        "jax_grad_ms_on_device": timed(lambda: jax.block_until_ready(vg(x_dev))),
        "jax_grad_ms_numpy_in_out": timed(lambda: [np.asarray(v) for v in vg(flat)]),
        "jax_grad_ms_4_chains_vmap": timed(lambda: jax.block_until_ready(vg4(x4_dev))),
    }


if __name__ == "__main__":
    main()
