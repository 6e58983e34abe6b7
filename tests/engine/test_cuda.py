"""The same maps on CUDA as on the CPU (skipped cleanly where there is no GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_widgets import Explainer, list_methods

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def gpu_explainer():
    return Explainer("efficientnet_lite0", device="cuda")


def test_default_device_is_cuda_for_zoo_models():
    assert Explainer("efficientnet_lite0").device.type == "cuda"


@pytest.mark.parametrize("method", [m.name for m in list_methods()])
def test_gpu_maps_match_cpu(gpu_explainer, lite_explainer, method):
    params = {"steps": 8} if method == "integrated_gradients" else {}
    gpu = gpu_explainer.explain("chelsea", method, 285, **params)
    cpu = lite_explainer.explain("chelsea", method, 285, **params)
    assert gpu.device.startswith("cuda")
    assert np.corrcoef(gpu.heatmap.ravel(), cpu.heatmap.ravel())[0, 1] > 0.999


def test_gpu_smoothgrad_snapshots(gpu_explainer):
    result = gpu_explainer.explain("chelsea", "vanilla", 285, samples=20, snapshots=[1, 10, 20])
    assert sorted(result.snapshots) == [1, 10, 20] and np.isfinite(result.heatmap).all()


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("method", ["vanilla", "guided_backprop", "gradcam"])
def test_gpu_mixed_precision_smoothgrad_agrees_with_fp32(gpu_explainer, method, precision):
    fp32 = gpu_explainer.explain("chelsea", method, 285, samples=100, seed=1)
    mixed = gpu_explainer.explain("chelsea", method, 285, samples=100, seed=1, precision=precision)
    assert mixed.params["precision"] == precision and np.isfinite(mixed.heatmap).all()
    assert np.corrcoef(fp32.heatmap.ravel(), mixed.heatmap.ravel())[0, 1] >= 0.99


def test_gpu_class_switch_runs_no_forward(gpu_explainer):
    gpu_explainer.explain("coffee", "gradcam", 1)
    forwards = gpu_explainer.engine.forward_calls
    for cls in (2, 3, 4):
        gpu_explainer.explain("coffee", "gradcam", cls)
    assert gpu_explainer.engine.forward_calls == forwards


def test_gpu_leaves_no_hooks_and_no_memory_behind(gpu_explainer):
    from cam_widgets.engine import count_hooks

    for method in ("gradcam", "guided_backprop", "scorecam"):
        gpu_explainer.explain("astronaut", method, 1)  # warm the allocator and caches
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for i in range(30):
        gpu_explainer.explain("astronaut", ("gradcam", "guided_backprop", "scorecam")[i % 3], 1)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() - before < 16 * 2**20
    assert count_hooks(gpu_explainer.engine.model) == 0
