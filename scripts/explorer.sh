#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh, with Voila) and serves the quickstart notebook as a web app:
#   bash scripts/explorer.sh            -> http://127.0.0.1:8866/
#   PORT=9000 bash scripts/explorer.sh
# Offline: EfficientNet-Lite0 and scikit-image photos. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8866}
NOTEBOOK=${NOTEBOOK:-notebooks/00_quickstart.ipynb}

bash scripts/setup.sh

echo "cam_widgets explorer: http://127.0.0.1:${PORT}/  (notebook: ${NOTEBOOK}; Ctrl-C to stop)"
echo "(the first page load runs the notebook: allow ~20 s for the model to load)"
# progressive rendering: widgets are created one by one as cells run, so every Plotly
# FigureWidget initialises its JavaScript in time (anywidget's 2 s deadline).
exec .venv/bin/python -m voila --no-browser \
  --Voila.ip=127.0.0.1 --Voila.port="${PORT}" --Voila.port_retries=0 \
  --VoilaConfiguration.progressive_rendering=True \
  --VoilaConfiguration.show_tracebacks=True \
  "${NOTEBOOK}"
