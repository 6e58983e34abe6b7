"""The Explorer: one image, one model, one map, every control linked to one state object.

This module is the widget: how its controls, figure and status line follow the state. The
state and the decisions made from it live in :mod:`.explorer_state`, the controls and the
prediction rows in :mod:`.explorer_controls`; the public names of the state module are
re-exported here, so imports from this module keep working.
"""
from __future__ import annotations

import os
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator, Optional

import ipywidgets as W

from ..api import get_explainer
from ..data import load_image
from ..methods import get_method
from ..models import DEFAULT_MODEL, resolve_class
from ..result import Explanation
from .common import (StatusLine, busy, colorbar_note, display_map, parse_target, precisions_for,
                     probed_map)
from .explorer_controls import (TOP_PREDICTIONS, build_controls, explorer_layout, prediction_rows,
                                show_predictions)
from .layer_menu import layer_menu, layer_options
from .explorer_state import (
    COMPUTE,
    COMPUTE_CONTROLS,
    SMOOTHGRAD_ONLY,
    UPLOAD_PREFIX,
    ExplorerState,
    explain_params,
    export_stem,
    photo_of,
    probe_message,
    result_message,
    static_png,
)
from .panels import HeatmapPanels

__all__ = ["COMPUTE", "COMPUTE_CONTROLS", "Explorer", "ExplorerState"]


