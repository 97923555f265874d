#!/usr/bin/env bash
# Run 52 (H100), call 1 of the bench's three: keeps half of Quack's libraries (.peers-big-a, the
# first part of .peers-big/cutlass-libs.tar.xz split in two: the whole file and the tree pass one
# call's 64 MiB), then gpu_check on the tables of run 51 and a diagnostic: the table's SPLIT
# entries timed as they are, with the wait for the row's partners removed ("nowait": publish
# and poll, never wait; results wrong) and with the meeting removed ("nomeet": no publish, no
# poll): what the meeting costs, and what the rest of the round reaches without it.
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONPATH=$PWD/src timeout 200 python3 benchmarks/gpu_check.py 2>&1 | tee $OUT/run52-gpu-check.log
for v in nowait nomeet; do
  rm -rf /tmp/$v && cp -r src /tmp/$v
  python3 - /tmp/$v/rmsnorm_triton/kernels.py $v <<'PY'
import sys
p, v = sys.argv[1:]
s = open(p).read()
wait = ("    while tl.sum((parts.to(tl.int32, bitcast=True) == EMPTY).to(tl.int32), axis=0) > 0:\n"
        "        parts = _poll(PART, row, S, S_POW2)\n")
assert wait in s
s = s.replace(wait, "")
if v == "nomeet":
    pub = 'tl.atomic_xchg(PART + row * S + s, value, mask=live, sem="relaxed", scope="gpu")'
    poll = "mask=(i < S) & live, other=0.0, volatile=True)"
    assert pub in s and poll in s
    s = s.replace(pub, pub.replace("mask=live", "mask=live & (s < 0)"))
    s = s.replace(poll, "mask=(i < S) & live & (S < 0), other=1.0, volatile=True)")
open(p, "w").write(s)
PY
done
for v in src /tmp/nowait /tmp/nomeet; do
  echo "== $v"
  PYTHONPATH=$v OUT=/tmp/tune-$(basename $v) timeout 100 python3 benchmarks/tune.py --ops fwd,res \
    --dtypes bf16 --ns 65536,131072,262144 2>&1 | tee -a $OUT/run52-meeting.log | grep "^fwd\|^res"
done
