"""The batch-100 SmoothGrad pass (forward + input gradient) on a GPU, every variant at once:
BatchNorm folded or not, channels-last or not, fp32 / fp16 / bf16, cudnn.benchmark on or off,
with the map's r against true fp32. Run on an H100 on 2026-11-22 (22:02 UTC); it chose the
folded, channels-last twin of ``engine/folding.py``.

Usage: python benchmarks/experiments/smoothgrad_pass_variants.py efficientnet_lite0,resnet50
"""

import copy
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cam_widgets import Explainer
from cam_widgets.models.torchvision_zoo import build_torchvision


def fold(model):
    model = copy.deepcopy(model)
    for parent in model.modules():
        kids = list(parent.named_children())
        for (n1, a), (n2, b) in zip(kids, kids[1:]):
            if type(a) in (nn.Conv2d,) or (isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)):
                if isinstance(b, nn.BatchNorm2d):
                    fused = fuse_conv_bn_eval(a, b)
                    if type(a) is not nn.Conv2d:  # keep Conv2dSame's forward
                        new = copy.deepcopy(a)
                        new.weight = fused.weight
                        new.bias = fused.bias
                        fused = new
                    setattr(parent, n1, fused)
                    setattr(parent, n2, nn.Identity())
    return model


def timed(fn, repeats=20):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        s = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - s) * 1000)
    return statistics.median(ts)


dev = torch.device("cuda")
for name in sys.argv[1].split(","):
    ex = (
        Explainer(name, device="cuda")
        if name == "efficientnet_lite0"
        else Explainer(build_torchvision(name, pretrained=False), device="cuda")
    )
    model = ex.engine.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = ex.prepare("chelsea").tensor.to(dev)
    torch.manual_seed(0)
    noisy = x + 0.2 * torch.randn((100,) + x.shape[1:], device=dev)
    folded = fold(model)

    def grad_map(net, inputs, dtype, cl):
        leaf = inputs.clone()
        if cl:
            leaf = leaf.contiguous(memory_format=torch.channels_last)
        leaf.requires_grad_(True)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = net(leaf)
        (g,) = torch.autograd.grad(out[:, 1].float().sum(), leaf)
        return g.abs().amax(1).mean(0)

    torch.backends.cudnn.allow_tf32 = False
    ref = grad_map(model, noisy, None, False).flatten()
    torch.backends.cudnn.allow_tf32 = True
    print(f"\n## {name}")
    print(
        f"- ours explain fp16: {timed(lambda: ex.explain(x, 'vanilla', 1, samples=100, precision='fp16')):.1f} ms"
    )
    from captum.attr import NoiseTunnel, Saliency

    nt = NoiseTunnel(Saliency(copy.deepcopy(model)))
    print(
        f"- captum NT b100: {timed(lambda: nt.attribute(x, nt_type='smoothgrad', nt_samples=100, nt_samples_batch_size=100, stdevs=0.2, target=1, abs=True)):.1f} ms"
    )
    for bench in (False, True):
        torch.backends.cudnn.benchmark = bench
        for dtype in (None, torch.float16, torch.bfloat16):
            for fold_ in (False, True):
                for cl in (False, True):
                    net = folded if fold_ else model
                    if cl:
                        net = copy.deepcopy(net).to(memory_format=torch.channels_last)
                    ms = timed(lambda: grad_map(net, noisy, dtype, cl))
                    r = torch.corrcoef(torch.stack([ref, grad_map(net, noisy, dtype, cl).flatten()]))[
                        0, 1
                    ].item()
                    print(
                        f"- bench={bench} dtype={dtype} fold={fold_} cl={cl}: {ms:.1f} ms r={r:.5f}",
                        flush=True,
                    )
    torch.backends.cudnn.benchmark = False
