"""The quickstart notebook in JupyterLab 4 + headless Chromium: Run All Cells, the Explorer's map
renders and takes updates from Python, and a click on the Compare figure marks every panel.
Then (issue 19) the console: every error and warning logged while the quickstart was loaded, used
and its tab closed is explained (lab_console.EXPLAINED, each with its cause); closing the tab
logs nothing (it logged "Could not send widget sync message" once per figure).
And, on a page of its own at 1280x720 (Lab's default layout, file browser open), a 3-panel Compare
fits the output area and re-fits when the sidebar is closed.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -m browser
Skipped (with the reason) without jupyterlab, unless CAM_WIDGETS_REQUIRE_BROWSER=1.
The quickstart tests of this module share one page (one kernel) and run in file order.
"""

from __future__ import annotations

import time

import pytest

from .browser_helpers import (
    errors_except,
    figure_geometry,
    save_failure_evidence,
    wait_figure_settled,
    watched_page,
)
from .conftest import NOTEBOOK
from .frontend_checks import (
    check_compare_click_marks_every_panel,
    check_explorer_renders_map,
    check_prediction_button_round_trip,
)
from .lab_console import ANYWIDGET_DEADLINE, console_problems, lab_dead_anywidgets, unexplained_console
from .lab_helpers import (
    COMPARE_DRAWN_JS,
    EXPLORER_DRAWN_JS,
    LOAD_TIMEOUT,
    TWO_PLOTS_JS,
    lab_command,
    lab_left_sidebar_open,
    lab_run_all_cells,
    lab_toggle_file_browser,
    open_notebook,
    require_jupyterlab,
    serve_quickstart,
)

pytestmark = pytest.mark.browser

#: a notebook of its own for the fit test: only a 3-panel Compare (layers: no class search)
FIT_NOTEBOOK = "compare_fit.ipynb"
FIT_CELLS = [
    """from cam_widgets.widgets.compare import Compare

compare = Compare(image="chelsea", by="layer", values=("features.4", "features.6", "features.8"))
compare"""
]
#: JupyterLab's default layout on a 1280x720 screen: the file browser open, outputs ~850 px wide
LAB_DEFAULT_VIEWPORT = {"width": 1280, "height": 720}
#: rounding of plotly's layout and of the browser's boxes (px)
SLACK = 2
#: the figure's height past its panels': titles and margins (render.figures' FIGURE_EXTRA_HEIGHT,
#: 90 px) and the gaps plotly leaves between subplots; more means the height did not follow
MAX_EXTRA_HEIGHT = 120
COMPARE3_DRAWN_JS = """() => { const gd = document.querySelectorAll('.js-plotly-plot')[0];
    return !!gd && (gd.data || []).filter(t => t.type === 'heatmap' && t.z && t.z.length > 0).length === 3
           && gd.querySelectorAll('.nsewdrag').length === 3 && gd.querySelectorAll('.hm, image').length > 0; }"""


def lab_command_exposed(port: int, root_dir) -> list[str]:
    """lab_command, with window.jupyterapp for the probe of dead anywidget models."""
    return [*lab_command(port, root_dir), "--LabApp.expose_app_in_browser=True"]


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory, artifacts):
    """JupyterLab on 127.0.0.1 (free port, no token) serving a copy of the quickstart (and the
    fit test's notebook)."""
    require_jupyterlab()
    yield from serve_quickstart(
        tmp_path_factory, artifacts, "lab", lab_command_exposed, extra_notebooks={FIT_NOTEBOOK: FIT_CELLS}
    )


#: the highest execution count shown by a cell's prompt (0: none run yet)
LAST_RUN_JS = """() => Math.max(0, ...[...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')]
    .map(e => Number((e.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1])))"""
#: the quickstart's code cells
QUICKSTART_CODE_CELLS = 2


