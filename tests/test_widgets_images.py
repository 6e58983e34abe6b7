"""Widgets take the user's own images (path, URL, array, PIL image), not only bundled names."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cam_widgets.data import sample_image
from cam_widgets.errors import InvalidParameterError
from cam_widgets.widgets.images import image_choice, image_choices, load_choice


def test_a_file_becomes_a_choice_every_widget_offers(tmp_path):
    path = tmp_path / "my dog.png"
    photo = sample_image("coffee")
    Image.fromarray(photo).save(path)
    key = image_choice(str(path))
    assert key == "yours:my dog.png" and ("yours: my dog.png", key) in image_choices()
    assert np.array_equal(load_choice(key), photo)
    assert image_choice(str(path)) == key  # the same image: no second entry
    assert image_choice("chelsea") == "chelsea"  # bundled names as they are


def test_another_image_of_the_same_name_is_kept_apart(tmp_path):
    first, second = tmp_path / "a" / "cat.png", tmp_path / "b" / "cat.png"
    for path, name in ((first, "chelsea"), (second, "coffee")):
        path.parent.mkdir()
        Image.fromarray(sample_image(name)).save(path)
    one, two = image_choice(str(first)), image_choice(str(second))
    assert one != two and two.endswith("(2)")
    assert np.array_equal(load_choice(two), sample_image("coffee"))


def test_a_mistyped_name_says_what_images_there_are():
    with pytest.raises(InvalidParameterError, match="neither a bundled image.*'chelsea'"):
        image_choice("chelsae")


def test_explorer_and_compare_explain_an_array():
    from cam_widgets.widgets import Compare, Explorer

    rgb = sample_image("coffee")[::2, ::2].copy()
    explorer = Explorer(image=rgb)
    assert "cw-error" not in explorer.status.line.value
    key = explorer.state.image
    assert key.startswith("yours:image") and explorer._controls["image"].value == key
    assert np.array_equal(explorer.result.image, explorer.explainer.prepare(rgb).rgb)
    compare = Compare(image=key, by="class")  # the other widget offers it by its name
    assert compare.results and "cw-error" not in compare.status.line.value
    explorer.set(image=sample_image("chelsea"))  # and set() takes one too
    assert explorer.state.image != key and explorer._controls["image"].value == explorer.state.image
    explorer.set(image="chelsae")
    assert "neither a bundled image" in explorer.status.line.value
    assert explorer._controls["image"].value == explorer.state.image  # kept as it was
