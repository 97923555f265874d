#!/usr/bin/env bash
# Run 59 (H100), call 1 of 3: SPLIT's slots tagged with the call's epoch and kept from call to
# call (no fill kernel before each SPLIT call; launch.slots). gpu_check on it (every SPLIT shape,
# "bits", CUDA-graph replays), keeping half of Quack's libraries for the bench that follows
# (call 2: the other half and the wheels; call 3: scripts/gpu_bench.sh, every provider).
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONPATH=$PWD/src timeout 200 python3 benchmarks/gpu_check.py 2>&1 | tee $OUT/run59-gpu-check.log | tail -6
