#!/usr/bin/env bash
# Run 65 (H100): run 64's fused-residual picks checked twice beside the table (16-bit 64K-256K),
# and fp32's fused 64K (97.4% in run 63) against other SPLIT layouts. PDL on.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
for pass in 1 2; do
  TUNE_FAMILIES=none timeout 200 python3 benchmarks/tune.py --ops res --dtypes bf16,fp16 \
    --ns 65536,131072,262144 --variants 4096x8:early:2,4096x8:early:3,2048x4:early:5,8192x8:early:1 \
    > $OUT/run65-res16-pass$pass.log 2>&1; echo "tune rc $?"
  TUNE_FAMILIES=none timeout 100 python3 benchmarks/tune.py --ops res --dtypes fp32 --ns 65536 \
    --variants 2048x4:split:4,4096x8:early:1,4096x8:early:2,1024x4:early:4,2048x8:early:2 \
    > $OUT/run65-res32-pass$pass.log 2>&1; echo "tune rc $?"
done
grep -h "^res" $OUT/run65-*.log | sort -k3,3 -k4,4n -s
