"""LayerSweep: one class through the layers, from one backward."""

from __future__ import annotations

from collections.abc import Sequence

from ...api import widget_model
from ...methods import get_method
from ...models import DEFAULT_MODEL
from ...result import Explanation
from .controls import layer_sweep_controls
from .state import LayerSweepState
from .widget import Study
from .work import LayerSweepOutcome, LayerSweepWork


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
        self._work = LayerSweepWork()
        self._yours: list = []  # your model's Explainer, held while this widget lives
        state = LayerSweepState(
            image,
            widget_model(model, self._yours),
            target,
            get_method(method).name,
            None if layers is None else tuple(layers),
            int(max_panels),
        )
        placeholders = len(layers) if layers else 1
        super().__init__(state, layer_sweep_controls, placeholders=placeholders, background=background)

    @property
    def engine_calls(self) -> int:
        """Sweeps that reached the engine so far (display changes make none)."""
        return self._work.calls

    def _normalize(self, changes: dict) -> dict:
        if "model" in changes and "layers" not in changes:
            changes["layers"] = None  # another model's layers: back to its stages
        if changes.get("layers") is not None:
            changes["layers"] = tuple(changes["layers"])
        return changes

    def _compute(self, s: LayerSweepState, report):
        return self._work.run(s, report)

    def _finish(self, outcome: LayerSweepOutcome) -> None:
        self.results = outcome.results
