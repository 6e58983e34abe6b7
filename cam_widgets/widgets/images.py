"""The images every widget offers: bundled photos, composite scenes, and the user's own.

A user's image (a path, a URL, an array, a PIL image, an upload) is loaded once and offered
from then on by every widget of the kernel, under "yours: <name>".
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..data import get_scene, list_samples, list_scenes, load_image, sample_image
from ..errors import InvalidParameterError, close_matches

#: Dropdown values of the user's images start with this.
USER_PREFIX = "yours:"
_USER_IMAGES: dict[str, np.ndarray] = {}


def image_choices() -> list[tuple[str, str]]:
    """Dropdown options: bundled photos, composite scenes, then the user's images."""
    return [(name, name) for name in list_samples()] + \
        [(f"scene: {name}", f"scene:{name}") for name in list_scenes()] + \
        [(f"yours: {key[len(USER_PREFIX):]}", key) for key in _USER_IMAGES]


def load_choice(choice: str) -> np.ndarray:
    """RGB array of a dropdown choice."""
    if choice.startswith(USER_PREFIX):
        return _USER_IMAGES[choice]
    if choice.startswith("scene:"):
        return get_scene(choice[len("scene:"):]).image
    return sample_image(choice)


def add_user_image(name: str, rgb: np.ndarray) -> str:
    """Offer ``rgb`` under ``name`` (another image of that name gets "name (2)"); its choice."""
    key, n = f"{USER_PREFIX}{name}", 1
    while key in _USER_IMAGES and not np.array_equal(_USER_IMAGES[key], rgb):
        n += 1
        key = f"{USER_PREFIX}{name} ({n})"
    _USER_IMAGES[key] = rgb
    return key


def image_choice(image: Any) -> str:
    """The choice of an image given to a widget: a choice's name as it is; a path, URL, array
    or PIL image loaded (its errors are load_image's) and added to the user's images."""
    if isinstance(image, str):
        choices = [value for _, value in image_choices()]
        if image in choices:
            return image
        if not (os.path.exists(image) or image.startswith(("http://", "https://"))):
            raise InvalidParameterError(
                f"image {image!r} is neither a bundled image ({', '.join(choices)}) nor a file "
                f"or URL" + close_matches(image, choices))
        name = os.path.basename(urlparse(image).path) or image
    else:
        name = f"image {len(_USER_IMAGES) + 1}"
    return add_user_image(name, load_image(image))


def show_choice(dropdown, choice: str) -> None:
    """``dropdown`` (an image menu) shows ``choice``, offering the user's newest images."""
    if choice not in [value for _, value in dropdown.options]:
        dropdown.options = image_choices()
    dropdown.value = choice
