"""LayerSweep: one class through the layers, from one backward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as W

from ...api import widget_model
from ...methods import get_method, list_methods
from ...models import DEFAULT_MODEL
from ...result import Explanation
from ..shared.controls import control_row
from ..shared.layer_menu import stage_layers
from ..shared.maps import colorbar_note, display_map, layer_resolution, overlay_fades
from .base import Study, StudyView


@dataclass(frozen=True)
class LayerSweepState:
    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    target: object = None
    method: str = "gradcam"
    layers: tuple | None = None
    max_panels: int = 8
    opacity: float = 0.5
    colormap: str = "viridis"


class LayerSweep(Study):
    """One class through several layers (default: each stage's output, up to ``max_panels``,
    ending at the default layer), all from one backward; titles give each map's resolution."""

    COMPUTE_CONTROLS = ("image", "model", "target", "method")
    IMPLIED = {"model": ("layers",)}
    PROGRESS_UNIT = "layers"

    def __init__(
        self,
        image: str = "chelsea",
        model: str = DEFAULT_MODEL,
        target=None,
        method: str = "gradcam",
        layers: Sequence[str] | None = None,
        max_panels: int = 8,
        background: bool | None = None,
    ) -> None:
        self.results: list[Explanation] = []
        self._yours: list = []  # your model's Explainer, held while this widget lives
        state = LayerSweepState(
            image,
            widget_model(model, self._yours),
            target,
            get_method(method).name,
            None if layers is None else tuple(layers),
            int(max_panels),
        )
        super().__init__(state, placeholders=len(layers) if layers else 1, background=background)

    def _build_controls(self) -> dict:
        s, c = self.state, self._common_controls()
        c["method"] = W.Dropdown(
            options=[(m.title, m.name) for m in list_methods() if m.needs_layer],
            value=s.method,
            description="method",
        )
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox(
            [
                control_row(c["image"], c["model"], c["method"], c["target"]),
                control_row(c["opacity"], c["colormap"]),
            ]
        )

    def _normalize(self, changes: dict) -> dict:
        if "model" in changes and "layers" not in changes:
            changes["layers"] = None  # another model's layers: back to its stages
        if changes.get("layers") is not None:
            changes["layers"] = tuple(changes["layers"])
        return changes

    def _compute(self, s: LayerSweepState, report):
        explainer, prepared, target = self._prepare(s, s.model)
        self.engine_calls += 1
        names = list(s.layers) if s.layers else stage_layers(explainer, None, s.max_panels)
        results = explainer.explain_layers(prepared, target, s.method, names, progress=report)
        r, needs = results[0], get_method(s.method).needs
        how = (
            ""
            if "extra_forwards" in needs  # Score-CAM: masked forwards at each layer
            else ", from one backward"
            if "gradients" in needs
            else ", from one forward"
        )
        line = f"{get_method(r.method).title}: {r.label} ({r.class_id}) through {len(results)} layers{how}"
        titles = [f"{x.layer}  {layer_resolution(explainer, x.layer)}" for x in results]
        unseen = self._unseen(explainer, prepared, r)

        def finish() -> None:
            self.results = results
            self._say(line, [unseen])

        return s, StudyView(
            prepared.rgb,
            [display_map(x, panels=len(results)) for x in results],
            titles,
            colorbar_note(results),
            explainer,
            finish,
            shown=r,
            fades=overlay_fades(results),
        )
