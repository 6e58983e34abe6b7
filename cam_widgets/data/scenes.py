"""Composite scenes with ground-truth boxes, built offline from scikit-image's photos.

Each :class:`Scene` pastes real photo crops (Chelsea the cat's face, the espresso cup)
at fixed places on a flat mid-gray canvas, so the boxes are exact by construction.
They serve localization metrics (pointing game, energy-in-box) and multi-instance
demos. Everything is deterministic: no random numbers are used.

Box convention: ``(x0, y0, x1, y1)`` in pixels of ``Scene.image`` with ``x1`` and ``y1``
exclusive, so the box region is ``image[y0:y1, x0:x1]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from cam_widgets.data.samples import sample_image
from cam_widgets.errors import InvalidParameterError, close_matches, expected

__all__ = [
    "Box",
    "Scene",
    "BACKGROUND",
    "two_class_scene",
    "multi_instance_scene",
    "list_scenes",
    "get_scene",
]

#: Canvas color of every scene (flat mid-gray).
BACKGROUND: tuple[int, int, int] = (128, 128, 128)

# ImageNet classes of the pasted objects.
CAT_ID, CAT_NAME, CAT_ACCEPTED = 285, "Egyptian cat", (281, 282, 285)  # tabby, tiger cat, Egyptian cat
CUP_ID, CUP_NAME, CUP_ACCEPTED = 967, "espresso", (504, 967, 968)  # coffee mug, espresso, cup

# Crops (row slice, column slice) of the sample photos, chosen by eye so that the
# object fills the crop: Chelsea's face (360x300, both eyes, nose and ears) and the
# espresso cup with its saucer and spoon (420x390).
_CAT_CROP = (slice(0, 300), slice(30, 390))
_CUP_CROP = (slice(8, 398), slice(68, 488))


@dataclass(frozen=True)
class Box:
    """A ground-truth box: pixel corners (``x1``/``y1`` exclusive) and its class.

    ``accepted_ids`` lists the ImageNet classes a classifier may reasonably give for
    the object (for example tabby / tiger cat / Egyptian cat for the cat).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    class_id: int
    class_name: str
    accepted_ids: tuple[int, ...] = ()

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return self.width * self.height

    def mask(self, height: int, width: int) -> np.ndarray:
        """Boolean (height, width) mask that is True inside the box."""
        out = np.zeros((height, width), dtype=bool)
        out[self.y0 : self.y1, self.x0 : self.x1] = True
        return out


@dataclass
class Scene:
    """A composite image with ground-truth boxes.

    Attributes:
        name: registry name (see :func:`list_scenes`).
        image: ``uint8`` (H, W, 3) RGB.
        boxes: one :class:`Box` per object.
        description: one line shown in listings.
    """

    name: str
    image: np.ndarray
    boxes: list[Box] = field(default_factory=list)
    description: str = ""

    @property
    def class_ids(self) -> list[int]:
        """Distinct class ids of the boxes, in box order."""
        return list(dict.fromkeys(b.class_id for b in self.boxes))

    def boxes_for(self, class_id: int) -> list[Box]:
        """Boxes whose class (or accepted classes) include ``class_id``."""
        return [b for b in self.boxes if b.class_id == class_id or class_id in b.accepted_ids]

    def mask(self, class_id: int | None = None) -> np.ndarray:
        """Union of the box masks (of one class if ``class_id`` is given)."""
        h, w = self.image.shape[:2]
        out = np.zeros((h, w), dtype=bool)
        for b in self.boxes if class_id is None else self.boxes_for(class_id):
            out |= b.mask(h, w)
        return out


# --------------------------------------------------------------------------- helpers
@functools.cache
def _crop(which: str) -> np.ndarray:
    if which == "cat":
        arr = sample_image("chelsea")[_CAT_CROP]
    else:
        arr = sample_image("coffee")[_CUP_CROP]
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


def _canvas(height: int, width: int) -> np.ndarray:
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    return out


def _paste(canvas: np.ndarray, which: str, x0: int, y0: int, width: int) -> tuple[int, int, int, int]:
    """Paste the crop resized to ``width`` (aspect kept) at (x0, y0); return its box."""
    crop = _crop(which)
    height = int(round(width * crop.shape[0] / crop.shape[1]))
    small = np.asarray(Image.fromarray(crop).resize((width, height), resample=Image.BILINEAR))
    canvas[y0 : y0 + height, x0 : x0 + width] = small
    return (x0, y0, x0 + width, y0 + height)


