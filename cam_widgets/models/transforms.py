"""A preprocessing that takes the whole photo as a PIL image and sizes the input itself:
torchvision's transforms (v1 and v2, every ``Weights.transforms()``) or any callable
PIL image -> tensor, as researchers bring them from torchvision, pytorch-grad-cam or captum.

The package's own preprocessings take an RGB array already resized to the model input; a
transform gets the photo as decoded and resizes and crops it its own way, so the map is
drawn over :meth:`ImageTransform.seen_image`: what the model saw, after resize and crop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidParameterError, Received, expected

#: The photo a transform is tried on when the Explainer is built: 320x256, no two rows or
#: columns alike (a flip or a shifted crop changes it).
_rows, _cols = np.indices((256, 320))
_PROBE = np.stack([_rows % 251, _cols % 241, (_rows * 7 + _cols * 3) % 239], axis=-1).astype(np.uint8)


def is_torchvision_transform(fn: Any) -> bool:
    module = type(fn).__module__ or ""
    return module.startswith("torchvision.transforms")


class ImageTransform:
    """``transform(PIL image) -> (3, H, W) float tensor``, wrapped for the engine: called on an
    RGB uint8 array, it hands the transform a PIL image. Its ``input_size`` is what it makes
    of a photo, ``input_range`` and ``seen_image`` come from the normalisation it ends with
    (torchvision's ``Normalize`` or ``mean`` / ``std`` attributes; none found: the tensor is
    taken to be the image in 0..1)."""

    def __init__(self, transform: Callable) -> None:
        if not callable(transform):
            raise InvalidParameterError(expected("preprocess", "a callable taking an image", transform))
        self.transform = transform
        self.mean, self.std = find_normalization(transform)
        first, *others = [self._seeded(seed) for seed in range(3)]
        if any(o.shape != first.shape or not torch.equal(o, first) for o in others):
            raise InvalidParameterError(
                expected(
                    "preprocess",
                    "the same tensor each time for the same image",
                    Received("a different tensor each time (a random crop, flip or jitter)"),
                    "an explanation would be of another image every call; "
                    "pass the evaluation transforms (e.g. Weights.transforms())",
                )
            )
        #: whether it resizes or crops (its output size is its own): else the Explainer's
        #: input_size applies and the photo is resized to it first
        self.sizes_itself = tuple(first.shape[-2:]) != _PROBE.shape[:2]
        self.input_size = tuple(first.shape[-2:])

    def _seeded(self, seed: int) -> torch.Tensor:
        """The probe through the transform with torch's and Python's generators seeded
        (and put back after): seeds that differ show a random transform every time."""
        state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random.seed(seed)
                return self(_PROBE)
        finally:
            random.setstate(state)

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb))
        try:
            out = self.transform(image)
        except Exception as error:  # the user's callable: say what it was given
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise InvalidParameterError(
                f"'preprocess' failed on a {image.width}x{image.height} RGB PIL image: {first}"
            ) from error
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[0] == 1:
            out = out[0]
        if (
            not isinstance(out, torch.Tensor)
            or out.dim() != 3
            or out.shape[0] != 3
            or not out.is_floating_point()
        ):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
            raise InvalidParameterError(
                expected(
                    "preprocess",
                    "an image turned into a float tensor (3, H, W)",
                    out if shape is None else Received(f"a {out.dtype} tensor of shape {shape}"),
                    "end a torchvision pipeline with ToTensor() and Normalize(...)",
                )
            )
        return out.float()

    @property
    def input_range(self) -> tuple[float, float]:
        """(low, high) of the tensor for a 0..255 image, over the channels."""
        low = min((0.0 - m) / s for m, s in zip(self.mean, self.std))
        high = max((1.0 - m) / s for m, s in zip(self.mean, self.std))
        return (low, high)

    def seen_image(self, tensor: torch.Tensor) -> np.ndarray:
        """The RGB uint8 (H, W, 3) image the model saw: the tensor with its normalisation undone."""
        x = tensor.detach().float().cpu().reshape(3, *tensor.shape[-2:])
        x = x * torch.tensor(self.std).view(3, 1, 1) + torch.tensor(self.mean).view(3, 1, 1)
        return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy().copy()


def find_normalization(transform: Any) -> tuple[Sequence[float], Sequence[float]]:
    """(mean, std) of the last normalisation in ``transform`` (a torchvision preset, a
    Compose, a Sequential, a Normalize), or (0, 1) when it has none."""
    found: tuple | None = None
    for step in _steps(transform):
        mean, std = getattr(step, "mean", None), getattr(step, "std", None)
        if mean is not None and std is not None:
            mean = [float(v) for v in np.broadcast_to(np.asarray(mean, dtype=float), (3,))]
            std = [float(v) for v in np.broadcast_to(np.asarray(std, dtype=float), (3,))]
            found = (mean, std)
    return found or ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])


def _steps(transform: Any):
    yield transform
    inner = getattr(transform, "transforms", None)
    if inner is None and isinstance(transform, torch.nn.Sequential):
        inner = list(transform)
    for step in inner or ():
        yield from _steps(step)


def adapt_preprocess(preprocess: Callable, input_size: tuple[int, int]) -> Callable:
    """``preprocess`` as the engine calls it: torchvision transforms (and any nn.Module) are
    wrapped as an :class:`ImageTransform`; another callable is first tried, as the package's
    own are, on an RGB array of the input size, and wrapped when it only takes PIL images."""
    if isinstance(preprocess, ImageTransform):
        return preprocess
    if is_torchvision_transform(preprocess) or isinstance(preprocess, torch.nn.Module):
        return ImageTransform(preprocess)
    if not callable(preprocess):
        raise InvalidParameterError(expected("preprocess", "a callable taking an image", preprocess))
    try:
        out = preprocess(np.zeros(tuple(input_size) + (3,), dtype=np.uint8))
    except (TypeError, AttributeError, ValueError):  # a callable written for PIL images
        return ImageTransform(preprocess)
    if isinstance(out, torch.Tensor):
        return preprocess
    return ImageTransform(preprocess)  # (it gave no tensor for an array: try it on PIL)


def weights_metadata(weights: Any) -> tuple[Callable, list[str]]:
    """(preprocessing, labels) from a torchvision weights member (``ResNet18_Weights.DEFAULT``),
    through its public API: ``transforms()`` and ``meta["categories"]``."""
    meta = getattr(weights, "meta", None)
    if not callable(getattr(weights, "transforms", None)) or not isinstance(meta, dict):
        raise InvalidParameterError(
            expected(
                "weights", "a torchvision weights member such as ResNet18_Weights.IMAGENET1K_V1", weights
            )
        )
    categories = meta.get("categories")
    if not categories:
        raise InvalidParameterError(
            expected(
                "weights",
                "weights whose meta['categories'] lists the class names",
                Received(f"{weights}, with no categories"),
                "pass labels=[...]",
            )
        )
    return ImageTransform(weights.transforms()), list(categories)
