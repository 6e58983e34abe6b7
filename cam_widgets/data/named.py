"""Images named by a string: a bundled photo ("chelsea"), a composite scene ("scene:two_class",
or just "two_class"), any case; otherwise a file path or URL, with an error that lists the
bundled names when it is none of them."""

from __future__ import annotations

import os

import numpy as np

from cam_widgets.data.images import load_image
from cam_widgets.data.samples import list_samples, sample_image
from cam_widgets.data.scenes import get_scene, list_scenes
from cam_widgets.errors import InvalidImageError, close_matches, expected

SCENE_PREFIX = "scene:"


def bundled_names() -> list[str]:
    """Every bundled image's name: the photos, then the scenes ("scene:two_class")."""
    return list_samples() + [SCENE_PREFIX + name for name in list_scenes()]


def bundled_name(text: str) -> str | None:
    """The name of the bundled image ``text`` names (any case, a scene with or without
    "scene:"), or None."""
    key = text.strip().lower()
    if key in list_samples():
        return key
    scene = key[len(SCENE_PREFIX) :].strip() if key.startswith(SCENE_PREFIX) else key
    return SCENE_PREFIX + scene if scene in list_scenes() else None


def bundled_image(name: str) -> np.ndarray:
    """The RGB array of a name :func:`bundled_name` returned."""
    if name.startswith(SCENE_PREFIX):
        return get_scene(name[len(SCENE_PREFIX) :]).image
    return sample_image(name)


def load_named(text: str) -> np.ndarray:
    """A bundled image by name, else the file or URL ``text`` (see ``load_image``). A bare
    word that names none of these ("chelsee") gets an error naming the bundled images and the
    closest ones; a path keeps load_image's (which names the files beside it)."""
    name = bundled_name(text)
    if name is not None:
        return bundled_image(name)
    bare = text.strip() and not any(sep in text for sep in ("/", "\\", ".")) and not os.path.exists(text)
    if bare:
        names = bundled_names()
        hint = close_matches(text.strip().lower(), names + list_scenes())
        raise InvalidImageError(
            expected(
                "image",
                f"a bundled image ({', '.join(names)}) or a file in {os.getcwd()!r}",
                text,
                hint or "give a file's path or a URL",
                problem="Image not found",
            )
        )
    return load_image(text)
