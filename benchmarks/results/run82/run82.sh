#!/usr/bin/env bash
# Run 82 (H100): run 81's bench read our SPLIT cells (64K-256K, kernels' SASS unchanged since run
# 77: md5 of the sm_90 SASS compared) 2-3 points below runs 74 / 77, and Quack's 1K-16K 1-2
# below. Machine or process? The GPU's state (clocks, power, ECC, row remapping), then the
# table's entries at 4K / 64K / 128K, alternating inputs, in a fresh process.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,serial,uuid,pci.bus_id,driver_version,vbios_version,clocks.max.sm,clocks.max.memory,power.limit,ecc.mode.current,temperature.gpu,temperature.memory --format=csv
nvidia-smi -q -d ROW_REMAPPER,PERFORMANCE,ECC | grep -v "^$" | head -60
OUT=$OUT timeout 150 python3 benchmarks/tune.py --ops fwd,res --dtypes bf16,fp32 \
  --ns 4096,65536,131072 > $OUT/run82-tune.log 2>&1; echo "tune rc $?"
grep "^fwd\|^res\|copy" $OUT/run82-tune.log
