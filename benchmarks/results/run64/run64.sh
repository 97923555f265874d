#!/usr/bin/env bash
# Run 64 (H100): the long-row SPLIT layouts re-swept with PDL on (run 60), where the bench
# (run 63) left us behind Quack: the fused residual at 64K / 128K and the forward at 64K, bf16
# (fp16 shares the tables). Families: PAIRS, EARLY, capped registers (tune.py).
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
TUNE_FAMILIES=pairs,early,capped timeout 560 python3 benchmarks/tune.py --ops res,fwd --dtypes bf16 \
  --ns 65536,131072 --sweep > $OUT/run64-sweep.log 2>&1; echo "tune rc $?"
grep -A8 "^best" $OUT/run64-sweep.log
