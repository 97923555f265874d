#!/usr/bin/env bash
# Run 57 (H100): SPLIT's first three rows loaded before the first publish (forward and
# backward; loads-first-kernels.patch here), against the kernels of run 56 (commit 5ee4979),
# alternated twice, the tables' entries on the bench's clock; ONE_PASS cells (16K/32K forward)
# are the control.
# gpu_check on the new kernels first.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONPATH=$PWD/src timeout 150 python3 benchmarks/gpu_check.py 2>&1 | tee $OUT/run57-gpu-check.log | tail -2
rm -rf /tmp/old && cp -r src /tmp/old && cp kernels-run56.py /tmp/old/rmsnorm_triton/kernels.py  # kernels.py of commit 5ee4979
for i in 1 2; do
  for v in /tmp/old $PWD/src; do
    echo "== $i $v"
    PYTHONPATH=$v OUT=/tmp/t57-$i-$(basename $(dirname $v)) timeout 110 python3 benchmarks/tune.py --clock bench \
      --ops fwd,res,bwd --dtypes bf16,fp16,fp32 --ns 16384,32768,65536,131072,262144 2>&1 \
      | tee -a $OUT/run57-ab.log | grep "^fwd\|^res\|^bwd" | awk '{printf "%s %s %s %s | ", $1, $2, $3, $(NF-2)}'; echo
  done
done
