"""Page load under concurrent sessions: the quickstart app in Voila, opened by 1 user and by 5
users at once, beside a baseline page served the same way, in one run.

    .venv/bin/python benchmarks/bench_load.py [--sessions 5] [--load-timeout 240]
                                              [--no-strict] [--json load.json]

Each scenario starts a Voila of its own as scripts/explorer.sh serves (scripts/voila.py +
scripts/voila.json, progressive rendering) and opens its pages in headless Chromium, each page
in a browser context of its own (a user: own cookies, own cache), all navigations asked for
within a few milliseconds. Timed per page, from the navigation's start on this machine's
clock: the first map (the Explorer's heatmap drawn), the page complete (the Compare figure
drawn) or, for the baseline, its image visible (decoded, laid out). Before the tabs close,
each kernel's peak resident memory (VmHWM in /proc/<pid>/status); after they close, how long
until Voila has no kernel left.

Scenarios, in this order:
  baseline x1, baseline xN  a notebook that only imports torch and shows a 224 px
                            ipywidgets.Image (skimage's chelsea, PNG made in the kernel);
  quickstart x1, xN         notebooks/00_quickstart.ipynb;
  quickstart xN, strict     the same with anywidget's own 2 s model deadline (the others get
                            60 s, as tests/browser/test_load_browser.py explains: the browsers
                            share this machine's CPUs with the kernels): pages whose figure
                            missed it draw no map (--no-strict skips this row).

Everything runs on this one machine (kernels and browsers share its CPUs), so the figures
are those of a loaded server with its users' browsers on it, and noisy if anything else runs.
So each scenario also counts CPU seconds (utime + stime in /proc/<pid>/stat, every 0.1 s, of
every process this benchmark started, whatever else runs) from the navigations to the last
first map, by class: the kernels, the Voila server, Chromium (its renderers, one per page, and
its browser, GPU and utility processes) and the measuring itself (this script and Playwright's
driver). The kernels', Voila's and Chromium's together over the machine's cores is the floor
for the slowest first map: the time it would take with no core ever idle and nothing else on
the machine. CPU seconds inflate too on a busy machine (its 2 CPUs share caches and cores with
other work): compare runs at similar loads.
Helpers come from tests/browser (Server, the load test's sessions and kernel counting).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
# tests/browser is imported as the package `browser`, as pytest imports it (tests/ has no
# __init__.py), so its relative imports work from here too
sys.path.insert(0, str(ROOT / "tests"))

from browser.browser_helpers import DEAD_ANYWIDGETS_JS  # noqa: E402
from browser.conftest import CHROMIUM, CHROMIUM_ARGS, NOTEBOOK, missing_pieces  # noqa: E402
from browser.test_kernel_lifecycle_browser import kernel_pids, wait_kernel_count  # noqa: E402
from browser.test_load_browser import (  # noqa: E402
    GONE_TIMEOUT,
    Session,
    serve_copy,
    vm_hwm_mb,
    wait_marks,
)

STRETCHED_DEADLINE_MS = 60_000
ANYWIDGET_FAILED = "[anywidget] Failed to initialize model."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: CPU classes, in the table's order.
CPU_CLASSES = ("kernels", "voila", "renderers", "chromium other", "measuring")


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids += [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return kids


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), seconds; None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuSampler(threading.Thread):
    """Every 0.1 s, the CPU seconds so far of each process this benchmark started (its
    descendants), by class; a process that ended keeps its last reading."""

    def __init__(self, voila_pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.voila_pid, self.interval = voila_pid, interval
        self.readings: list[tuple[float, dict]] = []  # (time.time(), {class: CPU s})
        self._last: dict[int, tuple[str, float]] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def _class_of(self, pid: int) -> str | None:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if pid == self.voila_pid:
            return "voila"
        if b"ipykernel" in cmd:
            return "kernels"
        if b"chrom" in cmd:
            return "renderers" if b"--type=renderer" in cmd else "chromium other"
        return "measuring"  # Playwright's driver (node)

    def sample(self) -> None:
        todo, seen = [os.getpid()], []
        while todo:
            kids = _children(todo.pop())
            seen += kids
            todo += kids
        for pid in seen:
            known = self._last.get(pid)
            cls = known[0] if known else self._class_of(pid)
            cpu = _cpu_seconds(pid)
            if cls is not None and cpu is not None:
                self._last[pid] = (cls, cpu)
        totals = dict.fromkeys(CPU_CLASSES, 0.0)
        totals["measuring"] = _cpu_seconds(os.getpid()) or 0.0
        for cls, cpu in self._last.values():
            totals[cls] += cpu
        with self._lock:
            self.readings.append((time.time(), totals))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def at(self, when: float) -> dict:
        """The last reading at or before ``when`` (time.time())."""
        with self._lock:
            before = [r for t, r in self.readings if t <= when]
            return before[-1] if before else self.readings[0][1]

    def spent(self, start: float, end: float) -> dict:
        a, b = self.at(start), self.at(end)
        return {cls: round(b[cls] - a[cls], 1) for cls in CPU_CLASSES}


BASELINE_CELLS = [
    "import torch",
    "import io\n"
    "import ipywidgets as widgets\n"
    "from PIL import Image\n"
    "from skimage import data\n"
    "\n"
    "png = io.BytesIO()\n"
    "Image.fromarray(data.chelsea()).resize((224, 224)).save(png, format='png')\n"
    "widgets.Image(value=png.getvalue(), format='png', width=224, height=224)",
]


def baseline_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in BASELINE_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def machine() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gb = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": mem_gb,
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "voila", "anywidget", "plotly", "ipywidgets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "?"
    return out


def run_scenario(
    browser,
    name: str,
    notebook: Path,
    pages: int,
    marks: tuple[str, ...],
    work: Path,
    load_timeout: float,
    deadline_ms: int,
) -> dict:
    """Serve ``notebook``, open ``pages`` pages at once, wait (bounded) for ``marks``, read the
    kernels' peaks, close the tabs, wait (bounded) for their kernels to end."""
    print(f"[{name}] starting Voila", flush=True)
    srv = serve_copy(notebook, work)
    sampler = CpuSampler(srv.proc.pid)
    sessions: list[Session] = []
    row = {"scenario": name, "pages": pages, "anywidget_deadline_ms": deadline_ms}
    try:
        sessions = [Session(browser, anywidget_deadline_ms=deadline_ms) for _ in range(pages)]
        sampler.start()
        time.sleep(0.3)  # a first reading before the navigations
        opened = time.time()
        for s in sessions:
            s.open(srv.url + "/")
        strict = deadline_ms == 2000
        errors = wait_marks(
            sessions,
            marks,
            load_timeout,
            given_up=(lambda s: ANYWIDGET_FAILED in " ".join(s.page.errors)) if strict else None,
        )
        for s in sessions:  # a last reading of every page
            s.poll()
        row["errors"] = {str(i): e for i, e in errors.items()}
        for mark in ("firstMap", "complete", "image"):
            row[mark] = [None if s.seconds(mark) is None else round(s.seconds(mark), 1) for s in sessions]
        first = [s.marks.get("image" if "image" in marks else "firstMap") for s in sessions]
        if all(first):
            row["cpu_to_last_first_s"] = sampler.spent(opened, max(first) / 1000)
        if "complete" in marks and all(s.marks.get("complete") for s in sessions):
            row["cpu_to_last_complete_s"] = sampler.spent(
                opened, max(s.marks["complete"] for s in sessions) / 1000
            )
        row["anywidget_failed_pages"] = sum(ANYWIDGET_FAILED in " ".join(s.page.errors) for s in sessions)
        try:
            row["dead_models"] = [len(s.page.evaluate(DEAD_ANYWIDGETS_JS) or []) for s in sessions]
        except Exception as e:  # noqa: BLE001 - informative only
            row["dead_models"] = f"probe failed: {e}"
        srv.remember_children()
        pids = kernel_pids(srv)
        row["kernels"] = len(pids)
        row["peak_mb"] = sorted(round(vm_hwm_mb(p) or 0) for p in pids)
        for s in sessions:
            s.close()
        count, waited = wait_kernel_count(srv, 0, GONE_TIMEOUT)
        row["kernels_left"], row["kernels_gone_s"] = count, round(waited, 1)
    finally:
        sampler.stop()
        for s in sessions:
            s.dispose()
        srv.stop()
        shutil.copy(srv.log_path, work.parent / f"voila_{name.replace(' ', '_')}.log")
    print(f"[{name}] {json.dumps(row)}", flush=True)
    return row


