"""The engine's folded fp16 pass vs a half-precision copy of the weights vs the same pass
captured in a CUDA graph (r against the plain pass). Run on an H100 on 2026-11-22 (22:19 UTC):
half weights gained nothing, a graph ~1 ms.

Usage: python benchmarks/experiments/smoothgrad_pass_graph.py efficientnet_lite0,resnet50
"""

import copy
import statistics
import sys
import time

import torch

from cam_widgets import Explainer
from cam_widgets.models.torchvision_zoo import build_torchvision


def timed(fn, repeats=30):
    fn()
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


for name in sys.argv[1].split(","):
    ex = (
        Explainer(name, device="cuda")
        if name == "efficientnet_lite0"
        else Explainer(build_torchvision(name, pretrained=False), device="cuda")
    )
    eng = ex.engine
    x = ex.prepare("chelsea").tensor.cuda()
    noisy = (x + 0.2 * torch.randn((100,) + x.shape[1:], device="cuda")).contiguous(
        memory_format=torch.channels_last
    )
    eng.run(noisy[:2], [])
    twin = eng._twin.model
    half = copy.deepcopy(twin).half()

    def autocast_pass(inp=noisy):
        leaf = inp.detach().requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.float16):
            out = twin(leaf)
        return torch.autograd.grad(out[:, 1].float().sum(), leaf)[0].abs().amax(1).float().mean(0)

    def half_pass(inp=noisy):
        leaf = inp.detach().half().requires_grad_(True)
        out = half(leaf)
        return torch.autograd.grad(out[:, 1].float().sum(), leaf)[0].abs().amax(1).float().mean(0)

    ref = autocast_pass()
    r = torch.corrcoef(torch.stack([ref.flatten(), half_pass().flatten()]))[0, 1].item()
    print(
        f"\n## {name}\n- autocast twin: {timed(autocast_pass):.2f} ms\n- half twin: {timed(half_pass):.2f} ms (r vs autocast {r:.5f})",
        flush=True,
    )
    for label, fn in (("autocast", autocast_pass), ("half", half_pass)):
        static_in = noisy.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn(static_in)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g):
                static_out = fn(static_in)

            def replay():
                static_in.copy_(noisy)
                g.replay()
                return static_out

            rr = torch.corrcoef(torch.stack([ref.flatten(), replay().flatten()]))[0, 1].item()
            print(f"- CUDA graph {label}: {timed(replay):.2f} ms (r {rr:.5f})", flush=True)
        except Exception as exc:
            print(f"- CUDA graph {label}: failed {type(exc).__name__}: {str(exc)[:200]}", flush=True)
