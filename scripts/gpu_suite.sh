#!/usr/bin/env bash
# The test suite as the GPU machine runs it: each test's result is logged as it finishes, so a
# run cut short by the machine's time limit still names what failed; then the failures, the
# most common reasons and the counts per file.
#
#   bash scripts/gpu_suite.sh                                    # all but the browser tests
#   bash scripts/gpu_suite.sh tests/test_fp8_cuda.py tests/test_heads_cuda.py
#   TIMEOUT=240 WORKERS=12 bash scripts/gpu_suite.sh             # stop after 240 s, 12 workers
#
# The package runs from src/ (nothing is installed). The log is $OUT/gpu-suite.log (default:
# the current folder). tests/test_gpu_concurrency.py runs its cases in child processes under its
# own watchdog; run it on its own (it is left out unless named).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.}
LOG=$OUT/gpu-suite.log
PY=${PYTHON:-python3}
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(tests --ignore=tests/test_gpu_concurrency.py)
per_test=()
"$PY" -c "import pytest_timeout" 2>/dev/null && per_test=(--timeout "${TEST_TIMEOUT:-180}")
PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} timeout "${TIMEOUT:-540}" "$PY" -m pytest -v \
  -n "${WORKERS:-12}" -p no:cacheprovider -m "not browser" -rfE --tb=short "${per_test[@]}" \
  "${args[@]}" > "$LOG" 2>&1
rc=$?
[ $rc -eq 124 ] && echo "gpu_suite: stopped after ${TIMEOUT:-540} s; the results below are those that finished"
echo "== failed or errored (first 40)"
grep -oE "(FAILED|ERROR) tests/[^ ]+" "$LOG" | sort -u | head -40
echo "== most common reasons"
grep -E "^E  " "$LOG" | sed -E 's/0x[0-9a-f]+//g' | sort | uniq -c | sort -rn | head -12
echo "== per file: passed failed skipped"
grep -E "^\[gw" "$LOG" | grep -oE "(PASSED|FAILED|ERROR|SKIPPED) tests/[a-z_0-9]+\.py" \
  | awk '{n[$2" "$1]++; f[$2]=1} END {for (k in f) printf "%-36s %5d %5d %5d\n", k, n[k" PASSED"], n[k" FAILED"]+n[k" ERROR"], n[k" SKIPPED"]}' \
  | sort
tail -n 1 "$LOG"
exit $rc
