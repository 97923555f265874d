#!/usr/bin/env bash
# Run 103 (H100): ncu on the SPLIT forward at 64K, rows fixed and handed out (see ncu_dyn.py).
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
timeout 400 /usr/local/cuda/bin/ncu --nvtx --nvtx-include "bf16_static/" --nvtx-include "bf16_dyn/" \
  --nvtx-include "fp32_static/" --nvtx-include "fp32_dyn/" --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
  --section LaunchStats python3 benchmarks/results/run103/ncu_dyn.py > $OUT/run103-ncu.txt 2>&1
echo "ncu rc $?"
grep -E "^  [a-z_].*\(|Duration|DRAM Throughput|L2 Hit Rate|Achieved Occupancy|Registers Per|Grid Size|Warp Cycles Per Issued|Stall|stall" $OUT/run103-ncu.txt | head -80
