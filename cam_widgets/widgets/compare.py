"""Compare: N maps side by side in one figure, one per class, method, layer or model."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import ipywidgets as W
import numpy as np

from ..api import get_explainer
from ..errors import InvalidParameterError, close_matches
from ..methods import get_method, list_methods
from ..models import DEFAULT_MODEL, list_models, resolve_class
from ..render import list_colormaps, shared_scale
from ..result import Explanation
from .common import (
    StatusLine,
    busy,
    control_row,
    display_map,
    image_choices,
    load_choice,
    next_state,
)
from .metrics_panel import MetricsPanel
from .panels import HeatmapPanels

#: What a comparison can vary; the other dimensions are fixed by their controls.
DIMENSIONS = ("class", "method", "layer", "model")
#: State fields whose change only re-renders (no engine call).
DISPLAY = ("shared_scale", "opacity", "colormap")
DEFAULT_VALUES = {"class": (242, 282), "method": ("gradcam", "gradcam++", "layercam"),
                  "model": (DEFAULT_MODEL, "vgg16")}


@dataclass(frozen=True)
class CompareState:
    """Everything Compare shows; ``values`` are the compared values of dimension ``by``."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    by: str = "class"
    values: tuple = DEFAULT_VALUES["class"]
    method: str = "gradcam"
    target: object = None
    layer: Optional[str] = None
    shared_scale: bool = False
    opacity: float = 0.5
    colormap: str = "viridis"


