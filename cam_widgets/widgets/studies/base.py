"""Shared base of the studies: a frozen state, controls, one HeatmapPanels, ``set(**changes)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

import ipywidgets as W
import numpy as np

from ...api import get_explainer
from ...explainer import Explainer
from ...models import resolve_target
from ...render import list_colormaps
from ...result import Explanation
from ..shared.controls import class_options, model_choices
from ..shared.images import ImageMenu, image_choice, image_choices, load_choice, show_choice
from ..shared.lifecycle import close_owned, replace_in_cell
from ..shared.maps import top_classes, unseen_note, with_notes
from ..shared.panels import PANEL_SIZE, HeatmapPanels
from ..shared.state_requests import AGAIN, StateRequests
from ..shared.status import busy

DISPLAY = ("opacity", "colormap")
CLASS_PLACEHOLDER = "top class; or boxer, 282..."


class StudyView(NamedTuple):
    """What a study's engine work gives its figure: the photo, the maps, their titles and
    colour bar note (:func:`..shared.maps.colorbar_note` of the results), the explainer (its
    classes go to the class box), ``finish()``, the study's other updates (its results,
    status line, tables), called on the loop's thread, a result of the class the maps
    show (the class box names it when it was left to the top class), and each panel's
    overlay fade (:func:`..shared.maps.overlay_fades`; none: no fade)."""

    rgb: np.ndarray
    maps: list
    titles: list
    note: str
    explainer: Explainer
    finish: Callable[[], None]
    shown: Explanation
    fades: Sequence = ()


class Study(W.VBox):
    """Shared plumbing: state <-> controls, set(), busy/status, one panels figure.

    A subclass's ``_compute(state, report)`` is the engine work of a request: it may run in a
    worker thread (a change made in the browser, see :mod:`..shared.requests`), so it touches no
    widget: it returns ``(state, StudyView(...))``, the view's ``finish()`` being its widget
    updates (status line, tables, menus), called on the loop's thread with the new maps.
    """

    COMPUTE_CONTROLS: tuple = ()
    RESULT = "results"  # the attribute set() returns
    PROGRESS_UNIT = ""  # what _compute's progress reports count
    #: a newer change of a key voids older replaced changes of its dependents (_normalize's)
    IMPLIED: dict = {}

    def __init__(self, state, placeholders: int, background: bool | None = None) -> None:
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
        self.engine_calls = 0
        self.panels: HeatmapPanels | None = None
        self._last_view: tuple | None = None  # what _apply showed (partial maps undone to it)
        self._target_options: str | None = None  # the model whose classes the box offers
        self._controls = self._build_controls()
        # the figure fits the page's width, its panels in rows; past one narrowest panel it scrolls
        self._figure_box = W.Box([], layout=W.Layout(overflow="auto", max_width="100%"))
        super().__init__([self._layout(), self._figure_box, *self._extra(), self.status.widget])
        with busy([], self.status):
            self._apply(*self._first_compute(self.state, self._requests.report()))
            self.status.keep()
        if self.panels is None:  # the first computation failed: empty panels, error shown
            self._show(
                np.zeros((224, 224, 3), np.uint8),
                [np.zeros((7, 7), np.float32)] * placeholders,
                ["(not computed)"] * placeholders,
            )
        self._sync_controls()
        self._requests.watch(self._controls)
        self._image_menu = ImageMenu(self._controls["image"], self._requests.quiet)
        replace_in_cell(self)

    def set(self, **changes):
        """Change settings from Python, as the controls do; returns the result(s). An error
        shows in the status line, and the previous state and figure are kept."""
        self._requests.set(changes)
        return getattr(self, self.RESULT)

    def close(self) -> None:
        """Close this widget and every widget it built; running work stops at its next
        progress report, and its results are dropped."""
        if "_requests" in vars(self):  # (absent when __init__ raised early)
            self._requests.close()
        close_owned(self)
        super().close()

    # hooks for the subclasses
    def _build_controls(self) -> dict:
        raise NotImplementedError

    def _layout(self) -> W.Widget:
        raise NotImplementedError

    def _extra(self) -> list:
        return []

    def _normalize(self, changes: dict) -> dict:
        """Derived settings filled in (e.g. a new model's default layer)."""
        return changes

    def _compute(self, state, report) -> tuple:
        """(state, StudyView) for ``state``; ``report(done, total)`` its progress."""
        raise NotImplementedError

    def _first_compute(self, state, report) -> tuple:
        """The constructor's (state, StudyView): by default all of ``_compute``. A study
        with long work may show a first part at once and ask for the rest with
        :meth:`_compute_again` (on a kernel, where it runs off the loop, after the cell)."""
        return self._compute(state, report)

    def _compute_again(self) -> bool:
        """Ask for the state's engine work as a background request; False when there is no
        kernel loop to run it off (then the caller computes inline)."""
        if self._requests.queue.cell_loop() is None:
            return False
        self._requests.queue.submit({AGAIN: True})
        return True

    # shared behaviour
    def _compute_controls(self) -> list:
        return [self._controls[n] for n in self.COMPUTE_CONTROLS]

    def _show_display(self, **changes) -> None:
        self.state = replace(self.state, **changes)
        self._render_display()
        self.status.restore()  # the last good state's line, not an old error

    def _apply(self, state, view: StudyView) -> None:
        self.state = state
        key = (state.image, view.rgb.shape)
        self._last_view = (view.rgb, view.maps, view.titles, view.note, {"key": key, "fades": view.fades})
        self._shown_partial = False
        self._show(*self._last_view[:4], **self._last_view[4])
        self._fill_target_options(view.explainer)
        self._controls["target"].placeholder = (
            CLASS_PLACEHOLDER
            if state.target is not None
            else f"top class: {view.shown.class_id} {view.shown.label}"
        )
        view.finish()

    def _show_progress(
        self, report, rgb: np.ndarray, maps, titles, note: str = "", key=None, fades: Sequence = ()
    ) -> None:
        """Show the maps a running request has so far (called in its worker thread): on the
        loop's thread, and only while that request is the running one."""

        def update() -> None:
            if self._requests.progress is report and not self._requests.closed:
                self._shown_partial = True
                self._show(rgb, maps, titles, note, key=key, fades=fades)

        report.show(update)

    def _discard_progress(self) -> None:
        if getattr(self, "_shown_partial", False) and self._last_view is not None:
            self._show(*self._last_view[:4], **self._last_view[4])
        self._shown_partial = False

    def _show(self, rgb: np.ndarray, maps, titles, note: str = "", key=None, fades: Sequence = ()) -> None:
        if self.panels is None or self.panels.count != len(maps):
            # built in its final state, placed only once built (see HeatmapPanels)
            self.panels = HeatmapPanels(
                rgb,
                maps,
                titles,
                opacity=self.state.opacity,
                colormap=self.state.colormap,
                zrange=(0.0, 1.0),
                colorbar_title=note,
                fades=fades,
                panel_size=PANEL_SIZE,
                fit_width=True,
                wrap=True,
            )
            self.panels.on_probe(lambda k, x, y: self.panels.mark(x, y))
            self._figure_box.children = [self.panels.widget]
        else:
            with self.panels.figure.batch_update():
                if getattr(self, "_photo_key", None) != key:
                    self.panels.set_image(rgb)
                self.panels.set_maps(maps, titles, zrange=(0.0, 1.0), colorbar_title=note, fades=fades)
            self._render_display()
        self._photo_key = key

    def _render_display(self) -> None:
        with self.panels.figure.batch_update():
            self.panels.set_opacity(self.state.opacity)
            self.panels.set_colormap(self.state.colormap)

    def _sync_controls(self, keep_text: bool = False) -> None:
        """Controls show the state (``keep_text``: a typed class stays beside its error)."""
        self._requests.syncing = True
        try:
            for name, control in self._controls.items():
                value = getattr(self.state, name)
                if name == "image":
                    show_choice(control, value)
                    continue
                if name == "target":
                    if keep_text:
                        continue
                    value = "" if value is None else str(value)
                elif name == "layer":
                    value = value or ""
                if (name != "layer" or value in [o[1] for o in control.options]) and control.value != value:
                    control.value = value
        finally:
            self._requests.syncing = False

    def _common_controls(self, models=True) -> dict:
        s = self.state
        c = {"image": W.Dropdown(options=image_choices(), value=s.image, description="image")}
        if models:
            c["model"] = W.Dropdown(options=model_choices(), value=s.model, description="model")
        c["target"] = W.Combobox(
            placeholder=CLASS_PLACEHOLDER, description="class", ensure_option=False, continuous_update=False
        )
        c["opacity"] = W.FloatSlider(value=s.opacity, min=0, max=1, step=0.05, description="opacity")
        c["colormap"] = W.Dropdown(options=list_colormaps(), value=s.colormap, description="colormap")
        return c

    def _say(self, line: str, notes=()) -> None:
        """The status line: ``line``, as a warning with the notes of classes the model does
        not see (see :meth:`_unseen`) when there are any."""
        if any(notes):
            self.status.warn(with_notes(line, notes))
        else:
            self.status.info(line)

    @staticmethod
    def _unseen(explainer: Explainer, prepared, result: Explanation) -> str:
        """The note of ``result``'s class when the model does not see it (engine work)."""
        return unseen_note(result, top_classes(explainer, prepared))

    def _prepare(self, state, model: str):
        """(explainer, prepared photo, class id) of ``state`` on ``model`` (engine work)."""
        explainer = get_explainer(model)
        prepared = explainer.prepare(load_choice(state.image))
        target = resolve_target(state.target, explainer.labels)
        return explainer, prepared, target

    def _fill_target_options(self, explainer: Explainer) -> None:
        """The class box offers the classes of the model explained."""
        if self._target_options != explainer.spec.name:
            self._controls["target"].options = class_options(explainer.labels)
            self._target_options = explainer.spec.name
