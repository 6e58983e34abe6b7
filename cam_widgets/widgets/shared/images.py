"""The images every widget offers: bundled photos, composite scenes, and the user's own.

A user's image (a path, a URL, an array, a PIL image, an upload) is loaded once and kept for
the kernel's life under "yours: <name>": every widget's image menu offers it from then on
(widgets shown already too: they follow the list, see :func:`follow_user_images`).
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ...data import list_samples, list_scenes, load_image
from ...data.named import bundled_image, bundled_name, load_named

#: Dropdown values of the user's images start with this.
USER_PREFIX = "yours:"
_USER_IMAGES: dict[str, np.ndarray] = {}
_BY_CONTENT: dict[str, str] = {}  # digest of the pixels -> choice (one entry per image)
_FOLLOWERS: list[weakref.WeakMethod] = []  # image menus' refresh methods (see follow_user_images)


def follow_user_images(refresh: Callable[[], None]) -> None:
    """Call ``refresh`` (a widget's bound method) whenever a user image is added, so that its
    menu offers it. Held weakly: following does not by itself keep a widget alive."""
    _FOLLOWERS.append(weakref.WeakMethod(refresh))


def _announce() -> None:
    for ref in list(_FOLLOWERS):
        refresh = ref()
        if refresh is None:
            _FOLLOWERS.remove(ref)
        else:
            refresh()


def image_choices() -> list[tuple[str, str]]:
    """Dropdown options: bundled photos, composite scenes, then the user's images."""
    return (
        [(name, name) for name in list_samples()]
        + [(f"scene: {name}", f"scene:{name}") for name in list_scenes()]
        + [(f"yours: {key[len(USER_PREFIX) :]}", key) for key in _USER_IMAGES]
    )


def load_choice(choice: str) -> np.ndarray:
    """RGB array of a dropdown choice."""
    if choice.startswith(USER_PREFIX):
        return _USER_IMAGES[choice]
    return bundled_image(choice)


def add_user_image(name: str, rgb: np.ndarray) -> str:
    """Offer ``rgb`` under ``name``; its choice. The same pixels again keep their first
    choice (one entry, one prepared photo); other pixels under a taken name get "name (2)"."""
    digest = hashlib.blake2b(
        np.ascontiguousarray(rgb).tobytes(), digest_size=16, person=str(rgb.shape).encode()[:16]
    ).hexdigest()
    if digest in _BY_CONTENT:
        return _BY_CONTENT[digest]
    key, n = f"{USER_PREFIX}{name}", 1
    while key in _USER_IMAGES:
        n += 1
        key = f"{USER_PREFIX}{name} ({n})"
    _USER_IMAGES[key], _BY_CONTENT[digest] = rgb, key
    _announce()
    return key


def image_choice(image: Any) -> str:
    """The choice of an image given to a widget: a choice's name as it is (a bundled one in
    any case, a scene with or without "scene:"); a path, URL, array or PIL image loaded (its
    errors are load_image's) and added to the user's images."""
    if not isinstance(image, str):
        return add_user_image(image_name(image), load_image(image))
    if image in [value for _, value in image_choices()]:
        return image
    return bundled_name(image) or add_user_image(image_name(image), load_named(image))


def image_name(image: Any) -> str:
    """What the menu calls an image: a file's or URL's base name; "image N" otherwise."""
    if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
        return os.path.basename(urlparse(image).path) or urlparse(image).netloc
    if isinstance(image, (str, os.PathLike)):
        return os.path.basename(os.fspath(image)) or os.fspath(image)
    return f"image {len(_USER_IMAGES) + 1}"


def offer_all(dropdown) -> None:
    """``dropdown`` (an image menu) lists every image, still showing what it showed. Call it
    where its observers are quiet: new options reset it to the first image first."""
    shown = dropdown.value
    dropdown.options = image_choices()
    dropdown.value = shown


class ImageMenu:
    """A widget's image menu, kept listing every user image, those any widget adds later
    too. The widget holds it (the registry only weakly); ``quiet()`` is the widget's context
    in which its observers ignore control changes: new options must compute nothing."""

    def __init__(self, dropdown, quiet: Callable[[], ContextManager]) -> None:
        self.dropdown, self._quiet = dropdown, quiet
        follow_user_images(self.refresh)

    def refresh(self) -> None:
        if getattr(self.dropdown, "comm", None) is None:  # closed with its widget
            return
        with self._quiet():
            offer_all(self.dropdown)


def show_choice(dropdown, choice: str) -> None:
    """``dropdown`` (an image menu) shows ``choice``, offering the user's newest images.
    Call it where the dropdown's observers are quiet: new options reset its value first."""
    if choice not in [value for _, value in dropdown.options]:
        dropdown.options = image_choices()
    dropdown.value = choice
