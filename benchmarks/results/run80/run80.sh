#!/usr/bin/env bash
# Run 80 (H100): the 16-bit forward and fused forward at 64K held in ONE pass, one row a program
# of 32 warps (64 elements a thread), now that the product in 16 bits (run 78) leaves fewer
# registers: compiled for sm_90 it is 64 registers a thread and 88 bytes of stack (136-160 with
# a residual; /tmp/reg64.py, regs.fwd), against the SPLIT entries (95.2-95.6% / 97.2-97.7%).
# Prediction: like 32K's one program an SM (97%), less what the spills cost (they stay in L1):
# 95-97%; below the SPLIT entries if the spills' traffic shows. Alternating inputs, one turn
# each way, then the table's entries and the one-pass layout again (a second turn).
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for turn in 1 2; do
  TUNE_NATIVE=both TUNE_FAMILIES=onepass OUT=$OUT timeout 140 python3 benchmarks/tune.py --sweep \
    --ops fwd,res --dtypes bf16,fp16 --ns 65536,40000 > $OUT/run80-tune-$turn.log 2>&1
  echo "tune turn $turn rc $?"; grep "^fwd\|^res" $OUT/run80-tune-$turn.log
done
