"""The engine part of a :class:`~.widget.Compare` request, without any widget: the
explanations of every panel for one :class:`~.state.CompareState` (batched per compared
dimension), and which panels' classes their model does not see. It may run in a worker thread."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ...api import get_explainer
from ...errors import InvalidParameterError, Received, expected
from ...methods import get_method
from ...methods.context import Progress
from ...result import Explanation
from ..shared.images import load_choice
from ..shared.maps import (
    layer_resolution,
    top_classes,
    unseen_note,
)
from .state import CompareState, resolve_state


class ComparePanels(NamedTuple):
    """What one request computed: each panel's result, title and (explainer, prepared
    image), the photo shown, each panel's note of a class its model does not see (or ""),
    and the seconds it took."""

    results: list
    rgb: np.ndarray
    titles: list
    sources: list
    unseen: list
    seconds: float


class CompareWork:
    """Compare's engine work; ``calls`` counts the requests that reached the engine (display
    changes make none)."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, state: CompareState, progress: Progress = None) -> tuple[CompareState, ComparePanels]:
        """(``state`` resolved, its panels): see :func:`compute_panels`."""
        started = time.perf_counter()
        state = resolve_state(state)  # a bad setting is not an engine call (defaults may predict)
        self.calls += 1
        results, rgb, titles, sources = compute_panels(state, progress)
        unseen = unseen_notes(results, sources)
        return state, ComparePanels(results, rgb, titles, sources, unseen, time.perf_counter() - started)


def compute_panels(
    s: CompareState, progress: Progress = None
) -> tuple[list[Explanation], np.ndarray, list[str], list]:
    """(results, photo shown, panel titles, (explainer, prepared image) of each panel) for
    a state from :func:`~.state.resolve_state`; ``progress(fraction, 1.0)`` is
    told how far the slow methods (Score-CAM, Integrated Gradients) have gone."""
    rgb = load_choice(s.image)
    if s.by == "model":
        return _compute_models(s, rgb, progress)
    explainer = get_explainer(s.model)
    prepared = explainer.prepare(rgb)
    target = s.target  # ids (resolve_state)
    if s.by == "class":
        results = explainer.explain_classes(
            prepared, list(s.values), s.method, s.layer, **_progress_of(s.method, progress, 0, 1)
        )
        titles = [f"{r.label} ({r.class_id}) p={r.probability:.3f}" for r in results]
    elif s.by == "method":
        results = [
            explainer.explain(
                prepared,
                m,
                target,
                s.layer if get_method(m).needs_layer else None,
                **_progress_of(m, progress, k, len(s.values)),
            )
            for k, m in enumerate(s.values)
        ]
        titles = [get_method(r.method).title for r in results]
    else:
        if not get_method(s.method).needs_layer:
            raise InvalidParameterError(
                expected(
                    "method",
                    "a layer method such as 'gradcam' to compare layers",
                    Received(f"{s.method!r}, which works on the input"),
                )
            )
        results = explainer.explain_layers(prepared, target, s.method, list(s.values))
        titles = [f"{r.layer}  {layer_resolution(explainer, r.layer)}" for r in results]
    return results, prepared.rgb, titles, [(explainer, prepared)] * len(results)


def unseen_notes(results: Sequence[Explanation], sources: Sequence) -> list[str]:
    """Per panel, the note of a chosen class its model does not see
    (:func:`..shared.maps.unseen_note`: p < 1% and not in the model's top 5), or ""."""
    tops: dict = {}
    notes = []
    for result, (explainer, prepared) in zip(results, sources):
        key = (id(explainer), id(prepared))
        if key not in tops:  # (one forward per model, cached by the engine)
            tops[key] = top_classes(explainer, prepared)
        notes.append(unseen_note(result, tops[key]))
    return notes


def _progress_of(method: str, progress: Progress, panel: int, panels: int) -> dict:
    """The ``progress`` argument of panel ``panel`` of ``panels``, for the slow methods only:
    its own progress as a fraction of the whole comparison."""
    if progress is None or "extra_forwards" not in get_method(method).needs:
        return {}
    return {"progress": lambda done, total: progress((panel + done / max(total, 1)) / panels, 1.0)}


def _compute_models(s: CompareState, rgb: np.ndarray, progress: Progress):
    results, photo, sources = [], None, []
    class_id = s.target  # ids of the first model's labels (resolve_state)
    for k, name in enumerate(s.values):
        explainer = get_explainer(name)
        prepared = explainer.prepare(rgb)  # each model's own input size
        sources.append((explainer, prepared))
        photo = prepared.rgb if photo is None else photo
        result = explainer.explain(
            prepared, s.method, class_id, s.layer, **_progress_of(s.method, progress, k, len(s.values))
        )
        # the first model's class for every later one: all panels show one class
        class_id = result.class_id if class_id is None else class_id
        results.append(result)
    titles = [f"{name}: {r.label} p={r.probability:.3f}" for name, r in zip(s.values, results)]
    return results, photo, titles, sources
