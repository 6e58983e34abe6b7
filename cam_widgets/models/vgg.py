"""torchvision's VGG16 with random weights, built without importing torchvision.

Importing torchvision costs a kernel ~160 MB (its ``ops`` import ``torch._dynamo``, and with it
triton and sympy, on the CUDA wheel): a third of chapter 01's margin under a classroom's 1.5 GB
when VGG16's weights are not on the machine and only its architecture is needed. This module
repeats torchvision's ``vgg16()`` (configuration "D", no batch norm): the same modules in the
same order, hence the same names, and the same initialisation drawn in the same order, so
that a seed gives the very weights ``torchvision.models.vgg16()`` gives (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from .spec import IMAGENET_INPUT_RANGE, ModelSpec, imagenet_preprocess

#: torchvision's configuration "D": conv widths, "M" for a 2x2 max-pool.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

#: Where torchvision downloads VGG16's IMAGENET1K_V1 weights (tested equal to its enum's URL).
VGG16_WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


class VGG(nn.Module):
    """torchvision's ``VGG``: ``features`` -> ``avgpool`` (7x7) -> flatten -> ``classifier``."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        _initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _initialise(model: nn.Module) -> None:
    """torchvision's VGG initialisation, in its order (after each layer's default one, which
    draws from the generator too: skipping it would give other weights)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(module.bias, 0)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.constant_(module.bias, 0)


def _features(layout=VGG16_LAYOUT) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for width in layout:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


def vgg16(num_classes: int = 1000) -> VGG:
    """``torchvision.models.vgg16()`` (random weights from torch's generator), in eval mode."""
    return VGG(_features(), num_classes=num_classes).eval()


def random_vgg16_spec(seed: int = 0) -> ModelSpec:
    """VGG16 with seeded random weights as :func:`build_torchvision` ("vgg16", pretrained=False)
    builds it (the same weights, labels, preprocessing and layer), torchvision not imported."""
    from .labels import imagenet_labels

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = vgg16()
    return ModelSpec(
        name="vgg16",
        model=model,
        preprocess=imagenet_preprocess,
        labels=imagenet_labels(),
        input_size=(224, 224),
        default_layer="features.29",
        input_range=IMAGENET_INPUT_RANGE,
        description=f"torchvision vgg16, random weights (seed {int(seed)}, not pretrained)",
        extra={
            "source": "torchvision",
            "weights": "IMAGENET1K_V1",
            "weights_url": VGG16_WEIGHTS_URL,
            "weights_file": None,
            "pretrained": False,
            "seed": int(seed),
        },
    )
