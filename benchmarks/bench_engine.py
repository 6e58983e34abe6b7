"""Time the cam_widgets engine against plain autograd, pytorch-grad-cam and captum.

Everything runs in ONE process on the same model, image and machine. Within each group the
implementations are interleaved round-robin (ours, then the peers, then ours again ...) so
that load from other processes hits all of them alike; each figure is the median of
``--repeats`` timed calls after one untimed warm-up call. On CUDA every timed call is
wrapped in ``torch.cuda.synchronize()``.

Peers run on their own ``copy.deepcopy`` of the model (pytorch-grad-cam keeps permanent
hooks on its target layer; captum's are temporary), built once outside the timings as a
user would.

Usage::

    python benchmarks/bench_engine.py                       # full run, EfficientNet-Lite0
    python benchmarks/bench_engine.py --quick               # smoke run (seconds)
    python benchmarks/bench_engine.py --models efficientnet_lite0,resnet50 --out r.md

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import gc
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch

SMOOTH_NOISE = 0.2
TOP5 = 5


# --------------------------------------------------------------------------- helpers
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_mb() -> float:
    """Resident set size of this process in MB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # Linux fallback
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Timer:
    """Round-robin timing of several cases: ``add`` them, then ``run``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cases: list[tuple[str, Callable[[int], Callable[[], object]]]] = []
        self.times: dict[str, list[float]] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def add(self, name: str, prepare: Callable[[int], Callable[[], object]]) -> None:
        """``prepare(i)`` does untimed set-up for call ``i`` and returns the call to time."""
        self.cases.append((name, prepare))

    def run(self, repeats: int, warmup: int = 1) -> dict[str, float]:
        for i in range(warmup + repeats):
            for name, prepare in self.cases:
                call = prepare(i)
                self.sync()
                start = time.perf_counter()
                call()
                self.sync()
                elapsed = (time.perf_counter() - start) * 1000.0
                if i >= warmup:
                    self.times.setdefault(name, []).append(elapsed)
        return {name: statistics.median(t) for name, t in self.times.items()}


def target_module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return dict(model.named_modules())[name]


@contextlib.contextmanager
def captum_guided_relu6():
    """captum's GuidedBackprop hooks nn.ReLU only; EfficientNet-Lite uses ReLU6. Hook both
    for the block (as tests/methods/test_reference.py does), then restore captum."""
    from captum.attr._core import guided_backprop_deconvnet as gbd

    original = gbd.ModifiedReluGradientAttribution._register_hooks

    def register_relu_and_relu6(self, module):
        if isinstance(module, (torch.nn.ReLU, torch.nn.ReLU6)):
            self.backward_hooks.extend(gbd._register_backward_hook(module, self._backward_hook, self))

    gbd.ModifiedReluGradientAttribution._register_hooks = register_relu_and_relu6
    try:
        yield
    finally:
        gbd.ModifiedReluGradientAttribution._register_hooks = original


# --------------------------------------------------------------------------- models
def build_explainer(name: str, device):
    """(Explainer, note) or (None, reason to skip)."""
    from cam_widgets import Explainer

    if name == "efficientnet_lite0":
        return Explainer("efficientnet_lite0", device=device), "pretrained (bundled weights)"
    try:
        from cam_widgets.models.torchvision_zoo import build_torchvision
    except ImportError as exc:  # pragma: no cover - depends on the package version
        return None, f"skipped: cam_widgets.models.torchvision_zoo.build_torchvision missing ({exc})"
    try:
        spec = build_torchvision(name, pretrained=False)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        return None, f"skipped: build_torchvision({name!r}) failed: {type(exc).__name__}: {exc}"
    return Explainer(spec, device=device), "random weights (pretrained=False); timings only"


# --------------------------------------------------------------------------- benchmark
def bench_model(name: str, args, device) -> dict:
    ex, note = build_explainer(name, device)
    if ex is None:
        return {"model": name, "skipped": note}
    dev = ex.device
    torch.manual_seed(0)
    x = ex.prepare("chelsea").tensor
    xd = x.to(dev)
    layer = ex.default_layer
    low, high = ex.spec.input_range
    sigma = SMOOTH_NOISE * (high - low)
    cls_a = 285

    base = copy.deepcopy(ex.engine.model).eval()  # plain autograd, captum, sequential loop
    results: dict[str, float] = {}
    notes: list[str] = [f"{name}: {note}; layer {layer!r}"]

    # ---- group 1: single-image maps, all interleaved --------------------------------
    t = Timer(dev)

    def forward_only(i):
        def call():
            with torch.no_grad():
                base(xd)

        return call

    def forward_backward(i):
        def call():
            leaf = xd.detach().clone().requires_grad_(True)
            out = base(leaf)
            torch.autograd.grad(out[0, cls_a], leaf)

        return call

    def unseen(i: int, case: int) -> torch.Tensor:
        """An image no call has seen (clear_cache() would drop the folded twin too)."""
        return x + (1 + i + 100 * case) * 1e-5

    def ours_fresh(i):
        image = unseen(i, 0)
        return lambda: ex.explain(image, "gradcam", cls_a)

    # class switch: a class whose gradient is not cached yet, on a cached image
    ex.explain(x, "gradcam", cls_a)
    switch_classes = iter(range(0, 1000, 3))

    def ours_switch(i):
        cls = next(switch_classes)
        return lambda: ex.explain(x, "gradcam", cls)

    top5_classes = iter(range(1, 1000, 3))

    def ours_top5(i):
        classes = [next(top5_classes) for _ in range(TOP5)]
        return lambda: ex.explain_classes(x, classes, "gradcam")

    t.add("forward (no_grad)", forward_only)
    t.add("forward + backward to input (autograd)", forward_backward)
    t.add("ours Grad-CAM, fresh image", ours_fresh)
    t.add("ours Grad-CAM, class switch (cached image)", ours_switch)
    t.add("ours Grad-CAM, top-5 classes at once (cached image)", ours_top5)

    # pytorch-grad-cam: one copy per CAM object (their hooks are permanent)
    try:
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        pgc = {}
        for label, cls in (
            ("pytorch-grad-cam GradCAM", GradCAM),
            ("pytorch-grad-cam GradCAMPlusPlus", GradCAMPlusPlus),
        ):
            m = copy.deepcopy(base).eval()
            pgc[label] = cls(model=m, target_layers=[target_module(m, layer)])
            targets = [ClassifierOutputTarget(cls_a)]

            def make(cam=pgc[label], targets=targets):
                return lambda i: lambda: cam(input_tensor=xd, targets=targets)

            t.add(label, make())
    except ImportError as exc:
        pgc = {}
        notes.append(f"pytorch-grad-cam not installed ({exc}); its rows are missing")

    try:
        from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency

        have_captum = True
        lgc = LayerGradCam(base, target_module(base, layer))
        size = tuple(x.shape[-2:])

        def captum_gradcam(i):
            def call():
                attr = lgc.attribute(xd, target=cls_a)
                return LayerAttribution.interpolate(attr, size, "bilinear").relu()

            return call

        t.add("captum LayerGradCam (+ upsample, ReLU)", captum_gradcam)
    except ImportError as exc:
        have_captum = False
        notes.append(f"captum not installed ({exc}); its rows are missing")

    # guided backprop, fresh forward each call for ours (a peer has no cache)
    def ours_guided(i):
        image = unseen(i, 2)
        return lambda: ex.explain(image, "guided_backprop", cls_a)

    t.add("ours Guided Backprop, fresh image", ours_guided)
    if have_captum:
        relu6 = any(isinstance(m, torch.nn.ReLU6) for m in base.modules())
        gbp = GuidedBackprop(base)

        def captum_guided(i):
            def call():
                with captum_guided_relu6() if relu6 else contextlib.nullcontext():
                    return gbp.attribute(xd, target=cls_a)

            return call

        t.add("captum GuidedBackprop" + (" (ReLU6 patched in)" if relu6 else ""), captum_guided)

    results.update(t.run(args.repeats, args.warmup))
    for cam in pgc.values():
        with contextlib.suppress(Exception):
            cam.activations_and_grads.release()
    ex.engine.clear_cache()
    gc.collect()

    # ---- group 2: SmoothGrad n=samples ----------------------------------------------
    n = args.smooth_samples
    s = Timer(dev)

    def ours_smooth(batch_size=None, precision="fp32", fold=True):
        def prepare(i):
            params = {} if batch_size is None else {"batch_size": batch_size}
            params["precision"] = precision

            def call():
                ex.engine.fold_batch_norm = fold
                try:
                    return ex.explain(x, "vanilla", cls_a, samples=n, noise=SMOOTH_NOISE, **params)
                finally:
                    ex.engine.fold_batch_norm = True

            return call

        return prepare

    ours_default_bs = min(ex.engine.batch_size_for(), n)  # as smooth() picks it
    s.add(f"ours SmoothGrad n={n} (default batch {ours_default_bs})", ours_smooth())
    for bs in args.smooth_batch_sizes:
        if bs != ours_default_bs and bs <= n:
            s.add(f"ours SmoothGrad n={n} (batch {bs})", ours_smooth(bs))
    # before/after of the BatchNorm-folded twin (engine/folding.py), in the same run
    s.add(f"ours SmoothGrad n={n}, BatchNorm not folded", ours_smooth(fold=False))
    agreement: dict[str, float] = {}
    for precision in args.precisions:
        row = f"ours SmoothGrad n={n} mixed precision {precision}"
        s.add(row, ours_smooth(precision=precision))
        s.add(f"{row}, BatchNorm not folded", ours_smooth(precision=precision, fold=False))
        agreement[row] = mixed_precision_agreement(ex, x, cls_a, n, precision)
        notes.append(f"SmoothGrad {precision} vs fp32, same noise: heatmap r = {agreement[row]:.4f}")
    if have_captum:
        nt = NoiseTunnel(Saliency(base))
        # on a GPU the whole n in one batch is captum's fastest setting (FIELD.md)
        nt_batch = n if dev.type == "cuda" else min(25, n)

        def captum_smooth(i):
            def call():
                attr = nt.attribute(
                    xd,
                    nt_type="smoothgrad",
                    nt_samples=n,
                    nt_samples_batch_size=nt_batch,
                    stdevs=sigma,
                    target=cls_a,
                    abs=True,
                )
                return attr.amax(dim=1)

            return call

        s.add(f"captum NoiseTunnel(Saliency) n={n}, batch {nt_batch}", captum_smooth)

    gen = torch.Generator(device="cpu").manual_seed(0)

    def sequential(i):
        noise = (torch.randn((n,) + tuple(x.shape[1:]), generator=gen) * sigma).to(dev)

        def call():
            total = torch.zeros(x.shape[-2:], device=dev)
            for k in range(n):
                leaf = (xd + noise[k : k + 1]).requires_grad_(True)
                out = base(leaf)
                (grad,) = torch.autograd.grad(out[0, cls_a], leaf)
                total += grad[0].abs().amax(dim=0)
            return total / n

        return call

    s.add(f"sequential loop n={n} (article)", sequential)
    print(f"[bench] {name}: SmoothGrad group ...", file=sys.stderr, flush=True)
    # one untimed call each: mixed precision builds its own kernels on the first call
    results.update(s.run(args.smooth_repeats, args.warmup))
    gc.collect()

    # ---- group 3: memory over many calls --------------------------------------------
    print(f"[bench] {name}: memory test ...", file=sys.stderr, flush=True)
    memory = memory_test(ex, args.memory_calls) if args.memory_calls else None
    del base
    gc.collect()
    return {
        "model": name,
        "results": results,
        "notes": notes,
        "memory": memory,
        "smooth_samples": n,
        "smooth_default_bs": ours_default_bs,
        "agreement": agreement,
        "device": dev,
        "skipped": None,
    }


def mixed_precision_agreement(ex, x, cls, n: int, precision: str) -> float:
    """Correlation of the SmoothGrad map in ``precision`` with fp32, on the same noise."""
    import numpy as np

    maps = [
        ex.explain(x, "vanilla", cls, samples=n, noise=SMOOTH_NOISE, seed=11, precision=p).heatmap.ravel()
        for p in ("fp32", precision)
    ]
    return float(np.corrcoef(maps[0], maps[1])[0, 1])


def device_memory_mb(device: torch.device) -> float:
    """Memory held by tensors on ``device`` (CUDA), else the process RSS, in MB."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.memory_allocated(device) / 2**20
    return rss_mb()


