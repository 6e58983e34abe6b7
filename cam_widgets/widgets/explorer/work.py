"""The engine part of an :class:`~cam_widgets.widgets.explorer.Explorer` request, without any
widget: it may run in a worker thread (:mod:`..shared.requests`) while the kernel's loop reads
the browser's messages, so it reads the state it is given and returns that state resolved,
writing nothing the widget owns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from ...api import get_explainer
from ...models import resolve_target
from ...result import Explanation
from ..shared.controls import precisions_for
from .state import TOP_PREDICTIONS, ExplorerState, explain_params, photo_of


@dataclass(frozen=True)
class Outcome:
    """What the engine work of one request gives the widget to show (``result`` None: the
    state asked for nothing new of the engine)."""

    explainer: Any
    prepared: Any = None
    result: Explanation | None = None
    predictions: Any = None


def fit_state_to_model(state: ExplorerState, explainer) -> ExplorerState:
    """``state`` with a layer or precision the model cannot take set to its default."""
    changes: dict = {}
    if state.layer not in {info.name for info in explainer.layers()}:
        changes["layer"] = explainer.default_layer
    if state.precision not in {value for _, value in precisions_for(explainer.device)}:
        changes["precision"] = "fp32"
    return replace(state, **changes) if changes else state


def resolved(state: ExplorerState, explainer) -> ExplorerState:
    """``state`` fitted to the model, its class (a name, "282 tiger cat"...) or contrast
    resolved once, to the ids every later step uses."""
    state = fit_state_to_model(state, explainer)
    if state.target is None:
        return state
    return replace(state, target=resolve_target(state.target, explainer.labels))


class ExplorerWork:
    """Runs requests' engine work one at a time (a cell's ``set()`` may meet a browser
    request's worker), keeping the prepared photo while model and image stay."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0  # explanations computed (tests check that display changes make none)
        self._prepared_key: tuple | None = None
        self._prepared = None

    def run(self, state: ExplorerState, progress) -> tuple[ExplorerState, Outcome]:
        """(``state`` resolved, the model, prepared photo, explanation and top predictions)."""
        with self.lock:
            explainer = get_explainer(state.model)
            state = resolved(state, explainer)
            self.calls += 1
            prepared = self._prepare(state, explainer)
            result = explainer.explain(
                prepared, state.method, state.target, state.layer, **explain_params(state, progress)
            )
            predictions = explainer.predict(prepared, top=TOP_PREDICTIONS)
            return state, Outcome(explainer, prepared, result, predictions)

    def _prepare(self, state: ExplorerState, explainer):
        key = (explainer.spec.name, state.image)  # the model that prepares it, not the state's
        if self._prepared_key != key:
            self._prepared = explainer.prepare(photo_of(state))
            self._prepared_key = key
        return self._prepared
