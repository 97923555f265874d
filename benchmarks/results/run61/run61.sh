#!/usr/bin/env bash
# Run 61 (H100): run 60's PDL outliers (probe.py), then the one-pass layouts at 16K/32K with PDL.
# Keeps half of Quack's libraries for a bench after.
set -o pipefail
cd "$(dirname "$0")/../../.."
mkdir -p /tmp/parts && cp .peers-big-a/* /tmp/parts/
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
timeout 330 python3 benchmarks/results/run61/probe.py > $OUT/run61-probe.log 2>&1; echo "probe rc $?"
TUNE_FAMILIES=onepass timeout 150 python3 benchmarks/tune.py --ops fwd,res --dtypes bf16 --ns 16384,32768 --sweep \
  > $OUT/run61-tune-1p.log 2>&1; echo "tune rc $?"
grep -A5 "^best" $OUT/run61-tune-1p.log
cat $OUT/run61-probe.log
