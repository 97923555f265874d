#!/usr/bin/env bash
# Run 62 (H100): LOOP (two walks of the row, the second from L2) with eviction hints: the first
# walk's loads evict_last, the second's evict_first (as Inductor's two-pass reductions), beside
# the table's entries at 16K-64K, 16-bit, with PDL. Keeps half of Quack's libraries.
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
TUNE_FAMILIES=none timeout 300 python3 benchmarks/tune.py --ops fwd,res --dtypes bf16 --ns 16384,32768,65536 \
  --variants 1024x2:loop:1,1024x4:loop:1,2048x4:loop:1,2048x8:loop:1,4096x4:loop:1,4096x8:loop:1,4096x16:loop:1,8192x8:loop:1,8192x16:loop:1 \
  > $OUT/run62-tune-loop.log 2>&1; echo "tune rc $?"
grep -v "^$" $OUT/run62-tune-loop.log
