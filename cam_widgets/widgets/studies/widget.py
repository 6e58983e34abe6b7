"""The studies' shared widget: a frozen state, controls, one figure of panels, ``set()``.

Each study (:mod:`.smoothgrad`, :mod:`.layer_sweep`, :mod:`.dilation`) is a :class:`Study`
with its own state (:mod:`.state`), controls (:mod:`.controls`) and engine work
(:mod:`.work`); the figure and the status line are drawn here from what the work returns
(:class:`~.view.StudyView`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import ipywidgets as W
import numpy as np

from ..shared.images import ImageMenu, image_choice
from ..shared.lifecycle import close_widget, replace_in_cell
from ..shared.maps import with_notes
from ..shared.state_requests import AGAIN, StateRequests
from ..shared.status import busy
from .controls import show_class_choices, show_state
from .state import DISPLAY
from .view import StudyPanels, StudyView


class Study(W.VBox):
    """Shared plumbing: state <-> controls, set(), busy/status, one figure of panels.

    A study gives its controls and layout, its engine work (``_compute(state, report)`` ->
    ``(state, outcome)``, with ``outcome.view`` a :class:`~.view.StudyView`; it may run in
    a worker thread, so it touches no widget) and ``_finish(outcome)``, its own updates
    (results, tables, menus) made on the loop's thread with the new maps.
    """

    COMPUTE_CONTROLS: tuple = ()
    RESULT = "results"  # the attribute set() returns
    PROGRESS_UNIT = ""  # what the engine work's progress reports count
    #: a newer change of a key voids older replaced changes of its dependents (_normalize's)
    IMPLIED: dict = {}

    def __init__(
        self, state, controls: Callable[[Any], tuple], placeholders: int, background: bool | None = None
    ) -> None:
        """``controls(state)`` -> (controls by state field, their layout); ``placeholders``:
        the count of empty panels shown when the first computation fails."""
        self.state = replace(state, image=image_choice(state.image))  # a path, URL, array too
        self._requests = StateRequests(
            self,
            background,
            implied=self.IMPLIED,
            display=lambda state: DISPLAY,
            normalize=self._normalize,
            progress_unit=lambda state: self.PROGRESS_UNIT,
            discard_progress=self._discard_progress,
        )
        self.status = self._requests.status
        self._labels = None  # the class names of the model explained (the class box's)
        self._controls, layout = controls(self.state)
        self._figure = StudyPanels(lambda: (self.state.opacity, self.state.colormap))
        super().__init__([layout, self._figure.widget, *self._extra(), self.status.widget])
        with busy([], self.status):
            self._apply(*self._first_compute(self.state, self._requests.report()))
            self.status.keep()
        if self.panels is None:  # the first computation failed: empty panels, error shown
            self._figure.show(
                np.zeros((224, 224, 3), np.uint8),
                [np.zeros((7, 7), np.float32)] * placeholders,
                ["(not computed)"] * placeholders,
            )
        self._sync_controls()
        self._requests.watch(self._controls)
        self._image_menu = ImageMenu(self._controls["image"], self._requests.quiet)
        replace_in_cell(self)

    @property
    def panels(self):
        """The figure's :class:`~..shared.panels.HeatmapPanels` (None before one is drawn)."""
        figure = vars(self).get("_figure")
        return None if figure is None else figure.panels

    def set(self, **changes):
        """Change settings from Python, as the controls do; returns the result(s). An error
        shows in the status line, and the previous state and figure are kept."""
        self._requests.set(changes)
        return getattr(self, self.RESULT)

    def close(self) -> None:
        """Close this widget and every widget it built; running work stops at its next
        progress report, and its results are dropped."""
        close_widget(self)
        super().close()

    # hooks for the studies
    def _extra(self) -> list:
        """Widgets shown between the figure and the status line."""
        return []

    def _normalize(self, changes: dict) -> dict:
        """Derived settings filled in (e.g. a new model's default layer)."""
        return changes

    def _compute(self, state, report) -> tuple:
        """(state resolved, outcome) for ``state``; ``report(done, total)`` its progress."""
        raise NotImplementedError

    def _finish(self, outcome) -> None:
        """The study's own updates from ``outcome`` (on the loop's thread)."""

    def _first_compute(self, state, report) -> tuple:
        """The constructor's (state, outcome): by default all of ``_compute``. A study with
        long work may show a first part at once and ask for the rest with
        :meth:`_compute_again` (on a kernel, where it runs off the loop, after the cell)."""
        return self._compute(state, report)

    def _compute_again(self) -> bool:
        """Ask for the state's engine work as a background request; False when there is no
        kernel loop to run it off (then the caller computes inline)."""
        if self._requests.queue.cell_loop() is None:
            return False
        self._requests.queue.submit({AGAIN: True})
        return True

    # what every study does alike (the request model's hooks)
    def _compute_controls(self) -> list:
        return [self._controls[n] for n in self.COMPUTE_CONTROLS]

    def _show_display(self, **changes) -> None:
        self.state = replace(self.state, **changes)
        self._figure.show_look()
        self.status.restore()  # the last good state's line, not an old error

    def _apply(self, state, outcome) -> None:
        view: StudyView = outcome.view
        self.state = state
        self._labels = view.explainer.labels
        self._figure.show_result(view, key=(state.image, view.rgb.shape))
        show_class_choices(self._controls, view.explainer, state.target, view.shown)
        self._finish(outcome)
        self._say(view.line, view.unseen)

    def _show_partial(self, report, view: StudyView) -> None:
        """Show the maps a running request has so far (called in its worker thread): on the
        loop's thread, and only while that request is the running one."""

        def update() -> None:
            if self._requests.progress is report and not self._requests.closed:
                self._figure.show_partial(view, key=(self.state.image, view.rgb.shape))

        report.show(update)

    def _discard_progress(self) -> None:
        self._figure.discard_partial()

    def _sync_controls(self, keep_text: bool = False) -> None:
        """Controls show the state (``keep_text``: a typed class stays beside its error)."""
        with self._requests.quiet():
            show_state(self._controls, self.state, self._labels, keep_text)

    def _say(self, line: str, notes=()) -> None:
        """The status line: ``line``, as a warning with the notes of classes the model does
        not see when there are any."""
        if any(notes):
            self.status.warn(with_notes(line, notes))
        else:
            self.status.info(line)
