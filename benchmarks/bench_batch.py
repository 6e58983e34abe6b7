"""Grad-CAM on 8 images never seen before: one explain_batch call against a loop of
explain() calls, on EfficientNet-Lite0 (the offline model), each side on fresh images.

    .venv/bin/python benchmarks/bench_batch.py [--repeats 3] [--batch-size N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

import cam_widgets as cw
from cam_widgets.data.named import load_named
from cam_widgets.methods import get_method
from cam_widgets.methods.batch import rooted_batch

N = 8


def fresh_images(seed: int) -> list[np.ndarray]:
    """8 photos-like RGB images no cache has seen: the bundled samples, shifted and noised."""
    rng = np.random.default_rng(seed)
    base = [load_named(n) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    out = []
    for k in range(N):
        image = np.roll(base[k % 4], int(rng.integers(1, 60)), axis=1).astype(np.int16)
        out.append(np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    explainer = cw.Explainer("efficientnet_lite0")
    explainer.explain(fresh_images(999)[0], "gradcam")  # warm: probe, kernels
    load_before = os.getloadavg()[0]
    loop, batched, loop_cpu, batched_cpu = [], [], [], []
    for repeat in range(args.repeats):
        images = [explainer.prepare(im) for im in fresh_images(2 * repeat)]
        started, cpu = time.perf_counter(), time.process_time()
        for image in images:
            explainer.explain(image, "gradcam")
        loop.append(time.perf_counter() - started)
        loop_cpu.append(time.process_time() - cpu)
        images = [explainer.prepare(im) for im in fresh_images(2 * repeat + 1)]
        started, cpu = time.perf_counter(), time.process_time()
        explainer.explain_batch(images, "gradcam", batch_size=args.batch_size)
        batched.append(time.perf_counter() - started)
        batched_cpu.append(time.process_time() - cpu)
    # the slice explain_batch takes (a Grad-CAM batch keeps no graph below its layer)
    factor = 0.5 if rooted_batch([get_method("gradcam")]) else 1.0
    slice_size = explainer.engine.batch_size_for(factor, requested=args.batch_size)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, slice {slice_size}, "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    # process CPU time (all threads): less swayed by other work on the machine than the
    # wall time the bar is on, but it counts threads spinning while they wait for a core
    print(
        f"cpu time: one by one {min(loop_cpu):.3f} s   batched {min(batched_cpu):.3f} s   "
        f"ratio {min(batched_cpu) / min(loop_cpu):.2f}"
    )
    print(
        f"one by one: {min(loop):.3f} s   batched: {min(batched):.3f} s   "
        f"ratio {min(batched) / min(loop):.2f} (bar <= 0.6)"
    )


if __name__ == "__main__":
    main()
