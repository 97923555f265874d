#!/usr/bin/env bash
# Run 54 (H100): the cells where run 53's bench, peers side by side, had us behind or under the
# issue's line, swept with the bench's own clock (tune.py --clock bench). Part 1: fp32 forward
# rows to 32K (one pass) and the 16-bit backward at 16K (every family); part 2: fp32 fused rows
# to 16K and the 16-bit forward at 512, 16K and 32K. Then gpu_check (bits: same layout now).
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
T="python3 benchmarks/tune.py --clock bench --sweep"
export TUNE_FAMILIES=onepass,pairs,early,capped
if [ "$1" = 1 ]; then
  OUT=$OUT timeout 250 $T --ops fwd --dtypes fp32 --ns 512,1024,2048,4096,8192,16384,32768 2>&1 | tee $OUT/run54-fwd-fp32.log | grep -A99 "^best"
  OUT=$OUT timeout 250 $T --ops bwd --dtypes bf16,fp16 --ns 16384 2>&1 | tee $OUT/run54-bwd-16k.log | grep -A99 "^best"
else
  OUT=$OUT timeout 200 $T --ops res --dtypes fp32 --ns 512,1024,2048,4096,8192,16384 2>&1 | tee $OUT/run54-res-fp32.log | grep -A99 "^best"
  OUT=$OUT timeout 200 $T --ops fwd --dtypes bf16,fp16 --ns 512,16384,32768 2>&1 | tee $OUT/run54-fwd-16bit.log | grep -A99 "^best"
  timeout 120 python3 benchmarks/gpu_check.py 2>&1 | tee $OUT/run54-gpu-check.log | tail -3
fi
