#!/usr/bin/env bash
# Run 74 (H100), call 1 of the bench's three (.peers-big-a kept for Quack): gpu_check with the
# backward built by torch's ptxas (launch.TORCH_PTXAS, run 73), then the 32K forward's one-pass
# layouts swept again (capped ones too) under PDL and this session's code.
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 benchmarks/gpu_check.py > $OUT/run74-gpu-check.log 2>&1; echo "gpu_check rc $?"
grep -E "FEWER|tables:|ALL OK|FAIL" $OUT/run74-gpu-check.log | tail -5
TUNE_FAMILIES=onepass,capped timeout 200 python3 benchmarks/tune.py --ops fwd --dtypes bf16,fp16 --ns 32768 --sweep > $OUT/run74-tune-32k.log 2>&1
echo "tune rc $?"; grep -A4 "best per" $OUT/run74-tune-32k.log
