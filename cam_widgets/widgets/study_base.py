"""Shared base of the studies: a frozen state, controls, one HeatmapPanels, ``set(**changes)``."""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Optional

import ipywidgets as W
import numpy as np

from ..api import get_explainer
from ..explainer import Explainer
from ..models import resolve_class
from ..render import list_colormaps
from .common import (StatusLine, busy, colorbar_note, errors_shown, model_choices, next_state,
                     parse_target)
from .compare_panels import panel_size
from .images import FollowsUserImages, image_choice, image_choices, load_choice, show_choice
from .panels import HeatmapPanels
from .requests import Request, RequestQueue, Stopped, drive, progress_reporter

DISPLAY = ("opacity", "colormap")


def stage_layers(explainer: Explainer, layer: Optional[str] = None,
                 max_panels: int = 8) -> list[str]:
    """Up to ``max_panels`` layers from shallow to deep, ending at ``layer`` (default layer):
    the last layer of each resolution among the siblings of ``layer`` (each stage's output),
    evenly thinned when there are too many."""
    layers = explainer.layers()
    last = explainer.resolve_layer(layer)
    names = [l.name for l in layers]
    upto = layers[:names.index(last) + 1]
    parent = last.rpartition(".")[0]
    siblings = [l for l in upto if l.name.rpartition(".")[0] == parent]
    stages = [l for k, l in enumerate(siblings)
              if k == len(siblings) - 1 or siblings[k + 1].height != l.height]
    chosen = stages if len(stages) >= 2 else siblings
    count = max(1, int(max_panels))
    if len(chosen) > count:
        picks = sorted({int(round(i * (len(chosen) - 1) / max(count - 1, 1))) for i in range(count)})
        chosen = [chosen[i] for i in picks]
    names = [l.name for l in chosen]
    return names if names[-1] == last else (names + [last])[-count:]


