"""The quickstart notebook in JupyterLab 4 + headless Chromium: Run All Cells, the Explorer's map
renders and takes updates from Python, and a click on the Compare figure marks every panel.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -m browser
Skipped (with the reason) without jupyterlab, unless CAM_WIDGETS_REQUIRE_BROWSER=1.
The tests of this module share one page (one kernel) and run in file order.
"""
from __future__ import annotations

import shutil
import time

import pytest

from .conftest import NOTEBOOK, Server, _free_port
from .frontend_checks import (
    check_compare_click_marks_every_panel,
    check_explorer_renders_map,
    check_prediction_button_round_trip,
)
from .lab_helpers import (
    LAB_READY_PATH,
    lab_command,
    lab_env,
    lab_run_all_cells,
    require_jupyterlab,
)

pytestmark = pytest.mark.browser

LAB_START_TIMEOUT = 90.0   # server process up and answering /api
OPEN_TIMEOUT = 90_000      # the lab page, the notebook's cells, the kernel idle
LOAD_TIMEOUT = 120_000     # Run All: imports + model load + first map

EXPLORER_DRAWN_JS = """() => { const gd = document.querySelectorAll('.js-plotly-plot')[0];
    return !!gd && (gd.data || []).some(t => t.type === 'heatmap' && t.z && t.z.length > 0); }"""
COMPARE_DRAWN_JS = """() => { const gd = document.querySelectorAll('.js-plotly-plot')[1];
    return !!gd && (gd.data || []).filter(t => t.type === 'heatmap' && t.z && t.z.length > 0).length >= 2
           && gd.querySelectorAll('.hm, image').length > 0; }"""


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory, artifacts):
    """JupyterLab on 127.0.0.1 (free port, no token) serving a copy of the quickstart from a
    temporary directory, with isolated config/runtime/data/settings dirs; stopped by PID."""
    require_jupyterlab()
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port = _free_port()
    srv = Server(lab_command(port, work), work, lab_env(work / ".jupyter"), port,
                 LAB_READY_PATH, work / "lab.log", timeout=LAB_START_TIMEOUT)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.copy(srv.log_path, artifacts / "lab.log")


@pytest.fixture(scope="module")
def lab_quickstart(page, lab_server):
    """Open the quickstart in Lab, Run All Cells, wait (bounded) for both figures."""
    timings = {}
    t0 = time.monotonic()
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK.name}", timeout=OPEN_TIMEOUT)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=OPEN_TIMEOUT)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=OPEN_TIMEOUT)
    timings["lab_open_s"] = round(time.monotonic() - t0, 1)
    lab_server.remember_children()                     # the kernel, to reap by PID if left
    t1 = time.monotonic()
    timings["run_all_retries"] = lab_run_all_cells(page)
    page.wait_for_function(EXPLORER_DRAWN_JS, timeout=LOAD_TIMEOUT)
    timings["explorer_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2",
                           timeout=LOAD_TIMEOUT)
    page.wait_for_function(COMPARE_DRAWN_JS, timeout=LOAD_TIMEOUT)
    timings["compare_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=LOAD_TIMEOUT)
    timings["all_idle_s"] = round(time.monotonic() - t1, 1)
    print("lab quickstart timings:", timings)
    return timings


def _real_errors(page) -> list[str]:
    return [e for e in page.errors if "setData is not a function" not in e]


def test_lab_explorer_renders_map(page, lab_quickstart):
    check_explorer_renders_map(page, _real_errors)


def test_lab_prediction_button_round_trip(page, lab_quickstart, artifacts):
    check_prediction_button_round_trip(page, _real_errors, artifacts / "lab_explorer.png")


def test_lab_compare_click_marks_every_panel(page, lab_quickstart, artifacts):
    check_compare_click_marks_every_panel(page, _real_errors, artifacts / "lab_compare.png")
