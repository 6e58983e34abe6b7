"""The quickstart notebook in JupyterLab 4 + headless Chromium: Run All Cells, the Explorer's map
renders and takes updates from Python, and a click on the Compare figure marks every panel.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -m browser
Skipped (with the reason) without jupyterlab, unless CAM_WIDGETS_REQUIRE_BROWSER=1.
The tests of this module share one page (one kernel) and run in file order.
"""
from __future__ import annotations

import time

import pytest

from .conftest import NOTEBOOK
from .browser_helpers import errors_except
from .frontend_checks import (
    check_compare_click_marks_every_panel,
    check_explorer_renders_map,
    check_prediction_button_round_trip,
)
from .lab_helpers import (
    COMPARE_DRAWN_JS,
    EXPLORER_DRAWN_JS,
    LOAD_TIMEOUT,
    TWO_PLOTS_JS,
    lab_command,
    lab_run_all_cells,
    open_notebook,
    require_jupyterlab,
    serve_quickstart,
)

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def lab_server(tmp_path_factory, artifacts):
    """JupyterLab on 127.0.0.1 (free port, no token) serving a copy of the quickstart."""
    require_jupyterlab()
    yield from serve_quickstart(tmp_path_factory, artifacts, "lab", lab_command)


@pytest.fixture(scope="module")
def lab_quickstart(page, lab_server):
    """Open the quickstart in Lab, Run All Cells, wait (bounded) for both figures."""
    timings = {"lab_open_s": open_notebook(page, lab_server, f"/lab/tree/{NOTEBOOK.name}")}
    t1 = time.monotonic()
    timings["run_all_retries"] = lab_run_all_cells(page)
    page.wait_for_function(EXPLORER_DRAWN_JS, timeout=LOAD_TIMEOUT)
    timings["explorer_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_function(TWO_PLOTS_JS, timeout=LOAD_TIMEOUT)
    page.wait_for_function(COMPARE_DRAWN_JS, timeout=LOAD_TIMEOUT)
    timings["compare_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]',
                           timeout=LOAD_TIMEOUT)
    timings["all_idle_s"] = round(time.monotonic() - t1, 1)
    print("lab quickstart timings:", timings)
    return timings


def test_lab_explorer_renders_map(page, lab_quickstart):
    check_explorer_renders_map(page, errors_except)


def test_lab_prediction_button_round_trip(page, lab_quickstart, artifacts):
    check_prediction_button_round_trip(page, errors_except, artifacts / "lab_explorer.png")


def test_lab_compare_click_marks_every_panel(page, lab_quickstart, artifacts):
    check_compare_click_marks_every_panel(page, errors_except, artifacts / "lab_compare.png")
