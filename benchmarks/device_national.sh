#!/usr/bin/env bash
# Prepared run on the lent GPU machine (16 cores) for the pooled model at national scale and the
# roster coverage study, in three lanes at once (each lane pinned to its own cores):
#  G (GPU, host cores 14,15): pooled model, 1,600 areas x 100 respondents, JAX/NumPyro backend
#                             on the GPU; then 150 x 30 on the GPU (in what time is left);
#  A (cores 0,1):             the same national fit with nutpie on 2 CPU cores (the 2-core target);
#  C (cores 2-13):            benchmarks/roster_study.py, 12 processes x up to 3 replications,
#                             2 chains x 1000 draws each, seeds 200, 210, ... (merge the CSVs).
# Needs, in .whl (carried), the wheels of pymc, pytensor, arviz, arviz-base, arviz-plots,
# arviz-stats, nutpie, arro3-core, platformdirs, pandas, xarray, xarray-einstats, cachetools,
# tomli-w and better-optimize at this checkout's versions (pip download --no-deps
# --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 ...); JAX,
# NumPyro and numba are on the machine.
# Everything lands in $OUT/national.tgz.  T (seconds, default 500) bounds every lane.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg OPENBLAS_NUM_THREADS=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
T=${T:-500}
B=$OUT/national; mkdir -p $B
python3 -c "import pymc, nutpie, arviz, jax, numpyro, numba, pandas; print('versions', pymc.__version__, nutpie.__version__, arviz.__version__, jax.__version__, numpyro.__version__, numba.__version__, pandas.__version__, jax.devices())" 2>&1 | tail -2
nproc; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for s in 0 1 2 3 4 5 6 7 8 9 10 11; do
  (PYTENSOR_FLAGS=compiledir=/tmp/pt_r$s NUMBA_CACHE_DIR=/tmp/nb_r$s timeout $T taskset -c $((2 + s)) \
     python3 benchmarks/roster_study.py --replications 3 --draws 1000 --seed $((200 + 10 * s)) \
     --out $B/roster_$s > $B/roster_$s.log 2>&1 &)
done
(
PYTENSOR_FLAGS=compiledir=/tmp/pt_a NUMBA_CACHE_DIR=/tmp/nb_a \
BENCH_LABEL="H200 host pinned to 2 cores (taskset -c 0,1)" timeout $T taskset -c 0,1 \
  python3 benchmarks/pooled_speed.py --areas 1600 --per-area 100 --out $B/cpu_national
) > $B/laneA.log 2>&1 &
(
export PYTENSOR_FLAGS=compiledir=/tmp/pt_g NUMBA_CACHE_DIR=/tmp/nb_g
BENCH_LABEL="H200 GPU (JAX/NumPyro, host cores 14-15)" timeout $((T - 60)) taskset -c 14,15 \
  python3 benchmarks/pooled_speed.py --areas 1600 --per-area 100 --backend numpyro --out $B/gpu_national
BENCH_LABEL="H200 GPU (JAX/NumPyro, host cores 14-15)" timeout 50 taskset -c 14,15 \
  python3 benchmarks/pooled_speed.py --areas 150 --per-area 30 --backend numpyro --out $B/gpu_150
) > $B/laneG.log 2>&1 &
sleep 5
while pgrep -f "pooled_speed.py|roster_study.py" >/dev/null; do sleep 5; done
tail -4 $B/laneA.log $B/laneG.log
for s in 0 1 2 3 4 5 6 7 8 9 10 11; do tail -1 $B/roster_$s.log; done
tar czf $OUT/national.tgz -C $OUT national && rm -rf $B
