"""Model zoo and data about models: builders, preprocessing, labels."""

from .labels import imagenet_labels, resolve_class, search_classes
from .spec import ModelSpec, imagenet_preprocess
from .zoo import DEFAULT_MODEL, list_models, load_model, weights_on_disk

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "imagenet_labels",
    "imagenet_preprocess",
    "list_models",
    "weights_on_disk",
    "load_model",
    "resolve_class",
    "search_classes",
]
