"""The Explorer: one image, one model, one map, every control linked to one state object.

This module is the widget: how its controls, status line and map follow the state. The
state and the decisions made from it live in :mod:`.state`, the controls and the
prediction rows in :mod:`.controls`, the drawing of the map in :mod:`.view`,
uploads and exports in :mod:`.files`, the engine part of a request in
:mod:`.work`.
"""

from __future__ import annotations

from dataclasses import replace

import ipywidgets as W

from ...api import get_explainer, widget_model
from ...methods import get_method
from ...models import DEFAULT_MODEL, Contrast, parse_target
from ..shared.controls import class_options, first_view, precisions_for, target_text
from ..shared.images import ImageMenu, image_choice, show_choice
from ..shared.layer_menu import layer_menu, layer_options
from ..shared.lifecycle import close_widget, replace_in_cell
from ..shared.maps import unseen_note
from ..shared.state_requests import StateRequests
from ..shared.status import errors_shown
from .controls import build_controls, explorer_layout, highlight, prediction_rows, show_predictions
from .files import ExplorerFiles
from .state import (
    COMPUTE,
    COMPUTE_CONTROLS,
    DISPLAY,
    SMOOTHGRAD_ONLY,
    ExplorerState,
    progress_unit,
    result_message,
)
from .view import EXPLORER_CLASS, MapView
from .work import ExplorerWork, Outcome, resolved, smoothing_kept

__all__ = ["COMPUTE", "COMPUTE_CONTROLS", "Explorer", "ExplorerState"]