class Explorer(W.VBox):
    """Pick an image, model, layer, class and method; see the map update in place.

    Args:
        image: a bundled sample or scene name ("chelsea", "scene:two_class").
        model: a zoo name; the engine is shared with every other widget on that model.
        static: draw PNG overlays instead of a Plotly FigureWidget (for front ends that
            cannot show one).
    """

    def __init__(self, image: str = "chelsea", model: str = DEFAULT_MODEL,
                 method: str = "gradcam", target=None, layer: Optional[str] = None,
                 static: bool = False) -> None:
        self.state = ExplorerState(image=image, model=model, method=method, layer=layer)
        self.status = StatusLine()
        self.result: Optional[Explanation] = None
        self.engine_calls = 0
        self._syncing = False
        self._controls = build_controls(self.state)
        self._top = prediction_rows(lambda class_id: self.set(target=class_id))
        self._prepare_model()
        self.state.target = None if target is None else resolve_class(target, self.explainer.labels)
        first = self._compute()
        self.static = static
        if static:
            self.panels = None
            self.view = W.Image(value=b"", format="png")
            self._render_display()
        else:  # built in its final state: no update before the browser draws it
            self.panels = HeatmapPanels(self._prepared().rgb, [display_map(first)],
                                        [first.title], opacity=self.state.opacity,
                                        colormap=self.state.colormap, zrange=(0.0, 1.0),
                                        view=self.state.view, colorbar_title=colorbar_note([first]))
            self.view = self.panels.figure
        super().__init__(explorer_layout(self._controls, self._top, self.view, self.status.widget))
        self._render_status()
        self._show_settings()
        self._link()

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
        if self.panels is not None:
            self.panels.on_probe(self._on_probe)

    # ----------------------------------------------------------------- actions
    def set(self, **changes) -> Explanation:
        """Change state fields from Python (as the controls do) and return the new result.

        Errors (an unknown class name, missing weights...) are shown in the status line and
        leave the previous state and view in place.
        """
        previous = dict(vars(self.state))
        with busy(self._compute_controls(), self.status):
            try:
                self._apply(changes)
            except Exception:
                vars(self.state).update(previous)
                if "model" in changes:
                    self._prepare_model()
                self._sync_controls()
                raise
        self._show_settings()
        return self.result

    def _apply(self, changes: dict) -> None:
        if "image" in changes and "target" not in changes:
            changes = dict(changes, target=None)  # a new photo: explain its own top class
        for key, value in changes.items():
            if key == "target" and value is not None:
                value = resolve_class(value, self.explainer.labels)
            setattr(self.state, key, value)
        if "model" in changes:
            self._prepare_model()
        if any(key in COMPUTE and (self.state.smooth or key not in SMOOTHGRAD_ONLY)
               for key in changes):
            self._compute()
        self._render()

    def _sync_controls(self) -> None:
        """Controls show the state again (after a change that failed)."""
        with self._quiet():
            for name in COMPUTE_CONTROLS:
                if name != "layer":
                    self._controls[name].value = getattr(self.state, name)
        self._fill_layers()

    def _on_compute(self, name: str):
        def changed(change):
            if not self._syncing and getattr(self.state, name) != change["new"]:
                self.set(**{name: change["new"]})
        return changed

    def _on_display(self, name: str):
        def changed(change):
            setattr(self.state, name, change["new"])
            with busy([], self.status):
                self._render_display()
        return changed

    def _show_settings(self) -> None:
        """The class box names the explained class; SmoothGrad's settings are live only
        while it is on, the layer only for methods that read one."""
        box, shown = self._controls["search"], f"{self.result.class_id} {self.result.label}"
        if box.value != shown:
            with self._quiet():
                box.value = shown
        if self.state.layer not in {value for _, value in self._controls["layer"].options}:
            self._fill_layers()  # a layer set from Python, deeper than the blocks listed
        for name in SMOOTHGRAD_ONLY:
            self._controls[name].disabled = not self.state.smooth
        self._controls["layer"].disabled = not get_method(self.state.method).needs_layer

    def _on_search(self, change) -> None:
        if not self._syncing:
            self.set(target=parse_target(change["new"]))  # emptied: the top class again

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Controls written from the state: their observers must not act on it."""
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    def _on_upload(self, change) -> None:
        files = change["new"]
        if files:
            with busy(self._compute_controls(), self.status):
                item = files[0]
                self._add_image(item["name"], load_image(bytes(item["content"])))

    def _on_url(self, change) -> None:
        if change["new"].strip():  # a download may take seconds: nothing piles up meanwhile
            with busy(self._compute_controls(), self.status):
                self._add_image(change["new"].strip(), load_image(change["new"].strip()))

    def _add_image(self, name: str, rgb) -> None:
        self.state.uploads[name] = rgb
        control = self._controls["image"]
        control.options = list(control.options) + [(f"yours: {name}", f"{UPLOAD_PREFIX}{name}")]
        control.value = f"{UPLOAD_PREFIX}{name}"

    def _on_probe(self, panel: int, x: float, y: float) -> None:
        self.panels.mark(x, y)
        r = self.result
        self.status.info(probe_message(probed_map(r), x, y, r.heatmap.shape, colorbar_note([r])))

    def _on_export(self, change) -> None:
        suffix = change["new"]
        if suffix:
            with busy([], self.status):
                stem = export_stem(self.state, self.result.class_id)
                path = self.export(Path("exports") / f"{stem}{suffix}")
                self.status.download(f"wrote {path};", path)
            self._controls["export"].value = ""

    def export(self, path: os.PathLike) -> Path:
        """Write the current view: ``.png`` overlay, ``.npy`` map or standalone ``.html``."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.result.save(path, alpha=self.state.opacity, colormap=self.state.colormap)

    def _fill_layers(self, change=None) -> None:
        """The layer menu: the model's blocks (every spatial layer with "all layers")."""
        shown = layer_menu(self.explainer.layers(), self.explainer.default_layer,
                           self.state.layer, self._controls["all_layers"].value)
        control = self._controls["layer"]
        with self._quiet():
            control.options = layer_options(shown)
            control.value = self.state.layer

    # ------------------------------------------------------------------ engine
    def _prepare_model(self) -> None:
        self.explainer = get_explainer(self.state.model)
        if self.state.layer not in {l.name for l in self.explainer.layers()}:
            self.state.layer = self.explainer.default_layer
        self._fill_layers()
        options = precisions_for(self.explainer.device)
        if self.state.precision not in {value for _, value in options}:
            self.state.precision = "fp32"
        self._controls["precision"].options = options
        self._controls["precision"].value = self.state.precision
        self._controls["search"].options = [f"{i} {n}" for i, n in enumerate(self.explainer.labels)]

    def _compute(self) -> Explanation:
        """Engine call for the current state (cached forward; progress for long work)."""
        s = self.state
        self.engine_calls += 1
        prepared = self._prepared()
        params = explain_params(s, self.status.report)
        self.result = self.explainer.explain(prepared, s.method, s.target, s.layer, **params)
        self._show_predictions(prepared)
        return self.result

    def _prepared(self):
        key = (self.state.model, self.state.image)
        if getattr(self, "_prepared_key", None) != key:
            self._prepared_image = self.explainer.prepare(photo_of(self.state))
            self._prepared_key = key
            if getattr(self, "panels", None) is not None:
                self.panels.set_image(self._prepared_image.rgb)
        return self._prepared_image

    def _show_predictions(self, prepared) -> None:
        """Top-5 as a clickable bar chart: a click explains that class."""
        show_predictions(self._top, self.explainer.predict(prepared, top=TOP_PREDICTIONS),
                         self.result.class_id)

    # ------------------------------------------------------------------ render
    def _render(self) -> None:
        r = self.result
        if self.panels is not None:
            self.panels.set_maps([display_map(r)], [r.title], zrange=(0.0, 1.0),
                                 colorbar_title=colorbar_note([r]))
        self._render_display()
        self._render_status()

    def _render_status(self) -> None:
        r = self.result
        if r.flagged:
            self.status.warn(r.status.message)
        else:
            self.status.info(result_message(r))

    def _render_display(self) -> None:
        s = self.state
        if self.panels is None:
            self.view.value = static_png(self.result, s)
            return
        with self.panels.figure.batch_update():
            self.panels.set_colormap(s.colormap)
            self.panels.set_view(s.view, s.opacity)

    def _compute_controls(self) -> list:
        """Disabled while computing: no request piles up behind a slow one."""
        buttons = [row.children[0] for row in self._top.children]
        inputs = ("search", "upload", "url", "all_layers", "export")
        return [self._controls[n] for n in COMPUTE_CONTROLS + inputs] + buttons
