#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh, with Voila) and serves the quickstart notebook as a web app:
#   bash scripts/explorer.sh            -> http://127.0.0.1:8866/
#   PORT=9000 bash scripts/explorer.sh
#   CULL_IDLE_SECONDS=300 bash scripts/explorer.sh   (kernels without a tab culled after 300 s idle)
# Offline: EfficientNet-Lite0 and scikit-image photos. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8866}
NOTEBOOK=${NOTEBOOK:-notebooks/00_quickstart.ipynb}

bash scripts/setup.sh

echo "cam_widgets explorer: http://127.0.0.1:${PORT}/  (notebook: ${NOTEBOOK}; Ctrl-C to stop)"
echo "(the first page load runs the notebook: allow ~20 s for the model to load)"
echo "(a closed tab ends its kernel; kernels left without a tab are culled after" \
     "${CULL_IDLE_SECONDS:-600} s idle: CULL_IDLE_SECONDS, 0 = never)"
# Settings in scripts/voila.py (read by Voila with voila.json; the browser tests use both):
# - a closed tab ends its kernel: Voila's page asks for the shutdown on unload, and needs the
#   `_xsrf` cookie that scripts/voila.py has Voila's page handler set (before, every request was
#   refused with a 403 and each closed tab kept its 1 to 1.8 GB kernel until Voila stopped);
# - kernels left anyway (a crashed browser, a lost network) are culled once they have had no
#   tab and run nothing for CULL_IDLE_SECONDS (default 600; 0 = never), checked every
#   CULL_INTERVAL_SECONDS (default 60). An open tab's kernel is never culled.
# Settings in scripts/voila.json:
# - progressive rendering: widgets are created one by one as cells run, so every Plotly
#   FigureWidget initialises its JavaScript in time (anywidget's 2 s deadline);
# - no WebSocket ping timeout: Voila runs the whole notebook inside one message handler of its
#   execution socket, during which tornado reads no pong, so jupyter_server's 90 s ping timeout
#   closed the socket of any notebook running longer (chapters 01 and 05 on a 2-core CPU) and
#   the page kept its placeholders. The pings themselves still go out. Voila's log then warns
#   "websocket_ping_timeout (86400000) cannot be longer than the websocket_ping_interval
#   (30000)": that is tornado >= 6.5 reading jupyter_server's millisecond settings as seconds
#   for its own ping loop (a ping every 30000 s, so it never fires); jupyter_server's check,
#   which closed the sockets, does read ws_ping_timeout in milliseconds. Harmless.
exec .venv/bin/python -m voila --no-browser \
  --Voila.ip=127.0.0.1 --Voila.port="${PORT}" --Voila.port_retries=0 \
  --Voila.config_file_paths=scripts \
  "${NOTEBOOK}"
