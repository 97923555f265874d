#!/usr/bin/env bash
# Run 66 (H100), call 1 of the bench's three (.peers-big-a kept for Quack): gpu_check on run
# 65's fused-residual entries (PDL on), and fp32 backward 16K's layouts (98.2% in run 56, 92.7-92.8
# since the epoch slots of run 59).
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
timeout 150 python3 benchmarks/gpu_check.py > $OUT/run66-gpu-check.log 2>&1; echo "gpu_check rc $?"
tail -2 $OUT/run66-gpu-check.log
TUNE_FAMILIES=none timeout 120 python3 benchmarks/tune.py --ops bwd --dtypes fp32 --ns 16384,32768 \
  --variants 1024x4:split:4,2048x4:early:2,1024x8:early:2,512x4:early:8,512x2:early:12 \
  > $OUT/run66-bwd-fp32.log 2>&1; echo "tune rc $?"
grep "^bwd" $OUT/run66-bwd-fp32.log
