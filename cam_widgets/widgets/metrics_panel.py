"""Metrics section of :class:`~cam_widgets.widgets.compare.Compare`: scores per panel.

Pure parts (testable without a browser): :func:`parse_box`, :func:`scene_targets`,
:func:`panel_metrics` (localization scores batched over the panels, Average Drop batched per
model), :func:`metrics_table_html` and :func:`curve_html` (a deletion / insertion plot as a
tiny inline SVG: no second Plotly figure to load). :class:`MetricsPanel` wires them to a
Compare: a "metrics" checkbox (off by default: nothing is computed while it is off), a box
typed as ``x0,y0,x1,y1`` or drawn with the figure's "draw rectangle" button (empty: a bundled
scene's ground-truth boxes), the table, and the curve of one panel.

Coordinates are pixels of the photo the panels show (the model input, 224x224 for most
models), ``x1`` / ``y1`` exclusive like :class:`~cam_widgets.data.scenes.Box`.
"""
from __future__ import annotations

import html
import re
from typing import Any, Optional, Sequence

import ipywidgets as W
import numpy as np

from ..data import get_scene
from ..errors import InvalidParameterError
from ..metrics import (
    average_drop_increase,
    deletion_insertion,
    energy_pointing_game,
    iou_at_thresholds,
    pointing_game,
)
from .common import busy, control_row

#: Name of the layout shapes that show the box (drawn shapes have no name).
BOX_SHAPE = "cw-box"
#: Pointing-game tolerance in pixels (Zhang et al. 2018 use 15).
POINTING_TOLERANCE = 15
IOU_DELTAS = (0.25, 0.5)
#: What a FigureWidget's browser view sends (after drawing, on relayout, on click).
_BROWSER_MESSAGES = ["_js2py_layoutDelta", "_js2py_relayout", "_js2py_pointsCallback"]
Box = tuple  # (x0, y0, x1, y1), ints, x1 / y1 exclusive


# --------------------------------------------------------------------------- pure parts
def parse_box(text: str, shape: tuple[int, int]) -> Optional[Box]:
    """``"10, 20, 120, 200"`` -> ``(10, 20, 120, 200)`` inside an image of ``shape`` (h, w);
    empty text -> None. Raises InvalidParameterError (one line) on anything else."""
    text = str(text).strip().strip("()[]").strip()
    if not text:
        return None
    h, w = shape
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise InvalidParameterError(
            f"a box is four numbers x0,y0,x1,y1 in pixels of the {w}x{h} input (got {text!r}); "
            f"e.g. 40,60,150,200")
    x0, y0, x1, y1 = (int(round(v)) for v in values)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidParameterError(
            f"the box {x0},{y0},{x1},{y1} must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h} "
            f"(the {w}x{h} input; x1, y1 exclusive)")
    return (x0, y0, x1, y1)


def scene_targets(image: str, class_id: int, shape: tuple[int, int]) -> Optional[list[Box]]:
    """Ground-truth boxes of a bundled scene (``"scene:NAME"``) for ``class_id``, scaled to
    ``shape``: the boxes that accept the class, else every box. None for a plain photo."""
    if not str(image).startswith("scene:"):
        return None
    scene = get_scene(image[len("scene:"):])
    sh, sw = scene.image.shape[:2]
    boxes = [b for b in scene.boxes if class_id == b.class_id or class_id in b.accepted_ids] \
        or list(scene.boxes)
    return [scale_box(b.xyxy, (sh, sw), shape) for b in boxes]


def scale_box(box: Box, source: tuple[int, int], shape: tuple[int, int]) -> Box:
    """A box in pixels of an image of ``source`` (h, w) -> pixels of an image of ``shape``."""
    if tuple(source) == tuple(shape):
        return tuple(int(v) for v in box)
    fy, fx = shape[0] / source[0], shape[1] / source[1]
    x0, y0, x1, y1 = box
    return (int(round(x0 * fx)), int(round(y0 * fy)),
            max(int(round(x1 * fx)), int(round(x0 * fx)) + 1),
            max(int(round(y1 * fy)), int(round(y0 * fy)) + 1))


