"""What a :class:`~cam_widgets.widgets.compare.Compare` is set to, without any widget.

:class:`CompareState` (one frozen value per setting), the dimensions a comparison can vary,
the default compared values of each, :func:`parse_values` for the typed list of values,
:func:`values_text` for showing them, and :func:`resolve_state`, the checks and defaults
applied before any engine call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...api import get_explainer
from ...errors import InvalidParameterError, Received, UnknownMethodError, close_matches, expected
from ...methods import get_method, list_methods
from ...models import DEFAULT_MODEL, list_models, resolve_target, weights_on_disk
from ..shared.layer_menu import stage_layers

#: What a comparison can vary; the other dimensions are fixed by their controls.
DIMENSIONS = ("class", "method", "layer", "model")
#: State fields whose change only re-renders (no engine call).
DISPLAY = ("shared_scale", "opacity", "colormap")
#: Fixed defaults; classes default to the image's top predictions, layers to the model's stages.
DEFAULT_VALUES = {
    "method": ("gradcam", "gradcam++", "layercam"),
    "model": (DEFAULT_MODEL, "vgg16"),
}  # models: those with weights here first
#: How many classes are compared when none are given.
DEFAULT_CLASSES = 2
#: What the values box suggests for each dimension (left empty: the defaults).
PLACEHOLDERS = {
    "class": "top 2 classes; or 242, tiger cat",
    "method": "Grad-CAM, Layer-CAM...",
    "layer": "the stages; or features.3, features.8",
    "model": "efficientnet_lite0, efficientnet_lite2, vgg16",
}


@dataclass(frozen=True)
class CompareState:
    """Everything Compare shows; ``values`` are the compared values of dimension ``by``;
    ``auto_values``: they are the defaults of ``by`` for this image and model, so they follow
    a new image or model (values given by the user are kept)."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    by: str = "class"
    values: tuple = ()
    method: str = "gradcam"
    target: object = None
    layer: str | None = None
    shared_scale: bool = False
    opacity: float = 0.5
    colormap: str = "viridis"
    auto_values: bool = True


def parse_values(text: str) -> tuple:
    """``"242, tiger cat"`` -> ``(242, "tiger cat")``: comma-separated, integers kept as ints."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    return tuple(int(t) if t.isdigit() else t for t in items)


def values_text(s: CompareState) -> str:
    """The values as the values box shows them: methods by their display titles."""
    if s.by == "method":
        return ", ".join(get_method(v).title for v in s.values)
    return ", ".join(str(v) for v in s.values)


def method_name(value) -> str:
    """A method's registry name from its name or display title, any case (see
    ``get_method``); the one-line error lists the titles, as the values box shows them."""
    try:
        return get_method(str(value).strip()).name
    except UnknownMethodError:
        specs = list_methods()
        raise UnknownMethodError(
            f"'values' has no method {value!r}; expected method titles or names (any case): "
            f"{', '.join(m.title for m in specs)}."
            + close_matches(str(value), [m.title for m in specs] + [m.name for m in specs])
        ) from None


def default_values(by: str, model: str, image: str) -> tuple:
    """The values compared when none are given: the image's top predicted classes, the
    model's stage outputs (at most four), the zoo models whose weights are on this machine
    (up to three; offline, the EfficientNet-Lites) or a fixed list."""
    if by == "class":
        from ..shared.images import load_choice  # a widget module: only when classes are compared

        top = get_explainer(model).predict(load_choice(image), top=DEFAULT_CLASSES)
        return tuple(p.class_id for p in top)
    if by == "layer":
        return tuple(stage_layers(get_explainer(model), max_panels=4))
    if by == "model":
        here = [name for name in list_models() if weights_on_disk(name)][:3]
        return tuple(here) if len(here) > 1 else DEFAULT_VALUES["model"]
    return DEFAULT_VALUES.get(by, ())


def check_by(by) -> None:
    """One-line InvalidParameterError unless ``by`` is one of DIMENSIONS."""
    if by not in DIMENSIONS:
        raise InvalidParameterError(
            expected("by", f"one of {', '.join(DIMENSIONS)}", by, close_matches(str(by), DIMENSIONS))
        )


def resolve_state(s: CompareState) -> CompareState:
    """``s`` ready for the engine: defaults filled in when ``auto_values``, methods by their
    registry names, the class (or contrast) as ids of the model's labels (by model: the
    first model's), resolved once. Raises a one-line error for an unknown ``by``, no
    compared values or an unknown class."""
    check_by(s.by)
    values = default_values(s.by, s.model, s.image) if s.auto_values else tuple(s.values)
    if s.by == "method":
        values = tuple(method_name(v) for v in values)
    if not values:
        raise InvalidParameterError(expected("values", f"at least one {s.by}", Received("none")))
    labels = get_explainer(values[0] if s.by == "model" else s.model).labels
    return replace(s, values=values, target=resolve_target(s.target, labels))
