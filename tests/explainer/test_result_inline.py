"""An Explanation shows itself in a notebook: a picture at the end of a cell, a short repr."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cam_widgets import Explainer
from conftest import TinyNet, tiny_input


def test_an_explanation_is_a_png_and_a_one_line_repr(lite_explainer):
    result = lite_explainer.explain("chelsea", "gradcam", 285)
    text = repr(result)
    assert "\n" not in text and len(text) < 200 and "Egyptian cat (285)" in text
    picture = np.asarray(Image.open(io.BytesIO(result._repr_png_())).convert("RGB"))
    assert np.array_equal(picture, result.annotated())


def test_show_displays_the_picture(lite_explainer, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    result = lite_explainer.explain("coffee", "vanilla")
    result.show()
    assert shown == [result]


def test_a_flat_map_says_so_in_its_repr():
    explainer = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"))
    result = explainer.explain(tiny_input() * 0, "gradcam", 1, "relu")
    assert result.flagged and f"[{result.status.message}]" in repr(result)
