"""The same maps on CUDA as on the CPU (skipped cleanly where there is no GPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_widgets import Explainer, list_methods

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


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
    result = gpu_explainer.explain("chelsea", "vanilla", 285, samples=20,
                                   snapshots=[1, 10, 20])
    assert sorted(result.snapshots) == [1, 10, 20] and np.isfinite(result.heatmap).all()
