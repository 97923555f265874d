#!/usr/bin/env bash
# Run 60 (H100), call 1: programmatic dependent launch (kernels._dependent_launch, launch.PDL).
# gpu_check with PDL on (every SPLIT shape, "bits", CUDA-graph replays); then every bench cell of
# ours with PDL off and on, alternated (pdl_ab.py); then 16K/32K 16-bit forward layouts (SPLIT
# and LOOP beside the table's one pass). Keeps half of Quack's libraries for a bench after.
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"
timeout 170 python3 benchmarks/gpu_check.py > $OUT/run60-gpu-check.log 2>&1; echo "gpu_check rc $?"
tail -4 $OUT/run60-gpu-check.log
timeout 300 python3 benchmarks/results/run60/pdl_ab.py --dtypes bf16,fp32,fp16 > $OUT/run60-pdl-ab.log 2>&1
echo "pdl_ab rc $?"
TUNE_FAMILIES=none timeout 100 python3 benchmarks/tune.py --ops fwd --dtypes bf16 --ns 16384,32768 \
  --variants 2048x4:early:7:72,2048x4:early:6:80,4096x4:early:4:128,4096x8:early:3:80,8192x8:early:2:128,8192x16:early:1,2048x4:loop:1,4096x4:loop:1,4096x8:loop:1,8192x8:loop:1 \
  > $OUT/run60-tune-32k.log 2>&1; echo "tune rc $?"
grep -A3 "^best" $OUT/run60-tune-32k.log
tail -12 $OUT/run60-pdl-ab.log
