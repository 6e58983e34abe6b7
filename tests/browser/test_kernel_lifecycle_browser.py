"""Kernels of closed Voila tabs: a closed tab ends its kernel within seconds, and the kernel of
a tab that vanished without saying so (no shutdown request) is culled once idle, while the kernel
of an open tab never is. Served with scripts/voila.py and scripts/voila.json, as
scripts/explorer.sh serves, and (last test) as on Binder: a Jupyter server with Voila as its
extension and the settings binder/postBuild writes to ~/.jupyter. Each test starts its own
server, so that it counts only its kernels.

Before scripts/voila.py set the `_xsrf` cookie, Voila's shutdown request on `beforeunload` was
refused (403) and both kernels of the first test were still running 15 s after their tabs closed.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -k kernel
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from .conftest import (
    NOTEBOOK,
    PY,
    ROOT,
    Server,
    _free_port,
    _isolated_env,
    require_browser_pieces,
    start_voila,
)

pytestmark = pytest.mark.browser

START_TIMEOUT = 90.0  # Voila up and serving its static files
LOAD_TIMEOUT = 150_000  # two quickstarts at once on 2 cores: kernels, imports, model, map
GONE_TIMEOUT = 20.0  # closed tabs -> no kernel left (about 4 s here)
CULL_IDLE_S, CULL_INTERVAL_S = 2, 1
EXPLORER_DRAWN_JS = "() => document.querySelectorAll('.js-plotly-plot').length >= 1"
SLIDER_DRAWN_JS = "() => !!document.querySelector('.widget-slider')"


def kernel_pids(srv: Server) -> list[int]:
    """The server's live kernel processes (a zombie has no command line)."""
    pids = []
    for pid in srv._descendants():
        try:
            if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            pass
    return pids


def wait_kernel_count(srv: Server, wanted: int, timeout: float) -> tuple[int, float]:
    """Poll (bounded) until the server has ``wanted`` kernels; (last count, seconds waited)."""
    t0 = time.monotonic()
    count = len(kernel_pids(srv))
    for _ in range(int(timeout / 0.25) + 1):
        if count == wanted or time.monotonic() - t0 > timeout:
            break
        time.sleep(0.25)
        count = len(kernel_pids(srv))
    return count, time.monotonic() - t0


@pytest.fixture
def serve(tmp_path, artifacts):
    """serve(notebook, **env) -> a Voila of its own serving a copy of ``notebook`` with
    explorer.sh's settings (scripts/), the environment updated with ``env`` (None: unset)."""
    require_browser_pieces()
    servers = []

    def start(notebook: Path, **env_updates) -> Server:
        work = tmp_path / f"voila{len(servers)}"
        work.mkdir()
        shutil.copy(notebook, work / notebook.name)
        env = _isolated_env(work / ".jupyter")
        for name, value in env_updates.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        srv = start_voila(work, notebook.name, env, timeout=START_TIMEOUT)
        servers.append(srv)
        return srv

    yield start
    for i, srv in enumerate(servers):
        srv.stop()
        shutil.copy(srv.log_path, artifacts / f"voila_kernel_lifecycle_{i}.log")


def test_closed_tabs_end_their_kernels(serve, browser):
    # the culler at its defaults (600 s): what ends these kernels can only be the tabs' requests
    srv = serve(NOTEBOOK, CULL_IDLE_SECONDS=None, CULL_INTERVAL_SECONDS=None)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        pages = [ctx.new_page() for _ in range(2)]
        for pg in pages:  # both load at once
            pg.goto(srv.url + "/", wait_until="commit", timeout=90_000)
        for pg in pages:
            pg.wait_for_function(EXPLORER_DRAWN_JS, timeout=LOAD_TIMEOUT, polling=500)
        srv.remember_children()
        assert len(kernel_pids(srv)) == 2, srv.tail()
        cookies = {c["name"] for c in ctx.cookies()}
        for pg in pages:
            pg.close(run_before_unload=True)  # fires Voila's beforeunload handler
        count, waited = wait_kernel_count(srv, 0, GONE_TIMEOUT)
    finally:
        ctx.close()
    log = srv.tail(20_000)
    assert count == 0, f"{count} kernel(s) left {waited:.0f} s after their tabs closed: {log}"
    assert "_xsrf" in cookies, f"Voila's page set no _xsrf cookie: {cookies}"
    assert "403 POST /voila/api/shutdown" not in log, log
    assert log.count("Kernel shutdown:") >= 2 and "Culling '" not in log, log
    print(f"kernels gone {waited:.1f} s after the tabs closed")


