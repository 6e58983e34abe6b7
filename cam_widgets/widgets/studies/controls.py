"""The studies' controls: each study's set, their layout, and how they show a state."""

from __future__ import annotations

import ipywidgets as W

from ...explainer import Explainer
from ...methods import list_methods
from ...render import list_colormaps
from ..shared.controls import class_options, control_row, model_choices, target_text
from ..shared.images import image_choices, show_choice
from ..shared.layer_menu import layer_menu, layer_options
from .state import BASES, DilationState, LayerSweepState, SmoothGradState

CLASS_PLACEHOLDER = "top class; or boxer, 282..."


def common_controls(state, models: bool = True) -> dict:
    """Image, model (``models``), class, opacity and colormap, showing ``state``."""
    c = {"image": W.Dropdown(options=image_choices(), value=state.image, description="image")}
    if models:
        c["model"] = W.Dropdown(options=model_choices(), value=state.model, description="model")
    c["target"] = W.Combobox(
        placeholder=CLASS_PLACEHOLDER, description="class", ensure_option=False, continuous_update=False
    )
    c["opacity"] = W.FloatSlider(value=state.opacity, min=0, max=1, step=0.05, description="opacity")
    c["colormap"] = W.Dropdown(options=list_colormaps(), value=state.colormap, description="colormap")
    return c


def smoothgrad_controls(s: SmoothGradState) -> tuple[dict, W.Widget]:
    """(controls, their layout): the method, noise and sample count too."""
    c = common_controls(s)
    c["method"] = W.Dropdown(
        options=[(m.title, m.name) for m in list_methods()], value=s.method, description="method"
    )
    c["noise"] = W.FloatSlider(
        value=s.noise, min=0.0, max=0.5, step=0.01, description="noise", continuous_update=False
    )
    c["samples"] = W.IntSlider(
        value=s.samples, min=1, max=max(100, s.samples), description="samples", continuous_update=False
    )
    return c, W.VBox(
        [
            control_row(c["image"], c["model"], c["method"], c["target"]),
            control_row(c["noise"], c["samples"], c["opacity"], c["colormap"]),
        ]
    )


def layer_sweep_controls(s: LayerSweepState) -> tuple[dict, W.Widget]:
    """(controls, their layout): the layer methods too."""
    c = common_controls(s)
    c["method"] = W.Dropdown(
        options=[(m.title, m.name) for m in list_methods() if m.needs_layer],
        value=s.method,
        description="method",
    )
    return c, W.VBox(
        [
            control_row(c["image"], c["model"], c["method"], c["target"]),
            control_row(c["opacity"], c["colormap"]),
        ]
    )


def dilation_controls(s: DilationState) -> tuple[dict, W.Widget]:
    """(controls, their layout): the base models (those without weights here say so) and
    the layer mapped, in place of the model menu."""
    c = common_controls(s, models=False)
    labels = {name: label for label, name in model_choices()}  # "(weights not here)"
    c["base"] = W.Dropdown(
        options=[(labels.get(name, name), name) for name in dict.fromkeys((s.base,) + BASES)],
        value=s.base,
        description="model",
    )
    c["layer"] = W.Dropdown(options=[("default", "")], value="", description="layer")
    return c, W.VBox(
        [
            control_row(c["image"], c["base"], c["layer"], c["target"]),
            control_row(c["opacity"], c["colormap"]),
        ]
    )


def show_state(controls: dict, state, labels, keep_text: bool = False) -> None:
    """Controls show ``state`` (write them quietly); ``keep_text``: a typed class stays
    beside its error; the class box names a resolved class by id and name, with ``labels``."""
    for name, control in controls.items():
        value = getattr(state, name)
        if name == "image":
            show_choice(control, value)
            continue
        if name == "target":
            if keep_text:
                continue
            value = target_text(value, labels or ())
        elif name == "layer":
            value = value or ""
        if (name != "layer" or value in [o[1] for o in control.options]) and control.value != value:
            control.value = value


def show_class_choices(controls: dict, explainer: Explainer, target, shown) -> None:
    """The class box offers ``explainer``'s classes; its placeholder names the top class
    (``shown``, a result of it) while none is chosen."""
    box = controls["target"]
    options = class_options(explainer.labels)
    if box.options != tuple(options):
        box.options = options
    box.placeholder = (
        CLASS_PLACEHOLDER if target is not None else f"top class: {shown.class_id} {shown.label}"
    )


def fill_layer_menu(control: W.Dropdown, base: Explainer, layer: str | None) -> None:
    """The base model's blocks (and ``layer`` when set deeper), after "default"; write
    quietly."""
    menu = layer_menu(base.layers(), base.default_layer, layer or None, False)
    options = [("default", "")] + layer_options(menu)
    if list(control.options) != options:
        control.options = options
