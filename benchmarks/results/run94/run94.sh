#!/usr/bin/env bash
# Run 94 (H100): run 93's "+dyn" entries as landed (FWD_RES 64K, FWD_FP32 64K, FWD_FP32_RES 128K
# and 256K) against the same layouts with rows fixed, fp16 included (run 93 timed bf16 only),
# alternating inputs, two turns; then the suite on the GPU.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
for turn in 1 2; do
  TUNE_FAMILIES=none OUT=$OUT timeout 100 python3 benchmarks/tune.py --ops res --dtypes bf16,fp16 \
    --ns 65536 --variants 4096x8:early:2 > $OUT/run94-tune-$turn.log 2>&1
  TUNE_FAMILIES=none OUT=$OUT timeout 100 python3 benchmarks/tune.py --ops fwd --dtypes fp32 \
    --ns 65536 --variants 2048x4:early:4 >> $OUT/run94-tune-$turn.log 2>&1
  TUNE_FAMILIES=none OUT=$OUT timeout 100 python3 benchmarks/tune.py --ops res --dtypes fp32 \
    --ns 131072,262144 --variants 2048x4:split:3,2048x4:early:3 >> $OUT/run94-tune-$turn.log 2>&1
  echo "turn $turn"; grep "^fwd\|^res" $OUT/run94-tune-$turn.log
done
timeout 200 python3 -m pytest -q -n 8 -p no:cacheprovider tests > $OUT/run94-pytest.log 2>&1
echo "pytest rc $?"; tail -4 $OUT/run94-pytest.log
