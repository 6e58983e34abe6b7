"""The engine part of an :class:`~cam_widgets.widgets.explorer.Explorer` request, without any
widget: it may run in a worker thread (:mod:`..shared.requests`) while the kernel's loop reads the
browser's messages, so it touches the state and the engine only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ...api import get_explainer
from ...models import resolve_class
from ...result import Explanation
from ..shared.controls import precisions_for
from .state import COMPUTE, SMOOTHGRAD_ONLY, TOP_PREDICTIONS, ExplorerState, explain_params, photo_of


@dataclass
class Outcome:
    """What the engine work of one request gives the widget to show."""

    explainer: Any
    prepared: Any = None
    result: Explanation | None = None
    predictions: Any = None


def fit_state_to_model(state: ExplorerState, explainer) -> None:
    """A layer or precision the model cannot take falls back to its default."""
    if state.layer not in {info.name for info in explainer.layers()}:
        state.layer = explainer.default_layer
    if state.precision not in {value for _, value in precisions_for(explainer.device)}:
        state.precision = "fp32"


class ExplorerWork:
    """Runs requests' engine work one at a time (a cell's ``set()`` may meet a browser
    request's worker), keeping the prepared photo while model and image stay."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0  # explanations computed (tests check that display changes make none)
        self._prepared_key: tuple | None = None
        self._prepared = None

    def run(self, state: ExplorerState, explainer, changes: dict, progress) -> Outcome:
        """The model, the class, the prepared photo, the explanation and the top predictions
        for ``state`` after ``changes`` (``explainer``: the model on show)."""
        with self.lock:
            if "model" in changes:
                explainer = get_explainer(state.model)
                fit_state_to_model(state, explainer)
            if state.target is not None:
                state.target = resolve_class(state.target, explainer.labels)
            if not any(key in COMPUTE and (state.smooth or key not in SMOOTHGRAD_ONLY) for key in changes):
                return Outcome(explainer)
            self.calls += 1
            prepared = self._prepare(state, explainer)
            result = explainer.explain(
                prepared, state.method, state.target, state.layer, **explain_params(state, progress)
            )
            return Outcome(explainer, prepared, result, explainer.predict(prepared, top=TOP_PREDICTIONS))

    def _prepare(self, state: ExplorerState, explainer):
        key = (explainer.spec.name, state.image)  # the model that prepares it, not the state's
        if self._prepared_key != key:
            self._prepared = explainer.prepare(photo_of(state))
            self._prepared_key = key
        return self._prepared
