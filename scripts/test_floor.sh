#!/usr/bin/env bash
# The test suite again under the oldest Triton that pyproject.toml admits (3.6, with the NumPy
# below 2.4 that its interpreter needs), in its own .venv-floor, on the CPU: the launcher's and
# the interpreter's version checks meet both ends of the range. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-floor PINS="triton==3.6.0 numpy<2.4" bash scripts/bootstrap.sh test,hf,bench,viz-test >/dev/null
.venv-floor/bin/python -c "import torch, triton, numpy; print('floor: torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__)"
exec .venv-floor/bin/python -m pytest -q -n 2 -p no:cacheprovider "$@"
