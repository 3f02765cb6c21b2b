#!/usr/bin/env bash
# One prepared run on the lent GPU machine (16 cores), in three lanes at once:
#  A: CPU timings pinned to 2 cores (taskset -c 0,1), the project's 2-core target;
#  B: the JAX/NumPyro backend on the GPU (host side on cores 14,15), then the pooled model on 2 cores;
#  C: the larger SBC runs on cores 2-13.
# Everything lands in $OUT/bench.tgz.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PYTENSOR_FLAGS=compiledir=/tmp/pt
B=$OUT/bench; mkdir -p $B
python3 -c "import pymc, nutpie, arviz, jax, numpyro, numba; print('versions', pymc.__version__, nutpie.__version__, arviz.__version__, jax.__version__, numpyro.__version__, numba.__version__, jax.devices())" 2>&1 | tail -2
nproc; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for m in degree transmission barrier combined; do
  (taskset -c 2-13 timeout ${SBC_T:-400} python3 benchmarks/sbc_run.py --model $m --replications ${SBC_R:-100} --out $B/sbc_$m > $B/sbc_$m.log 2>&1 &)
done
L="H200 host pinned to 2 cores (taskset -c 0,1)"
(
BENCH_LABEL="$L" timeout 200 taskset -c 0,1 python3 benchmarks/speed.py --models combined,degree --n 1000 --out $B/cpu_n1000
BENCH_LABEL="$L" timeout 110 taskset -c 0,1 python3 benchmarks/speed.py --models degree,transmission --n 100000 --out $B/cpu_n100k
BENCH_LABEL="$L" timeout 140 taskset -c 0,1 python3 benchmarks/speed.py --models combined --n 100000 --draws 200 --tune 200 --out $B/cpu_n100k_combined
) > $B/laneA.log 2>&1 &
(
BENCH_LABEL="H200 GPU (JAX/NumPyro, host cores 14-15)" timeout 200 taskset -c 14,15 python3 benchmarks/speed.py --models combined --n 1000,100000 --backends numpyro --out $B/gpu
if [ -f benchmarks/pooled_speed.py ]; then
  BENCH_LABEL="H200 host pinned to 2 cores (taskset -c 14,15)" timeout 330 taskset -c 14,15 python3 benchmarks/pooled_speed.py --per-area 30,100 --out $B/pooled
fi
) > $B/laneB.log 2>&1 &
sleep 5
while pgrep -f "speed.py|sbc_run.py" >/dev/null; do sleep 5; done
tail -5 $B/laneA.log $B/laneB.log
for m in degree transmission barrier combined; do tail -7 $B/sbc_$m.log; done
tar czf $OUT/bench.tgz -C $OUT bench && rm -rf $B
