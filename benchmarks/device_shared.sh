#!/usr/bin/env bash
# Prepared run on the lent GPU machine (16 cores) for the shared-dispersion barrier model:
#  A (cores 0,1):   nutpie CPU timings of combined:shared at n = 1,000 and 100,000;
#  B (cores 14,15): the JAX/NumPyro backend on the GPU, same model and sizes;
#  C (cores 2-13):  SBC of barrier:shared and combined:shared, 8 processes x 13 replications each
#                   (104 per model), merged with benchmarks/sbc_merge.py.
# Everything lands in $OUT/shared.tgz.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PYTENSOR_FLAGS=compiledir=/tmp/pt
B=$OUT/shared; mkdir -p $B
python3 -c "import pymc, nutpie, arviz, jax, numpyro; print('versions', pymc.__version__, nutpie.__version__, arviz.__version__, jax.__version__, numpyro.__version__, jax.devices())" 2>&1 | tail -1
T=${T:-400}
for m in barrier combined; do
  for s in 1 2 3 4 5 6 7 8; do
    (taskset -c 2-13 timeout $T python3 benchmarks/sbc_run.py --model $m --barrier-dispersion shared \
       --replications ${SBC_R:-13} --seed $((100*s+7)) --out $B/sbc_${m}_$s > $B/sbc_${m}_$s.log 2>&1 &)
  done
done
(
BENCH_LABEL="H200 host pinned to 2 cores (taskset -c 0,1)" timeout $T taskset -c 0,1 \
  python3 benchmarks/speed.py --models combined:shared --n 1000,100000 --out $B/cpu
) > $B/laneA.log 2>&1 &
(
BENCH_LABEL="H200 GPU (JAX/NumPyro, host cores 14-15)" timeout $T taskset -c 14,15 \
  python3 benchmarks/speed.py --models combined:shared --n 1000,100000 --backends numpyro --out $B/gpu
) > $B/laneB.log 2>&1 &
sleep 5
while pgrep -f "speed.py|sbc_run.py" >/dev/null; do sleep 5; done
for m in barrier combined; do
  python3 benchmarks/sbc_merge.py $B/sbc_$m $B/sbc_${m}_? > $B/sbc_$m.log 2>&1; tail -12 $B/sbc_$m.log
done
tail -3 $B/laneA.log $B/laneB.log
tar czf $OUT/shared.tgz -C $OUT shared && rm -rf $B
