"""The Explorer: one image, one model, one map, every control linked to one state object.

This module is the widget: how its controls, status line and map follow the state. The
state and the decisions made from it live in :mod:`.state`, the controls and the
prediction rows in :mod:`.controls`, the drawing of the map in :mod:`.view`,
uploads and exports in :mod:`.files`, the engine part of a request in
:mod:`.work`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import ipywidgets as W

from ...api import get_explainer, widget_model
from ...methods import get_method
from ...models import DEFAULT_MODEL, resolve_class
from ...result import Explanation
from ..shared.controls import first_view, parse_target, precisions_for
from ..shared.images import FollowsUserImages, image_choice, show_choice
from ..shared.layer_menu import layer_menu, layer_options
from ..shared.lifecycle import close_owned, replace_in_cell
from ..shared.maps import unseen_note
from ..shared.requests import Request, RequestQueue, Stopped, drive, progress_reporter
from ..shared.status import StatusLine, busy, errors_shown
from .controls import build_controls, explorer_layout, highlight, prediction_rows, show_predictions
from .files import ExplorerFiles
from .state import COMPUTE, COMPUTE_CONTROLS, SMOOTHGRAD_ONLY, ExplorerState, progress_unit, result_message
from .view import EXPLORER_CLASS, MapView
from .work import ExplorerWork, Outcome, fit_state_to_model

__all__ = ["COMPUTE", "COMPUTE_CONTROLS", "Explorer", "ExplorerState"]


class Explorer(ExplorerFiles, FollowsUserImages, W.VBox):
    """Pick an image, model, layer, class and method; see the map update in place.

    In a kernel, a change made in the browser runs its engine work off the kernel's event
    loop (:mod:`..shared.requests`): the controls stay live, changes made meanwhile replace the
    running computation, and long work shows a stop button. ``set()`` from Python runs
    inline and returns the new result.

    Args:
        image: a bundled sample or scene name ("chelsea", "scene:two_class"), or your own
            image: a path, URL, array or PIL image (every widget then offers it too).
        model: a zoo name (the engine is shared with every other widget on that model), or
            your own nn.Module, ModelSpec or Explainer (then listed in every widget's model
            menu as "<name> (yours)"; never mutated, never moved).
        static: draw PNG overlays instead of a Plotly FigureWidget (for front ends that
            cannot show one).
        background: compute browser changes off the kernel's loop (None: when in a kernel).
        colormap, opacity: the first view's (give them here rather than ``set()`` them before
            the widget is shown: Voila drops changes made before a figure is drawn).
    """

    def __init__(
        self,
        image: str = "chelsea",
        model: str = DEFAULT_MODEL,
        method: str = "gradcam",
        target=None,
        layer: str | None = None,
        static: bool = False,
        background: bool | None = None,
        colormap: str = "viridis",
        opacity: float = 0.5,
    ) -> None:
        colormap, opacity = first_view(colormap, opacity)  # built in its final state
        self._yours: list = []  # your model's Explainer, held while this widget lives
        model = widget_model(model, self._yours)  # your nn.Module or Explainer too
        image = image_choice(image)
        self.state = ExplorerState(
            image=image,
            model=model,
            method=get_method(method).name,
            layer=layer,
            colormap=colormap,
            opacity=float(opacity),
        )
        # a newer photo voids an older class; a newer model an older layer
        self._requests = RequestQueue(
            self._request, background, implied={"image": ("target",), "model": ("layer",)}
        )
        self.status = StatusLine(on_stop=self._requests.stop)
        self._requests.on_error = self.status.error
        self.result: Explanation | None = None
        self._syncing = False
        self._engine_work = ExplorerWork()
        self._controls = build_controls(self.state)
        self._top = prediction_rows(self._on_pick)
        self.explainer = get_explainer(self.state.model)
        fit_state_to_model(self.state, self.explainer)
        self._fill_model_controls()
        self.state.target = None if target is None else resolve_class(target, self.explainer.labels)
        first = self._work({"image": image}, None)
        self.result, self._prepared_image = first.result, first.prepared
        self._top_ids = {p.class_id for p in first.predictions}  # the model's top classes
        self._shown = {name: getattr(self.state, name) for name in COMPUTE}  # what a stop restores
        # (and what exports are named after)
        self.static = static
        self._map = MapView(
            first.prepared.rgb, first.result, self.state, static, on_rebuilt=self._replace_view
        )
        super().__init__(explorer_layout(self._controls, self._top, self._map.widget, self.status.widget))
        self.add_class(EXPLORER_CLASS)  # the map's FitWidth keeps this box's top in view
        show_predictions(self._top, first.predictions, first.result.class_id)
        self._render_status()
        self._show_settings()
        self._link()
        self._follow_user_images()
        replace_in_cell(self)

    @property
    def panels(self):
        """The map's :class:`~..shared.panels.HeatmapPanels` (None: static, or closed)."""
        view = vars(self).get("_map")
        return None if view is None else view.panels

    @property
    def view(self):
        """The map's widget: its figure's box, or the static view's image (None: closed)."""
        view = vars(self).get("_map")
        return None if view is None else view.widget

    def _replace_view(self, old, new) -> None:
        """Side by side on or off: the figure of the new count of panels takes the old one's
        place beside the predictions."""
        for row in self.children:
            if old in row.children:
                row.children = tuple(new if child is old else child for child in row.children)

    def close(self) -> None:
        """Close this widget and every widget it built (controls, figures, status line);
        running work stops at its next progress report, and the results are dropped."""
        requests = getattr(self, "_requests", None)  # absent when __init__ raised early
        if requests is not None:
            requests.stop()
        close_owned(self)
        super().close()

    # ---------------------------------------------------------------- controls
    def _link(self) -> None:
        c = self._controls
        for name in COMPUTE_CONTROLS:
            c[name].observe(self._on_compute(name), names="value")
        for name in ("opacity", "colormap", "view"):
            c[name].observe(self._on_display(name), names="value")
        c["search"].observe(self._on_search, names="value")
        c["all_layers"].observe(self._fill_layers, names="value")
        c["upload"].observe(self._on_upload, names="value")
        c["url"].observe(self._on_url, names="value")
        c["export"].observe(self._on_export, names="value")
        self._map.on_probe(self._on_probe)

    # ----------------------------------------------------------------- actions
    def set(self, **changes) -> Explanation:
        """Change state fields from Python (as the controls do) and return the new result.

        Errors (an unknown class name, missing weights...) are shown in the status line and
        leave the previous state and view in place.
        """
        with errors_shown(self.status):
            if "image" in changes:
                changes = dict(changes, image=image_choice(changes["image"]))
            if "method" in changes:  # a title or other spelling: the menu's registry name
                changes = dict(changes, method=get_method(changes["method"]).name)
            drive(self._request(changes, inline=True))  # (a cell runs on the kernel's loop too)
        self._sync_controls(display=True)  # the controls show what was set (the box: above)
        return self.result

    def _ask(self, **changes) -> None:
        """A change made in the browser: queued off the kernel's loop (inline without one)."""
        self._requests.submit(changes)

    def _request(self, changes: dict, inline: bool = False) -> Request:
        """Apply ``changes``: state and controls here, engine work yielded (see
        :mod:`..shared.requests`), then the view; on an error or a stop, the state on show."""
        loop = None if inline else self._requests.loop()
        failed = False
        # off the loop the controls stay live (a change replaces the running work)
        with busy([] if loop is not None else self._compute_controls(), self.status, loop):
            try:
                if "image" in changes and "target" not in changes:
                    changes = dict(changes, target=None)  # a new photo: its own top class
                vars(self.state).update(changes)
                outcome = yield partial(self._work, changes, loop)
                self._show(outcome)
                self._shown = {name: getattr(self.state, name) for name in COMPUTE}
            except Stopped:  # the stop button
                vars(self.state).update(self._shown)
                self._sync_controls()
                self.status.info("stopped: the map is the one before")
            except Exception:
                vars(self.state).update(self._shown)
                self._sync_controls()
                failed = True
                raise
        self._show_settings(keep_text=failed)  # after busy() gave the controls their state back

    def _sync_controls(self, display: bool = False) -> None:
        """Controls show the state again (after a change that failed, or set from Python)."""
        with self._quiet():
            for name in COMPUTE_CONTROLS + (("opacity", "colormap", "view") if display else ()):
                if name == "image":
                    show_choice(self._controls[name], self.state.image)
                elif name != "layer":
                    self._controls[name].value = getattr(self.state, name)
        self._fill_layers()

    def _on_compute(self, name: str):
        def changed(change):
            if self._syncing:
                return
            current = self._requests.current(name, getattr(self.state, name))
            if current != change["new"]:
                if name in ("smooth", "method"):  # now, not when the running work is done
                    asked = dict(smooth=self._controls["smooth"].value, method=self._controls["method"].value)
                    self._enable_for(**asked)
                self._ask(**{name: change["new"]})

        return changed

    def _on_display(self, name: str):
        def changed(change):
            setattr(self.state, name, change["new"])
            with errors_shown(self.status):  # (not busy: a computation may be running)
                self._render_display()

        return changed

    def _show_settings(self, keep_text: bool = False) -> None:
        """The class box and the highlighted prediction name the explained class, or one
        picked since that waits (``keep_text``: what was typed stays beside its error);
        SmoothGrad's settings are live only while it is on, the layer only for methods
        that read one."""
        highlight(self._top, self._selected())
        if not keep_text and "target" not in self._requests.pending:
            self._show_class(self.result.class_id)
        if self.state.layer not in {value for _, value in self._controls["layer"].options}:
            self._fill_layers()  # a layer set from Python, deeper than the blocks listed
        self._enable_for(self.state.smooth, self.state.method)

    def _enable_for(self, smooth: bool, method: str) -> None:
        """SmoothGrad's settings live only with it on, the layer only for methods reading one."""
        for name in SMOOTHGRAD_ONLY:
            self._controls[name].disabled = not smooth
        self._controls["layer"].disabled = not get_method(method).needs_layer

    def _selected(self):
        """The class to highlight: one clicked that waits, else the one explained."""
        waiting = self._requests.pending.get("target")
        return waiting if isinstance(waiting, int) else self.result.class_id

    def _show_class(self, class_id: int) -> None:
        """The class box names ``class_id`` (quietly: no request)."""
        box, shown = self._controls["search"], f"{class_id} {self.explainer.labels[class_id]}"
        if box.value != shown:
            with self._quiet():
                box.value = shown

    def _on_pick(self, class_id: int) -> None:
        """A prediction clicked: its row and the class box show it at once (not when the
        running computation ends), then it is computed."""
        highlight(self._top, class_id)
        self._show_class(class_id)
        self._ask(target=class_id)

    def _on_search(self, change) -> None:
        if not self._syncing:
            self._ask(target=parse_target(change["new"]))  # emptied: the top class again

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Controls written from the state: their observers must not act on it."""
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    def _on_probe(self, x: float, y: float) -> None:
        self._render_status(probe=self._map.probe(self.result, x, y))

    def _fill_layers(self, change=None) -> None:
        """The layer menu: the model's blocks (every spatial layer with "all layers")."""
        shown = layer_menu(
            self.explainer.layers(),
            self.explainer.default_layer,
            self.state.layer,
            self._controls["all_layers"].value,
        )
        control = self._controls["layer"]
        with self._quiet():
            control.options = layer_options(shown)
            control.value = self.state.layer

    # ------------------------------------------------------------------ engine
    def _work(self, changes: dict, loop) -> Outcome:
        """The engine part of a request (off the kernel's loop when ``loop`` is given)."""
        report = progress_reporter(self.status, self._requests, loop, progress_unit(self.state))
        return self._engine_work.run(self.state, self.explainer, changes, report)

    @property
    def engine_calls(self) -> int:
        """Explanations computed so far (display changes compute none)."""
        return self._engine_work.calls

    def _prepared(self):
        """The prepared photo on show."""
        return self._prepared_image

    def _fill_model_controls(self) -> None:
        """The layer, precision and class menus of the model on show."""
        self._fill_layers()
        with self._quiet():
            self._controls["precision"].options = precisions_for(self.explainer.device)
            self._controls["precision"].value = self.state.precision
            self._controls["search"].options = [f"{i} {n}" for i, n in enumerate(self.explainer.labels)]

    # ------------------------------------------------------------------ render
    def _show(self, outcome: Outcome) -> None:
        """Show what the engine work gave (on the loop's thread)."""
        if outcome.explainer is not self.explainer:
            self.explainer = outcome.explainer
            self._fill_model_controls()
        if outcome.result is not None:
            if outcome.prepared is not self._prepared_image:
                self._map.set_image(outcome.prepared.rgb)
            self._prepared_image, self.result = outcome.prepared, outcome.result
            self._top_ids = {p.class_id for p in outcome.predictions}
            show_predictions(self._top, outcome.predictions, self._selected())
        self._render()

    def _render(self) -> None:
        self._map.show(self.result, self.state)
        self._render_status()

    def _render_status(self, probe: str = "") -> None:
        """What the map shows (or why it is empty, or that the model does not see the chosen
        class: see :func:`..shared.maps.unseen_note`), and below it a probed pixel's value."""
        r = self.result
        unseen = unseen_note(r, self._top_ids)  # a chosen class the model gives ~0
        if r.flagged:
            self.status.warn("; ".join(filter(None, [r.status.message, unseen])), probe)
        elif unseen:
            self.status.warn(f"{result_message(r)}; {unseen}", probe)
        else:
            self.status.info(result_message(r), probe)

    def _render_display(self) -> None:
        self._map.show_display(self.result, self.state)

    def _compute_controls(self) -> list:
        """Disabled while computing inline: no request piles up behind a slow one."""
        buttons = [row.children[0] for row in self._top.children]
        inputs = ("search", "upload", "url", "all_layers", "export")
        return [self._controls[n] for n in COMPUTE_CONTROLS + inputs] + buttons
