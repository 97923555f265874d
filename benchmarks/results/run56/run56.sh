#!/usr/bin/env bash
# Run 56 (H100), call 1 of the bench's four (.peers-big-a kept for Quack): gpu_check and the
# test suite on the tables of runs 51-55, then fill_probe.py (what SPLIT's slot fill costs).
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONPATH=$PWD/src timeout 150 python3 benchmarks/gpu_check.py 2>&1 | tee $OUT/run56-gpu-check.log | tail -2
PYTHONPATH=$PWD/src timeout 200 python3 -m pytest -q -n 8 -p no:cacheprovider tests 2>&1 | tee $OUT/run56-pytest.log | tail -4
rm -rf /tmp/nowait && cp -r src /tmp/nowait && python3 - /tmp/nowait/rmsnorm_triton/kernels.py <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
wait = ("    while tl.sum((parts.to(tl.int32, bitcast=True) == EMPTY).to(tl.int32), axis=0) > 0:\n"
        "        parts = _poll(PART, row, S, S_POW2)\n")
assert wait in s
open(p, "w").write(s.replace(wait, ""))
PY
for v in "src" "/tmp/nowait" "/tmp/nowait reuse"; do
  set -- $v
  echo "== $v"
  PYTHONPATH=$1 timeout 60 python3 benchmarks/results/run56/fill_probe.py $2 2>&1 | tee -a $OUT/run56-fill.log
done
