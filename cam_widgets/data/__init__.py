"""Image loading, bundled sample photos and composite scenes with ground-truth boxes."""

from cam_widgets.data.images import MAX_DECODED_SIDE, MAX_FILE_PIXELS, MIN_SIDE, load_image, resize_for_model
from cam_widgets.data.samples import article_photo, list_samples, sample_descriptions, sample_image
from cam_widgets.data.scenes import (
    BACKGROUND,
    Box,
    Scene,
    get_scene,
    list_scenes,
    multi_instance_scene,
    two_class_scene,
)

__all__ = [
    "article_photo",
    "load_image",
    "resize_for_model",
    "list_samples",
    "sample_image",
    "sample_descriptions",
    "MIN_SIDE",
    "MAX_FILE_PIXELS",
    "MAX_DECODED_SIDE",
    "Box",
    "Scene",
    "BACKGROUND",
    "two_class_scene",
    "multi_instance_scene",
    "list_scenes",
    "get_scene",
]
