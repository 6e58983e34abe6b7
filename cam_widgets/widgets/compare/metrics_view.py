"""The pure parts of the Compare metrics section, testable without a browser.

:func:`parse_box`, :func:`scene_targets`, :func:`panel_metrics` (localization scores batched
over the panels, Average Drop batched per model), :func:`metrics_table_html` and
:func:`curve_html` (a deletion / insertion plot as a tiny inline SVG: no second Plotly figure to
load). Coordinates are pixels of the photo the panels show (the model input, 224x224 for most
models), ``x1`` / ``y1`` exclusive like :class:`~cam_widgets.data.scenes.Box`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...data import get_scene
from ...errors import InvalidParameterError, Received, expected
from ...metrics import average_drop_increase, energy_pointing_game, iou_at_thresholds, pointing_game

#: Pointing-game tolerance in pixels (Zhang et al. 2018 use 15).
POINTING_TOLERANCE = 15
IOU_DELTAS = (0.25, 0.5)
Box = tuple  # (x0, y0, x1, y1), ints, x1 / y1 exclusive


def parse_box(text: str, shape: tuple[int, int]) -> Box | None:
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
            expected(
                "box",
                f"four numbers x0,y0,x1,y1 in pixels of the {w}x{h} input",
                Received(repr(text)),
                "e.g. 40,60,150,200",
            )
        )
    x0, y0, x1, y1 = (int(round(v)) for v in values)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidParameterError(
            f"the box {x0},{y0},{x1},{y1} must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h} "
            f"(the {w}x{h} input; x1, y1 exclusive)"
        )
    return (x0, y0, x1, y1)


def scene_targets(image: str, class_id: int, shape: tuple[int, int]) -> list[Box] | None:
    """Ground-truth boxes of a bundled scene (``"scene:NAME"``) for ``class_id``, scaled to
    ``shape``: the boxes that accept the class, else every box. None for a plain photo."""
    if not str(image).startswith("scene:"):
        return None
    scene = get_scene(image[len("scene:") :])
    sh, sw = scene.image.shape[:2]
    boxes = [b for b in scene.boxes if class_id == b.class_id or class_id in b.accepted_ids] or list(
        scene.boxes
    )
    return [scale_box(b.xyxy, (sh, sw), shape) for b in boxes]


def scale_box(box: Box, source: tuple[int, int], shape: tuple[int, int]) -> Box:
    """A box in pixels of an image of ``source`` (h, w) -> pixels of an image of ``shape``."""
    if tuple(source) == tuple(shape):
        return tuple(int(v) for v in box)
    fy, fx = shape[0] / source[0], shape[1] / source[1]
    x0, y0, x1, y1 = box
    return (
        int(round(x0 * fx)),
        int(round(y0 * fy)),
        max(int(round(x1 * fx)), int(round(x0 * fx)) + 1),
        max(int(round(y1 * fy)), int(round(y0 * fy)) + 1),
    )


def panel_metrics(
    sources: Sequence[tuple[Any, Any]], results: Sequence[Any], targets: Sequence[list[Box] | None]
) -> list[dict]:
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
            rows[k].update(
                pointing=bool(hits[i]), energy=float(energy[i]), iou={d: float(v[i]) for d, v in iou.items()}
            )
    by_model: dict = {}
    for k, (explainer, _) in enumerate(sources):
        by_model.setdefault(id(explainer), []).append(k)
    for ks in by_model.values():
        explainer = sources[ks[0]][0]
        scores = average_drop_increase(
            explainer,
            [sources[k][1] for k in ks],
            np.stack([results[k].heatmap for k in ks]),
            [results[k].class_id for k in ks],
        )
        for k, item in zip(ks, scores["per_image"]):
            rows[k].update(
                drop=item["drop"], increase=item["increase"], full=item["full"], masked=item["masked"]
            )
    return rows


def metrics_table_html(titles: Sequence[str], rows: Sequence[dict], source: str) -> str:
    """The table: one row per panel; ``source`` says where the boxes come from."""

    def cell(text, align="right"):
        return f"<td style='text-align:{align};padding:0 8px'>{text}</td>"

    def header(text, tip="", align="right"):  # padded and aligned as its column's cells
        tip = f" title='{tip}'" if tip else ""
        return f"<th{tip} style='text-align:{align};padding:0 8px;white-space:nowrap'>{text}</th>"

    head = (
        "<tr>"
        + header("panel", align="left")
        + header("pointing game", f"maximum within {POINTING_TOLERANCE} px of the box", "center")
        + header("energy in box", "fraction of the map inside the box")
        + "".join(header(f"IoU@{d:g}", f"IoU of the map above {d:g} x max with the box") for d in IOU_DELTAS)
        + header("drop %", "Average Drop: confidence lost on image x map")
        + header("increase", "Increase in Confidence: image x map scores higher", "center")
        + header("p full &rarr; masked")
        + "</tr>"
    )
    body = []
    for title, row in zip(titles, rows):
        if row.get("pointing") is None:
            loc = [cell("&mdash;", "center")] * (2 + len(IOU_DELTAS))
        else:
            hit = (
                "<span style='color:#080'>hit</span>"
                if row["pointing"]
                else "<span style='color:#c00'>miss</span>"
            )
            loc = [cell(hit, "center"), cell(f"{row['energy']:.3f}")] + [
                cell(f"{row['iou'][d]:.3f}") for d in IOU_DELTAS
            ]
        faith = (
            [
                cell(f"{row['drop']:.1f}"),
                cell("yes" if row["increase"] else "no", "center"),
                cell(f"{row['full']:.3f} &rarr; {row['masked']:.3f}"),
            ]
            if "drop" in row
            else [cell("&mdash;", "center")] * 3
        )
        body.append("<tr>" + cell(html.escape(title), "left") + "".join(loc + faith) + "</tr>")
    return (
        f"<div class='cw-metrics'><div style='font-size:90%'>{html.escape(source)}</div>"
        f"<table class='cw-metrics-table'>{head}{''.join(body)}</table></div>"
    )


def curve_html(curve: dict, title: str, width: int = 340, height: int = 200, note: str = "") -> str:
    """Deletion and insertion curves of :func:`deletion_insertion` as an inline SVG, with
    their AUCs in the caption."""
    left, right, top, bottom = 36, 10, 10, 28
    pw, ph = width - left - right, height - top - bottom
    xs = np.asarray(curve["fractions"], dtype=float)

    def line(values, color, dash=""):
        pts = " ".join(
            f"{left + x * pw:.1f},{top + (1 - min(max(y, 0.0), 1.0)) * ph:.1f}"
            for x, y in zip(xs, np.asarray(values, dtype=float))
        )
        return (
            f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='2'"
            f"{f' stroke-dasharray={dash!r}' if dash else ''}/>"
        )

    ticks = "".join(
        f"<line x1='{left + t * pw:.1f}' y1='{top + ph}' x2='{left + t * pw:.1f}' y2='{top + ph + 4}' stroke='#444'/>"
        f"<text x='{left + t * pw:.1f}' y='{top + ph + 15}' font-size='10' text-anchor='middle'>{t:g}</text>"
        f"<line x1='{left - 4}' y1='{top + (1 - t) * ph:.1f}' x2='{left}' y2='{top + (1 - t) * ph:.1f}' stroke='#444'/>"
        f"<text x='{left - 6}' y='{top + (1 - t) * ph + 3:.1f}' font-size='10' text-anchor='end'>{t:g}</text>"
        for t in (0, 0.5, 1)
    )
    svg = (
        f"<svg class='cw-curve' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
        f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#444'/>{ticks}"
        f"<text x='{left + pw / 2:.1f}' y='{height - 2}' font-size='10' text-anchor='middle'>"
        "fraction of pixels removed / inserted (most salient first)</text>"
        f"{line(curve['deletion_curve'], '#c00')}{line(curve['insertion_curve'], '#06c', '5,3')}</svg>"
    )
    caption = (
        f"{html.escape(title)}: <span style='color:#c00'>deletion AUC "
        f"{curve['deletion_auc']:.3f}</span> (lower is better) &middot; "
        f"<span style='color:#06c'>insertion AUC {curve['insertion_auc']:.3f}</span> "
        f"(higher is better); probability of the panel's class{html.escape(note)}"
    )
    return f"<figure class='cw-curve-figure' style='margin:0'>{svg}<figcaption style='font-size:90%'>{caption}</figcaption></figure>"
