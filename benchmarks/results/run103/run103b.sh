#!/usr/bin/env bash
# Run 103b (H100): where the 16-bit SPLIT forward at 64K stalls, per SASS instruction (ncu's
# source page), rows fixed (bf16_static in ncu_dyn.py). The CSV comes back in $OUT; a summary
# by stall reason and by Triton source line is made from it on any machine.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
NCU=/usr/local/cuda/bin/ncu
timeout 300 $NCU --nvtx --nvtx-include "bf16_static/" --section SourceCounters --section WarpStateStats \
  --import-source yes -f -o /tmp/r103b python3 benchmarks/results/run103/ncu_dyn.py > $OUT/run103b-profile.log 2>&1
echo "profile rc $?"
$NCU --import /tmp/r103b.ncu-rep --page source --csv --print-source sass > $OUT/run103b-sass.csv 2> $OUT/run103b-sass.err
echo "sass rc $? lines $(wc -l < $OUT/run103b-sass.csv)"
$NCU --import /tmp/r103b.ncu-rep --page source --csv --print-source python > $OUT/run103b-src.csv 2>> $OUT/run103b-sass.err
echo "src rc $? lines $(wc -l < $OUT/run103b-src.csv)"
head -3 $OUT/run103b-sass.csv | cut -c1-600; tail -3 $OUT/run103b-sass.err
