#!/usr/bin/env bash
# Run 68 (H100), call 1 of the bench's three (.peers-big-a kept for Quack): gpu_check on the
# tables of runs 65-67 (PDL on). Call 2 joins Quack's libraries and installs the wheels; call 3
# runs scripts/gpu_bench.sh in two parts (h100-run68-bench/).
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 benchmarks/gpu_check.py > $OUT/run68-gpu-check.log 2>&1; echo "gpu_check rc $?"
tail -2 $OUT/run68-gpu-check.log
