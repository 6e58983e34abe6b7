"""What the zoo hands to the engine: a model with its preprocessing, labels and default layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

#: Turns an RGB uint8 array (H, W, 3) already resized to the model input size into a
#: float tensor (3, H, W) in the model's input space.
Preprocess = Callable[[np.ndarray], torch.Tensor]


@dataclass
class ModelSpec:
    """A classifier and everything needed to explain it.

    Attributes:
        name: zoo name (for example ``"efficientnet_lite0"``).
        model: the ``nn.Module``; the zoo builds it, so the engine may move it to its device.
        preprocess: RGB uint8 (H, W, 3) -> float tensor (3, H, W) in the model's input space.
        labels: one label per output class (1,000 ImageNet names for the zoo models).
        input_size: (height, width) the image is resized to before ``preprocess``.
        default_layer: the layer Grad-CAM uses when none is given (None: the last spatial layer).
        input_range: (low, high) of the preprocessed input for a 0..255 image: SmoothGrad noise
            is a fraction of ``high - low``.
        description: one line shown in listings.
    """

    name: str
    model: nn.Module
    preprocess: Preprocess
    labels: Sequence[str]
    input_size: tuple[int, int] = (224, 224)
    default_layer: str | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    description: str = ""
    extra: dict = field(default_factory=dict)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_rgb(rgb: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(rgb / 255 - mean) / std, channels first, from a new float32 copy (the caller's array,
    possibly read-only, is never written)."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1).div_(255.0)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def imagenet_preprocess(rgb: np.ndarray) -> torch.Tensor:
    """torchvision's ImageNet normalisation: (rgb / 255 - mean) / std, channels first."""
    return normalize_rgb(rgb, IMAGENET_MEAN, IMAGENET_STD)


#: Range of ``imagenet_preprocess`` outputs over 0..255 inputs (widest channel).
IMAGENET_INPUT_RANGE = (
    min((0.0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)),
    max((1.0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)),
)
