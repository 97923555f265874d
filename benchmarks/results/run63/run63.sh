#!/usr/bin/env bash
# Run 63 (H100), call 1 of the bench's three (.peers-big-a kept for Quack): gpu_check and the
# test suite with programmatic dependent launch on (launch.PDL, run 60).
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONPATH=$PWD/src timeout 150 python3 benchmarks/gpu_check.py > $OUT/run63-gpu-check.log 2>&1; echo "gpu_check rc $?"
tail -2 $OUT/run63-gpu-check.log
PYTHONPATH=$PWD/src timeout 280 python3 -m pytest -q -n 8 -p no:cacheprovider tests > $OUT/run63-pytest.log 2>&1; echo "pytest rc $?"
tail -5 $OUT/run63-pytest.log
