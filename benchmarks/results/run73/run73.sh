#!/usr/bin/env bash
# Run 73 (H100): every table entry (forward, backward, fused residual; bf16, fp16, fp32; N = 512
# .. 256K) built by Triton's ptxas and by torch's (launch.PTXAS), one process each, alternated.
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
for who in ${ORDER:-triton torch}; do
  RMSNORM_TRITON_PTXAS=$who timeout ${LIMIT:-280} python3 benchmarks/tune.py > $OUT/run73-$who-${TURN:-1}.log 2>&1
  echo "$who rc $?"; head -1 $OUT/run73-$who-${TURN:-1}.log
done
