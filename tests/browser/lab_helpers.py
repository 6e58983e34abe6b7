"""JupyterLab 4 helpers for the browser tests: the extra requirement, a server command with isolated
settings, and "Run All Cells" with a retry guard. The server class, the isolated Jupyter dirs and
the Chromium page come from conftest.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from .conftest import (
    NOTEBOOK,
    PY,
    Server,
    _free_port,
    _isolated_env,
    require_browser_pieces,
    skip_or_fail,
)

START_TIMEOUT = 90.0  # server process up and answering /api
OPEN_TIMEOUT = 90_000  # the page, the notebook's cells, the kernel idle
LOAD_TIMEOUT = 120_000  # Run All: imports + model load + first map

EXPLORER_DRAWN_JS = """() => { const gd = document.querySelectorAll('.js-plotly-plot')[0];
    return !!gd && (gd.data || []).some(t => t.type === 'heatmap' && t.z && t.z.length > 0); }"""
TWO_PLOTS_JS = "() => document.querySelectorAll('.js-plotly-plot').length >= 2"
COMPARE_DRAWN_JS = """() => { const gd = document.querySelectorAll('.js-plotly-plot')[1];
    return !!gd && (gd.data || []).filter(t => t.type === 'heatmap' && t.z && t.z.length > 0).length >= 2
           && gd.querySelectorAll('.hm, image').length > 0; }"""

#: lab's REST API answers once the server is up (the lab page itself is checked by the browser)
LAB_READY_PATH = "/api"

#: user settings written into the isolated settings dir: no news/update toast over the plots
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def require_frontend(probe: str, why: str) -> None:
    """Skip with ``why`` (fail with CAM_WIDGETS_REQUIRE_BROWSER=1) unless the browser pieces are
    there and ``probe`` (Python code) runs in the interpreter that serves the notebooks."""
    require_browser_pieces()
    if subprocess.run([PY, "-c", probe], capture_output=True, timeout=60).returncode != 0:
        skip_or_fail(why)


def require_jupyterlab() -> None:
    require_frontend(
        "import jupyterlab, ipykernel",
        f"the JupyterLab browser test needs jupyterlab 4 importable in {PY} "
        "(pip install 'jupyterlab>=4.2,<5')",
    )


def lab_env(root: Path) -> dict:
    """conftest's isolated Jupyter dirs plus lab's own settings and workspaces dirs."""
    env = _isolated_env(root)
    for var, sub in [
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
    ]:
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    for rel, value in LAB_SETTINGS.items():
        path = root / "lab-settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return env


def lab_command(port: int, root_dir: Path) -> list[str]:
    cmd = [
        PY,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI often run as root
    return cmd


def lab_run_all_cells(page, attempts: int = 2) -> int:
    """Run > Run All Cells through the menu bar (command runmenu:run-all); check that execution
    started (a prompt shows [*] or [n]) and retry once if not. Returns the retries used."""
    for attempt in range(attempts):
        # bounded but generous: on a loaded machine Lab's menu bar comes late (over 30 s seen)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click(timeout=OPEN_TIMEOUT)
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click(timeout=OPEN_TIMEOUT)
        try:
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-InputArea-prompt')]
                         .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))""",
                timeout=60_000,  # a loaded machine: a retry then met a modal dialog
            )
            return attempt
        except Exception:  # noqa: BLE001 - the menu closed without running; try once more
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start execution")


def write_notebook(path: Path, sources: Sequence[str]) -> Path:
    """A notebook of code cells (``sources``, not run) at ``path``, Python 3 kernel."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def serve_quickstart(
    tmp_path_factory,
    artifacts,
    name: str,
    command: Callable[[int, Path], list],
    extra_notebooks: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[Server]:
    """A Jupyter server (``command(port, root_dir)``) on 127.0.0.1 serving a copy of the
    quickstart from a temporary directory with isolated dirs; stopped by PID, log kept.
    ``extra_notebooks``: file name -> code cells of more notebooks written next to it."""
    work = tmp_path_factory.mktemp(name)
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    for file_name, sources in (extra_notebooks or {}).items():
        write_notebook(work / file_name, sources)
    port = _free_port()
    srv = Server(
        command(port, work),
        work,
        lab_env(work / ".jupyter"),
        port,
        LAB_READY_PATH,
        work / f"{name}.log",
        timeout=START_TIMEOUT,
    )
    try:
        yield srv
    finally:
        srv.stop()
        shutil.copy(srv.log_path, artifacts / f"{name}.log")


def open_notebook(page, server: Server, url_path: str) -> float:
    """Open a notebook (the quickstart) at ``url_path`` and wait for its cells and an idle
    kernel; seconds."""
    started = time.monotonic()
    page.goto(f"{server.url}{url_path}", timeout=OPEN_TIMEOUT)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=OPEN_TIMEOUT)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=OPEN_TIMEOUT)
    server.remember_children()  # the kernel, to reap by PID if left
    return round(time.monotonic() - started, 1)


#: the left sidebar's panel (the file browser by default) is shown
LEFT_SIDEBAR_OPEN_JS = """() => { const s = document.querySelector('#jp-left-stack');
    return !!s && !s.classList.contains('lm-mod-hidden') && s.getBoundingClientRect().width > 0; }"""


def lab_left_sidebar_open(page) -> bool:
    return bool(page.evaluate(LEFT_SIDEBAR_OPEN_JS))


def lab_toggle_file_browser(page, timeout: int = 10_000) -> bool:
    """Click the file browser's tab in the left bar (opens or closes the sidebar, as a user
    would); wait (bounded) until the sidebar's state flipped. Returns whether it is open now."""
    was_open = lab_left_sidebar_open(page)
    page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]').click()
    page.wait_for_function(
        f"() => ({LEFT_SIDEBAR_OPEN_JS})() === {'false' if was_open else 'true'}", timeout=timeout
    )
    return not was_open
