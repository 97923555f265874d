#!/usr/bin/env bash
# Run 108 (H100): gpu_check on the table with fused 16-bit 128K "+dyn", its A/B (ab_res128k.py),
# and ncu's source page on the 16-bit 64K forward as landed in run 104 (late poll), rows fixed.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=serial --format=csv,noheader
timeout 250 python3 benchmarks/gpu_check.py > $OUT/run108-gpu-check.log 2>&1; echo "gpu_check rc $?"
tail -1 $OUT/run108-gpu-check.log
timeout 150 python3 benchmarks/results/run108/ab_res128k.py 2>&1 | tee $OUT/run108-ab.log
NCU=/usr/local/cuda/bin/ncu
timeout 150 $NCU --nvtx --nvtx-include "bf16_static/" --section SourceCounters --section WarpStateStats \
  --section SpeedOfLight --import-source yes -f -o /tmp/r108 python3 benchmarks/results/run103/ncu_dyn.py \
  > $OUT/run108-profile.log 2>&1; echo "profile rc $?"
$NCU --import /tmp/r108.ncu-rep --page source --csv --print-source sass > $OUT/run108-sass.csv 2>/dev/null
$NCU --import /tmp/r108.ncu-rep --page details > $OUT/run108-details.txt 2>/dev/null
grep -E "Duration|DRAM Throughput" $OUT/run108-details.txt
