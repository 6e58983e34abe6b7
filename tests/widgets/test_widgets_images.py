"""Widgets take the user's own images (path, URL, array, PIL image), not only bundled names."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cam_widgets.data import sample_image
from cam_widgets.errors import InvalidImageError
from cam_widgets.widgets.shared.images import image_choice, image_choices, load_choice


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
    pixels = [sample_image(name)[::-1].copy() for name in ("chelsea", "coffee")]  # unseen yet
    for path, rgb in zip((first, second), pixels):
        path.parent.mkdir()
        Image.fromarray(rgb).save(path)
    one, two = image_choice(str(first)), image_choice(str(second))
    assert one == "yours:cat.png" and two == "yours:cat.png (2)"
    assert np.array_equal(load_choice(two), pixels[1])


def test_a_mistyped_name_says_what_images_there_are():
    with pytest.raises(
        InvalidImageError, match="Image not found: expected a bundled image.*Did you mean 'chelsea'"
    ):
        image_choice("chelsae")
    # names in any case, scenes with or without their prefix: the menu's choice
    assert image_choice("Chelsea ") == "chelsea"
    assert image_choice("two_class") == image_choice("Scene:Two_Class") == "scene:two_class"


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
    assert "Image not found: expected a bundled image" in explorer.status.line.value
    assert explorer._controls["image"].value == explorer.state.image  # kept as it was


def test_the_same_pixels_are_one_choice_however_they_come(tmp_path):
    from pathlib import Path

    rgb = sample_image("astronaut")[::4, ::4].copy()
    first = image_choice(rgb)
    assert image_choice(rgb.copy()) == first  # an equal array: the same entry
    assert image_choice(Image.fromarray(rgb)) == first  # and as a PIL image
    path = tmp_path / "astro.png"
    Image.fromarray(rgb).save(path)
    assert image_choice(Path(path)) == first  # a Path to the same pixels
    assert [value for _, value in image_choices()].count(first) == 1


def test_file_names_are_not_read_as_urls(tmp_path):
    from cam_widgets.widgets.shared.images import image_name

    assert image_name(str(tmp_path / "cat #2.png")) == "cat #2.png"
    assert image_name(tmp_path / "what?.png") == "what?.png"
    assert image_name("HTTPS://example.com/a/dog.jpg?x=1") == "dog.jpg"


def test_an_upload_computes_once(monkeypatch):
    import datetime
    import io

    from cam_widgets.widgets import Explorer

    explorer = Explorer(image="coffee")
    seen = []
    work = type(explorer)._compute
    monkeypatch.setattr(
        type(explorer),
        "_compute",
        lambda self, state, *args: seen.append(state.image) or work(self, state, *args),
    )
    png = io.BytesIO()
    Image.fromarray(sample_image("rocket")[::3, ::3].copy()).save(png, format="PNG")
    data = png.getvalue()
    explorer._controls["upload"].value = (
        {
            "name": "my rocket.png",
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime(2026, 1, 1),
        },
    )
    assert seen == ["yours:my rocket.png"]  # not "chelsea" (the menu's first) on the way
    assert explorer._controls["image"].value == "yours:my rocket.png"


def test_widgets_shown_already_offer_an_image_added_elsewhere():
    """In a Voila app nobody can make a new widget: the ones on the page must list it."""

    from cam_widgets.widgets import Compare, Explorer, LayerSweep

    explorer = Explorer(image="coffee")
    compare = Compare(image="chelsea", by="method", values=("gradcam",))
    sweep = LayerSweep(image="chelsea", max_panels=2)
    calls = (compare.engine_calls, sweep.engine_calls)
    key = image_choice(sample_image("motorcycle")[::4, ::4].copy())  # as an upload adds one
    for widget in (explorer, compare, sweep):
        menu = widget._controls["image"]
        assert key in [value for _, value in menu.options]
        assert menu.value == widget.state.image  # still showing what it showed
    assert (compare.engine_calls, sweep.engine_calls) == calls  # nothing recomputed
    assert explorer.state.image == "coffee"


def test_a_closed_widget_still_referenced_ignores_new_images():
    """close() drops a widget's controls; while the object lives on (a variable of a cell),
    an image added elsewhere must not reach its menu (it raised TypeError there)."""
    from cam_widgets.widgets import LayerSweep

    sweep = LayerSweep(image="chelsea", layers=("features.8",))
    sweep.close()
    assert sweep._controls is None
    key = image_choice(np.full((40, 50, 3), 7, np.uint8))  # announced to every widget
    assert key.startswith("yours:")
