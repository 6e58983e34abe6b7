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
from ...errors import InvalidParameterError, expected
from ...methods.smoothgrad import Smoothing
from ...models import resolve_target
from ...result import Explanation
from ..shared.controls import precisions_for
from .state import TOP_PREDICTIONS, ExplorerState, explain_params, photo_of


@dataclass(frozen=True)
class Outcome:
    """What the engine work of one request gives the widget to show."""

    explainer: Any
    prepared: Any
    result: Explanation
    predictions: Any


def fit_state_to_model(state: ExplorerState, explainer) -> ExplorerState:
    """``state`` on a model just picked: a layer or precision that model cannot take set to
    its default (a layer of the same name is kept: efficientnet_lite0 -> lite1)."""
    changes: dict = {}
    if state.layer not in {info.name for info in explainer.layers()}:
        changes["layer"] = explainer.default_layer
    if state.precision not in {value for _, value in precisions_for(explainer.device)}:
        changes["precision"] = "fp32"
    return replace(state, **changes) if changes else state


def checked(state: ExplorerState, explainer) -> ExplorerState:
    """``state`` on the model it already had: a layer or precision it cannot take is a
    one-line error (with close matches), never silently another one; no layer: the default."""
    layer = explainer.layer_info(state.layer).name  # None: the default layer
    if state.smooth:
        check_precision(state.precision, explainer.device)
    return replace(state, layer=layer) if layer != state.layer else state


def resolved(state: ExplorerState, explainer, new_model: bool) -> ExplorerState:
    """``state`` fitted to a model just picked (``new_model``) or checked against the one it
    had, its class (a name, "282 tiger cat"...) or contrast resolved once, to the ids every
    later step uses."""
    state = fit_state_to_model(state, explainer) if new_model else checked(state, explainer)
    if state.target is None:
        return state
    return replace(state, target=resolve_target(state.target, explainer.labels))


def check_precision(precision: str, device) -> None:
    """A one-line error unless ``device`` offers SmoothGrad ``precision`` (fp16: CUDA only)."""
    offered = [value for _, value in precisions_for(device)]
    if precision not in offered:
        raise InvalidParameterError(
            expected("precision", f"one of {', '.join(offered)} on {device}", precision)
        )


def smoothing_kept(state: ExplorerState, changes: dict, device) -> ExplorerState:
    """``state`` with SmoothGrad's settings ``changes``, made while SmoothGrad is off: checked
    now (SmoothGrad's own rules, the precisions ``device`` offers), kept for when it is on."""
    new = replace(state, **changes)
    Smoothing(noise=new.noise, samples=new.samples, precision=new.precision)
    check_precision(new.precision, device)
    return new


class ExplorerWork:
    """Runs requests' engine work one at a time (a cell's ``set()`` may meet a browser
    request's worker), keeping the prepared photo while model and image stay."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0  # explanations computed (tests check that display changes make none)
        self._prepared_key: tuple | None = None
        self._prepared = None
        self._model: str | None = None  # the model of the last run (a new one is fitted to)

    def run(self, state: ExplorerState, progress) -> tuple[ExplorerState, Outcome]:
        """(``state`` resolved, the model, prepared photo, explanation and top predictions)."""
        with self.lock:
            explainer = get_explainer(state.model)
            state = resolved(state, explainer, new_model=state.model != self._model)
            self.calls += 1
            prepared = self._prepare(state, explainer)
            result = explainer.explain(
                prepared, state.method, state.target, state.layer, **explain_params(state, progress)
            )
            predictions = explainer.predict(prepared, top=TOP_PREDICTIONS)
            self._model = state.model
            return state, Outcome(explainer, prepared, result, predictions)

    def _prepare(self, state: ExplorerState, explainer):
        key = (explainer.spec.name, state.image)  # the model that prepares it, not the state's
        if self._prepared_key != key:
            self._prepared = explainer.prepare(photo_of(state))
            self._prepared_key = key
        return self._prepared
