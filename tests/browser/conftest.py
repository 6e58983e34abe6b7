"""Fixtures for the browser tests: Voila serving notebooks/00_quickstart.ipynb, driven by a
headless system Chromium through Playwright's sync API (no pytest-playwright; never
`playwright install`).

Missing pieces (Chromium, the playwright wheel, Voila, a Python kernel) skip these tests with
the reason, unless CAM_WIDGETS_REQUIRE_BROWSER=1, where they fail instead (CI).
`bash scripts/ci_browser_deps.sh` installs them.

Env knobs:
  CHROMIUM_PATH               default /usr/bin/chromium
  BROWSER_TESTS_PY            default sys.executable: the interpreter that runs Voila and the kernel
  CAM_WIDGETS_REQUIRE_BROWSER 1: a missing piece is a failure, not a skip
  CAM_WIDGETS_ARTIFACTS       default tests/artifacts: screenshots and logs
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .browser_helpers import plot_state, save_failure_evidence, watched_page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "00_quickstart.ipynb"
VOILA_SETTINGS = ROOT / "scripts"  # voila.json: the settings scripts/explorer.sh serves with
ARTIFACTS = Path(os.environ.get("CAM_WIDGETS_ARTIFACTS", ROOT / "tests" / "artifacts"))
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PY = os.environ.get("BROWSER_TESTS_PY", sys.executable)
REQUIRE = os.environ.get("CAM_WIDGETS_REQUIRE_BROWSER", "") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these three, Chromium's own background connections hang on a closed network
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VOILA_READY_PATH = "/voila/labextensions/@jupyter-widgets/jupyterlab-manager/package.json"

_WHY_SKIPPED: list[str] = []


# --------------------------------------------------------------------- requirements
def missing_pieces() -> list[str]:
    """What the browser tests need and this machine lacks (empty: all there)."""
    missing = []
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing.append(
            f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or bash scripts/ci_browser_deps.sh)"
        )
    if importlib.util.find_spec("playwright") is None:
        missing.append(
            "the playwright wheel is not installed (pip install playwright; "
            "do not run `playwright install`: the system Chromium is used)"
        )
    probe = "import voila, ipykernel"
    if PY == sys.executable:
        if importlib.util.find_spec("voila") is None or importlib.util.find_spec("ipykernel") is None:
            missing.append(f"voila/ipykernel not importable in {PY} (pip install voila)")
    elif subprocess.run([PY, "-c", probe], capture_output=True, timeout=60).returncode != 0:
        missing.append(f"voila/ipykernel not importable in {PY} (pip install voila)")
    return missing


def require_browser_pieces() -> None:
    missing = missing_pieces()
    if not missing:
        return
    skip_or_fail("browser tests need: " + "; ".join(missing))


def skip_or_fail(why: str) -> None:
    """Skip with ``why`` (reported once at the end), or fail under CAM_WIDGETS_REQUIRE_BROWSER=1."""
    if REQUIRE:
        pytest.fail(f"{why} (CAM_WIDGETS_REQUIRE_BROWSER=1)", pytrace=False)
    if why not in _WHY_SKIPPED:
        _WHY_SKIPPED.append(why)
        print(f"\n[skip] {why}", file=sys.stderr)
    pytest.skip(why)


def pytest_terminal_summary(terminalreporter):
    for why in _WHY_SKIPPED:
        terminalreporter.write_line(f"browser tests skipped: {why}", yellow=True)


# -------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _isolated_env(root: Path) -> dict:
    """Jupyter config/runtime/data dirs of its own, so nothing of the user's is read or written."""
    env = dict(os.environ)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "cfg"),
        ("JUPYTER_RUNTIME_DIR", "rt"),
        ("JUPYTER_DATA_DIR", "data"),
        ("IPYTHONDIR", "ipy"),
    ]:
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """Start a server process, poll an HTTP URL until 200 (bounded), stop it by PID."""

    def __init__(self, cmd, cwd, env, port, probe_path, log_path, timeout=60.0):
        self.port, self.log_path = port, Path(log_path)
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._kids: set[int] = set()
        url = f"http://127.0.0.1:{port}{probe_path}"
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.25) + 1):
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"server exited rc={self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"{url} not ready in {timeout}s: {self.tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def remember_children(self) -> None:
        """Record the kernels started so far, so they can be reaped by PID if left behind."""
        self._kids.update(self._descendants())

    def _descendants(self) -> list[int]:
        out, todo = [], [self.proc.pid]
        for _ in range(500):
            if not todo:
                break
            p = todo.pop()
            try:
                kids = [int(x) for x in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
        return out

    def stop(self, timeout: float = 20.0) -> None:
        kids = self._kids | set(self._descendants())
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Voila shuts its kernels down on SIGTERM
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in kids:  # only PIDs this server started
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not self._log.closed:
            self._log.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def voila_command(port: int, notebook_name: str | None = None) -> list[str]:
    """Voila as scripts/explorer.sh runs it (scripts' settings), on 127.0.0.1:``port``,
    serving ``notebook_name`` or, without one, its folder's notebooks."""
    cmd = [
        PY,
        "-m",
        "voila",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",
        f"--Voila.config_file_paths={VOILA_SETTINGS}",
    ]
    return cmd if notebook_name is None else [*cmd, notebook_name]


def start_voila(
    work: Path,
    notebook_name: str | None = None,
    env: dict | None = None,
    timeout: float = 60.0,
    probe_path: str = VOILA_READY_PATH,
) -> Server:
    """Voila (:func:`voila_command`) on a free port, serving ``work`` (``notebook_name`` or
    its notebooks) with a Jupyter environment of its own under ``work`` (``env``: that
    environment, changed by the caller), its log in ``work / "voila.log"``; the caller stops it."""
    port = _free_port()
    env = _isolated_env(work / ".jupyter") if env is None else env
    cmd = voila_command(port, notebook_name)
    return Server(cmd, work, env, port, probe_path, work / "voila.log", timeout=timeout)


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory, artifacts):
    """Voila with progressive rendering (anywidget's 2 s init deadline per FigureWidget)
    serving a copy of the quickstart from a temporary directory."""
    require_browser_pieces()
    work = tmp_path_factory.mktemp("voila")
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    srv = start_voila(work, NOTEBOOK.name)
    yield srv
    srv.stop()
    shutil.copy(srv.log_path, artifacts / "voila.log")


@pytest.fixture(scope="session")
def browser():
    require_browser_pieces()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="module")
def page(browser):
    ctx, pg = watched_page(browser, {"width": 1400, "height": 1800})
    yield pg
    ctx.close()


@pytest.fixture(autouse=True)
def _evidence_on_failure(request, artifacts):
    """On a failed test that used a page: full-page screenshot, plot state, console."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed or "page" not in request.fixturenames:
        return
    save_failure_evidence(
        request.getfixturevalue("page"),
        artifacts / f"failure_{request.node.name}.png",
        plot_state,
        full_page=True,
    )
