"""The quickstart notebook in Jupyter Notebook 7 + headless Chromium: Run All Cells, the Explorer's
map renders and takes updates from Python, and a click on the Compare figure marks every panel.

Notebook 7 is built from JupyterLab 4 components (same menu commands, same output area, same
widget manager), so the Lab test's page checks apply; only the server and the URL differ.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser/test_notebook7_browser.py -q -m browser
Skipped (with the reason) without `notebook` 7, unless CAM_WIDGETS_REQUIRE_BROWSER=1.
The tests of this module share one page (one kernel) and run in file order.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .browser_helpers import PLOTLY_UPSTREAM_ERRORS, errors_except
from .conftest import (
    NOTEBOOK,
    PY,
)
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
    lab_run_all_cells,
    open_notebook,
    require_frontend,
    serve_quickstart,
)

pytestmark = pytest.mark.browser

#: kernel idle and no cell waiting/running ([*]); Notebook 7 keeps Lab's execution indicator
IDLE_JS = """() => !!document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
    && ![...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('*'))"""


def require_notebook7() -> None:
    require_frontend(
        "import ipykernel, notebook; "
        "assert int(notebook.__version__.split('.')[0]) >= 7, notebook.__version__",
        f"the Notebook 7 browser test needs notebook 7 importable in {PY} (pip install 'notebook>=7.2,<8')",
    )


def nb7_command(port: int, root_dir: Path) -> list[str]:
    cmd = [
        PY,
        "-m",
        "notebook",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI often run as root
    return cmd


@pytest.fixture(scope="module")
def nb7_server(tmp_path_factory, artifacts):
    """Jupyter Notebook 7 on 127.0.0.1 (free port, no token) serving a copy of the quickstart."""
    require_notebook7()
    yield from serve_quickstart(tmp_path_factory, artifacts, "nb7", nb7_command)


@pytest.fixture(scope="module")
def nb7_quickstart(page, nb7_server, artifacts):
    """Open the quickstart in Notebook 7, Run All Cells, wait (bounded) for both figures."""
    timings = {"nb7_open_s": open_notebook(page, nb7_server, f"/notebooks/{NOTEBOOK.name}")}
    # Notebook 7.6's own bundle throws one TypeError while loading settings (shortcut-extension,
    # "reading 'schema'"), before any cell runs: keep page-load errors apart from ours.
    page.load_errors = list(page.errors)
    page.errors.clear()
    if page.load_errors:
        print("notebook 7 page-load errors (before any cell ran):", page.load_errors)
    t1 = time.monotonic()
    timings["kernel_dialogs"] = _accept_kernel_dialog(page)
    try:
        timings["run_all_retries"] = lab_run_all_cells(page)  # Run > Run All Cells (runmenu:run-all)
    except Exception:
        page.screenshot(path=str(artifacts / "failure_nb7_run_all.png"), full_page=True)
        print("dialogs:", page.locator(".jp-Dialog").all_inner_texts())
        print("server log:", nb7_server.tail())
        raise
    _wait_accepting_dialogs(page, EXPLORER_DRAWN_JS, timings)
    timings["explorer_rendered_s"] = round(time.monotonic() - t1, 1)
    _wait_accepting_dialogs(page, TWO_PLOTS_JS, timings)
    _wait_accepting_dialogs(page, COMPARE_DRAWN_JS, timings)
    timings["compare_rendered_s"] = round(time.monotonic() - t1, 1)
    page.wait_for_function(IDLE_JS, timeout=LOAD_TIMEOUT)
    timings["all_idle_s"] = round(time.monotonic() - t1, 1)
    print("notebook 7 quickstart timings:", timings)
    return timings


def _wait_accepting_dialogs(page, predicate_js: str, timings: dict) -> None:
    """Wait (bounded by LOAD_TIMEOUT) for ``predicate_js``; a "Select Kernel" dialog that pops
    up mid-run (seen once under load, cause unknown) is accepted and the cells are run again."""
    deadline = time.monotonic() + LOAD_TIMEOUT / 1000
    while time.monotonic() < deadline:
        if page.evaluate(predicate_js):
            return
        if page.locator(".jp-Dialog").count():
            timings["kernel_dialogs"] = timings.get("kernel_dialogs", 0) + _accept_kernel_dialog(page)
            lab_run_all_cells(page)
        page.wait_for_timeout(500)
    raise AssertionError(f"timed out after {LOAD_TIMEOUT} ms waiting for {predicate_js[:80]}")


def _accept_kernel_dialog(page) -> int:
    """A "Select Kernel" dialog left up at open (kernel preference not resolved yet) would eat the
    menu clicks: accept its default, the notebook's own python3 kernel. Returns how many."""
    seen = 0
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if dialog.count() == 0:
            page.wait_for_timeout(500)
            if dialog.count() == 0:
                break
        print("notebook 7 dialog before Run All:", dialog.first.inner_text())
        dialog.first.locator(".jp-mod-accept").click()
        dialog.first.wait_for(state="detached", timeout=10_000)
        seen += 1
    return seen


#: not ours: the Lab test's known plotly message, and Notebook 7.6's settings-load TypeError
#: (shortcut-extension's pluginChanged handler, thrown from notebook_core.*.js at page load)
KNOWN_UPSTREAM_ERRORS = PLOTLY_UPSTREAM_ERRORS + ("Cannot read properties of undefined (reading 'schema')",)


def _real_errors(page) -> list[str]:
    return errors_except(page, KNOWN_UPSTREAM_ERRORS)


def test_nb7_explorer_renders_map(page, nb7_quickstart):
    check_explorer_renders_map(page, _real_errors)


def test_nb7_prediction_button_round_trip(page, nb7_quickstart, artifacts):
    check_prediction_button_round_trip(page, _real_errors, artifacts / "nb7_explorer.png")


def test_nb7_compare_click_marks_every_panel(page, nb7_quickstart, artifacts):
    check_compare_click_marks_every_panel(page, _real_errors, artifacts / "nb7_compare.png")
