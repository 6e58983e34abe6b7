"""What building a torchvision classifier from a weights file needs to know about its architecture.

The constructor arguments torchvision passes when it builds with weights, the key renames old
checkpoints need (densenet), the fix-ups after loading (googlenet's aux heads), a strict load
that skips the random initialisation, and the preprocessing matching the weights'
normalisation. Used by :func:`cam_widgets.models.torchvision_zoo.build_torchvision`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from .spec import IMAGENET_INPUT_RANGE, IMAGENET_MEAN, IMAGENET_STD, imagenet_preprocess, normalize_rgb


def arch_kwargs(name: str, weights, pretrained: bool) -> dict[str, Any]:
    """The constructor arguments torchvision's builder uses when it is given ``weights``."""
    kwargs: dict[str, Any] = {"num_classes": len(weights.meta["categories"])}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(transform_input=True, aux_logits=True, init_weights=not pretrained)
    elif name.startswith("vit_"):
        kwargs["image_size"] = weights.meta["min_size"][0]
    elif name == "maxvit_t":
        kwargs["input_size"] = weights.meta["min_size"]
    return kwargs


def fix_keys(name: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames torchvision applies to old checkpoints (densenet's 'norm.1' -> 'norm1')."""
    if not name.startswith("densenet"):
        return state_dict

    pattern = re.compile(
        r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
    )
    fixed = {}
    for key, value in state_dict.items():
        res = pattern.match(key)
        fixed[res.group(1) + res.group(2) if res else key] = value
    return fixed


def load_into_new_model(name: str, kwargs: dict, state_dict: dict) -> nn.Module:
    """Build ``name`` and load ``state_dict`` strictly (RuntimeError on mismatch).

    The model is built on the meta device and the loaded tensors are assigned to it, which
    skips the random initialisation (about 1.5 s for VGG16 on CPU); floating tensors are cast to
    the model's dtype. Falls back to a regular build when something stays on the meta device
    (a non-persistent buffer).
    """
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    expected = {k: v for k, v in model.state_dict().items()}
    state_dict = {
        k: (
            v.to(expected[k].dtype)
            if k in expected
            and v.is_floating_point()
            and expected[k].is_floating_point()
            and v.dtype != expected[k].dtype
            else v
        )
        for k, v in state_dict.items()
    }
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
        model.load_state_dict(state_dict, strict=True)
    return model


def after_load(name: str, model: nn.Module) -> None:
    if name == "googlenet":  # as torchvision does by default: drop the untrained aux heads
        model.aux_logits = False
        model.aux1 = None
        model.aux2 = None


def preprocess_for(mean: Sequence[float], std: Sequence[float]) -> tuple[Callable, tuple[float, float]]:
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if np.allclose(mean, IMAGENET_MEAN) and np.allclose(std, IMAGENET_STD):
        return imagenet_preprocess, IMAGENET_INPUT_RANGE

    def preprocess(rgb: np.ndarray) -> torch.Tensor:
        return normalize_rgb(rgb, mean, std)

    low = min((0.0 - m) / s for m, s in zip(mean, std))
    high = max((1.0 - m) / s for m, s in zip(mean, std))
    return preprocess, (low, high)
