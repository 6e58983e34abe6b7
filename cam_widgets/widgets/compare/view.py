"""What the panels of a :class:`~.widget.Compare` show, without any widget:
:func:`scaled_maps` (per panel in [0, 1] or on one shared scale), :func:`value_at` and
:func:`probe_table_html` (the probed pixel of every map, as its hover shows it),
:func:`summary_line` (the status line of a computation) and titles marking unseen classes."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from ...api import get_explainer
from ...methods import get_method
from ...render import DISPLAY_PERCENTILE, shared_scale
from ...render.figures import map_side, prepare_map
from ...result import Explanation
from ..shared.maps import (
    colorbar_note,
    display_map,
    layer_resolution,
    nearest_pixel,
)
from .state import CompareState

#: Why a shared scale is off when panels mix CAM and pixel-level maps.
MIXED_UNITS = (
    "shared scale off: CAM maps (layer activations x weights) and pixel-level maps "
    "(input gradients) have no common unit"
)


#: What a panel's title adds when its model does not see its class (see work.unseen_notes).
NOT_SEEN = ", not seen here"


def mark_unseen(titles: Sequence[str], notes: Sequence[str], by: str) -> list[str]:
    """Titles that name their class (by class, by model) say when it is not seen."""
    if by not in ("class", "model"):
        return list(titles)
    return [t + NOT_SEEN if note else t for t, note in zip(titles, notes)]


def mixed_families(results: Sequence[Explanation]) -> bool:
    """True when the panels mix CAM maps and pixel-level maps (no common unit)."""
    return len({r.pixel_level for r in results}) > 1


def scaled_maps(results: Sequence[Explanation], shared: bool, panels: int):
    """(maps, colour range, colour bar title): maps per panel in [0, 1], or raw maps clipped
    at 0 on one shared scale (in units of a power of ten, so the colour bar stays readable;
    with pixel-level maps the scale tops at the 99th percentile of what is drawn, as each
    panel alone would). Panels mixing CAM and pixel-level maps stay per panel, and the colour
    bar says so. Without results, ``panels`` empty maps."""
    if not results:
        return [np.zeros((7, 7), np.float32)] * panels, (0.0, 1.0), ""
    if shared and not mixed_families(results):
        side = map_side(len(results))
        clipped = [prepare_map(np.maximum(r.raw, 0.0), side) for r in results]
        pixel = results[0].pixel_level
        lo, hi = shared_scale(clipped, percentile=DISPLAY_PERCENTILE if pixel else None)
        exponent = math.floor(math.log10(hi)) if hi > 0 else 0
        unit = 10.0**exponent
        label = times_text(exponent) + (", top = 99th pct" if pixel else "")
        return [m / unit for m in clipped], (lo / unit, hi / unit), label
    label = colorbar_note(results)
    if mixed_families(results):  # "1 = 99th pct" alone would claim it for the CAM panels too
        label = "1 = max (CAM), 99th pct (pixel)" + ("<br>per panel: units differ" if shared else "")
    return [display_map(r, panels=len(results)) for r in results], (0.0, 1.0), label


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def times_text(exponent: int) -> str:
    """The factor 10^exponent of a shared scale, readable: "× 0.1", "× 10", "× 10⁻⁵"."""
    if -3 <= exponent <= 3:
        return f"× {10.0**exponent:g}"
    return "× 10" + str(exponent).translate(_SUPERSCRIPT)


def value_at(m: np.ndarray, x: float, y: float, shape: tuple[int, int]) -> float:
    """Value of map ``m`` at pixel (x, y) of an image of ``shape`` (maps of any resolution)."""
    row, col = nearest_pixel(x, y, shape, m.shape)
    return float(m[row, col])


def probe_table_html(titles: Sequence[str], values: Sequence[float], x: float, y: float, unit: str) -> str:
    """One row per panel: the value drawn at the probed pixel, formatted as the hover shows
    it; ``unit``: the colour bar's title, on one line."""
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td style='text-align:right'>{v:.3f}</td></tr>"
        for t, v in zip(titles, values)
    )
    note = " ".join(unit.replace("<br>", "; ").split()) or "0..1, 1 = max"
    return (
        f"<table class='cw-probe'><tr><th>pixel ({x:.0f}, {y:.0f})</th>"
        f"<th>value as drawn ({html.escape(note)})</th></tr>{rows}</table>"
    )


def _layer_of(results: Sequence[Explanation]) -> str:
    return next((r.layer for r in results if r.layer), "input")


def summary_line(state: CompareState, results: Sequence[Explanation], seconds: float) -> str:
    """What each panel shows and what stayed fixed (display names), whether the shared scale
    is off, and ``seconds``, the wall time of the update's engine work (a class the model does
    not see: :func:`unseen_notes`, added by the widget)."""
    first, method = results[0], get_method(state.method).title
    cls = f"class {first.label} ({first.class_id})"
    panels, fixed = {  # (only the compared dimension's is made)
        "class": lambda: (
            [f"{r.label} ({r.class_id})" for r in results],
            f"{method} at {_layer_of(results)}",
        ),
        "method": lambda: ([get_method(r.method).title for r in results], f"{cls} at {_layer_of(results)}"),
        "layer": lambda: (
            [f"{r.layer} ({layer_resolution(get_explainer(state.model), r.layer)})" for r in results],
            f"{method}, {cls}",
        ),
        "model": lambda: ([str(v) for v in state.values], f"{method}, {cls}"),
    }[state.by]()
    scale = f"; {MIXED_UNITS}" if state.shared_scale and mixed_families(results) else ""
    count = f"{len(results)} map" + ("s" if len(results) > 1 else "")
    return (
        f"{count} by {state.by}: {', '.join(panels)}; {fixed}{scale}{_drawn_at(results)}; "
        f"computed in {seconds * 1000:.0f} ms"
    )  # (drawing them in the browser: not counted)


def _drawn_at(results: Sequence[Explanation]) -> str:
    """Says so when the panels' pixel-level maps are drawn coarser than they are (the
    figure's cells are shared, see map_side): their detail is in the Explorer."""
    side, full = map_side(len(results)), max(max(r.heatmap.shape) for r in results)
    if not any(r.pixel_level for r in results) or side >= full:
        return ""
    return f"; pixel maps drawn at {side}x{side} cells (one panel: {full}x{full})"
