#!/usr/bin/env bash
# Run 91 (H100): fp32 forward 16K, the one cell where torch.compile leads in runs 84 and 88
# (99.0 / 98.5 against 99.5 / 99.2). Its entry (16384 x 16 warps) was chosen in run 54 on one x;
# the one-pass layouts again, alternating inputs, two turns, 32K beside it. Prediction: an entry
# changes only if a layout leads by more than 0.3 in both turns.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
for turn in 1 2; do
  TUNE_FAMILIES=onepass OUT=$OUT timeout 120 python3 benchmarks/tune.py --sweep --ops fwd \
    --dtypes fp32 --ns 16384,32768 > $OUT/run91-tune-$turn.log 2>&1
  echo "turn $turn rc $?"; grep "^fwd" $OUT/run91-tune-$turn.log
done
