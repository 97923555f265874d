#!/usr/bin/env bash
# Run 89 (H100): ncu on the 64K cells, ours against Quack (see ncu64k.py). Needs the peers in
# /tmp/peers (README's two carry calls).
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONPATH=$PWD/src:/tmp/peers:/tmp/peers/nvidia_cutlass_dsl/dsl_packages PYTHONUNBUFFERED=1
timeout 400 /usr/local/cuda/bin/ncu --nvtx --nvtx-include "ours_fwd/" --nvtx-include "quack_fwd/" \
  --nvtx-include "ours_res/" --nvtx-include "quack_res/" --nvtx-include "copy/" \
  --nvtx-include "ours_fwd4k/" --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
  --section LaunchStats python3 benchmarks/results/run89/ncu64k.py > $OUT/run89b-ncu.txt 2>&1
echo "ncu rc $?"; grep -c "==PROF==\|Section: GPU Speed Of Light" $OUT/run89b-ncu.txt
grep -E "^  [a-z_].*\(|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|Achieved Occupancy|Registers Per|Grid Size|Block Size|Cluster Size|Warp Cycles Per Issued|Stall" $OUT/run89b-ncu.txt | head -80
