#!/usr/bin/env bash
# Creates .venv and installs cam_widgets (editable) with Voila ("app" extra);
# "setup.sh test" adds the test extras.
# Safe to re-run: an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
fi
extras="[app]"
if [ "${1:-}" = "test" ]; then extras="[app,test]"; fi
# a second launch skips the installs when the packaging files and extras are unchanged
# (the [app,test] install holds everything [app] needs)
stamp=".venv/.cam_widgets_${extras//[^a-z,]/}"
wanted="$(cat setup.py pyproject.toml | sha256sum | cut -d' ' -f1)"
for enough in "$stamp" .venv/.cam_widgets_app,test; do
  if [ "$(cat "$enough" 2>/dev/null)" = "$wanted" ] && [ -f .venv/bin/cam-widgets ]; then
    exit 0
  fi
done
# torch and torchvision first, as a matching pair (a lone PyPI torchvision may not import
# beside another torch build).
.venv/bin/python -c "import torch, torchvision" 2>/dev/null || \
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".${extras}"
echo "$wanted" > "$stamp"
