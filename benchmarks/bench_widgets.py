"""Kernel-side cost of Explorer interactions (issue bars: class or method switch on a cached
image <= 100 ms, opacity change <= 20 ms, bytes sent per class switch <= 100 kB).

    .venv/bin/python benchmarks/bench_widgets.py [--repeats 10]

Times are measured in the kernel (Python) with no browser attached; bytes are the JSON size
of every message the FigureWidget and the other widgets would send for the change.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date

import numpy as np
import torch


def record_messages():
    """Patch ipywidgets' comm sends to add up the bytes each change would put on the wire."""
    import ipywidgets
    from ipywidgets.widgets.widget import _remove_buffers

    sizes = []
    original = ipywidgets.Widget.send_state

    def send_state(self, key=None):
        state, _, buffers = _remove_buffers(self.get_state(key=key))
        sizes.append(len(json.dumps(state, default=str)) + sum(len(b) for b in buffers))
        return original(self, key=key)

    ipywidgets.Widget.send_state = send_state
    return sizes, lambda: setattr(ipywidgets.Widget, "send_state", original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    from cam_widgets.widgets import Explorer

    explorer = Explorer(image="chelsea")
    sizes, restore = record_messages()
    classes = [282, 281, 287, 285, 283, 284, 286, 288, 289, 290, 291, 292]
    rows = []

    def timed(label, action, values):
        times, sent = [], []
        for value in values[: args.repeats]:
            sizes.clear()
            start = time.perf_counter()
            action(value)
            times.append((time.perf_counter() - start) * 1000)
            sent.append(sum(sizes))
        rows.append((label, statistics.median(times), max(times), statistics.median(sent)))

    timed("class switch (new class, cached image)", lambda c: explorer.set(target=c), classes)
    timed("class switch (back to a seen class)", lambda c: explorer.set(target=c), classes)
    methods = ["gradcam++", "xgradcam", "layercam", "gradcam"] * 3
    timed("method switch (CAM family)", lambda m: explorer.set(method=m), methods)
    timed(
        "opacity change",
        lambda v: setattr(explorer._controls["opacity"], "value", v),
        list(np.linspace(0.1, 0.9, 12)),
    )
    timed(
        "colormap change",
        lambda v: setattr(explorer._controls["colormap"], "value", v),
        ["jet", "viridis", "inferno", "gray"] * 3,
    )
    restore()
    print(
        f"Explorer kernel-side costs, EfficientNet-Lite0 on chelsea, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {date.today()}\n"
    )
    print("| interaction | median ms | max ms | bytes sent (median) |")
    print("|---|---:|---:|---:|")
    for label, median, worst, sent in rows:
        print(f"| {label} | {median:.1f} | {worst:.1f} | {sent:,.0f} |")
    switch = rows[0][1]
    opacity = rows[3][1]
    print(
        f"\nbars: class switch <= 100 ms: {'PASS' if switch <= 100 else 'FAIL'} ({switch:.1f}); "
        f"opacity <= 20 ms: {'PASS' if opacity <= 20 else 'FAIL'} ({opacity:.1f}); "
        f"bytes per class switch <= 100 kB: {'PASS' if rows[0][3] <= 100_000 else 'FAIL'} "
        f"({rows[0][3]:,.0f})"
    )


if __name__ == "__main__":
    main()