def _run_all_and_wait(page, timings: dict, key: str) -> None:
    """Run All Cells and wait (bounded) for every cell to have run and both figures drawn."""
    before = page.evaluate(LAST_RUN_JS)
    t1 = time.monotonic()
    try:
        timings[f"{key}_retries"] = lab_run_all_cells(page)
    except Exception as e:
        # evidence: JupyterLab's "Select Kernel" dialog, over a notebook whose kernel was alive,
        # blocked the Run menu on a machine at load 8 to 16 (2 cores); not understood yet
        dialog = page.locator(".jp-Dialog")
        e.add_note(f"dialog: {dialog.first.inner_text(timeout=5_000) if dialog.count() else None}")
        raise
    if before:  # run again: the old prompts and figures are there until the new run replaces them
        page.wait_for_function(
            f"() => ({LAST_RUN_JS})() >= {before + QUICKSTART_CODE_CELLS}", timeout=LOAD_TIMEOUT
        )
    page.wait_for_function(EXPLORER_DRAWN_JS, timeout=LOAD_TIMEOUT)
    timings[f"{key}_explorer_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_function(TWO_PLOTS_JS, timeout=LOAD_TIMEOUT)
    page.wait_for_function(COMPARE_DRAWN_JS, timeout=LOAD_TIMEOUT)
    timings[f"{key}_compare_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=LOAD_TIMEOUT)
    timings[f"{key}_all_idle_s"] = round(time.monotonic() - t1, 1)


@pytest.fixture(scope="module")
def lab_quickstart(page, lab_server):
    """Open the quickstart in Lab, Run All Cells, wait (bounded) for both figures; check that
    every anywidget model takes updates from Python.

    anywidget 0.11 gives each model 2 s to load and bind its module (Plotly's ~5 MB bundle for
    a figure); a browser starved of CPU (a loaded 2-core CI machine) can miss it, and the model
    then ignores every later update for good, though its figure draws (README, "A class on one
    server or on Binder"). That is not a defect of the quickstart, and the remedy README gives is
    to run the cell again; so where the probe finds such models, the notebook is run once more,
    as a user would, and then no model may be dead (``deadline_missed`` keeps the first ones:
    the console check lets anywidget's message through only then)."""
    timings = {"lab_open_s": open_notebook(page, lab_server, f"/lab/tree/{NOTEBOOK.name}")}
    _run_all_and_wait(page, timings, "run_all")
    timings["deadline_missed"] = lab_dead_anywidgets(page)
    if timings["deadline_missed"]:
        _run_all_and_wait(page, timings, "run_again")
        dead = lab_dead_anywidgets(page)
        assert not dead, f"anywidget models dead after running the notebook again: {dead}"
    print("lab quickstart timings:", timings)
    return timings


def test_lab_explorer_renders_map(page, lab_quickstart):
    check_explorer_renders_map(page, errors_except)


def test_lab_prediction_button_round_trip(page, lab_quickstart, artifacts):
    check_prediction_button_round_trip(page, errors_except, artifacts / "lab_explorer.png")


def test_lab_compare_click_marks_every_panel(page, lab_quickstart, artifacts):
    check_compare_click_marks_every_panel(page, errors_except, artifacts / "lab_compare.png")


def test_lab_console_is_explained_and_closing_the_tab_logs_nothing(page, lab_quickstart, artifacts):
    """Issue 19, after the quickstart's tests above (load, a prediction, a click on Compare):
    every anywidget model still takes updates; the quickstart's tab is closed (its changes
    discarded) and nothing is logged then (plotly's figures counted their views, and JupyterLab
    removes a closed tab's views after its kernel connection is gone: "Could not send widget
    sync message" once per figure; figure_widget opts out of the count); every error and
    warning of the console is explained (lab_console)."""
    assert not lab_dead_anywidgets(page), "an anywidget model no longer takes updates"
    before_close = len(console_problems(page))
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=NOTEBOOK.name)
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    # run, the notebook has changes: "Save your work" (Cancel / Discard / Save)
    page.wait_for_function(
        "() => !!document.querySelector('.jp-Dialog') || !document.querySelector('.jp-NotebookPanel')",
        timeout=30_000,
    )
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog button", has_text="Discard").click()
    page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel')", timeout=30_000)
    page.wait_for_timeout(2_000)  # the views are removed as the tab goes (their errors came within 1 s)
    page.screenshot(path=str(artifacts / "lab_tab_closed.png"))
    problems = console_problems(page)
    print(f"lab console: {len(page.console_lines)} lines, errors and warnings: {problems}")
    assert problems[before_close:] == [], problems[before_close:]
    unexplained = unexplained_console(page, deadline_rerun=bool(lab_quickstart["deadline_missed"]))
    assert not unexplained, "\n".join(unexplained)
    if any(ANYWIDGET_DEADLINE in line for line in problems):
        print("anywidget's deadline was missed at load, then met on a second run:", lab_quickstart)


@pytest.fixture
def lab_page_default_size(browser, lab_server, request, artifacts):
    """A page of its own (a new browser context) at 1280x720; a screenshot on failure."""
    ctx, pg = watched_page(browser, LAB_DEFAULT_VIEWPORT)
    try:
        yield pg
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            save_failure_evidence(pg, artifacts / f"failure_{request.node.name}.png", figure_geometry)
    finally:
        ctx.close()


def _assert_fits(geo: dict, when: str) -> None:
    """The whole figure (colour bar included) lies within the output area and the visible
    notebook, and its three panels are square (the photo is 224x224)."""
    fig, out, nb = geo["figure"], geo["output"], geo["notebook"]
    assert out and nb, geo
    assert fig["right"] <= out["right"] + SLACK, (
        f"{when}: the figure's right edge {fig['right']:.0f} px is past the output area's "
        f"{out['right']:.0f} px (cut off by {fig['right'] - out['right']:.0f} px): {geo}"
    )
    assert fig["right"] <= nb["right"] + SLACK, (
        f"{when}: the figure's right edge {fig['right']:.0f} px is past the notebook's "
        f"{nb['right']:.0f} px: {geo}"
    )
    assert geo["colorbar"] and geo["colorbar"]["right"] <= out["right"] + SLACK, geo
    assert len(geo["panels"]) == 3, geo
    for k, panel in enumerate(geo["panels"]):
        assert panel["width"] > 100, f"{when}: panel {k} is {panel['width']:.0f} px wide: {geo}"
        assert abs(panel["width"] - panel["height"]) <= 3, (
            f"{when}: panel {k} is {panel['width']:.1f}x{panel['height']:.1f} px, not square: {geo}"
        )
        assert panel["right"] <= out["right"] + SLACK, geo
    assert fig["bottom"] >= max(p["bottom"] for p in geo["panels"]) - SLACK, geo
    extra = fig["height"] - max(p["height"] for p in geo["panels"])
    assert extra <= MAX_EXTRA_HEIGHT, (
        f"{when}: the figure is {extra:.0f} px taller than its panels (its height did not "
        f"follow its width): {geo}"
    )


def test_lab_compare_fits_output_with_sidebar_open_and_closed(lab_page_default_size, lab_server, artifacts):
    """JupyterLab's default layout at 1280x720 (file browser open): a 3-panel Compare lies
    within the output area (no cut-off right edge) with square panels; closing the sidebar
    widens it, still within the output area; a click still marks all three panels."""
    page = lab_page_default_size
    t0 = time.monotonic()
    # a workspace of its own: the quickstart's (left open by the tests above) is not restored
    timings = {"open_s": open_notebook(page, lab_server, f"/lab/workspaces/cw-fit/tree/{FIT_NOTEBOOK}")}
    assert lab_left_sidebar_open(page), "JupyterLab's file browser should be open by default"
    t1 = time.monotonic()
    timings["run_all_retries"] = lab_run_all_cells(page)
    page.wait_for_function(COMPARE3_DRAWN_JS, timeout=LOAD_TIMEOUT)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=LOAD_TIMEOUT)
    timings["compare_drawn_s"] = round(time.monotonic() - t1, 1)
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    narrow = wait_figure_settled(page)
    page.screenshot(path=str(artifacts / "lab_fit_sidebar_open.png"))
    _assert_fits(narrow, "file browser open")

    assert lab_toggle_file_browser(page) is False  # close it, as a user would
    wide = wait_figure_settled(page, wider_than=narrow["figure"]["width"] + 20, timeout=15_000)
    page.screenshot(path=str(artifacts / "lab_fit_sidebar_closed.png"))
    assert wide["output"]["width"] > narrow["output"]["width"] + 100, (narrow, wide)
    _assert_fits(wide, "file browser closed")
    assert wide["panels"][0]["width"] > narrow["panels"][0]["width"] + 10, (narrow, wide)

    check_compare_click_marks_every_panel(
        page, errors_except, artifacts / "lab_fit_compare.png", plot_index=0
    )
    timings["total_s"] = round(time.monotonic() - t0, 1)
    print(
        "lab fit timings:",
        timings,
        "figure width open/closed:",
        round(narrow["figure"]["width"]),
        round(wide["figure"]["width"]),
    )