def panel_metrics(sources: Sequence[tuple[Any, Any]], results: Sequence[Any],
                  targets: Sequence[Optional[list[Box]]]) -> list[dict]:
    """One dict per panel: ``pointing`` (bool), ``energy``, ``iou`` ({delta: IoU}) against the
    panel's target (None without one), and ``drop`` / ``increase`` / ``full`` / ``masked``
    (Average Drop %, Increase in Confidence, probabilities) for the panel's class.

    ``sources[k]`` is the (explainer, prepared image) of panel k; ``targets[k]`` its boxes in
    pixels of ``results[k].heatmap``. Panels sharing a map size are scored in one batch, and
    panels sharing a model in one Average Drop call.
    """
    rows = [dict(pointing=None, energy=None, iou=None) for _ in results]
    groups: dict = {}
    for k, (r, t) in enumerate(zip(results, targets)):
        if t:
            groups.setdefault(r.heatmap.shape, []).append(k)
    for ks in groups.values():
        maps = np.stack([results[k].heatmap for k in ks])
        boxes = [list(targets[k]) for k in ks]
        hits = pointing_game(maps, boxes, tolerance=POINTING_TOLERANCE)
        energy = energy_pointing_game(maps, boxes)
        iou = iou_at_thresholds(maps, boxes, deltas=IOU_DELTAS)
        for i, k in enumerate(ks):
            rows[k].update(pointing=bool(hits[i]), energy=float(energy[i]),
                           iou={d: float(v[i]) for d, v in iou.items()})
    by_model: dict = {}
    for k, (explainer, _) in enumerate(sources):
        by_model.setdefault(id(explainer), []).append(k)
    for ks in by_model.values():
        explainer = sources[ks[0]][0]
        scores = average_drop_increase(explainer, [sources[k][1] for k in ks],
                                       np.stack([results[k].heatmap for k in ks]),
                                       [results[k].class_id for k in ks])
        for k, item in zip(ks, scores["per_image"]):
            rows[k].update(drop=item["drop"], increase=item["increase"], full=item["full"],
                           masked=item["masked"])
    return rows


def metrics_table_html(titles: Sequence[str], rows: Sequence[dict], source: str) -> str:
    """The table: one row per panel; ``source`` says where the boxes come from."""
    def cell(text, align="right"):
        return f"<td style='text-align:{align};padding:0 8px'>{text}</td>"

    head = ("<tr><th>panel</th><th title='maximum within "
            f"{POINTING_TOLERANCE} px of the box'>pointing game</th>"
            "<th title='fraction of the map inside the box'>energy in box</th>"
            + "".join(f"<th title='IoU of the map above {d:g} x max with the box'>IoU@{d:g}</th>"
                      for d in IOU_DELTAS)
            + "<th title='Average Drop: confidence lost on image x map'>drop %</th>"
            "<th title='Increase in Confidence: image x map scores higher'>increase</th>"
            "<th>p full &rarr; masked</th></tr>")
    body = []
    for title, row in zip(titles, rows):
        if row.get("pointing") is None:
            loc = [cell("&mdash;", "center")] * (2 + len(IOU_DELTAS))
        else:
            hit = ("<span style='color:#080'>hit</span>" if row["pointing"]
                   else "<span style='color:#c00'>miss</span>")
            loc = [cell(hit, "center"), cell(f"{row['energy']:.3f}")] + \
                [cell(f"{row['iou'][d]:.3f}") for d in IOU_DELTAS]
        faith = [cell(f"{row['drop']:.1f}"), cell("yes" if row["increase"] else "no", "center"),
                 cell(f"{row['full']:.3f} &rarr; {row['masked']:.3f}")] if "drop" in row else \
            [cell("&mdash;", "center")] * 3
        body.append("<tr>" + cell(html.escape(title), "left") + "".join(loc + faith) + "</tr>")
    return (f"<div class='cw-metrics'><div style='font-size:90%'>{html.escape(source)}</div>"
            f"<table class='cw-metrics-table'>{head}{''.join(body)}</table></div>")


