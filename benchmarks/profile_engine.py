"""Where the time of one engine call goes: stage timings and the torch profiler's top ops.

Usage::

    python benchmarks/profile_engine.py --device cuda --models efficientnet_lite0,resnet50
"""

from __future__ import annotations

import argparse
import sys

import torch
from bench_engine import Timer, build_explainer  # this folder: run as a script
from torch.profiler import ProfilerActivity, profile


def timed(device, fn, repeats: int = 20) -> float:
    """Median ms of ``fn``, timed as the benchmark times (synchronised on CUDA)."""
    timer = Timer(device)
    timer.add("case", lambda i: fn)
    return timer.run(repeats, warmup=0)["case"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="efficientnet_lite0")
    p.add_argument("--rows", type=int, default=18)
    args = p.parse_args(argv)
    for name in args.models.split(","):
        ex, note = build_explainer(name, args.device)
        if ex is None:
            print(f"\n## {name}: {note}")
            continue
        dev = ex.device
        x = ex.prepare("chelsea").tensor
        layer = ex.default_layer
        ex.explain(x, "gradcam", 1)
        classes = iter(range(2, 100000))
        capture = ex.capture(x)[1]
        print(f"\n## {name} on {dev}, layer {layer}")
        rows = {
            "explain, class switch": lambda: ex.explain(x, "gradcam", next(classes) % 1000),
            "explain, same class (all cached)": lambda: ex.explain(x, "gradcam", 1),
            "capture lookup": lambda: ex.capture(x),
            "gradients of one new class": lambda: capture.gradients(
                [layer], torch.tensor([next(classes) % 1000])
            ),
            "SmoothGrad n=100 fp32": lambda: ex.explain(x, "vanilla", 1, samples=100),
        }
        noisy = x.to(dev).repeat(100, 1, 1, 1)
        model = ex.engine.model

        def floor():
            leaf = noisy.clone().requires_grad_(True)
            out = model(leaf)
            torch.autograd.grad(out[:, 1].sum(), leaf)

        rows["floor: batch-100 fwd + input grad"] = floor
        for precision in ("fp16", "bf16") if dev.type == "cuda" else ("bf16",):
            rows[f"SmoothGrad n=100 {precision}"] = lambda p=precision: ex.explain(
                x, "vanilla", 1, samples=100, precision=p
            )
        if dev.type == "cuda":
            import copy

            nhwc_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
            nhwc = noisy.contiguous(memory_format=torch.channels_last)

            def floor_mixed(net, inputs, dtype):
                def call():
                    leaf = inputs.clone().requires_grad_(True)
                    with torch.autocast("cuda", dtype=dtype):
                        out = net(leaf)
                    torch.autograd.grad(out[:, 1].float().sum(), leaf)

                return call

            for dtype in (torch.float16, torch.bfloat16):
                tag = str(dtype).split(".")[-1]
                rows[f"floor {tag} NCHW"] = floor_mixed(model, noisy, dtype)
                rows[f"floor {tag} channels_last input"] = floor_mixed(model, nhwc, dtype)
                rows[f"floor {tag} channels_last model+input"] = floor_mixed(nhwc_model, nhwc, dtype)
        for label, fn in rows.items():
            fn()
            print(f"- {label}: {timed(dev, fn, 5 if dev.type == 'cpu' and '100' in label else 20):.2f} ms")
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        for label in ("explain, class switch", "SmoothGrad n=100 fp32"):
            with profile(activities=activities) as prof:
                for _ in range(5):
                    rows[label]()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
            print(f"\n### profile: {label} (5 calls)\n")
            print(
                prof.key_averages().table(
                    sort_by="cpu_time_total", row_limit=args.rows, max_name_column_width=50
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
