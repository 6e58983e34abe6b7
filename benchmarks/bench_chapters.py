"""Each notebook chapter executed as shipped: wall time and the kernel's peak memory.

    python benchmarks/bench_chapters.py [--fast] [--only 01 05] [--out chapters.json]

A chapter runs in a fresh kernel of this interpreter (as Binder's would), with one cell
added at the end that reads the kernel's own peak resident memory (``VmHWM`` in
``/proc/self/status``). ``--fast`` sets ``CAM_WIDGETS_FAST=1`` (smaller sample counts; the tests run as shipped).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
PEAK_CELL = (
    "print('VMHWM_KB', [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
)


def kernel_peak_kb(notebook) -> int:
    for output in notebook.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if "VMHWM_KB" in text:
            return int(text.split()[-1])
    raise RuntimeError("the peak-memory cell printed nothing")


def run_chapter(path: Path, fast: bool, timeout: int) -> dict:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    env = dict(os.environ, CAM_WIDGETS_FAST="1" if fast else "0")
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        started = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        "chapter": path.name,
        "seconds": round(seconds, 1),
        "peak_mb": round(kernel_peak_kb(notebook) / 1024),
        "slowest_cells": slowest_cells(notebook),
    }


def slowest_cells(notebook, count: int = 3) -> list[tuple[int, float]]:
    """(cell index, seconds) of the slowest code cells, from nbclient's timing metadata."""
    timed = []
    for index, cell in enumerate(notebook.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if start and end:
            seconds = (
                datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))
            ).total_seconds()
            timed.append((index, round(seconds, 1)))
    return sorted(timed, key=lambda pair: -pair[1])[:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="CAM_WIDGETS_FAST=1")
    parser.add_argument("--only", nargs="*", default=None, help="chapter prefixes (01 05)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    chapters = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        chapters = [c for c in chapters if c.name.startswith(tuple(args.only))]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{'fast' if args.fast else 'as shipped'}"
    )
    print("| chapter | seconds | kernel peak (VmHWM) | slowest cells (index: s) |\n|---|---|---|---|")
    rows = []
    for path in chapters:
        row = run_chapter(path, args.fast, args.timeout)
        rows.append(row)
        cells = ", ".join(f"{i}: {t}" for i, t in row["slowest_cells"])
        print(f"| {row['chapter']} | {row['seconds']} | {row['peak_mb']} MB | {cells} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
