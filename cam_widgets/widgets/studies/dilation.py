"""DilationStudy: a model and its dilated twin (article 000): predictions, resolution, cost."""

from __future__ import annotations

import math

import ipywidgets as W

from ...api import widget_model
from ...models import DEFAULT_MODEL
from ...result import Explanation
from .controls import dilation_controls, fill_layer_menu
from .state import BASES, DilationState
from .widget import Study
from .work import DilationOutcome, DilationWork, finer_layer

__all__ = ["BASES", "DilationStudy", "finer_layer"]


class DilationStudy(Study):
    """A model and its dilated twin: top-5 of both, Grad-CAM map resolution, forward cost.

    The default base is the offline model (EfficientNet-Lite0, whose weights come with the
    package), so ``DilationStudy()`` works with no network. ``base="vgg16"`` (the article's,
    when its weights are here) uses the zoo's ``dilated_vgg16``; other models are dilated with
    :func:`~cam_widgets.models.dilate.dilate` after the layer whose resolution is 4x that of
    ``layer`` (the twin's map is 4x finer: for EfficientNet-Lite0's ``features.8``, dilated
    after ``features.3``, 28x28 instead of 7x7). ``.results`` holds both Explanations,
    ``.timings`` the forward cost of each in ms.
    """

    COMPUTE_CONTROLS = ("image", "base", "target", "layer")
    IMPLIED = {"base": ("layer",)}
    PROGRESS_UNIT = "steps"

    def __init__(
        self,
        image: str = "chelsea",
        base: str = DEFAULT_MODEL,
        target=None,
        layer: str | None = None,
        background: bool | None = None,
    ) -> None:
        self.results: list[Explanation] = []
        self.timings: tuple[float, float] = (math.nan, math.nan)
        self.table = W.HTML(value="")
        self._work = DilationWork()
        self._yours: list = []  # your model's Explainer, held while this widget lives
        state = DilationState(image, widget_model(base, self._yours), target, layer)
        super().__init__(state, dilation_controls, placeholders=2, background=background)

    @property
    def engine_calls(self) -> int:
        """Comparisons that reached the engine so far (display changes make none)."""
        return self._work.calls

    def _extra(self) -> list:
        return [self.table]

    def _normalize(self, changes: dict) -> dict:
        if "base" in changes and "layer" not in changes:
            changes["layer"] = None
        return changes

    def _compute(self, s: DilationState, report):
        return self._work.run(s, report)

    def _finish(self, outcome: DilationOutcome) -> None:
        self.results, self.timings, self.table.value = outcome.results, outcome.timings, outcome.table
        with self._requests.quiet():
            fill_layer_menu(self._controls["layer"], outcome.view.explainer, self.state.layer)
