"""Small controls and control values shared by the widgets: a row of controls, the model
menu, the class box's text as a class or an "A vs B" contrast and back, the first view's
colormap and opacity, precisions."""

from __future__ import annotations

import ipywidgets as W
import torch

from ...api import your_models
from ...errors import InvalidParameterError
from ...methods.smoothgrad import PRECISIONS, autocast_dtype
from ...models import Contrast, list_models, weights_on_disk
from ...render.colormaps import resolve_colormap
from ...render.overlay import check_opacity


def class_options(labels) -> list[str]:
    """A class box's menu: every class as :func:`target_text` writes it, "282 tiger cat"."""
    return [target_text(class_id, labels) for class_id in range(len(labels))]


def target_text(target, labels) -> str:
    """The class box's text for ``target``: "282 tiger cat" (as the class menus write it),
    "282 tiger cat vs 285 Egyptian cat", a name as typed, "" for the top class."""
    if target is None:
        return ""
    if isinstance(target, Contrast):
        return f"{target_text(target.a, labels)} vs {target_text(target.b, labels)}"
    if isinstance(target, int) and 0 <= target < len(labels):
        return f"{target} {labels[target]}"
    return str(target)


def model_choices() -> list[tuple[str, str]]:
    """Dropdown options of the zoo; a model whose weights are not on this machine says so
    (picking it downloads them when online, or explains how to provide them)."""
    return [
        (name if weights_on_disk(name) else f"{name} (weights not here)", name) for name in list_models()
    ] + [(name, name) for name in your_models()]


def control_row(*controls: W.Widget) -> W.HBox:
    """A row of controls that wraps instead of overflowing narrow outputs (JupyterLab)."""
    return W.HBox(list(controls), layout=W.Layout(flex_flow="row wrap"))


def first_view(colormap: str, opacity) -> tuple[str, float]:
    """A widget's first colormap and opacity, checked: given to the constructor, since Voila
    drops figure edits made before the widget is drawn."""
    return resolve_colormap(colormap), check_opacity(opacity)


def precisions_for(device) -> list[tuple[str, str]]:
    """SmoothGrad precisions a device offers, as dropdown options (SmoothGrad's own rule)."""
    device = torch.device(getattr(device, "type", device))
    options = []
    for precision in PRECISIONS:
        try:
            mixed = autocast_dtype(precision, device) is not None
        except InvalidParameterError:  # fp16 off CUDA
            continue
        options.append((f"{precision} (mixed)" if mixed else precision, precision))
    return options
