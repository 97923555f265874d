#!/usr/bin/env bash
# Run 71 (H100): the session's final code and tables: gpu_check (with --big) and the test suite.
set -o pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
# (ran on the working tree of commit ebc81cc; the machine's .git copy is not that commit's)
timeout 260 python3 benchmarks/gpu_check.py --big > $OUT/run71-gpu-check.log 2>&1; echo "gpu_check rc $?"
grep -E "2\^31|FEWER|tables:|ALL OK|FAIL" $OUT/run71-gpu-check.log
timeout 280 python3 -m pytest -q -n 8 -p no:cacheprovider tests > $OUT/run71-pytest.log 2>&1; echo "pytest rc $?"
tail -4 $OUT/run71-pytest.log
