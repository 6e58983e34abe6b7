"""The controls of a :class:`~cam_widgets.widgets.compare.Compare`, laid out, and the menus
that follow its model and maps; building and filling widgets only (Compare wires them).
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W

from ...api import get_explainer
from ...methods import list_methods
from ...render import list_colormaps
from ...result import Explanation
from ..shared.controls import class_options, control_row, model_choices, target_text
from ..shared.images import image_choices
from ..shared.layer_menu import layer_menu, layer_options
from .state import DIMENSIONS, CompareState
from .view import MIXED_UNITS, mixed_families


def build_controls(s: CompareState) -> dict:
    """Every control by name, showing ``s`` (the layer and class menus: see fill_menus)."""
    return {
        "image": W.Dropdown(options=image_choices(), value=s.image, description="image"),
        "model": W.Dropdown(options=model_choices(), value=s.model, description="model"),
        "by": W.Dropdown(options=list(DIMENSIONS), value=s.by, description="compare"),
        "values": W.Text(
            description="values", continuous_update=False, layout=W.Layout(width="420px")
        ),  # four method titles
        "method": W.Dropdown(
            options=[(m.title, m.name) for m in list_methods()], value=s.method, description="method"
        ),
        "target": W.Combobox(
            placeholder="top class; or boxer, 282, A vs B",
            description="class",
            ensure_option=False,
            continuous_update=False,
        ),
        "layer": W.Dropdown(description="layer"),
        "shared_scale": W.ToggleButtons(
            options=[("per panel", False), ("shared scale", True)], value=s.shared_scale
        ),
        "opacity": W.FloatSlider(value=s.opacity, min=0, max=1, step=0.05, description="opacity"),
        "colormap": W.Dropdown(options=list_colormaps(), value=s.colormap, description="colormap"),
    }


def compare_layout(c: dict) -> W.Widget:
    """What is compared, the fixed dimensions, then the display settings."""
    return W.VBox(
        [
            control_row(c["image"], c["by"], c["values"]),
            control_row(c["model"], c["method"], c["target"], c["layer"]),
            control_row(c["shared_scale"], c["opacity"], c["colormap"]),
        ]
    )


def class_text(s: CompareState) -> str:
    """The class box: "282 tiger cat" (as its menu and the Explorer's), "A vs B" for a
    contrast, "" for the top class."""
    if s.target is None or isinstance(s.target, str):
        return "" if s.target is None else s.target
    labels = get_explainer(s.values[0] if s.by == "model" and s.values else s.model).labels
    return target_text(s.target, labels)


def fill_menus(c: dict, model: str, layer: str | None, classes: bool) -> None:
    """The layer menu (the model's blocks, as the Explorer's, and ``layer``) and, when
    ``classes``, the class options of ``model``."""
    explainer = get_explainer(model)
    shown = layer_menu(explainer.layers(), explainer.default_layer, layer, everything=False)
    c["layer"].options = [(f"default ({explainer.default_layer})", "")] + layer_options(shown)
    if classes:
        c["target"].options = class_options(explainer.labels)


def show_scale(toggle: W.ToggleButtons, shared: bool, results: Sequence[Explanation]) -> None:
    """The scale in use: per panel, and the toggle disabled, while the panels mix units."""
    mixed = mixed_families(results)
    toggle.value = shared and not mixed
    toggle.disabled = mixed
    toggle.tooltip = MIXED_UNITS if mixed else ""
    toggle.tooltips = [toggle.tooltip] * len(toggle.options)
