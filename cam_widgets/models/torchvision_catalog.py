"""Which torchvision classifiers exist, which weights each uses, and the articles' choices.

Name checking (case-insensitive, with close matches on a typo), the weights-enum member a
model is built with (``IMAGENET1K_V1`` for the article models, ``DEFAULT`` otherwise) and its
download URL, plus the articles' models and Grad-CAM layers. Used by
:mod:`cam_widgets.models.torchvision_zoo`, which re-exports the public names.
"""

from __future__ import annotations

import torchvision

from ..errors import InvalidParameterError, UnknownModelError, close_matches, describe

#: The articles' models and the weights they use.
ARTICLE_MODELS = {"vgg16": "IMAGENET1K_V1", "alexnet": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V1"}

#: The articles' Grad-CAM layers, as torchvision module names.
#: vgg16: ``features.29`` is the ReLU after conv5_3 (``features.28``); torchvision's ReLU is
#: ``inplace=True`` so features.28's output tensor is overwritten by it: use features.29.
#: alexnet: ``features.11`` is the ReLU after conv5 (``features.10``).
#: resnet50: ``layer4`` is the output of the last bottleneck (res5c, after its final ReLU).
ARTICLE_LAYERS = {"vgg16": "features.29", "alexnet": "features.11", "resnet50": "layer4"}


def available_models() -> list[str]:
    """Every torchvision classifier name this zoo can build (sorted)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def canonical_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(
            f"Model name is not a non-empty string: expected a torchvision classifier name such as "
            f"'vgg16', received {describe(name)}."
        )
    key = name.strip().lower().replace("-", "_")
    models = available_models()
    if key not in models:
        hint = close_matches(key, models) or " See torchvision.models.list_models(module=torchvision.models)."
        raise UnknownModelError(
            f"Unknown model name: expected one of the {len(models)} torchvision classifiers "
            f"(e.g. 'vgg16', 'alexnet', 'resnet50'), received {name!r}.{hint}"
        )
    return key


def weights_enum(name: str, weights_name: str | None = None):
    """The torchvision WeightsEnum member used for ``name`` (article models: IMAGENET1K_V1)."""
    enum = torchvision.models.get_model_weights(name)
    if weights_name is None:
        weights_name = ARTICLE_MODELS.get(name)
    if weights_name is None:
        return enum.DEFAULT
    try:
        return enum[weights_name]
    except KeyError:
        choices = [m.name for m in enum]
        raise InvalidParameterError(
            f"Unknown weights for {name}: expected one of {choices}, received {weights_name!r}."
            f"{close_matches(weights_name, choices)}"
        ) from None


def weights_url(name: str, weights_name: str | None = None) -> str:
    """Download URL of the weights ``build_torchvision(name)`` uses."""
    return weights_enum(canonical_name(name), weights_name).url
