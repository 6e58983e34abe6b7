"""Channels-last on the CPU: is oneDNN's backward as exact as the plain layout's?

Input gradients of EfficientNet-Lite0 (the model and its BatchNorm-folded twin, each in both
layouts) against float64, over a noisy batch of 12 images and classes: relative L2 error per
image and the r of the vanilla maps; and the gradient at three layers. Run on the 2-core CPU
on 2026-11-22 (23:40 UTC): both layouts err alike (mean L2 error 4e-4 to 1.2e-3, vanilla map r >= 0.99996),
which overturned an earlier reading of "2.2% at features.6" that this script cannot reproduce.
One image's max error is no measure: float32 rounding flips a few ReLU6 units at their kinks,
differently for each summation order (plain and channels-last alike).

Usage: python benchmarks/experiments/cpu_channels_last_accuracy.py
"""

import copy
import statistics

import torch

from cam_widgets import Explainer
from cam_widgets.engine.folding import build_twin

ex = Explainer("efficientnet_lite0", device="cpu")
model = ex.engine.model
x = ex.prepare("chelsea").tensor
twin = build_twin(model, list(model.named_modules()), torch.randn(2, 3, 224, 224)).model
inputs = x + 0.2 * torch.randn((12,) + x.shape[1:], generator=torch.Generator().manual_seed(3))
classes = torch.tensor([285, 281, 282, 242, 1, 500, 285, 281, 287, 292, 9, 999])


def input_grads(net, dtype=torch.float32, channels_last=False):
    net = copy.deepcopy(net).to(dtype)
    batch = inputs.to(dtype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    batch = batch.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(batch).gather(1, classes[:, None]).sum(), batch)
    return g.double()


exact = input_grads(model, torch.float64)
for label, net, nhwc in (
    ("model", model, False),
    ("model, channels-last", model, True),
    ("twin", twin, False),
    ("twin, channels-last", twin, True),
):
    g = input_grads(net, channels_last=nhwc)
    l2 = [float((a - b).norm() / b.norm()) for a, b in zip(g, exact)]
    r = [
        float(torch.corrcoef(torch.stack([a.abs().amax(0).flatten(), b.abs().amax(0).flatten()]))[0, 1])
        for a, b in zip(g, exact)
    ]
    print(
        f"- {label}: relative L2 error mean {statistics.mean(l2):.1e}, median "
        f"{statistics.median(l2):.1e}, max {max(l2):.1e}; vanilla map r min {min(r):.6f}"
    )


def layer_grad(layer, dtype=torch.float32, channels_last=False):
    net = copy.deepcopy(model).to(dtype)
    batch = inputs[:4].to(dtype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    seen = {}
    handle = dict(net.named_modules())[layer].register_forward_hook(lambda m, a, o: seen.setdefault("out", o))
    logits = net(batch)
    handle.remove()
    (g,) = torch.autograd.grad(logits[:, 285].sum(), seen["out"])
    return g.double()


for layer in ("features.6", "features.3", "features.1"):
    ref = layer_grad(layer, torch.float64)
    errors = [float((layer_grad(layer, channels_last=c) - ref).norm() / ref.norm()) for c in (False, True)]
    print(f"- gradient at {layer}: relative L2 error plain {errors[0]:.1e}, channels-last {errors[1]:.1e}")
