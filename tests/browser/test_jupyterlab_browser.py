"""The quickstart notebook in JupyterLab 4 + headless Chromium: Run All Cells, the Explorer's map
renders and takes updates from Python, and a click on the Compare figure marks every panel.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -m browser
Skipped (with the reason) without jupyterlab, unless CAM_WIDGETS_REQUIRE_BROWSER=1.
The tests of this module share one page (one kernel) and run in file order.
"""
from __future__ import annotations

import re
import shutil
import time

import pytest

from .browser_helpers import heatmaps, markers, plot_state, status_text
from .conftest import NOTEBOOK, Server, _free_port
from .lab_helpers import (LAB_READY_PATH, lab_command, lab_env, lab_run_all_cells,
                          require_jupyterlab)

pytestmark = pytest.mark.browser

LAB_START_TIMEOUT = 90.0   # server process up and answering /api
OPEN_TIMEOUT = 90_000      # the lab page, the notebook's cells, the kernel idle
LOAD_TIMEOUT = 120_000     # Run All: imports + model load + first map
UPDATE_TIMEOUT = 60_000    # one engine call and its round trip
CLICK_TIMEOUT = 30_000     # a click on the map: browser -> Python -> browser, no engine call

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


def _output(page, nth: int):
    """The cell output holding the nth Plotly figure (0: Explorer, 1: Compare)."""
    return page.locator(".jp-OutputArea-output").filter(
        has=page.locator(".js-plotly-plot")).nth(nth)


def _click_in_panel(page, plot_index: int, fx: float = 0.5, fy: float = 0.45) -> None:
    """Mouse click at a fraction of the first subplot's plot area of a figure."""
    drag = page.locator(".js-plotly-plot").nth(plot_index).locator(".nsewdrag").first
    drag.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = drag.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 50, box
    x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
    page.mouse.move(x, y)
    page.wait_for_timeout(300)      # let plotly register the hover before the click
    page.mouse.click(x, y)


def _real_errors(page) -> list[str]:
    return [e for e in page.errors if "setData is not a function" not in e]


def test_lab_explorer_renders_map(page, lab_quickstart):
    plot = plot_state(page)[0]
    hms = heatmaps(plot)
    assert len(hms) == 1, plot
    (heat,) = hms
    assert heat["finite"] > 0 and heat["sum"] > 0, heat
    assert max(heat["sample"]) > min(heat["sample"]), "the map is flat"
    assert plot["calcdataHeatmaps"] == 1, plot        # plotly computed it, i.e. drew it
    assert "(285)" in plot["titles"][0], plot["titles"]
    assert page.locator(".js-plotly-plot").first.locator("image").count() >= 1   # the photo
    assert not _real_errors(page), page.errors


def test_lab_prediction_button_round_trip(page, lab_quickstart, artifacts):
    """Click the "282 ..." row of the top-5 list: Python recomputes, the DOM's z changes."""
    before = plot_state(page)[0]
    button = page.locator(".jupyter-button").filter(has_text=re.compile(r"^\s*282")).first
    button.scroll_into_view_if_needed()
    button.click()
    page.wait_for_function(
        """old => { const gd = document.querySelectorAll('.js-plotly-plot')[0];
             const a = gd && gd.layout && gd.layout.annotations && gd.layout.annotations[0];
             return !!a && a.text !== old && a.text.includes('(282)'); }""",
        arg=before["titles"][0], timeout=UPDATE_TIMEOUT)
    page.wait_for_function(
        """() => { const s = document.querySelector('.widget-dropdown select');
                   return !!s && !s.disabled; }""", timeout=UPDATE_TIMEOUT)
    after = plot_state(page)[0]
    (h0,), (h1,) = heatmaps(before), heatmaps(after)
    assert h1["finite"] > 0, h1
    assert h1["sample"] != h0["sample"], "heatmap z did not change in the browser"
    assert "(282)" in (status_text(page) or ""), status_text(page)
    out = _output(page, 0)
    out.scroll_into_view_if_needed()
    out.screenshot(path=str(artifacts / "lab_explorer.png"))
    assert not _real_errors(page), page.errors


def test_lab_compare_click_marks_every_panel(page, lab_quickstart, artifacts):
    plot = plot_state(page)[1]
    panels = heatmaps(plot)
    assert len(panels) >= 2 and all(h["finite"] > 0 for h in panels), plot
    assert len(markers(plot)) == len(panels), plot
    assert all(m["x"] == [] for m in markers(plot)), "markers before any click"
    _click_in_panel(page, plot_index=1)
    n = len(panels)
    page.wait_for_function(
        """n => { const gd = document.querySelectorAll('.js-plotly-plot')[1];
             const s = gd.data.filter(t => t.type === 'scatter');
             return s.length === n && s.every(t => t.x && t.x.length === 1 && t.y && t.y.length === 1); }""",
        arg=n, timeout=CLICK_TIMEOUT)
    after = markers(plot_state(page)[1])
    xs, ys = {m["x"][0] for m in after}, {m["y"][0] for m in after}
    assert len(xs) == 1 and len(ys) == 1, f"markers differ between panels: {after}"
    x, y = xs.pop(), ys.pop()
    assert 0 <= x < 224 and 0 <= y < 224, (x, y)
    out = _output(page, 1)
    table = out.locator("table")
    table.first.wait_for(state="visible", timeout=CLICK_TIMEOUT)
    assert re.search(r"\d\.\d", table.first.inner_text()), table.first.inner_text()
    out.scroll_into_view_if_needed()
    out.screenshot(path=str(artifacts / "lab_compare.png"))
    assert not _real_errors(page), page.errors