def _slider_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import ipywidgets as w\nw.IntSlider(value=3)")]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_idle_kernel_of_a_vanished_tab_is_culled(serve, browser, tmp_path):
    """CULL_IDLE_SECONDS reaches the kernel manager; an open tab keeps its kernel."""
    srv = serve(
        _slider_notebook(tmp_path / "slider.ipynb"),
        CULL_IDLE_SECONDS=CULL_IDLE_S,
        CULL_INTERVAL_SECONDS=CULL_INTERVAL_S,
    )
    ctx = browser.new_context(viewport={"width": 800, "height": 600})
    try:
        pg = ctx.new_page()
        pg.goto(srv.url + "/", timeout=90_000)
        pg.wait_for_function(SLIDER_DRAWN_JS, timeout=90_000, polling=250)
        srv.remember_children()
        assert len(kernel_pids(srv)) == 1, srv.tail()
        # idle past the timeout, several culler rounds, with its tab open: kept
        hold = CULL_IDLE_S + 2 * CULL_INTERVAL_S + 1
        count, _ = wait_kernel_count(srv, 0, hold)
        assert count == 1, f"the kernel of an open tab was culled: {srv.tail()}"
        # the tab goes without its shutdown request (a crashed browser, a lost network)
        pg.evaluate("() => { Navigator.prototype.sendBeacon = () => true; }")
        pg.close(run_before_unload=True)
        count, waited = wait_kernel_count(srv, 0, GONE_TIMEOUT)
    finally:
        ctx.close()
    log = srv.tail(20_000)
    assert count == 0, f"the idle kernel was not culled in {waited:.0f} s: {log}"
    assert f"Culling kernels with idle durations > {CULL_IDLE_S} seconds" in log, log
    assert "Culling 'idle' kernel" in log, log


def test_binder_settings_end_closed_tabs_kernels(browser, tmp_path, artifacts):
    """Binder: Jupyter server + Voila extension, token auth, the files binder/postBuild writes."""
    require_browser_pieces()
    home = tmp_path / "home"
    subprocess.run(
        ["bash", "binder/postBuild"],
        cwd=ROOT,
        check=True,
        timeout=60,
        env={**_isolated_env(tmp_path / "pb"), "HOME": str(home), "CAM_WIDGETS_POSTBUILD_NO_WEIGHTS": "1"},
    )
    work = tmp_path / "binder"
    work.mkdir()
    notebook = _slider_notebook(work / "slider.ipynb")
    env = {
        **_isolated_env(work / ".jupyter"),
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
    }  # ~/.jupyter, as on Binder
    for name in ("CULL_IDLE_SECONDS", "CULL_INTERVAL_SECONDS"):
        env.pop(name, None)
    token, port = "binder-test-token", _free_port()
    cmd = [
        PY,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
    ]
    srv = Server(
        cmd + ["--allow-root"],
        work,
        env,
        port,
        f"/api/kernels?token={token}",
        work / "server.log",
        timeout=START_TIMEOUT,
    )

    def api_kernels() -> int:
        with urllib.request.urlopen(f"{srv.url}/api/kernels?token={token}", timeout=10) as r:
            return len(json.load(r))

    ctx = browser.new_context(viewport={"width": 800, "height": 600})
    try:
        pg = ctx.new_page()
        pg.goto(f"{srv.url}/voila/render/{notebook.name}?token={token}", timeout=90_000)
        pg.wait_for_function(SLIDER_DRAWN_JS, timeout=90_000, polling=250)
        srv.remember_children()
        assert api_kernels() == 1, srv.tail()
        pg.close(run_before_unload=True)  # shutdown request, cookie-authenticated
        t0, count = time.monotonic(), None
        for _ in range(int(GONE_TIMEOUT / 0.25) + 1):
            count = api_kernels()
            if count == 0 or time.monotonic() - t0 > GONE_TIMEOUT:
                break
            time.sleep(0.25)
    finally:
        ctx.close()
        srv.stop()
        shutil.copy(srv.log_path, artifacts / "jupyter_server_binder_settings.log")
    log = srv.tail(20_000)
    assert count == 0, f"/api/kernels still lists {count} kernel(s) {GONE_TIMEOUT:.0f} s on: {log}"
    assert "403 POST /voila/api/shutdown" not in log, log
    assert "Culling kernels with idle durations > 600 seconds at 60 second intervals" in log, log
