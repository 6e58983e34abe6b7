"""Model zoo and data about models: builders, preprocessing, labels."""

from .labels import imagenet_labels, resolve_class, search_classes
from .spec import ModelSpec, imagenet_preprocess
from .targets import Contrast, parse_target, resolve_target
from .zoo import DEFAULT_MODEL, list_models, load_model, weights_on_disk

__all__ = [
    "Contrast",
    "DEFAULT_MODEL",
    "ModelSpec",
    "imagenet_labels",
    "imagenet_preprocess",
    "list_models",
    "weights_on_disk",
    "load_model",
    "parse_target",
    "resolve_class",
    "resolve_target",
    "search_classes",
]
