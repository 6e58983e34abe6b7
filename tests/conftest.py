"""Shared fixtures: a tiny hand-checkable net and the real offline model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

V = np.array([[1.0, -1.0, 0.5], [-0.5, 1.0, 1.0]], dtype=np.float32)  # conv 1x1: 3 -> 2
A_BIAS = np.array([0.1, -0.2], dtype=np.float32)
W = np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, -1.0]], dtype=np.float32)  # linear: 2 -> 3
B = np.array([0.0, 0.1, -0.1], dtype=np.float32)


class TinyNet(nn.Module):
    """conv1x1 -> ReLU -> global average pool -> linear: every method has a closed form."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.relu = nn.ReLU(inplace=inplace)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(V)[:, :, None, None])
            self.conv.bias.copy_(torch.from_numpy(A_BIAS))
            self.fc.weight.copy_(torch.from_numpy(W))
            self.fc.bias.copy_(torch.from_numpy(B))

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def tiny_input() -> torch.Tensor:
    """A fixed (1, 3, 4, 4) input with both signs in every channel."""
    return torch.sin(torch.arange(48, dtype=torch.float32) * 0.7).reshape(1, 3, 4, 4)


@pytest.fixture
def tiny_net() -> TinyNet:
    return TinyNet()


@pytest.fixture
def tiny_explainer(tiny_net):
    from cam_widgets import Explainer

    return Explainer(tiny_net, input_size=(4, 4), labels=["a", "b", "c"], device="cpu")


@pytest.fixture(scope="session")
def lite_explainer():
    """EfficientNet-Lite0 with its real weights, shared by the tests of a session."""
    from cam_widgets import Explainer

    return Explainer("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def chelsea_tensor(lite_explainer):
    return lite_explainer.prepare("chelsea").tensor
