"""Metrics section of :class:`~cam_widgets.widgets.compare.Compare`: scores per panel.

:class:`MetricsPanel` wires the pure parts of :mod:`.metrics_view` to a Compare: a "metrics"
checkbox (off by default: nothing is computed while it is off), a box typed as
``x0,y0,x1,y1`` or drawn with the figure's "draw rectangle" button (empty: a bundled scene's
ground-truth boxes), the table, and the deletion / insertion curve of one panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as W

from ...metrics import deletion_insertion
from ..shared.controls import control_row
from ..shared.status import busy
from .metrics_view import (
    Box,
    curve_html,
    metrics_table_html,
    panel_metrics,
    parse_box,
    scale_box,
    scene_targets,
)

#: Name of the layout shapes that show the box (drawn shapes have no name).
BOX_SHAPE = "cw-box"
#: What a FigureWidget's browser view sends (after drawing, on relayout, on click).
_BROWSER_MESSAGES = ["_js2py_layoutDelta", "_js2py_relayout", "_js2py_pointsCallback"]


# --------------------------------------------------------------------------- wiring
class MetricsPanel:
    """The metrics section of a Compare (``host``): checkbox, box, table and curve.

    The host calls :meth:`figure_built` for each new figure and :meth:`refresh` after each
    engine computation; everything else is driven by this section's controls. While the
    checkbox is off nothing is computed (``calls`` and ``curve_calls`` count computations).
    """

    #: deletion / insertion steps: 2 x (steps + 1) forwards per curve (25 keeps CPUs interactive).
    steps = 25

    def __init__(self, host) -> None:
        self.host = host
        self.toggle = W.Checkbox(
            value=False, description="metrics", indent=False, layout=W.Layout(width="90px")
        )
        self.box = W.Text(
            description="box",
            continuous_update=False,
            placeholder="x0,y0,x1,y1 or draw; empty: scene's boxes",
        )
        self.curve_for = W.Dropdown(
            description="curve for panel", options=[], style={"description_width": "initial"}
        )
        self.table = W.HTML(value="")
        self.curve = W.HTML(value="")
        self._details = W.VBox(
            [control_row(self.box, self.curve_for), self.table, self.curve], layout=W.Layout(display="none")
        )
        self.widget = W.VBox([self.toggle, self._details])
        self.calls = 0
        self.curve_calls = 0
        self.rows: list[dict] = []
        self.targets: list = []
        self.box_xyxy: Box | None = None
        self.curve_result: dict | None = None
        self._curve_cache: dict = {}
        self._pending: Any | None = None  # a new figure not yet drawn: shapes wait
        self._syncing = False
        self._drawing = False  # our own shape edits are not drawn rectangles
        self._shapes: list[dict] = []
        self._watched: list = []  # new figures waiting for their first browser message
        self.toggle.observe(self._on_toggle, names="value")
        self.box.observe(self._on_box, names="value")
        self.curve_for.observe(self._on_curve_for, names="value")

    @property
    def on(self) -> bool:
        return bool(self.toggle.value)

    # -------------------------------------------------------------- host hooks
    def figure_built(self, figure) -> None:
        """A new figure: listen for drawn rectangles; its shapes wait until the browser drew it."""
        figure.observe(self._on_relayout, names="_js2py_relayout")
        self._pending = figure
        for old in self._watched:  # replaced before the browser spoke: stop waiting
            old.unobserve(self._on_drawn, names=_BROWSER_MESSAGES)
        self._watched = [figure]
        figure.observe(self._on_drawn, names=_BROWSER_MESSAGES)

    def refresh(self, new_figure: bool = False) -> None:
        """Recompute the table (and the curve if its map changed); nothing while off."""
        host = self.host
        self._sync_curve_options()
        if not self.on or not host.results:
            return
        self.calls += 1
        shape = tuple(host.panels.image_shape)
        display = []  # boxes per panel in pixels of the shown photo
        for r in host.results:
            display.append(
                [self.box_xyxy]
                if self.box_xyxy is not None
                else scene_targets(host.state.image, r.class_id, shape)
            )
        self.targets = [
            None if t is None else [scale_box(b, shape, r.heatmap.shape) for b in t]
            for t, r in zip(display, host.results)
        ]
        self.rows = panel_metrics(host.sources, host.results, self.targets)
        if self.box_xyxy is not None:
            source = f"box {','.join(map(str, self.box_xyxy))} (typed or drawn)"
        elif display[0] is not None:
            source = f"ground-truth boxes of {host.state.image} (those of each panel's class)"
        else:
            source = "no box: type x0,y0,x1,y1 or draw one with the figure's rectangle tool"
        self.table.value = metrics_table_html(host.titles, self.rows, source)
        self._shapes = self._box_shapes(display)
        if not new_figure:
            self._draw_shapes()
        self._update_curve()

    def probed(self) -> None:
        """The user clicked the figure: it is drawn, pending shapes can go."""
        if self.on and self._pending is not None and self._pending is self.host.panels.figure:
            self._draw_shapes()

    # ---------------------------------------------------------------- controls
    def _on_toggle(self, change) -> None:
        with busy([], self.host.status):
            self._details.layout.display = "" if self.on else "none"
            if self.on:
                self.refresh()
                self.host.status.restore()
            else:
                self._shapes = []
                self._draw_shapes(modebar=False)
                self.table.value = self.curve.value = ""

    def _on_box(self, change) -> None:
        if self._syncing:
            return
        with busy([self.box], self.host.status):
            self.box_xyxy = parse_box(change["new"], tuple(self.host.panels.image_shape))
            self.refresh()
            self.host.status.restore()  # a fixed box clears its error

    def _on_curve_for(self, change) -> None:
        if self._syncing or not self.on:
            return
        with busy([self.curve_for], self.host.status):
            self._update_curve()

    def _on_relayout(self, change) -> None:
        """A rectangle drawn in any panel becomes the box of every panel.

        The browser's drawrect tool sends a relayout with the full ``shapes`` list; it is read
        from the message itself (plotly's Python-side ``layout.shapes`` objects can lag behind
        a relayout that adds a shape).
        """
        data = (change["new"] or {}).get("relayout_data") or {}
        shapes = data.get("shapes")
        if not isinstance(shapes, (list, tuple)) or not self.on or self._drawing:
            return
        drawn = [
            s
            for s in shapes
            if isinstance(s, dict)
            and s.get("name") != BOX_SHAPE
            and s.get("type", "rect") == "rect"
            and all(isinstance(s.get(k), (int, float)) for k in ("x0", "x1", "y0", "y1"))
        ]
        if not drawn:
            return
        s = drawn[-1]
        with busy([], self.host.status):
            self._take_drawn(s)

    def _take_drawn(self, s: dict) -> None:
        h, w = self.host.panels.image_shape
        x0, x1 = sorted((float(s["x0"]), float(s["x1"])))
        y0, y1 = sorted((float(s["y0"]), float(s["y1"])))
        x0, y0 = max(int(round(x0 + 0.5)), 0), max(int(round(y0 + 0.5)), 0)
        x1, y1 = min(max(int(round(x1 + 0.5)), x0 + 1), w), min(max(int(round(y1 + 0.5)), y0 + 1), h)
        text = f"{x0},{y0},{x1},{y1}"
        if self.box.value == text:
            self._on_box({"new": text})  # same box: still replace the drawn shape by ours
        else:
            self.box.value = text

    def _on_drawn(self, change) -> None:
        figure = change["owner"]
        if figure in self._watched:  # the first message from the browser: it drew the figure
            self._watched.remove(figure)
            figure.unobserve(self._on_drawn, names=_BROWSER_MESSAGES)
        if self.on and self._pending is figure and figure is self.host.panels.figure:
            self._draw_shapes()

    # ----------------------------------------------------------------- helpers
    def _sync_curve_options(self) -> None:
        titles = list(self.host.titles) if self.host.results else []
        options = [(t, k) for k, t in enumerate(titles)]
        if list(self.curve_for.options) != options:
            keep = self.curve_for.value if self.curve_for.value is not None else 0
            self._syncing = True
            try:
                self.curve_for.options = options
                self.curve_for.value = keep if keep < len(options) else (0 if options else None)
            finally:
                self._syncing = False

    def _update_curve(self) -> None:
        host, k = self.host, self.curve_for.value
        if not self.on or not host.results or k is None:
            return
        r = host.results[k]
        explainer, prepared = host.sources[k]
        key = (
            explainer.name,
            prepared.key,
            r.method,
            r.layer,
            r.class_id,
            repr(sorted(r.params.items())),
            self.steps,
        )
        if key not in self._curve_cache:
            self.curve_calls += 1
            if len(self._curve_cache) > 8:
                self._curve_cache.clear()
            self._curve_cache[key] = deletion_insertion(
                explainer, prepared, r.heatmap, r.class_id, steps=self.steps
            )
        self.curve_result = self._curve_cache[key]
        self.curve.value = curve_html(
            self.curve_result, host.titles[k], note=f", {self.steps} steps, blurred baseline"
        )

    def _box_shapes(self, display: Sequence[list[Box] | None]) -> list[dict]:
        panels, shapes = self.host.panels, []
        for k, boxes in enumerate(display):
            heat = panels.heatmap(k)
            for x0, y0, x1, y1 in boxes or ():
                shapes.append(
                    dict(
                        type="rect",
                        name=BOX_SHAPE,
                        xref=heat.xaxis,
                        yref=heat.yaxis,
                        x0=x0 - 0.5,
                        y0=y0 - 0.5,
                        x1=x1 - 0.5,
                        y1=y1 - 0.5,
                        line=dict(color="#ff2d2d", width=2, dash="dash"),
                        fillcolor="rgba(0,0,0,0)",
                        editable=False,
                        layer="above",
                    )
                )
        return shapes

    def _draw_shapes(self, modebar: bool = True) -> None:
        """Box shapes and the draw-rectangle buttons on the (displayed) figure, in place."""
        figure = self.host.panels.figure
        self._pending = None
        self._drawing = True
        try:
            with figure.batch_update():
                figure.layout.shapes = self._shapes
                figure.layout.modebar.add = ["drawrect", "eraseshape"] if modebar else []
                figure.layout.newshape.line = dict(color="#ff2d2d", width=2)
        finally:
            self._drawing = False
