"""SmoothGrad n=100 (vanilla gradients) against the article's sequential loop, the one bar of
bench_engine.py alone: both interleaved round-robin in one process, median of ``--repeats``.

    .venv/bin/python benchmarks/bench_smoothgrad.py [--repeats 5] [--batch-sizes 4,8]

Prints one row per case (ms, ratio to the sequential loop) and the bar (<= 0.5). Extra
``--batch-sizes`` time our SmoothGrad at those batch sizes too (same noise settings).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import torch

import cam_widgets as cw

NOISE = 0.2
CLASS = 285


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--batch-sizes", default="", help="extra batch sizes, e.g. 4,8")
    parser.add_argument(
        "--budget-mib",
        type=int,
        default=None,
        help="the engine's memory budget for batched passes (default: the engine's own, "
        "which caps every batch size asked for: rows give the size that ran)",
    )
    args = parser.parse_args()
    n = args.samples
    explainer = cw.Explainer("efficientnet_lite0", device="cpu")
    if args.budget_mib is not None:
        explainer.engine.memory_budget = args.budget_mib * 1024**2
    x = explainer.prepare("chelsea").tensor
    low, high = explainer.spec.input_range
    sigma = NOISE * (high - low)
    base = copy.deepcopy(explainer.engine.model).eval()
    generator = torch.Generator().manual_seed(0)

    def ours(batch_size=None):
        extra = {} if batch_size is None else {"batch_size": batch_size}
        return lambda: explainer.explain(x, "vanilla", CLASS, samples=n, noise=NOISE, **extra)

    def sequential():
        noise = torch.randn((n,) + tuple(x.shape[1:]), generator=generator) * sigma
        total = torch.zeros(x.shape[-2:])
        for k in range(n):
            leaf = (x + noise[k : k + 1]).requires_grad_(True)
            out = base(leaf)
            (grad,) = torch.autograd.grad(out[0, CLASS], leaf)
            total += grad[0].abs().amax(dim=0)
        return total / n

    default = min(explainer.engine.batch_size_for(), n)
    cases = {f"ours SmoothGrad n={n}, default batch ({default})": ours()}
    for size in [int(v) for v in args.batch_sizes.split(",") if v.strip()]:
        ran = min(explainer.engine.batch_size_for(requested=size), n)  # (capped by the budget)
        shown = f"batch {size}" if ran == size else f"batch {size} asked, {ran} ran"
        cases[f"ours SmoothGrad n={n}, {shown}"] = ours(size)
    cases[f"sequential loop n={n} (article)"] = sequential
    times: dict[str, list[float]] = {name: [] for name in cases}
    for repeat in range(args.repeats + 1):  # the first round untimed (warm-up)
        for name, call in cases.items():
            started = time.perf_counter()
            call()
            if repeat:
                times[name].append((time.perf_counter() - started) * 1000)
    load = os.getloadavg()
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"median of {args.repeats}"
    )
    sequential_ms = statistics.median(times[f"sequential loop n={n} (article)"])
    print("| case | median ms | min ms | x sequential |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {median / sequential_ms:.2f} |")
    ratio = statistics.median(times[next(iter(cases))]) / sequential_ms
    print(
        f"bar: SmoothGrad n={n} <= 0.5 x sequential loop: ratio {ratio:.2f} {'PASS' if ratio <= 0.5 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
