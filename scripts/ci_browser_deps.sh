#!/usr/bin/env bash
# Installs Debian's Chromium at /usr/bin/chromium for the browser tests (tests/browser);
# safe to re-run (as root, or through password-less sudo). Voila and the Playwright wheel
# come with the package's test extra.
# Never runs `playwright install`: the tests drive the system Chromium.
# Then: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -m browser
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

status=0
if [ -x "$CHROMIUM" ]; then
  echo "chromium: found $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo '?'))"
else
  if [ "$(id -u)" -eq 0 ]; then SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
  else SUDO="none"; fi
  if [ "$SUDO" = "none" ]; then
    echo "chromium: not installed and not root (no password-less sudo): run as root" \
         "'apt-get update && apt-get install -y chromium' (browser tests will skip)" >&2
    status=1
  elif ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: no apt-get here; install Chromium and set CHROMIUM_PATH" >&2
    status=1
  else
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q chromium
    echo "chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "(not at $CHROMIUM?)")"
  fi
fi

exit $status
