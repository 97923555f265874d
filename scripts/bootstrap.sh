#!/usr/bin/env bash
# Sets up .venv with the package and the extras named in $1 (default: none). Idempotent.
# torch==2.13.0 is pinned so that pip takes the CPU wheel on this machine's disk where there is
# one; on a GPU machine, install the package into an environment that already has torch.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q "torch==2.13.0" -e "$spec" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import rmsnorm_triton, torch, triton; print('rmsnorm_triton', rmsnorm_triton.__version__, 'torch', torch.__version__, 'triton', triton.__version__)"
