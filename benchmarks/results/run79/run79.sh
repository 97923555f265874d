#!/usr/bin/env bash
# Run 79 (H100): run 78's one-pass product in 16 bits, as landed (launch.W_NATIVE_ONE_PASS =
# 16384): gpu_check (bits against the fp32 product at 16K-32K one-pass rows too), the suite on
# the GPU, and the one-pass layouts at 16K / 32K swept again with the product in 16 bits and in
# fp32 (alternating inputs), since fewer registers may move the best warps count.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 python3 benchmarks/gpu_check.py > $OUT/run79-gpu-check.log 2>&1; echo "gpu_check rc $?"
tail -2 $OUT/run79-gpu-check.log; grep -c FAIL $OUT/run79-gpu-check.log
timeout 200 python3 -m pytest -q -n 8 -p no:cacheprovider tests > $OUT/run79-pytest.log 2>&1
echo "pytest rc $?"; tail -4 $OUT/run79-pytest.log
TUNE_NATIVE=both TUNE_FAMILIES=onepass OUT=$OUT timeout 200 python3 benchmarks/tune.py --sweep \
  --ops fwd,res --dtypes bf16,fp16 --ns 16384,32768 > $OUT/run79-tune.log 2>&1; echo "tune rc $?"
grep -A40 "^best per" $OUT/run79-tune.log