def parse_values(text: str) -> tuple:
    """``"242, tiger cat"`` -> ``(242, "tiger cat")``: comma-separated, integers kept as ints."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    return tuple(int(t) if t.isdigit() else t for t in items)


def value_at(m: np.ndarray, x: float, y: float, shape: tuple[int, int]) -> float:
    """Value of map ``m`` at pixel (x, y) of an image of ``shape`` (maps of any resolution)."""
    h, w = shape
    row = min(max(int(math.floor((y + 0.5) * m.shape[0] / h)), 0), m.shape[0] - 1)
    col = min(max(int(math.floor((x + 0.5) * m.shape[1] / w)), 0), m.shape[1] - 1)
    return float(m[row, col])


class Compare(W.VBox):
    """N maps of one photo in one linked figure, one per value of ``by``.

    Args:
        by: ``"class"`` (one batched backward), ``"method"``, ``"layer"`` (one backward for
            all layers) or ``"model"`` (zoo names; the photo is prepared for each model).
        values: the compared values (None: a default for ``by``).
        method, target, layer, model: the fixed dimensions (target None: the top class; with
            ``by="model"``, the first model's top class, so that every panel shows one class).
        shared_scale: one colour range over the raw maps (clipped at 0) instead of each
            map normalised to [0, 1].

    The "metrics" checkbox (off by default; ``self.metrics``, a
    :class:`~cam_widgets.widgets.metrics_panel.MetricsPanel`) adds a table of localization
    and faithfulness scores per panel against a typed, drawn or scene ground-truth box, and
    the deletion / insertion curve of one panel.
    """

    def __init__(self, image: str = "chelsea", model: str = DEFAULT_MODEL, by: str = "class",
                 values: Optional[Sequence] = DEFAULT_VALUES["class"], method: str = "gradcam",
                 target=None, layer: Optional[str] = None, shared_scale: bool = False) -> None:
        values = _default_values(by, model) if values is None or (
            by != "class" and tuple(values) == DEFAULT_VALUES["class"]) else tuple(values)
        self.state = CompareState(image=image, model=model, by=by, values=values, method=method,
                                  target=target, layer=layer, shared_scale=shared_scale)
        self.status = StatusLine()
        self.results: list[Explanation] = []
        self._sources: list = []  # (explainer, prepared image) of each panel, for metrics
        self.engine_calls = 0
        self.probed: Optional[tuple[float, float]] = None
        self._syncing = False
        self._controls = self._build_controls()
        self.table = W.HTML(value="")
        self.panels: Optional[HeatmapPanels] = None
        self._figure_box = W.Box([])
        self.metrics = MetricsPanel(self)
        super().__init__([self._layout(), self._figure_box, self.table, self.metrics.widget,
                          self.status.widget])
        self._line = ""
        with busy([], self.status):
            self._apply(self.state)
            self._line = self.status.line.value
        if self.panels is None:  # the first computation failed: empty panels, error shown
            self._titles = [str(v) for v in values] or ["(none)"]
            self._build_panels(np.zeros((224, 224, 3), np.uint8))
        self._sync_controls()
        self._link()

    # ---------------------------------------------------------------- controls
    def _build_controls(self) -> dict:
        s = self.state
        return {
            "image": W.Dropdown(options=image_choices(), value=s.image, description="image"),
            "model": W.Dropdown(options=list(list_models()), value=s.model, description="model"),
            "by": W.Dropdown(options=list(DIMENSIONS), value=s.by, description="compare"),
            "values": W.Text(description="values", continuous_update=False,
                             placeholder="242, tiger cat / gradcam, layercam / ..."),
            "method": W.Dropdown(options=[(m.title, m.name) for m in list_methods()],
                                 value=s.method, description="method"),
            "target": W.Combobox(placeholder="top class; or boxer, 282...", description="class",
                                 ensure_option=False, continuous_update=False),
            "layer": W.Dropdown(description="layer"),
            "shared_scale": W.ToggleButtons(options=[("per panel", False), ("shared scale", True)],
                                            value=s.shared_scale),
            "opacity": W.FloatSlider(value=s.opacity, min=0, max=1, step=0.05,
                                     description="opacity"),
            "colormap": W.Dropdown(options=list_colormaps(), value=s.colormap,
                                   description="colormap"),
        }

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox([control_row(c["image"], c["by"], c["values"]),
                       control_row(c["model"], c["method"], c["target"], c["layer"]),
                       control_row(c["shared_scale"], c["opacity"], c["colormap"])])

    def _link(self) -> None:
        for name, control in self._controls.items():
            control.observe(self._on_change(name), names="value")

    def _on_change(self, name: str):
        def changed(change):
            if self._syncing:
                return
            new = change["new"]
            if name == "values":
                new = parse_values(new)
            elif name == "target":
                text = new.strip()
                new = None if not text else int(text.split()[0]) if text.split()[0].isdigit() else text
            elif name == "layer":
                new = new or None
            if getattr(self.state, name) != new:
                self.set(**{name: new})
        return changed

    def _sync_controls(self, keep_text: bool = False) -> None:
        """Controls show the state (without triggering a computation); the varied one is off."""
        s, c = self.state, self._controls
        self._syncing = True
        try:
            for name in ("image", "model", "by", "method", "shared_scale", "opacity", "colormap"):
                c[name].value = getattr(s, name)
            if not keep_text:
                c["values"].value = ", ".join(str(v) for v in s.values)
                c["target"].value = "" if s.target is None else str(s.target)
            if s.by != "model" and getattr(self, "_options_model", None) != s.model:
                explainer = get_explainer(s.model)
                self._options_model = s.model
                c["layer"].options = [(f"default ({explainer.default_layer})", "")] + [
                    (f"{l.name}  {l.resolution}", l.name) for l in explainer.layers()]
                c["target"].options = [f"{i} {n}" for i, n in enumerate(explainer.labels)]
            c["layer"].value = s.layer or ""
        except Exception as error:  # noqa: BLE001 - shown in the widget
            self.status.error(error)
        finally:
            self._syncing = False
        for name, varied in (("target", "class"), ("method", "method"), ("layer", "layer"),
                             ("model", "model")):
            c[name].disabled = s.by == varied or (name == "layer" and s.by == "model")

    # ----------------------------------------------------------------- actions
    def set(self, **changes) -> list[Explanation]:
        """Change state fields from Python (as the controls do); returns the results.

        Errors (an unknown class, layer or model...) are shown in the status line; the
        previous state and figure are kept.
        """
        ok = False
        with busy(self._compute_controls(), self.status):
            new, display_only = next_state("Compare", self.state, changes, DISPLAY,
                                           self._normalize)
            if display_only:  # nothing for the engine: re-render only
                self.state = new
                self._render()
                self.status.line.value = self._line  # the last good state's line, not an old error
            else:
                self._apply(new)
                self._line = self.status.line.value
            ok = True
        self._sync_controls(keep_text=not ok)
        return self.results

    def _normalize(self, changes: dict) -> dict:
        if "by" in changes and "values" not in changes:
            changes["values"] = _default_values(changes["by"], changes.get("model", self.state.model))
        if "values" in changes:
            changes["values"] = tuple(changes["values"])
        return changes

    def probe(self, x: float, y: float) -> list[float]:
        """Mark pixel (x, y) in every panel; returns each panel's value there (the [0, 1]
        heatmap at input resolution, or the raw map value in shared-scale mode)."""
        self.probed = (float(x), float(y))
        self.panels.mark(x, y)
        return self._fill_table(x, y)

    def _fill_table(self, x: float, y: float) -> list[float]:
        shape = self.panels.image_shape
        shared = self.state.shared_scale
        values = [value_at(r.raw if shared else r.heatmap, x, y, shape) for r in self.results]
        rows = "".join(f"<tr><td>{html.escape(t)}</td><td style='text-align:right'>{v:.4g}</td></tr>"
                       for t, v in zip(self._titles, values))
        kind = "raw value" if shared else "value (0..1)"
        self.table.value = (f"<table class='cw-probe'><tr><th>pixel ({x:.0f}, {y:.0f})</th>"
                            f"<th>{kind}</th></tr>{rows}</table>")
        return values

    def _on_probe(self, panel: int, x: float, y: float) -> None:
        with busy([], self.status):
            self.probe(x, y)
            self.metrics.probed()

    # ------------------------------------------------------------------ engine
    def _apply(self, state: CompareState) -> None:
        """Compute for ``state``; the state changes only when the computation succeeds."""
        results, rgb, titles, sources = self._compute(state)
        self.state, self.results, self._titles, self._sources = state, results, titles, sources
        rebuilt = self.panels is None or self.panels.count != len(results)
        if rebuilt:
            self._build_panels(rgb)
        else:
            if getattr(self, "_photo_key", None) != (state.image, rgb.shape):
                self.panels.set_image(rgb)
            self._render()
        self._photo_key = (state.image, rgb.shape)
        seconds = sum(r.seconds for r in results) if state.by == "model" else results[0].seconds
        fixed = {"class": f"{state.method} @ {results[0].layer or 'input'}",
                 "method": f"class {results[0].label} ({results[0].class_id})",
                 "layer": f"{state.method}, class {results[0].label} ({results[0].class_id})",
                 "model": f"{state.method}, class {results[0].label} ({results[0].class_id})"}
        self.status.info(f"{len(results)} maps by {state.by}: {fixed[state.by]}"
                         f"  ({seconds * 1000:.0f} ms)")
        flagged = [(t, r) for t, r in zip(titles, results) if r.flagged]
        if flagged:
            self.status.warn(f"{flagged[0][0]}: {flagged[0][1].status.message}")
        if self.probed is not None:
            self.probe(*self.probed)
        with busy([], self.status):  # a metric error is shown; the new maps stay
            self.metrics.refresh(new_figure=rebuilt)

    def _compute(self, s: CompareState) -> tuple[list[Explanation], np.ndarray, list[str], list]:
        if s.by not in DIMENSIONS:
            raise InvalidParameterError(
                f"'by' must be one of {', '.join(DIMENSIONS)} (got {s.by!r})."
                + close_matches(str(s.by), DIMENSIONS))
        if not s.values:
            raise InvalidParameterError(f"'values' must list at least one {s.by} (got none).")
        self.engine_calls += 1
        rgb = load_choice(s.image)
        if s.by == "model":
            return self._compute_models(s, rgb)
        explainer = get_explainer(s.model)
        prepared = explainer.prepare(rgb)
        target = None if s.target is None else resolve_class(s.target, explainer.labels)
        if s.by == "class":
            results = explainer.explain_classes(prepared, list(s.values), s.method, s.layer)
            titles = [f"{r.label} ({r.class_id}) p={r.probability:.3f}" for r in results]
        elif s.by == "method":
            results = [explainer.explain(prepared, m, target, s.layer if get_method(m).needs_layer
                                         else None) for m in s.values]
            titles = [get_method(r.method).title for r in results]
        else:
            if not get_method(s.method).needs_layer:
                raise InvalidParameterError(
                    f"comparing layers needs a layer method such as 'gradcam' (got {s.method!r}, "
                    f"which works on the input).")
            results = explainer.explain_layers(prepared, target, s.method, list(s.values))
            titles = [f"{r.layer}  {r.raw.shape[0]}x{r.raw.shape[1]}" for r in results]
        return results, prepared.rgb, titles, [(explainer, prepared)] * len(results)

    def _compute_models(self, s: CompareState, rgb: np.ndarray):
        results, photo, class_id, sources = [], None, s.target, []
        for name in s.values:
            explainer = get_explainer(name)
            prepared = explainer.prepare(rgb)  # each model's own input size
            sources.append((explainer, prepared))
            photo = prepared.rgb if photo is None else photo
            result = explainer.explain(prepared, s.method, class_id, s.layer)
            class_id = result.class_id if class_id is None else class_id
            results.append(result)
        titles = [f"{name}: {r.label} p={r.probability:.3f}" for name, r in zip(s.values, results)]
        return results, photo, titles, sources

    # ------------------------------------------------------------------ render
    def _build_panels(self, rgb: np.ndarray) -> None:
        """A new figure in its final state, placed only once built (see HeatmapPanels)."""
        maps, zrange, label = self._scaled_maps()
        self.panels = HeatmapPanels(rgb, maps, self._titles, opacity=self.state.opacity,
                                    colormap=self.state.colormap, zrange=zrange,
                                    colorbar_title=label, probe=self.probed)
        self.panels.on_probe(self._on_probe)
        self.metrics.figure_built(self.panels.figure)
        self._figure_box.children = [self.panels.figure]
        if self.probed is not None:
            self._fill_table(*self.probed)

    def _scaled_maps(self):
        """Maps per panel in [0, 1], or raw maps clipped at 0 on one shared scale."""
        if not self.results:
            return [np.zeros((7, 7), np.float32)] * len(self._titles), (0.0, 1.0), ""
        if self.state.shared_scale:
            clipped = [np.maximum(r.raw, 0.0) for r in self.results]
            lo, hi = shared_scale(clipped)
            unit = 10.0 ** math.floor(math.log10(hi)) if hi > 0 else 1.0
            return [m / unit for m in clipped], (lo / unit, hi / unit), f"x{unit:.0e}"
        return [display_map(r) for r in self.results], (0.0, 1.0), ""

    def _render(self) -> None:
        """Maps from the results (no engine call): per panel in [0, 1] or on a shared scale."""
        s, p = self.state, self.panels
        maps, zrange, label = self._scaled_maps()
        with p.figure.batch_update():
            p.set_maps(maps, self._titles, zrange=zrange)
            p.figure.layout.coloraxis.colorbar.title.text = label
            p.set_opacity(s.opacity)
            p.set_colormap(s.colormap)
        if self.probed is not None:
            self.probe(*self.probed)

    def _compute_controls(self) -> list:
        return [self._controls[n] for n in ("image", "model", "by", "values", "method", "target",
                                            "layer")]


def _default_values(by: str, model: str) -> tuple:
    if by == "layer":
        from .study_base import stage_layers

        return tuple(stage_layers(get_explainer(model), max_panels=4))
    return DEFAULT_VALUES.get(by, ())