def _fmt_list(values) -> str:
    return ", ".join("-" if v is None else f"{v:g}" for v in values)


def _slowest(values) -> str:
    done = [v for v in values if v is not None]
    if not done:
        return "-"
    missing = len(values) - len(done)
    return f"{max(done):g}" + (f" ({missing} never)" if missing else "")


def table(rows: list[dict]) -> str:
    lines = [
        "| scenario | pages | first map / image, each page (s) | slowest (s) | "
        "page complete, slowest (s) | kernel peak VmHWM, each (MB) | "
        "pages without a map | pages with a dead figure (anywidget) | "
        "kernels gone after close (s) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        first = r["image"] if r["scenario"].startswith("baseline") else r["firstMap"]
        complete = "-" if r["scenario"].startswith("baseline") else _slowest(r["complete"])
        without = sum(v is None for v in first)
        gone = (
            f"{r['kernels_gone_s']:g}"
            if r.get("kernels_left") == 0
            else f"{r.get('kernels_left')} left after {r.get('kernels_gone_s')}"
        )
        lines.append(
            f"| {r['scenario']} | {r['pages']} | {_fmt_list(first)} | {_slowest(first)} | "
            f"{complete} | {_fmt_list(r['peak_mb'])} | {without} | "
            f"{r['anywidget_failed_pages']} | {gone} |"
        )
    return "\n".join(lines)


def cpu_table(rows: list[dict], cores: int) -> str:
    """CPU seconds from the navigations to the last first map (image), by class, and the
    floor: the kernels', Voila's and Chromium's over the cores."""
    lines = [
        "| scenario | pages | kernels | Voila | Chromium renderers | Chromium other | "
        "measuring | per page (kernel + Voila + Chromium) | floor (s) | slowest first map (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = r.get("cpu_to_last_first_s")
        if not cpu:
            continue
        work = cpu["kernels"] + cpu["voila"] + cpu["renderers"] + cpu["chromium other"]
        first = r["image"] if r["scenario"].startswith("baseline") else r["firstMap"]
        lines.append(
            f"| {r['scenario']} | {r['pages']} | {cpu['kernels']:g} | {cpu['voila']:g} | "
            f"{cpu['renderers']:g} | {cpu['chromium other']:g} | {cpu['measuring']:g} | "
            f"{work / r['pages']:.1f} | {work / cores:.1f} | {_slowest(first)} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=5, help="pages opened at once (default 5)")
    ap.add_argument(
        "--load-timeout",
        type=float,
        default=240.0,
        help="seconds a scenario's pages may take to load (default 240)",
    )
    ap.add_argument("--no-strict", action="store_true", help="skip the row with anywidget's own 2 s deadline")
    ap.add_argument("--json", type=Path, help="also write the rows and the machine here")
    args = ap.parse_args()

    missing = missing_pieces()
    if missing:
        print("bench_load needs: " + "; ".join(missing), file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    started = datetime.now(timezone.utc)
    info = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), **machine(), **versions()}
    n = args.sessions
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    base_nb = baseline_notebook(tmp / "baseline_torch_image.ipynb")
    scenarios = [
        ("baseline x1", base_nb, 1, ("image",), STRETCHED_DEADLINE_MS),
        (f"baseline x{n}", base_nb, n, ("image",), STRETCHED_DEADLINE_MS),
        ("quickstart x1", NOTEBOOK, 1, ("firstMap", "complete"), STRETCHED_DEADLINE_MS),
        (f"quickstart x{n}", NOTEBOOK, n, ("firstMap", "complete"), STRETCHED_DEADLINE_MS),
    ]
    if not args.no_strict:
        scenarios.append((f"quickstart x{n}, anywidget 2 s", NOTEBOOK, n, ("firstMap", "complete"), 2000))
    rows = []
    t0 = time.monotonic()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000
            )
            info["chromium"] = browser.version
            try:
                for k, (name, nb, pages, marks, deadline) in enumerate(scenarios):
                    rows.append(
                        run_scenario(
                            browser, name, nb, pages, marks, tmp / f"s{k}", args.load_timeout, deadline
                        )
                    )
            finally:
                browser.close()
    finally:
        info["loadavg_end"] = os.getloadavg()
        info["wall_s"] = round(time.monotonic() - t0)
        print(f"(logs in {tmp})")

    print()
    print(f"## bench_load.py, {info['date']}")
    print()
    print(
        f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['mem_gb']} GB RAM; "
        f"Python {info['python']}, torch {info['torch']}, Voila {info['voila']} "
        f"(scripts/voila.py + voila.json), anywidget {info['anywidget']}, plotly "
        f"{info['plotly']}, headless Chromium {info['chromium']} on the same machine. "
        f"Load average at start {info['loadavg_start'][0]:.2f}, at end "
        f"{info['loadavg_end'][0]:.2f}; run took {info['wall_s']} s."
    )
    print()
    print(table(rows))
    print()
    print(
        "Times from the navigation's start to the map (the quickstart Explorer's heatmap) or "
        "the image (baseline) drawn. Rows other than the strict one give anywidget's model "
        f"deadline {STRETCHED_DEADLINE_MS // 1000} s instead of 2 s (browsers and kernels "
        "share these CPUs). Each scenario has a Voila of its own; pages each have a browser "
        "context of their own."
    )
    print()
    print(cpu_table(rows, info["cpus"] or 1))
    print()
    print(
        "CPU seconds from the navigations to the slowest page's first map (image), every "
        "process of the class together; 'measuring' is this script and Playwright's driver. "
        "Floor: kernels + Voila + Chromium over the machine's cores, the slowest first map "
        "with no core idle and nothing else running."
    )
    strict = [r for r in rows if r["anywidget_deadline_ms"] == 2000]
    for r in strict:
        print(
            f"Strict row: {r['anywidget_failed_pages']} of {r['pages']} pages logged "
            f"'{ANYWIDGET_FAILED}' (an empty figure that ignores updates); dead models "
            f"per page {r['dead_models']}."
        )
    for r in rows:
        if r.get("errors"):
            print(f"{r['scenario']}: pages showed errors: {r['errors']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