def _cat_box(xyxy: Sequence[int]) -> Box:
    return Box(*xyxy, class_id=CAT_ID, class_name=CAT_NAME, accepted_ids=CAT_ACCEPTED)


def _cup_box(xyxy: Sequence[int]) -> Box:
    return Box(*xyxy, class_id=CUP_ID, class_name=CUP_NAME, accepted_ids=CUP_ACCEPTED)


# --------------------------------------------------------------------------- builders
def two_class_scene(wide: bool = False) -> Scene:
    """The cat (Chelsea's face) on the left and the espresso cup on the right.

    ``wide=False`` gives a 224x224 canvas (objects 108 px wide, what the models see
    without distortion); ``wide=True`` gives 448x224 (width x height), objects 216 px
    wide. Boxes: cat ``Egyptian cat`` (285), cup ``espresso`` (967).
    """
    if not isinstance(wide, (bool, np.bool_)):
        raise InvalidParameterError(expected("wide", "True or False", wide, "pass wide=True for 448x224"))
    if wide:
        canvas = _canvas(224, 448)
        cat = _paste(canvas, "cat", 4, 22, 216)
        cup = _paste(canvas, "cup", 228, 12, 216)
        name, size = "two_class_wide", "448x224"
    else:
        canvas = _canvas(224, 224)
        cat = _paste(canvas, "cat", 2, 67, 108)
        cup = _paste(canvas, "cup", 114, 62, 108)
        name, size = "two_class", "224x224"
    return Scene(
        name=name,
        image=canvas,
        boxes=[_cat_box(cat), _cup_box(cup)],
        description=f"cat (left, Egyptian cat 285) and espresso cup (right, espresso 967) on gray, {size}",
    )


# (x0, y0, width) of each cat face, largest first; heights follow the crop's 6:5 aspect.
_LAYOUTS: dict[int, list[tuple[int, int, int]]] = {
    1: [(40, 52, 144)],
    2: [(6, 14, 112), (130, 132, 84)],
    3: [(6, 8, 96), (130, 40, 80), (40, 150, 64)],
    4: [(8, 8, 96), (128, 16, 80), (16, 140, 72), (136, 136, 64)],
}


def multi_instance_scene(n: int = 3) -> Scene:
    """``n`` (1 to 4) copies of the cat's face at different scales on a 224x224 gray canvas.

    Every box is class ``Egyptian cat`` (285); the copies do not overlap.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or int(n) not in _LAYOUTS:
        raise InvalidParameterError(expected("n", f"an int from 1 to {max(_LAYOUTS)}", n, "pass e.g. n=3"))
    canvas = _canvas(224, 224)
    boxes = [_cat_box(_paste(canvas, "cat", x0, y0, w)) for x0, y0, w in _LAYOUTS[int(n)]]
    return Scene(
        name=f"multi_instance_{int(n)}",
        image=canvas,
        boxes=boxes,
        description=f"{int(n)} cat face{'s' if n > 1 else ''} (Egyptian cat 285) at different scales on gray, 224x224",
    )


_SCENES: dict[str, Callable[[], Scene]] = {
    "two_class": lambda: two_class_scene(wide=False),
    "two_class_wide": lambda: two_class_scene(wide=True),
    "multi_instance_2": lambda: multi_instance_scene(2),
    "multi_instance_3": lambda: multi_instance_scene(3),
}


def list_scenes() -> list[str]:
    """Names accepted by :func:`get_scene`."""
    return list(_SCENES)


def get_scene(name: str) -> Scene:
    """Build the scene called ``name`` (a fresh copy each call).

    Raises:
        InvalidParameterError: ``name`` is not one of :func:`list_scenes`.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _SCENES:
        hint = close_matches(key, list(_SCENES)) if key else ""
        if not hint:
            hint = "see list_scenes()"
        raise InvalidParameterError(
            expected("scene", f"one of {', '.join(_SCENES)}", name, hint, problem="Unknown scene")
        )
    return _SCENES[key]()
