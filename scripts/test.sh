#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine, then runs it.
#   - .venv-test (not .venv, the main job's) with the package and the [test,hf,bench,viz-test] extras
#   - Debian's chromium for the browser tests (driven by Playwright for Python)
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-test bash scripts/bootstrap.sh test,hf,bench,viz-test
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "could not install chromium: the browser tests will fail"
  else
    sudo sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium' >/dev/null
  fi
fi
set +e
.venv-test/bin/python -m pytest -q -n 2 --durations=15 "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests (exit 5): nothing was tested" >&2
fi
exit "$rc"
