"""The one place that decides device, precision, memory layout and CPU batch size."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import InvalidParameterError, expected

DeviceLike = str | torch.device | None


def choose_device(device: DeviceLike = None) -> torch.device:
    """CUDA when available, else CPU; an explicit ``device`` wins.

    Raises:
        InvalidParameterError: unknown device string, or CUDA asked for where there is none.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidParameterError(expected("device", "'cpu', 'cuda', 'cuda:N' or None", device)) from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            expected(
                "device",
                "'cpu' or None: no CUDA GPU is available here",
                device,
                "use device='cpu' or None",
            )
        )
    if chosen.type not in ("cpu", "cuda"):  # mps, meta, xpu...: not supported by the engine
        raise InvalidParameterError(
            expected(
                "device",
                f"'cpu', 'cuda', 'cuda:N' or None ({chosen.type} devices are not supported)",
                device,
            )
        )
    return chosen


def module_device(model: torch.nn.Module) -> torch.device | None:
    """The device of the model's first parameter or buffer, or None for a stateless module."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return None


@contextmanager
def full_precision(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Plain fp32 convolutions and matmuls on CUDA for the block (no TF32 rounding).

    PyTorch lets cuDNN round fp32 convolutions to TF32 by default, which moves pixel-level
    gradient maps by ~1% (r 0.993 against the CPU on an H100); the engine's fp32 means fp32.
    Mixed-precision passes (SmoothGrad's ``precision``) leave the flags alone.
    """
    if device.type != "cuda" or not enabled:
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def same_logits(expected: torch.Tensor, got: object) -> bool:
    """Whether a second forward's logits equal the first's up to float rounding."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    tolerance = 1e-3 * max(1.0, float(expected.abs().max()))
    return bool((got - expected).abs().max() <= tolerance)


#: Activations of one image (all leaf modules' outputs) past which the engine does not check
#: the channels-last layout and keeps the plain one: the check's backward holds them all.
#: At 224x224: ResNet50 110 MiB, VGG16 109, EfficientNet-Lite0 75 (checked); the dilated
#: VGG16 ~1700 at 224, ~420 at 112 (not: its check took 15 s and raised the peak by 0.4-1 GB).
CHANNELS_LAST_CHECK_BYTES = 256 * 1024**2


def accepts_channels_last(model: torch.nn.Module, example: torch.Tensor, expected: torch.Tensor) -> bool:
    """Whether ``model`` (in eval mode) gives its logits ``expected`` for ``example`` also from
    a channels-last copy of it, and can take a gradient through them.

    oneDNN's CPU convolutions run 1.1-1.4x faster in that layout, forward and backward, with
    float32 errors against float64 of the same size (``benchmarks/RESULTS.md``). A model that
    ``.view()``s its activations or their gradients fails here, and keeps the plain layout.
    """
    try:
        with torch.enable_grad():
            leaf = example.contiguous(memory_format=torch.channels_last).requires_grad_(True)
            nhwc = model(leaf)
            torch.autograd.grad(nhwc.sum(), leaf)  # a backward that views a gradient fails too
    except Exception:  # a view of a channels-last tensor, a layout check of its own ...
        return False
    return same_logits(expected, nhwc.detach())


#: Bytes a batched CPU pass may hold for its backward by default: a Binder session has 1 to 2
#: GB for the whole kernel. A fresh kernel's first SmoothGrad n=100 on EfficientNet-Lite0
#: peaked at 1.32 GB in 4.6 s in batches of 8 (the old 4 GiB budget), at 1.02 GB in 3.6 s in
#: batches of 3 (this one; 2-core CPU, 2026-12-07).
CPU_MEMORY_BUDGET = 512 * 1024**2

#: Largest batch on CPU for batched passes (SmoothGrad, Score-CAM, IG): past ~8 batches spill
#: the caches (SmoothGrad n=100 on EfficientNet-Lite0: 2.4 s at 8, 5.7 s at 25).
CPU_BATCH = 8
#: Largest activation a CPU batch may produce, by layout: measured limits, not the allocator's
#: (blocks past glibc's mmap threshold, 32 MiB at most, come back as fresh pages faulted in on
#: every batch; how much that costs depends on the rest of the pass). Plain layout: SmoothGrad
#: n=100 on EfficientNet-Lite0 took 3.85 s at batch 8 (38 MB activations), 2.45 s at batch 4.
#: Channels-last (no reorder copies): 1.26 s at 8 (38 MB), 1.34 s at 4, 1.42 s at 10 (48 MB);
#: ResNet50 55 ms a sample at 8 (26 MB), 69 ms at 12 (39 MB). 2 cores, 2026-11-22.
CPU_BLOCK_BYTES = {False: 20 * 1024**2, True: 40 * 1024**2}
#: ...but never fewer samples than this: for compute-heavy layers batching still wins (VGG16,
#: 12 MB activations a sample: 1.95 s at batch 1, 1.59 s at batch 4 for n=8).
CPU_MIN_BATCH = 4


def cpu_batch_size(fits: int, largest_activation: int, channels_last: bool) -> int:
    """Samples per batched pass on the CPU, given how many fit the memory budget."""
    by_activation = max(CPU_MIN_BATCH, CPU_BLOCK_BYTES[channels_last] // max(1, largest_activation))
    return max(1, min(fits, CPU_BATCH, by_activation))


#: Overrides the CPU thread count the engine sets (a whole number >= 1).
THREADS_VARIABLE = "CAM_WIDGETS_THREADS"
_CGROUP_V2, _CGROUP_V1 = "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"


def cpu_quota(v2: str = _CGROUP_V2, v1: str = _CGROUP_V1) -> float | None:
    """CPUs this process's cgroup grants (Binder: about 1), or None when unlimited. torch
    starts a thread per core it sees, however few of them the quota lets it use."""
    try:
        with open(v2) as file:
            quota, period = file.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        period_path = os.path.join(os.path.dirname(v1), "cpu.cfs_period_us")
        with open(v1) as quota_file, open(period_path) as period_file:
            quota_us, period_us = int(quota_file.read()), int(period_file.read())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def cpu_threads(available: int, quota: float | None, app_kernel: bool, override: str | None) -> int:
    """Torch CPU threads for this kernel: ``override`` (CAM_WIDGETS_THREADS) when it is a
    whole number >= 1; else 1 in an app kernel (a server runs one kernel per open tab: five
    kernels with two threads each on two cores wait on each other's spinning threads); else
    ``available`` capped by the cgroup ``quota``."""
    if override is not None and override.strip().isdigit() and int(override) >= 1:
        return int(override)
    if app_kernel:
        return 1
    if quota is not None:
        return max(1, min(available, int(quota)))
    return available


_threads_set = False


def limit_cpu_threads() -> None:
    """Set torch's CPU threads once per process by :func:`cpu_threads` (only ever fewer,
    unless CAM_WIDGETS_THREADS asks for more)."""
    global _threads_set
    if _threads_set:
        return
    _threads_set = True
    from ..app_mode import in_voila  # (a leaf module: whether this kernel serves an app page)

    override = os.environ.get(THREADS_VARIABLE)
    current = torch.get_num_threads()
    wanted = cpu_threads(current, cpu_quota(), in_voila(), override)
    if wanted < current or override is not None and wanted != current:
        torch.set_num_threads(wanted)
