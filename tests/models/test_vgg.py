"""VGG16 without torchvision (chapter 01 offline): the very model torchvision builds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from cam_widgets.errors import WeightsUnavailableError
from cam_widgets.models.vgg import VGG16_WEIGHTS_URL, random_vgg16_spec


def test_random_vgg16_is_torchvisions_own():
    from cam_widgets.models.torchvision_zoo import build_torchvision, weights_url

    ours, theirs = random_vgg16_spec(seed=0), build_torchvision("vgg16", pretrained=False, seed=0)
    a, b = ours.model.state_dict(), theirs.model.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert [type(m) for m in ours.model.modules()][1:] == [type(m) for m in theirs.model.modules()][1:]
    for field in ("name", "labels", "input_size", "default_layer", "input_range", "description", "extra"):
        assert getattr(ours, field) == getattr(theirs, field), field
    rgb = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    assert torch.equal(ours.preprocess(rgb), theirs.preprocess(rgb))
    assert not ours.model.training
    assert VGG16_WEIGHTS_URL == weights_url("vgg16")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours.model(x), theirs.model(x))


def test_vgg16_offline_needs_no_torchvision(tmp_path):
    # random weights, and the refusal when the file is missing offline: no torchvision import
    code = (
        "import sys, torch, cam_widgets as cw\n"
        f"torch.hub.set_dir({str(tmp_path)!r})\n"
        "spec = cw.load_model('vgg16', pretrained=False)\n"
        "try:\n"
        "    cw.load_model('vgg16')\n"
        "except cw.errors.WeightsUnavailableError as error:\n"
        "    print('refused:', error)\n"
        "print('torchvision' in sys.modules)"
    )
    env = {"CAM_WIDGETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "False", done.stderr[-2000:]
    assert "vgg16-397923af.pth" in lines[0] and "CAM_WIDGETS_OFFLINE=1" in lines[0]
    assert "cam-widgets fetch-weights vgg16" in lines[0]


def test_vgg16_offline_refusal_in_process(tmp_path, monkeypatch):
    from cam_widgets.models import load_model

    monkeypatch.setenv("CAM_WIDGETS_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path), raising=False)
    with pytest.raises(WeightsUnavailableError, match="vgg16-397923af.pth"):
        load_model("vgg16")