def memory_test(ex, calls: int) -> dict:
    """RSS before/after ``calls`` explain() calls cycling 4 images, 10 classes, 5 methods."""
    from cam_widgets.data import list_samples

    images = [ex.prepare(name) for name in list_samples()[:4]]
    methods = ["gradcam", "gradcam++", "layercam", "vanilla", "guided_backprop"]
    classes = [285, 282, 281, 287, 283, 1, 100, 400, 700, 999]

    def call(i):
        ex.explain(images[i % 4], methods[(i // 4) % len(methods)], classes[(i // 20) % len(classes)])

    # warm-up: every (image, method, class) once, so caches and allocator pools are full
    warm = min(4 * len(methods) * len(classes), calls)
    for i in range(warm):
        call(i)
    gc.collect()
    before = device_memory_mb(ex.device)
    start = time.perf_counter()
    for i in range(calls):
        call(warm + i)
    seconds = time.perf_counter() - start
    gc.collect()
    after = device_memory_mb(ex.device)
    return {
        "calls": calls,
        "before": before,
        "after": after,
        "growth": after - before,
        "seconds": seconds,
        "warmup": warm,
    }


# --------------------------------------------------------------------------- report
def find(results: dict, prefix: str) -> float | None:
    for key, value in results.items():
        if key.startswith(prefix):
            return value
    return None


def bars(run: dict) -> list[tuple[str, str, str]]:
    """(bar, measured, PASS/FAIL/n.a.) rows."""
    r = run["results"]
    n = run["smooth_samples"]
    fresh = find(r, "ours Grad-CAM, fresh")
    switch = find(r, "ours Grad-CAM, class switch")
    lgc = find(r, "captum LayerGradCam")
    pgc = r.get("pytorch-grad-cam GradCAM")  # exact: not the GradCAMPlusPlus row
    ours_sg = find(r, f"ours SmoothGrad n={n} (default")
    nt = find(r, "captum NoiseTunnel")
    seq = find(r, "sequential loop")
    rows = []

    def check(label, ok_value, limit, factor=1.0):
        if ok_value is None or limit is None:
            rows.append((label, "-", "n.a."))
            return
        ratio = ok_value / limit
        rows.append(
            (
                label,
                f"{ok_value:.1f} ms vs {factor:g} x {limit:.1f} ms (ratio {ratio:.2f})",
                "PASS" if ok_value <= factor * limit else "FAIL",
            )
        )

    # mixed-precision rows whose map agrees with fp32 at r >= 0.99 (the rule)
    mixed = [
        v
        for k, v in r.items()
        if k.startswith(f"ours SmoothGrad n={n} mixed") and run["agreement"].get(k, 0) >= 0.99
    ]
    if run["device"].type == "cuda":  # the GPU bars
        check("class switch <= 2 ms", switch, 2.0)
        check(f"SmoothGrad n={n} (fp32) <= 0.5 x captum NoiseTunnel (batched)", ours_sg, nt, 0.5)
        check(
            f"SmoothGrad n={n} (best mixed precision with r >= 0.99) <= 0.5 x captum NoiseTunnel",
            min(mixed) if mixed else None,
            nt,
            0.5,
        )
    else:
        check("fresh Grad-CAM <= captum LayerGradCam", fresh, lgc)
        check("fresh Grad-CAM <= 0.5 x pytorch-grad-cam GradCAM", fresh, pgc, 0.5)
        check("class switch <= 0.25 x fresh Grad-CAM", switch, fresh, 0.25)
        check(f"SmoothGrad n={n} <= captum NoiseTunnel (batched)", ours_sg, nt)
        check(f"SmoothGrad n={n} <= 0.5 x sequential loop", ours_sg, seq, 0.5)
    mem = run.get("memory")
    if mem:
        what = "allocated CUDA memory" if run["device"].type == "cuda" else "RSS"
        rows.append(
            (
                f"memory growth over {mem['calls']} calls < 50 MB",
                f"{mem['growth']:+.1f} MB ({what} {mem['before']:.0f} -> {mem['after']:.0f} MB)",
                "PASS" if mem["growth"] < 50 else "FAIL",
            )
        )
    else:
        rows.append(("memory growth < 50 MB", "-", "n.a."))
    return rows


def markdown(runs: list[dict], args, device: torch.device) -> str:
    lines = [
        "# cam_widgets engine benchmark",
        "",
        f"- device: {device.type} - {device_name(device)}",
        f"- torch {torch.__version__}, threads {torch.get_num_threads()}, python {platform.python_version()}",
        f"- date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- median of {args.repeats} timed calls after {args.warmup} warm-up (SmoothGrad: "
        f"{args.smooth_repeats} after {args.warmup} warm-up), implementations interleaved round-robin in one process",
        "",
    ]
    for run in runs:
        lines.append(f"## {run['model']}")
        lines.append("")
        if run.get("skipped"):
            lines += [run["skipped"], ""]
            continue
        r = run["results"]
        fwd = find(r, "forward (no_grad)")
        fresh = find(r, "ours Grad-CAM, fresh")
        lines += ["| case | median ms | x forward | x our fresh Grad-CAM |", "|---|---:|---:|---:|"]
        for key, value in r.items():
            lines.append(f"| {key} | {value:.1f} | {value / fwd:.2f} | {value / fresh:.2f} |")
        mem = run.get("memory")
        if mem:
            what = "CUDA memory" if run["device"].type == "cuda" else "RSS"
            lines.append(
                f"| {what} growth over {mem['calls']} explain() calls (4 images, 5 methods, "
                f"10 classes) | {mem['growth']:+.1f} MB | | |"
            )
        lines += ["", "| bar | measured | result |", "|---|---|---|"]
        for bar, measured, verdict in bars(run):
            lines.append(f"| {bar} | {measured} | **{verdict}** |")
        lines.append("")
        for note in run["notes"]:
            lines.append(f"- {note}")
        if mem:
            lines.append(
                f"- memory: {mem['warmup']} warm-up calls, then {mem['calls']} calls in "
                f"{mem['seconds']:.1f} s"
            )
        lines.append("")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per case (median)")
    p.add_argument("--smooth-samples", type=int, default=100, help="SmoothGrad n")
    p.add_argument(
        "--smooth-repeats", type=int, default=None, help="timed SmoothGrad calls (default min(3, repeats))"
    )
    p.add_argument(
        "--smooth-batch-sizes",
        default="",
        help="comma-separated extra batch sizes for our SmoothGrad, e.g. 10,25,50",
    )
    p.add_argument(
        "--memory-calls",
        type=int,
        default=None,
        help="explain() calls in the memory test (default 1000, --quick 40; 0 skips)",
    )
    p.add_argument(
        "--models", default="efficientnet_lite0", help="comma-separated: efficientnet_lite0, resnet50, vgg16"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny repeats and memory test")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument(
        "--precisions",
        default=None,
        help="mixed-precision SmoothGrad rows, e.g. fp16,bf16 (default: fp16,bf16 on CUDA, none on CPU)",
    )
    p.add_argument("--out", default=None, help="also write the markdown to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
    if args.smooth_repeats is None:
        args.smooth_repeats = min(3, args.repeats)
    if args.memory_calls is None:
        args.memory_calls = 20 if args.quick else 1000
    args.warmup = 0 if args.quick else 1
    args.smooth_batch_sizes = [int(v) for v in args.smooth_batch_sizes.split(",") if v.strip()]
    if args.precisions is not None:
        args.precisions = [v.strip() for v in args.precisions.split(",") if v.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module=r"captum\..*")
    if args.threads:
        torch.set_num_threads(args.threads)
    from cam_widgets.engine.device import choose_device

    device = choose_device(args.device)
    if args.precisions is None:
        args.precisions = ["fp16", "bf16"] if device.type == "cuda" else []
    runs = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        print(f"[bench] {name} on {device} ...", file=sys.stderr, flush=True)
        runs.append(bench_model(name, args, device))
    text = markdown(runs, args, device)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
