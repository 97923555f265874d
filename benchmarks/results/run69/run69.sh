#!/usr/bin/env bash
# Run 69 (H100): gpu_check with its new report of programs an SM per SPLIT table entry.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
timeout 200 python3 benchmarks/gpu_check.py > $OUT/run69-gpu-check.log 2>&1; echo "gpu_check rc $?"
sed -n '/^      op/,$p' $OUT/run69-gpu-check.log
