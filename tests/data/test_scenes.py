"""Composite scenes: deterministic images, boxes inside the image on real objects."""

import numpy as np
import pytest

from cam_widgets.data import (
    BACKGROUND,
    Box,
    Scene,
    get_scene,
    list_scenes,
    multi_instance_scene,
    two_class_scene,
)
from cam_widgets.errors import InvalidParameterError
from cam_widgets.models.labels import imagenet_labels

LABELS = imagenet_labels()
ALL = [get_scene(name) for name in list_scenes()] + [multi_instance_scene(n) for n in (1, 4)]


def test_list_scenes():
    names = list_scenes()
    assert {"two_class", "two_class_wide", "multi_instance_2", "multi_instance_3"} <= set(names)
    for name in names:
        scene = get_scene(name)
        assert isinstance(scene, Scene) and scene.name == name and scene.description


@pytest.mark.parametrize("scene", ALL, ids=lambda s: s.name)
def test_image_and_boxes(scene):
    img = scene.image
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    h, w = img.shape[:2]
    assert scene.boxes
    bg = np.array(BACKGROUND, dtype=float)
    covered = np.zeros((h, w), bool)
    for box in scene.boxes:
        assert isinstance(box, Box)
        assert 0 <= box.x0 < box.x1 <= w and 0 <= box.y0 < box.y1 <= h
        assert box.area >= 32 * 32
        assert LABELS[box.class_id] == box.class_name
        assert box.class_id in box.accepted_ids
        region = img[box.y0 : box.y1, box.x0 : box.x1].astype(float)
        # the box holds a photo, not the flat background ...
        assert np.abs(region - bg).mean() > 25
        assert region.std() > 20
        m = box.mask(h, w)
        assert not (covered & m).any()  # boxes do not overlap
        covered |= m
    # the boxes are tight: everything outside them is the background
    assert (img[~covered] == np.array(BACKGROUND, np.uint8)).all()
    assert np.array_equal(scene.mask(), covered)


def test_two_class_labels():
    for scene in (two_class_scene(), two_class_scene(wide=True)):
        assert [b.class_id for b in scene.boxes] == [285, 967]
        assert scene.class_ids == [285, 967]
        assert len(scene.boxes_for(285)) == 1 and len(scene.boxes_for(968)) == 1  # 'cup' accepted
        cat, cup = scene.boxes
        assert cat.x1 <= cup.x0  # cat left, cup right
    assert two_class_scene().image.shape == (224, 224, 3)
    assert two_class_scene(wide=True).image.shape == (224, 448, 3)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_multi_instance(n):
    scene = multi_instance_scene(n)
    assert scene.image.shape == (224, 224, 3)
    assert len(scene.boxes) == n
    assert all(b.class_id == 285 and b.class_name == "Egyptian cat" for b in scene.boxes)
    assert len({b.area for b in scene.boxes}) == n  # different scales
    assert scene.mask(285).sum() == sum(b.area for b in scene.boxes)


def test_deterministic_and_fresh():
    a, b = get_scene("multi_instance_3"), get_scene("multi_instance_3")
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes
    a.image[:] = 0
    assert get_scene("multi_instance_3").image.max() > 0


def test_errors():
    with pytest.raises(InvalidParameterError) as info:
        get_scene("two_clas")
    msg = str(info.value)
    assert "Unknown scene" in msg and "'two_class'" in msg and "expected" in msg and "received" in msg
    with pytest.raises(InvalidParameterError, match="Unknown scene"):
        get_scene(None)
    for bad in (0, 5, 2.0, True, "3"):
        with pytest.raises(InvalidParameterError, match="Invalid n"):
            multi_instance_scene(bad)
    with pytest.raises(InvalidParameterError, match="Invalid wide"):
        two_class_scene(wide="yes")