def curve_html(curve: dict, title: str, width: int = 340, height: int = 200,
               note: str = "") -> str:
    """Deletion and insertion curves of :func:`deletion_insertion` as an inline SVG, with
    their AUCs in the caption."""
    left, right, top, bottom = 36, 10, 10, 28
    pw, ph = width - left - right, height - top - bottom
    xs = np.asarray(curve["fractions"], dtype=float)

    def line(values, color, dash=""):
        pts = " ".join(f"{left + x * pw:.1f},{top + (1 - min(max(y, 0.0), 1.0)) * ph:.1f}"
                       for x, y in zip(xs, np.asarray(values, dtype=float)))
        return (f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='2'"
                f"{f' stroke-dasharray={dash!r}' if dash else ''}/>")

    ticks = "".join(
        f"<line x1='{left + t * pw:.1f}' y1='{top + ph}' x2='{left + t * pw:.1f}' y2='{top + ph + 4}' stroke='#444'/>"
        f"<text x='{left + t * pw:.1f}' y='{top + ph + 15}' font-size='10' text-anchor='middle'>{t:g}</text>"
        f"<line x1='{left - 4}' y1='{top + (1 - t) * ph:.1f}' x2='{left}' y2='{top + (1 - t) * ph:.1f}' stroke='#444'/>"
        f"<text x='{left - 6}' y='{top + (1 - t) * ph + 3:.1f}' font-size='10' text-anchor='end'>{t:g}</text>"
        for t in (0, 0.5, 1))
    svg = (f"<svg class='cw-curve' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
           f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#444'/>{ticks}"
           f"<text x='{left + pw / 2:.1f}' y='{height - 2}' font-size='10' text-anchor='middle'>"
           "fraction of pixels removed / inserted (most salient first)</text>"
           f"{line(curve['deletion_curve'], '#c00')}{line(curve['insertion_curve'], '#06c', '5,3')}</svg>")
    caption = (f"{html.escape(title)}: <span style='color:#c00'>deletion AUC "
               f"{curve['deletion_auc']:.3f}</span> (lower is better) &middot; "
               f"<span style='color:#06c'>insertion AUC {curve['insertion_auc']:.3f}</span> "
               f"(higher is better); probability of the panel's class{html.escape(note)}")
    return f"<figure class='cw-curve-figure' style='margin:0'>{svg}<figcaption style='font-size:90%'>{caption}</figcaption></figure>"


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
        self.toggle = W.Checkbox(value=False, description="metrics", indent=False,
                                 layout=W.Layout(width="90px"))
        self.box = W.Text(description="box", continuous_update=False,
                          placeholder="x0,y0,x1,y1 or draw; empty: scene's boxes")
        self.curve_for = W.Dropdown(description="curve for panel", options=[],
                                    style={"description_width": "initial"})
        self.table = W.HTML(value="")
        self.curve = W.HTML(value="")
        self._details = W.VBox([control_row(self.box, self.curve_for), self.table, self.curve],
                               layout=W.Layout(display="none"))
        self.widget = W.VBox([self.toggle, self._details])
        self.calls = 0
        self.curve_calls = 0
        self.rows: list[dict] = []
        self.targets: list = []
        self.box_xyxy: Optional[Box] = None
        self.curve_result: Optional[dict] = None
        self._curve_cache: dict = {}
        self._pending: Optional[Any] = None  # a new figure not yet drawn: shapes wait
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
            display.append([self.box_xyxy] if self.box_xyxy is not None
                           else scene_targets(host.state.image, r.class_id, shape))
        self.targets = [None if t is None else [scale_box(b, shape, r.heatmap.shape) for b in t]
                        for t, r in zip(display, host.results)]
        self.rows = panel_metrics(host._sources, host.results, self.targets)
        if self.box_xyxy is not None:
            source = f"box {','.join(map(str, self.box_xyxy))} (typed or drawn)"
        elif display[0] is not None:
            source = f"ground-truth boxes of {host.state.image} (those of each panel's class)"
        else:
            source = "no box: type x0,y0,x1,y1 or draw one with the figure's rectangle tool"
        self.table.value = metrics_table_html(host._titles, self.rows, source)
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
                self.host.status.line.value = self.host._line
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
            self.host.status.line.value = self.host._line  # a fixed box clears its error

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
        drawn = [s for s in shapes if isinstance(s, dict) and s.get("name") != BOX_SHAPE
                 and s.get("type", "rect") == "rect"
                 and all(isinstance(s.get(k), (int, float)) for k in ("x0", "x1", "y0", "y1"))]
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
        titles = list(self.host._titles) if self.host.results else []
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
        explainer, prepared = host._sources[k]
        key = (explainer.name, prepared.key, r.method, r.layer, r.class_id,
               repr(sorted(r.params.items())), self.steps)
        if key not in self._curve_cache:
            self.curve_calls += 1
            if len(self._curve_cache) > 8:
                self._curve_cache.clear()
            self._curve_cache[key] = deletion_insertion(explainer, prepared, r.heatmap,
                                                        r.class_id, steps=self.steps)
        self.curve_result = self._curve_cache[key]
        self.curve.value = curve_html(self.curve_result, host._titles[k],
                                      note=f", {self.steps} steps, blurred baseline")

    def _box_shapes(self, display: Sequence[Optional[list[Box]]]) -> list[dict]:
        panels, shapes = self.host.panels, []
        for k, boxes in enumerate(display):
            heat = panels.heatmap(k)
            for x0, y0, x1, y1 in boxes or ():
                shapes.append(dict(type="rect", name=BOX_SHAPE, xref=heat.xaxis, yref=heat.yaxis,
                                   x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5,
                                   line=dict(color="#ff2d2d", width=2, dash="dash"),
                                   fillcolor="rgba(0,0,0,0)", editable=False, layer="above"))
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
