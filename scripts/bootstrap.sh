#!/usr/bin/env bash
# Sets up a virtualenv ($VENV, default .venv) with the package and the extras named in $1
# (default: none), then prints the versions it got. $PINS: more requirements for that install
# (scripts/test_floor.sh pins the oldest Triton). Idempotent: a second run installs nothing new.
# torch==2.13.0 is pinned so that pip takes the CPU wheel on this project's CI machines where
# the image has one; on a GPU machine, install the package into an environment that has torch.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
venv=${VENV:-.venv}
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "bootstrap: $py is missing or older than 3.10 ($("$py" --version 2>&1 || true));" \
       "install Python 3.10-3.12 or set PYTHON=/path/to/python3" >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$py" -m venv "$venv" >/dev/null; then
    rm -rf "$venv"
    echo "bootstrap: '$py -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 2
  fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
spec="."
[ -n "$extras" ] && spec=".[$extras]"
# shellcheck disable=SC2086  # $PINS: extra requirements, word-split on purpose
"$venv/bin/python" -m pip install -q "torch==2.13.0" ${PINS:-} -e "$spec" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import rmsnorm_triton, torch, triton; print('rmsnorm_triton', rmsnorm_triton.__version__, 'torch', torch.__version__, 'triton', triton.__version__, '(kernels interpreted on the CPU)' if rmsnorm_triton.interpreted() else '(kernels compiled for CUDA)')"
