"""EfficientNet-Lite's SAME padding on CUDA: padded copy of the input vs a zero kernel tap
(``Conv2dSame.zero_tap_devices``), interleaved. Run on an H100 on 2026-11-22 (22:33 UTC): the
zero tap made SmoothGrad fp16 16.4 -> 22.6 ms there, so it is used on the CPU only.

Usage: python benchmarks/experiments/conv_same_zero_tap.py
"""

import statistics
import time

import torch

from cam_widgets import Explainer
from cam_widgets.models import efficientnet_lite as el


def timed(fn):
    torch.cuda.synchronize()
    s = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - s) * 1000


setups = {}
for label, devices in (("explicit pad on cuda", ("cpu",)), ("zero tap on cuda", ("cpu", "cuda"))):
    el.Conv2dSame.zero_tap_devices = devices
    ex = Explainer("efficientnet_lite0", device="cuda")
    for m in list(ex.engine.model.modules()):
        if isinstance(m, el.Conv2dSame):
            m.zero_tap_devices = devices
    x = ex.prepare("chelsea").tensor
    xd = x.cuda()
    ex.explain(x, "vanilla", 1, samples=100, precision="fp16")
    for m in list(ex.engine._twin.model.modules()):
        if isinstance(m, el.Conv2dSame):
            m.zero_tap_devices = devices
    classes = iter(range(2, 10**6))

    def fresh(ex=ex, x=x):
        ex.engine.clear_cache()
        ex.explain(x, "gradcam", 1)

    def fwd(ex=ex, xd=xd):
        with torch.no_grad():
            ex.engine.model(xd)

    setups[label] = {
        "forward b1": fwd,
        "fresh gradcam": fresh,
        "class switch": lambda ex=ex, x=x: ex.explain(x, "gradcam", next(classes) % 1000),
        "smoothgrad fp16": lambda ex=ex, x=x: ex.explain(x, "vanilla", 1, samples=100, precision="fp16"),
        "smoothgrad fp32": lambda ex=ex, x=x: ex.explain(x, "vanilla", 1, samples=100),
    }
results = {}
for _rep in range(25):
    for label, fns in setups.items():
        for name, fn in fns.items():
            results.setdefault((label, name), []).append(timed(fn))
for (label, name), v in sorted(results.items(), key=lambda kv: kv[0][1]):
    print(f"- {name:16s} {label:22s} median {statistics.median(v[3:]):6.2f} ms")
