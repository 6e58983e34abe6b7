"""Compare: N maps side by side in one figure, one per class, method, layer or model.

This module is the widget: its controls and how they, the figure, the probe table and the
metrics section follow the state. The state and its parsing live in :mod:`.compare_state`,
what the panels show (engine calls, scaling, probe values) in :mod:`.compare_panels`; their
public names are re-exported here, so imports from this module keep working.
"""
from __future__ import annotations

from typing import Optional, Sequence

import ipywidgets as W
import numpy as np

from ..api import get_explainer
from ..methods import list_methods
from ..models import DEFAULT_MODEL
from ..render import list_colormaps
from ..result import Explanation
from .common import (StatusLine, busy, control_row, image_choices, model_choices, next_state,
                     parse_target, probed_map)
from .compare_panels import (
    compute_panels,
    probe_table_html,
    scaled_maps,
    summary_line,
    value_at,
)
from .compare_state import (
    DEFAULT_VALUES,
    DIMENSIONS,
    DISPLAY,
    CompareState,
    check_state,
    default_values,
    parse_values,
)
from .metrics_panel import MetricsPanel
from .panels import HeatmapPanels

__all__ = ["Compare", "CompareState", "DEFAULT_VALUES", "DIMENSIONS", "DISPLAY", "parse_values",
           "value_at"]


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
        values = default_values(by, model) if values is None or (
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
            "model": W.Dropdown(options=model_choices(), value=s.model, description="model"),
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
                new = parse_target(new)
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
            changes["values"] = default_values(changes["by"], changes.get("model", self.state.model))
        if "values" in changes:
            changes["values"] = tuple(changes["values"])
        return changes

    def probe(self, x: float, y: float) -> list[float]:
        """Mark pixel (x, y) in every panel; returns each panel's value there as drawn (the
        [0, 1] heatmap at input resolution; a pixel method's map relative to its 99th
        percentile), or the raw map value in shared-scale mode."""
        self.probed = (float(x), float(y))
        self.panels.mark(x, y)
        return self._fill_table(x, y)

    def _fill_table(self, x: float, y: float) -> list[float]:
        shape = self.panels.image_shape
        shared = self.state.shared_scale
        values = [value_at(r.raw if shared else probed_map(r), x, y, shape) for r in self.results]
        self.table.value = probe_table_html(self._titles, values, x, y, shared)
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
        self.status.info(summary_line(state, results))
        flagged = [(t, r) for t, r in zip(titles, results) if r.flagged]
        if flagged:
            self.status.warn(f"{flagged[0][0]}: {flagged[0][1].status.message}")
        if self.probed is not None:
            self.probe(*self.probed)
        with busy([], self.status):  # a metric error is shown; the new maps stay
            self.metrics.refresh(new_figure=rebuilt)

    def _compute(self, s: CompareState) -> tuple[list[Explanation], np.ndarray, list[str], list]:
        check_state(s)  # a bad setting is not an engine call
        self.engine_calls += 1
        return compute_panels(s)

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
        return scaled_maps(self.results, self.state.shared_scale, len(self._titles))

    def _render(self) -> None:
        """Maps from the results (no engine call): per panel in [0, 1] or on a shared scale."""
        s, p = self.state, self.panels
        maps, zrange, label = self._scaled_maps()
        with p.figure.batch_update():
            p.set_maps(maps, self._titles, zrange=zrange, colorbar_title=label)
            p.set_opacity(s.opacity)
            p.set_colormap(s.colormap)
        if self.probed is not None:
            self.probe(*self.probed)

    def _compute_controls(self) -> list:
        return [self._controls[n] for n in ("image", "model", "by", "values", "method", "target",
                                            "layer")]
