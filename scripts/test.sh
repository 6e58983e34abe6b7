#!/usr/bin/env bash
# Sets up .venv with the test extras and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/ci_browser_deps.sh || echo "browser tests will be skipped (no Chromium)" >&2
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
