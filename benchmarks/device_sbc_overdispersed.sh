#!/usr/bin/env bash
# SBC of the overdispersed model on the lent 16-core machine: 12 processes x 9 replications
# (108 in all), pooled with benchmarks/sbc_merge.py. Output: $OUT/sbc_od.tgz
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTENSOR_FLAGS=compiledir=/tmp/pt
B=$OUT/sbc_od; mkdir -p $B
for s in $(seq 1 12); do
  (timeout ${T:-240} python3 benchmarks/sbc_run.py --model overdispersed --replications ${SBC_R:-9} \
     --seed $((100*s+11)) --out $B/run_$s > $B/run_$s.log 2>&1 &)
done
sleep 5
while pgrep -f "sbc_run.py" >/dev/null; do sleep 3; done
python3 benchmarks/sbc_merge.py $B/all $B/run_? $B/run_?? > $B/all.log 2>&1; tail -30 $B/all.log
tar czf $OUT/sbc_od.tgz -C $OUT sbc_od