class Explorer(W.VBox):
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
        target: the class explained (an id, a name, "282 tiger cat"; None: the top class),
            or a contrast, ``cw.contrast(a, b)`` or "tiger cat vs Egyptian cat": what makes
            the model say A rather than B (gradient methods; CAM and Score-CAM read a class).
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
        state = ExplorerState(
            image=image_choice(image),
            model=model,
            method=get_method(method).name,
            layer=layer,
            target=target,
            colormap=colormap,
            opacity=float(opacity),
        )
        # a newer photo voids an older class; a newer model an older layer
        self.state = state
        self._requests = StateRequests(
            self,
            background,
            implied={"image": ("target",), "model": ("layer",)},
            display=self._display_fields,
            normalize=self._normalize,
            progress_unit=progress_unit,
            stopped="stopped: the map is the one before",
        )
        self.status = self._requests.status
        self._engine_work = ExplorerWork()
        self.explainer = get_explainer(state.model)
        self.state = resolved(state, self.explainer, new_model=True)  # a bad class: one line, no widget
        self._controls = build_controls(self.state)
        self._top = prediction_rows(self._on_pick)
        self._files = ExplorerFiles(self, self._controls)  # uploads, URLs, exports
        self._fill_model_controls()
        self.state, first = self._compute(self.state, self._requests.report())
        self.result, self._prepared_image = first.result, first.prepared
        self._top_ids = {p.class_id for p in first.predictions}  # the model's top classes
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
        self._image_menu = ImageMenu(self._controls["image"], self._requests.quiet)
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

    # ---------------------------------------------------------------- controls
    def _link(self) -> None:
        c = self._controls
        for name in COMPUTE_CONTROLS:
            c[name].observe(self._on_compute(name), names="value")
        for name in ("opacity", "colormap", "view"):
            c[name].observe(self._on_display(name), names="value")
        c["search"].observe(self._on_search, names="value")
        c["all_layers"].observe(self._fill_layers, names="value")
        c["upload"].observe(self._files.on_upload, names="value")
        c["url"].observe(self._files.on_url, names="value")
        c["export"].observe(self._files.on_export, names="value")
        self._map.on_probe(self._on_probe)

    # ----------------------------------------------------------------- actions
    # (the requests, stop and errors: StateRequests; here what is the Explorer's own)
    def set(self, **changes):
        """Change settings from Python, as the controls do (``image``, ``model``, ``layer``,
        ``target``, ``method``, ``precision``, SmoothGrad's, the view's); returns the new
        result. An error (an unknown class, layer or model...) shows in the status line, and
        the previous state and map are kept."""
        self._requests.set(changes)
        return self.result

    def close(self) -> None:
        """Close this widget and every widget it built; running work stops at its next
        progress report, and its results are dropped."""
        close_widget(self)
        super().close()

    def export(self, path, annotated: bool = True):
        """Write the current view: ``.png`` the picture (with ``annotated``, its title and
        colour bar too), ``.npy`` the map or ``.html`` a standalone figure; returns the path."""
        return self._files.export(path, annotated)

    def _ask(self, **changes) -> None:
        """A change made in the browser: queued off the kernel's loop (inline without one)."""
        self._requests.queue.submit(changes)

    def _normalize(self, changes: dict) -> dict:
        """A new photo without a class: its own top class. SmoothGrad's settings changed
        while it is off ask nothing of the engine: the state keeps them for when it is on."""
        if "image" in changes and "target" not in changes:
            changes["target"] = None
        return changes

    def _display_fields(self, state: ExplorerState) -> tuple:
        """The view's settings, and SmoothGrad's own while it is off: kept for when it is
        on, they ask nothing of the engine."""
        return DISPLAY if state.smooth else DISPLAY + SMOOTHGRAD_ONLY

    def _sync_controls(self, keep_text: bool = False) -> None:
        """Controls show the state (after a request, a change that failed, a ``set()``),
        less those whose newer value waits to be computed."""
        waiting = self._requests.queue.pending
        with self._requests.quiet():
            for name in COMPUTE_CONTROLS + DISPLAY:
                if name in waiting or name == "layer":
                    continue
                if name == "image":
                    show_choice(self._controls[name], self.state.image)
                else:
                    self._controls[name].value = getattr(self.state, name)
        self._fill_layers()
        self._show_settings(keep_text)

    def _on_compute(self, name: str):
        def changed(change):
            if self._requests.syncing:
                return
            current = self._requests.queue.current(name, getattr(self.state, name))
            if current != change["new"]:
                if name in ("smooth", "method"):  # now, not when the running work is done
                    asked = dict(smooth=self._controls["smooth"].value, method=self._controls["method"].value)
                    self._enable_for(**asked)
                self._ask(**{name: change["new"]})

        return changed

    def _on_display(self, name: str):
        def changed(change):
            if self._requests.syncing:
                return
            with errors_shown(self.status):  # (not busy: a computation may be running)
                self._show_display(**{name: change["new"]})

        return changed

    def _show_display(self, **changes) -> None:
        """Settings that ask nothing of the engine: the view's re-render the map on show;
        SmoothGrad's while it is off are checked now and kept. An older error in the status
        line is replaced by what the map shows (a probed pixel's readout is kept)."""
        changed = {k for k, v in changes.items() if getattr(self.state, k) != v}
        if changed & set(SMOOTHGRAD_ONLY):
            self.state = smoothing_kept(self.state, changes, self.explainer.device)
        else:
            self.state = replace(self.state, **changes)
        if changed & set(DISPLAY):
            self._render_display()
        if self.status.shows_error:
            self._render_status()

    def _show_settings(self, keep_text: bool = False) -> None:
        """The class box and the highlighted prediction name the explained class, or one
        picked since that waits (``keep_text``: what was typed stays beside its error);
        SmoothGrad's settings are live only while it is on, the layer only for methods
        that read one."""
        highlight(self._top, self._selected())
        if not keep_text and "target" not in self._requests.queue.pending:
            self._show_class(self._explained())
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
        waiting = self._requests.queue.pending.get("target")
        return waiting if isinstance(waiting, int) else self.result.class_id

    def _explained(self):
        """What the map on show explains: a contrast "A vs B", else its class id."""
        return self.state.target if isinstance(self.state.target, Contrast) else self.result.class_id

    def _show_class(self, target) -> None:
        """The class box names ``target``, a class id or a contrast (quietly: no request)."""
        box, shown = self._controls["search"], target_text(target, self.explainer.labels)
        if box.value != shown:
            with self._requests.quiet():
                box.value = shown

    def _on_pick(self, class_id: int) -> None:
        """A prediction clicked: its row and the class box show it at once (not when the
        running computation ends), then it is computed."""
        highlight(self._top, class_id)
        self._show_class(class_id)
        self._ask(target=class_id)

    def _on_search(self, change) -> None:
        if not self._requests.syncing:
            self._ask(target=parse_target(change["new"]))  # emptied: the top class again

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
        with self._requests.quiet():
            control.options = layer_options(shown)
            control.value = self.state.layer

    # ------------------------------------------------------------------ engine
    def _compute(self, state: ExplorerState, report) -> tuple[ExplorerState, Outcome]:
        """The engine part of a request (off the kernel's loop for a browser change):
        ``state`` resolved, and what to show."""
        return self._engine_work.run(state, report)

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
        with self._requests.quiet():
            self._controls["precision"].options = precisions_for(self.explainer.device)
            self._controls["precision"].value = self.state.precision
            self._controls["search"].options = class_options(self.explainer.labels)

    # ------------------------------------------------------------------ render
    def _apply(self, state: ExplorerState, outcome: Outcome) -> None:
        """Show what the engine work gave for ``state`` (on the loop's thread)."""
        self.state = state
        if outcome.explainer is not self.explainer:
            self.explainer = outcome.explainer
            self._fill_model_controls()
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
