"""What the panels of a :class:`~cam_widgets.widgets.compare.Compare` show, without any widget.

:func:`compute_panels` (the engine calls for one :class:`~.compare_state.CompareState`, batched
per compared dimension), :func:`scaled_maps` (per panel in [0, 1] or on one shared scale),
:func:`value_at` and :func:`probe_table_html`
(the probed pixel of every map, as its hover shows it) and :func:`summary_line` (the status
line of a computation).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from ..api import get_explainer
from ..errors import InvalidParameterError
from ..methods import get_method
from ..methods.context import Progress
from ..models import resolve_class
from ..render import DISPLAY_PERCENTILE, shared_scale
from ..render.figures import map_side, prepare_map
from ..result import Explanation
from .common import colorbar_note, display_map, layer_resolution, nearest_pixel, top_classes, unseen_note
from .compare_state import CompareState
from .images import load_choice

#: Panel width (px) at most (a wide page); narrower outputs get narrower panels, which wrap
#: into rows below MIN_WRAP_PANEL (HeatmapPanels' ``fit_width`` and ``wrap``).
PANEL_SIZE = 320
#: Why a shared scale is off when panels mix CAM and pixel-level maps.
MIXED_UNITS = (
    "shared scale off: CAM maps (layer activations x weights) and pixel-level maps "
    "(input gradients) have no common unit"
)


def compute_panels(
    s: CompareState, progress: Progress = None
) -> tuple[list[Explanation], np.ndarray, list[str], list]:
    """(results, photo shown, panel titles, (explainer, prepared image) of each panel) for
    a state from :func:`~.compare_state.resolve_state`; ``progress(fraction, 1.0)`` is
    told how far the slow methods (Score-CAM, Integrated Gradients) have gone."""
    rgb = load_choice(s.image)
    if s.by == "model":
        return _compute_models(s, rgb, progress)
    explainer = get_explainer(s.model)
    prepared = explainer.prepare(rgb)
    target = None if s.target is None else resolve_class(s.target, explainer.labels)
    if s.by == "class":
        results = explainer.explain_classes(
            prepared, list(s.values), s.method, s.layer, **_progress_of(s.method, progress, 0, 1)
        )
        titles = [f"{r.label} ({r.class_id}) p={r.probability:.3f}" for r in results]
    elif s.by == "method":
        results = [
            explainer.explain(
                prepared,
                m,
                target,
                s.layer if get_method(m).needs_layer else None,
                **_progress_of(m, progress, k, len(s.values)),
            )
            for k, m in enumerate(s.values)
        ]
        titles = [get_method(r.method).title for r in results]
    else:
        if not get_method(s.method).needs_layer:
            raise InvalidParameterError(
                f"comparing layers needs a layer method such as 'gradcam' (got {s.method!r}, "
                f"which works on the input)."
            )
        results = explainer.explain_layers(prepared, target, s.method, list(s.values))
        titles = [f"{r.layer}  {layer_resolution(explainer, r.layer)}" for r in results]
    return results, prepared.rgb, titles, [(explainer, prepared)] * len(results)


#: What a panel's title adds when its model does not see its class (see unseen_notes).
NOT_SEEN = ", not seen here"


def unseen_notes(results: Sequence[Explanation], sources: Sequence) -> list[str]:
    """Per panel, the note of a chosen class its model does not see
    (:func:`.common.unseen_note`: p < 1% and not in the model's top 5), or ""."""
    tops: dict = {}
    notes = []
    for result, (explainer, prepared) in zip(results, sources):
        key = (id(explainer), id(prepared))
        if key not in tops:  # (one forward per model, cached by the engine)
            tops[key] = top_classes(explainer, prepared)
        notes.append(unseen_note(result, tops[key]))
    return notes


def mark_unseen(titles: Sequence[str], notes: Sequence[str], by: str) -> list[str]:
    """Titles that name their class (by class, by model) say when it is not seen."""
    if by not in ("class", "model"):
        return list(titles)
    return [t + NOT_SEEN if note else t for t, note in zip(titles, notes)]


def _progress_of(method: str, progress: Progress, panel: int, panels: int) -> dict:
    """The ``progress`` argument of panel ``panel`` of ``panels``, for the slow methods only:
    its own progress as a fraction of the whole comparison."""
    if progress is None or "extra_forwards" not in get_method(method).needs:
        return {}
    return {"progress": lambda done, total: progress((panel + done / max(total, 1)) / panels, 1.0)}


def _compute_models(s: CompareState, rgb: np.ndarray, progress: Progress):
    results, photo, class_id, sources = [], None, s.target, []
    for k, name in enumerate(s.values):
        explainer = get_explainer(name)
        prepared = explainer.prepare(rgb)  # each model's own input size
        sources.append((explainer, prepared))
        photo = prepared.rgb if photo is None else photo
        result = explainer.explain(
            prepared, s.method, class_id, s.layer, **_progress_of(s.method, progress, k, len(s.values))
        )
        # the first model's class for every later one: all panels show one class
        class_id = result.class_id if class_id is None else class_id
        results.append(result)
    titles = [f"{name}: {r.label} p={r.probability:.3f}" for name, r in zip(s.values, results)]
    return results, photo, titles, sources


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
