"""The Explorer: one image, one model, one map, every control linked to one state object."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import ipywidgets as W

from ..api import get_explainer
from ..data import load_image
from ..methods import get_method, list_methods
from ..models import DEFAULT_MODEL, list_models, resolve_class
from ..render import list_colormaps
from ..result import Explanation
from .common import (
    StatusLine,
    busy,
    control_row,
    display_map,
    image_choices,
    load_choice,
    precisions_for,
)
from .panels import HeatmapPanels

#: Controls whose change needs the engine; the others only re-render.
COMPUTE = ("image", "model", "layer", "target", "method", "smooth", "noise", "samples",
           "precision")
#: The controls that write those settings (the class has its own search box).
COMPUTE_CONTROLS = ("image", "model", "layer", "method", "smooth", "noise", "samples", "precision")


@dataclass
class ExplorerState:
    """Everything the Explorer shows; the controls write here, the view reads from here."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    layer: Optional[str] = None
    target: Optional[int] = None
    method: str = "gradcam"
    smooth: bool = False
    noise: float = 0.2
    samples: int = 20
    precision: str = "fp32"
    opacity: float = 0.5
    colormap: str = "viridis"
    view: str = "overlay"
    uploads: dict = field(default_factory=dict)


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
        self._controls = self._build_controls()
        self._top = W.VBox([])
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
                                        view=self.state.view)
            self.view = self.panels.figure
        super().__init__([self._layout(), self.view, self.status.widget])
        self._render_status()
        self._link()

    # ---------------------------------------------------------------- controls
    def _build_controls(self) -> dict:
        s = self.state
        c = {
            "image": W.Dropdown(options=image_choices(), value=s.image, description="image"),
            "upload": W.FileUpload(accept="image/*", multiple=False, description="upload"),
            "url": W.Text(placeholder="https://... (when online)", description="URL",
                          continuous_update=False),
            "model": W.Dropdown(options=list(list_models()), value=s.model, description="model"),
            "layer": W.Dropdown(description="layer"),
            "method": W.Dropdown(options=[(m.title, m.name) for m in list_methods()],
                                 value=s.method, description="method"),
            "search": W.Combobox(placeholder="search a class: boxer, 282...", description="class",
                                 ensure_option=False, continuous_update=False),
            "smooth": W.Checkbox(value=s.smooth, description="SmoothGrad"),
            "noise": W.FloatSlider(value=s.noise, min=0.0, max=0.5, step=0.05, description="noise",
                                   continuous_update=False),
            "samples": W.IntSlider(value=s.samples, min=1, max=100, description="samples",
                                   continuous_update=False),
            # SmoothGrad's noisy batches in mixed precision (fp16 on a GPU: ~1.5x faster,
            # maps at r >= 0.998 of fp32; see benchmarks/RESULTS.md)
            "precision": W.Dropdown(options=[("fp32", "fp32")], value="fp32",
                                    description="precision"),  # options: _prepare_model
            "opacity": W.FloatSlider(value=s.opacity, min=0, max=1, step=0.05,
                                     description="opacity", continuous_update=True),
            "colormap": W.Dropdown(options=list_colormaps(), value=s.colormap,
                                   description="colormap"),
            "view": W.ToggleButtons(options=["overlay", "raw"], value=s.view,
                                    style={"button_width": "72px"}),
            "export": W.Dropdown(options=[("export...", ""), ("PNG", ".png"), (".npy", ".npy"),
                                          ("HTML", ".html")], value="", description=""),
        }
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox([
            control_row(c["image"], c["upload"], c["url"]),
            control_row(c["model"], c["layer"], c["method"]),
            control_row(c["search"], c["smooth"], c["noise"], c["samples"], c["precision"]),
            control_row(c["opacity"], c["colormap"], c["view"], c["export"]),
            self._top,
        ])

    def _link(self) -> None:
        c = self._controls
        for name in COMPUTE_CONTROLS:
            c[name].observe(self._on_compute(name), names="value")
        for name in ("opacity", "colormap", "view"):
            c[name].observe(self._on_display(name), names="value")
        c["search"].observe(self._on_search, names="value")
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
        return self.result

    def _apply(self, changes: dict) -> None:
        for key, value in changes.items():
            if key == "target" and value is not None:
                value = resolve_class(value, self.explainer.labels)
            setattr(self.state, key, value)
        if "model" in changes:
            self._prepare_model()
        if any(key in COMPUTE for key in changes):
            self._compute()
        self._render()

    def _sync_controls(self) -> None:
        """Controls show the state again (after a change that failed)."""
        for name in COMPUTE_CONTROLS:
            self._controls[name].value = getattr(self.state, name)

    def _on_compute(self, name: str):
        def changed(change):
            if getattr(self.state, name) != change["new"]:
                self.set(**{name: change["new"]})
        return changed

    def _on_display(self, name: str):
        def changed(change):
            setattr(self.state, name, change["new"])
            with busy([], self.status):
                self._render_display()
        return changed

    def _on_search(self, change) -> None:
        text = change["new"].strip()
        if text:
            self.set(target=int(text.split()[0]) if text.split()[0].isdigit() else text)

    def _on_upload(self, change) -> None:
        files = change["new"]
        if files:
            with busy([], self.status):
                item = files[0]
                self._add_image(item["name"], load_image(bytes(item["content"])))

    def _on_url(self, change) -> None:
        if change["new"].strip():
            with busy([], self.status):
                self._add_image(change["new"].strip(), load_image(change["new"].strip()))

    def _add_image(self, name: str, rgb) -> None:
        self.state.uploads[name] = rgb
        control = self._controls["image"]
        control.options = list(control.options) + [(f"yours: {name}", f"upload:{name}")]
        control.value = f"upload:{name}"

    def _on_probe(self, panel: int, x: float, y: float) -> None:
        self.panels.mark(x, y)
        heat = self.result.heatmap
        row = min(max(int(round(y)), 0), heat.shape[0] - 1)
        col = min(max(int(round(x)), 0), heat.shape[1] - 1)
        self.status.info(f"pixel ({col}, {row}): value {heat[row, col]:.3f}")

    def _on_export(self, change) -> None:
        suffix = change["new"]
        if suffix:
            with busy([], self.status):
                path = self.export(Path("exports") / f"{self._slug()}{suffix}")
                self.status.info(f"wrote {path}")
            self._controls["export"].value = ""

    def export(self, path: os.PathLike) -> Path:
        """Write the current view: ``.png`` overlay, ``.npy`` map or standalone ``.html``."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.result.save(path, alpha=self.state.opacity, colormap=self.state.colormap)

    # ------------------------------------------------------------------ engine
    def _prepare_model(self) -> None:
        self.explainer = get_explainer(self.state.model)
        layers = self.explainer.layers()
        default = self.explainer.default_layer
        control = self._controls["layer"]
        control.options = [(f"{l.name}  {l.resolution}", l.name) for l in layers]
        if self.state.layer not in {l.name for l in layers}:
            self.state.layer = default
        control.value = self.state.layer
        options = precisions_for(self.explainer.device)
        if self.state.precision not in {value for _, value in options}:
            self.state.precision = "fp32"
        self._controls["precision"].options = options
        self._controls["precision"].value = self.state.precision
        self._controls["search"].options = [f"{i} {n}" for i, n in enumerate(self.explainer.labels)]

    def _rgb(self):
        image = self.state.image
        if image.startswith("upload:"):
            return self.state.uploads[image[len("upload:"):]]
        return load_choice(image)

    def _compute(self) -> Explanation:
        """Engine call for the current state (cached forward; progress for long work)."""
        s = self.state
        self.engine_calls += 1
        prepared = self._prepared()
        params = dict(noise=s.noise, samples=s.samples, precision=s.precision,
                      progress=self.status.report) if s.smooth else {}
        if not s.smooth and "extra_forwards" in get_method(s.method).needs:
            params["progress"] = self.status.report
        self.result = self.explainer.explain(prepared, s.method, s.target, s.layer, **params)
        self._show_predictions(prepared)
        return self.result

    def _prepared(self):
        key = (self.state.model, self.state.image)
        if getattr(self, "_prepared_key", None) != key:
            self._prepared_image = self.explainer.prepare(self._rgb())
            self._prepared_key = key
            if getattr(self, "panels", None) is not None:
                self.panels.set_image(self._prepared_image.rgb)
        return self._prepared_image

    def _show_predictions(self, prepared) -> None:
        """Top-5 as a clickable bar chart; rows are built once and updated in place."""
        if not self._top.children:
            self._top.children = [self._prediction_row() for _ in range(5)]
        predictions = self.explainer.predict(prepared, top=5)
        for row, p in zip(self._top.children, predictions):
            button, bar, label = row.children
            button.class_id = p.class_id
            button.description = f"{p.class_id} {p.label}"[:28]
            button.tooltip = f"{p.label} ({p.class_id}): {p.probability:.3f}"
            button.button_style = "info" if p.class_id == self.result.class_id else ""
            bar.value, label.value = p.probability, f"{p.probability:.3f}"

    def _prediction_row(self) -> W.HBox:
        button = W.Button(layout=W.Layout(width="220px"))
        button.on_click(lambda b: self.set(target=b.class_id))
        return W.HBox([button, W.FloatProgress(min=0, max=1, layout=W.Layout(width="200px")),
                       W.Label()])

    # ------------------------------------------------------------------ render
    def _render(self) -> None:
        r = self.result
        if self.panels is not None:
            self.panels.set_maps([display_map(r)], [r.title], zrange=(0.0, 1.0))
        self._render_display()
        self._render_status()

    def _render_status(self) -> None:
        r = self.result
        if r.flagged:
            self.status.warn(r.status.message)
        else:
            self.status.info(f"{r.title}  ({r.seconds * 1000:.0f} ms on {r.device})")

    def _render_display(self) -> None:
        s = self.state
        if self.panels is None:
            from ..render import to_png_bytes
            self.view.value = to_png_bytes(self.result.overlay(
                0.0 if s.view == "raw" else s.opacity, s.colormap) if s.view != "raw"
                else self.result.overlay(1.0, s.colormap))
            return
        with self.panels.figure.batch_update():
            self.panels.set_colormap(s.colormap)
            self.panels.set_view(s.view, s.opacity)

    def _compute_controls(self) -> list:
        return [self._controls[n] for n in COMPUTE_CONTROLS + ("search",)]

    def _slug(self) -> str:
        s = self.state
        return f"{s.image.replace(':', '_')}_{s.method}_{self.result.class_id}"
