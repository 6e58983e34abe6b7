"""What a :class:`~cam_widgets.widgets.compare.Compare` is set to, without any widget.

:class:`CompareState` (one frozen value per setting), the dimensions a comparison can vary,
the default compared values of each, :func:`parse_values` for the typed list of values and
:func:`check_state`, the checks made before any engine call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..api import get_explainer
from ..errors import InvalidParameterError, close_matches
from ..models import DEFAULT_MODEL

#: What a comparison can vary; the other dimensions are fixed by their controls.
DIMENSIONS = ("class", "method", "layer", "model")
#: State fields whose change only re-renders (no engine call).
DISPLAY = ("shared_scale", "opacity", "colormap")
DEFAULT_VALUES = {"class": (242, 282), "method": ("gradcam", "gradcam++", "layercam"),
                  "model": (DEFAULT_MODEL, "vgg16")}


@dataclass(frozen=True)
class CompareState:
    """Everything Compare shows; ``values`` are the compared values of dimension ``by``."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    by: str = "class"
    values: tuple = DEFAULT_VALUES["class"]
    method: str = "gradcam"
    target: object = None
    layer: Optional[str] = None
    shared_scale: bool = False
    opacity: float = 0.5
    colormap: str = "viridis"


def parse_values(text: str) -> tuple:
    """``"242, tiger cat"`` -> ``(242, "tiger cat")``: comma-separated, integers kept as ints."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    return tuple(int(t) if t.isdigit() else t for t in items)


def default_values(by: str, model: str) -> tuple:
    """The values compared when none are given: fixed lists, except layers, which depend on
    the model (its stage outputs, at most four)."""
    if by == "layer":
        from .study_base import stage_layers  # a widget module: only when layers are compared

        return tuple(stage_layers(get_explainer(model), max_panels=4))
    return DEFAULT_VALUES.get(by, ())


def check_state(s: CompareState) -> None:
    """Raise InvalidParameterError (one line) for an unknown ``by`` or no compared values."""
    if s.by not in DIMENSIONS:
        raise InvalidParameterError(
            f"'by' must be one of {', '.join(DIMENSIONS)} (got {s.by!r})."
            + close_matches(str(s.by), DIMENSIONS))
    if not s.values:
        raise InvalidParameterError(f"'values' must list at least one {s.by} (got none).")