class _Study(FollowsUserImages, W.VBox):
    """Shared plumbing: state <-> controls, set(), busy/status, one panels figure.

    A subclass's ``_compute(state, report)`` is the engine work of a request: it may run in a
    worker thread (a change made in the browser, see :mod:`.requests`), so it touches no
    widget: it returns ``(rgb, maps, titles, finish)``, ``finish()`` being its widget updates
    (status line, tables, menus), called on the loop's thread with the new maps.
    """

    COMPUTE_CONTROLS: tuple = ()
    RESULT = "results"
    PROGRESS_UNIT = ""  # what _compute's progress reports count
    #: a newer change of a key voids older replaced changes of its dependents (_normalize's)
    IMPLIED: dict = {}

    def __init__(self, state, placeholders: int, background: Optional[bool] = None) -> None:
        self.state = replace(state, image=image_choice(state.image))  # a path, URL, array too
        self._requests = RequestQueue(self._request, background, implied=self.IMPLIED)
        self.status = StatusLine(on_stop=self._requests.stop)
        self._requests.on_error = self.status.error
        self.engine_calls = 0
        self.panels: Optional[HeatmapPanels] = None
        self._syncing = False
        self._target_options: Optional[str] = None  # the model whose classes the box offers
        self._controls = self._build_controls()
        # the figure fits the page's width; past its panels' smallest size the box scrolls
        self._figure_box = W.Box([], layout=W.Layout(overflow="auto", max_width="100%"))
        super().__init__([self._layout(), self._figure_box, *self._extra(), self.status.widget])
        self._line = ""
        with busy([], self.status):
            self._apply(self.state, self._compute(self.state, self.status.report))
            self._line = self.status.line.value
        if self.panels is None:  # the first computation failed: empty panels, error shown
            self._show(np.zeros((224, 224, 3), np.uint8),
                       [np.zeros((7, 7), np.float32)] * placeholders, ["(not computed)"] * placeholders)
        self._sync_controls()
        for name, control in self._controls.items():
            control.observe(self._on_change(name), names="value")
        self._follow_user_images()

    # hooks for the subclasses
    def _build_controls(self) -> dict:
        raise NotImplementedError

    def _layout(self) -> W.Widget:
        raise NotImplementedError

    def _extra(self) -> list:
        return []

    def _compute(self, state, report) -> tuple:
        """(rgb, maps, titles, finish) for ``state``; ``report(done, total)`` its progress."""
        raise NotImplementedError

    def _normalize(self, changes: dict) -> dict:
        return changes

    # shared behaviour
    def set(self, **changes):
        """Change state fields from Python (as the controls do); errors go to the status line."""
        drive(self._request(changes, inline=True))  # (a cell runs on the kernel's loop too)
        return getattr(self, self.RESULT)

    def _request(self, changes: dict, inline: bool = False) -> Request:
        """Apply ``changes``: the engine work yielded (off the kernel's loop for a change made
        in the browser), then the figure; the state changes only when it all succeeds."""
        loop = None if inline else self._requests.loop()
        controls = [] if loop is not None else [self._controls[n] for n in self.COMPUTE_CONTROLS]
        with busy(controls, self.status, loop):
            try:
                new, display_only = next_state(type(self).__name__, self.state, changes, DISPLAY,
                                               self._normalize)
                if display_only:  # nothing for the engine: re-render only
                    self._show_display(new)
                else:
                    report = progress_reporter(self.status, self._requests, loop,
                                               self.PROGRESS_UNIT)
                    shown = {k: getattr(self.state, k) for k in DISPLAY}
                    computed = yield partial(self._compute, new, report)
                    # display settings changed while it computed are the newest
                    self._apply(replace(new, **{k: getattr(self.state, k) for k in DISPLAY
                                                if getattr(self.state, k) != shown[k]}), computed)
                    self._line = self.status.line.value
            except Stopped:  # the stop button
                self.status.info("stopped: the maps are the ones before")
        self._sync_controls()

    def _show_display(self, new) -> None:
        self.state = new
        self._render_display()
        self.status.line.value = self._line  # the last good state's line, not an old error

    def _apply(self, state, computed) -> None:
        rgb, maps, titles, finish = computed
        self.state = state
        self._show(rgb, maps, titles, key=(state.image, rgb.shape))
        self._fill_target_options()
        finish()

    def _show(self, rgb: np.ndarray, maps, titles, key=None) -> None:
        shown = getattr(self, self.RESULT, None)  # None: the first computation failed
        note = colorbar_note([] if shown is None else shown if isinstance(shown, list) else [shown])
        if self.panels is None or self.panels.count != len(maps):
            # built in its final state, placed only once built (see HeatmapPanels)
            self.panels = HeatmapPanels(rgb, maps, titles, opacity=self.state.opacity,
                                        colormap=self.state.colormap, zrange=(0.0, 1.0),
                                        colorbar_title=note, panel_size=panel_size(len(maps)),
                                        fit_width=True)
            self.panels.on_probe(lambda k, x, y: self.panels.mark(x, y))
            self._figure_box.children = [self.panels.widget]
        else:
            with self.panels.figure.batch_update():
                if getattr(self, "_photo_key", None) != key:
                    self.panels.set_image(rgb)
                self.panels.set_maps(maps, titles, zrange=(0.0, 1.0), colorbar_title=note)
            self._render_display()
        self._photo_key = key

    def _render_display(self) -> None:
        with self.panels.figure.batch_update():
            self.panels.set_opacity(self.state.opacity)
            self.panels.set_colormap(self.state.colormap)

    def _on_change(self, name: str):
        def changed(change):
            if self._syncing:
                return
            new = parse_target(change["new"]) if name == "target" else change["new"]
            if name == "layer":
                new = new or None
            if self._requests.current(name, getattr(self.state, name)) == new:
                return
            if name in DISPLAY:  # never waits for (or stops) a computation
                with errors_shown(self.status):
                    self._show_display(replace(self.state, **{name: new}))
            else:
                self._requests.submit({name: new})
        return changed

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for name, control in self._controls.items():
                value = getattr(self.state, name)
                if name == "image":
                    show_choice(control, value)
                    continue
                if name == "target":
                    value = "" if value is None else str(value)
                elif name == "layer":
                    value = value or ""
                if (name != "layer" or value in [o[1] for o in control.options]) \
                        and control.value != value:
                    control.value = value
        finally:
            self._syncing = False

    def _common_controls(self, models=True) -> dict:
        s = self.state
        c = {"image": W.Dropdown(options=image_choices(), value=s.image, description="image")}
        if models:
            c["model"] = W.Dropdown(options=model_choices(), value=s.model, description="model")
        c["target"] = W.Combobox(placeholder="top class; or boxer, 282...", description="class",
                                 ensure_option=False, continuous_update=False)
        c["opacity"] = W.FloatSlider(value=s.opacity, min=0, max=1, step=0.05, description="opacity")
        c["colormap"] = W.Dropdown(options=list_colormaps(), value=s.colormap, description="colormap")
        return c

    def _prepare(self, state, model: str):
        """(explainer, prepared photo, class id) of ``state`` on ``model`` (engine work)."""
        explainer = get_explainer(model)
        prepared = explainer.prepare(load_choice(state.image))
        target = None if state.target is None else resolve_class(state.target, explainer.labels)
        self._explained_with = explainer  # its classes go to the class box (_apply)
        return explainer, prepared, target

    def _fill_target_options(self) -> None:
        explainer = getattr(self, "_explained_with", None)
        if explainer is not None and self._target_options != explainer.spec.name:
            self._controls["target"].options = [f"{i} {n}" for i, n in enumerate(explainer.labels)]
            self._target_options = explainer.spec.name
