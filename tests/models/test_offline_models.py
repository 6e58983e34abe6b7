"""The three offline EfficientNet-Lites across the package: zoo, widgets' menus and defaults."""

from __future__ import annotations

import numpy as np

from cam_widgets.models import list_models

# (their weight wheels are install_requires: a missing one is a failure here, not a skip)
LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def test_the_zoo_lists_three_offline_models_and_their_menus_say_so():
    from cam_widgets.widgets.shared.controls import model_choices

    assert set(LITES) <= set(list_models())
    choices = dict((value, label) for label, value in model_choices())
    assert all(choices[name] == name for name in LITES)  # not "(weights not here)"


def test_explorer_switches_to_a_model_with_another_input_size():
    from cam_widgets.widgets.explorer.widget import Explorer

    explorer = Explorer(image="chelsea")
    result = explorer.set(model="efficientnet_lite2")
    assert "cw-error" not in explorer.status.line.value, explorer.status.line.value
    assert result.heatmap.shape == (260, 260) and result.raw.shape == (9, 9)
    assert result.class_id == 285 and explorer._prepared().rgb.shape[:2] == (260, 260)
    assert explorer._controls["layer"].value == "features.8"
    assert np.asarray(explorer.panels.heatmap(0).z).shape == (9, 9)


def test_compare_by_model_defaults_to_the_models_on_this_machine():
    from cam_widgets.widgets.compare.widget import Compare

    widget = Compare(image="chelsea", by="model")
    assert "cw-error" not in widget.status.line.value, widget.status.line.value
    assert widget.state.values == LITES
    assert [r.raw.shape for r in widget.results] == [(7, 7), (8, 8), (9, 9)]
    assert len({r.class_id for r in widget.results}) == 1  # one class in every panel
