#!/usr/bin/env bash
# Prepared run on the lent GPU machine: the pooled model at national scale (1,600 areas x 100
# respondents, issue 16's "under 2 minutes on one GPU"), nothing else running on the machine:
#   1. the JAX log density + gradient on the GPU (benchmarks/pooled_gradient.py --jax);
#   2. one fit with NumPyro on the GPU (backend "numpyro", 4 chains vectorised), 4 chains x
#      (TUNE + DRAWS), default 400 + 400, with NumPyro's progress bar in the log.
# Run on 2026-12-01 as `T1=40 T2=175 bash benchmarks/device_gpu_national.sh`: the fit was stopped
# in PyMC's post-processing (docs/benchmarks/pooled.md). The default window T2=300 lets it finish
# (an estimate, not measured: at most about 6 minutes of device time, since each lease of
# 2026-12-01 was about 30 s longer than its command).
# Needs, in .whl (carried), the wheels listed in benchmarks/device_national.sh; JAX, NumPyro
# and numba are on the machine. Results: $OUT/gpu_*.json and $OUT/gpu_national.log.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg OPENBLAS_NUM_THREADS=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONHASHSEED=0
export PYTENSOR_FLAGS=compiledir=/tmp/pt NUMBA_CACHE_DIR=/tmp/nb
LOG=$OUT/gpu_national.log
{
date +%T; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout ${T1:-45} python3 benchmarks/pooled_gradient.py --areas 1600 --per-area 100 --jax \
  --out /tmp/r0 && cp /tmp/r0/pooled_gradient_jax.json $OUT/gpu_gradient_jax.json
date +%T
BENCH_LABEL="H200 GPU (NumPyro, 4 chains vectorised)" timeout ${T2:-300} python3 \
  benchmarks/pooled_speed.py --areas 1600 --per-area 100 --backend numpyro --progress \
  --draws ${DRAWS:-400} --tune ${TUNE:-400} --out /tmp/r2 \
  && cp /tmp/r2/pooled_speed.json $OUT/gpu_numpyro.json
date +%T
} > $LOG 2>&1
grep -v -i "warn" $LOG | tr '\r' '\n' | grep -v "^\s*$" | tail -15
