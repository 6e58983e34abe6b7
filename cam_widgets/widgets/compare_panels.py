"""What the panels of a :class:`~cam_widgets.widgets.compare.Compare` show, without any widget.

:func:`compute_panels` (the engine calls for one :class:`~.compare_state.CompareState`, batched
per compared dimension), :func:`scaled_maps` (per panel in [0, 1] or on one shared scale),
:func:`value_at` and :func:`probe_table_html` (the probed pixel of every map) and
:func:`summary_line` (the status line of a computation).
"""
from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np

from ..api import get_explainer
from ..errors import InvalidParameterError
from ..methods import get_method
from ..models import resolve_class
from ..render import DISPLAY_PERCENTILE, shared_scale
from ..render.figures import prepare_map
from ..result import Explanation
from .common import colorbar_note, display_map, load_choice, nearest_pixel
from .compare_state import CompareState


def compute_panels(s: CompareState) -> tuple[list[Explanation], np.ndarray, list[str], list]:
    """(results, photo shown, panel titles, (explainer, prepared image) of each panel) for
    a state that passed :func:`~.compare_state.check_state`."""
    rgb = load_choice(s.image)
    if s.by == "model":
        return _compute_models(s, rgb)
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


def _compute_models(s: CompareState, rgb: np.ndarray):
    results, photo, class_id, sources = [], None, s.target, []
    for name in s.values:
        explainer = get_explainer(name)
        prepared = explainer.prepare(rgb)  # each model's own input size
        sources.append((explainer, prepared))
        photo = prepared.rgb if photo is None else photo
        result = explainer.explain(prepared, s.method, class_id, s.layer)
        # the first model's class for every later one: all panels show one class
        class_id = result.class_id if class_id is None else class_id
        results.append(result)
    titles = [f"{name}: {r.label} p={r.probability:.3f}" for name, r in zip(s.values, results)]
    return results, photo, titles, sources


def scaled_maps(results: Sequence[Explanation], shared: bool, panels: int):
    """(maps, colour range, colour bar title): maps per panel in [0, 1], or raw maps clipped
    at 0 on one shared scale (in units of a power of ten, so the colour bar stays readable;
    with pixel-level maps the scale tops at the 99th percentile of what is drawn, as each
    panel alone would). Without results, ``panels`` empty maps."""
    if not results:
        return [np.zeros((7, 7), np.float32)] * panels, (0.0, 1.0), ""
    if shared:
        clipped = [prepare_map(np.maximum(r.raw, 0.0), decimals=None) for r in results]
        pixel = any(r.pixel_level for r in results)
        lo, hi = shared_scale(clipped, percentile=DISPLAY_PERCENTILE if pixel else None)
        unit = 10.0 ** math.floor(math.log10(hi)) if hi > 0 else 1.0
        label = f"x{unit:.0e}" + ("<br>top: 99th pct" if pixel else "")
        return [m / unit for m in clipped], (lo / unit, hi / unit), label
    return [display_map(r) for r in results], (0.0, 1.0), colorbar_note(results)


def value_at(m: np.ndarray, x: float, y: float, shape: tuple[int, int]) -> float:
    """Value of map ``m`` at pixel (x, y) of an image of ``shape`` (maps of any resolution)."""
    row, col = nearest_pixel(x, y, shape, m.shape)
    return float(m[row, col])


def probe_table_html(titles: Sequence[str], values: Sequence[float], x: float, y: float,
                     shared: bool) -> str:
    """One row per panel: its value at the probed pixel (raw on a shared scale)."""
    rows = "".join(f"<tr><td>{html.escape(t)}</td><td style='text-align:right'>{v:.4g}</td></tr>"
                   for t, v in zip(titles, values))
    kind = "raw value" if shared else "value (0..1)"
    return (f"<table class='cw-probe'><tr><th>pixel ({x:.0f}, {y:.0f})</th>"
            f"<th>{kind}</th></tr>{rows}</table>")


def summary_line(state: CompareState, results: Sequence[Explanation]) -> str:
    """What was compared, what stayed fixed, and the engine time."""
    seconds = sum(r.seconds for r in results) if state.by == "model" else results[0].seconds
    first = results[0]
    fixed = {"class": f"{state.method} @ {first.layer or 'input'}",
             "method": f"class {first.label} ({first.class_id})",
             "layer": f"{state.method}, class {first.label} ({first.class_id})",
             "model": f"{state.method}, class {first.label} ({first.class_id})"}
    return f"{len(results)} maps by {state.by}: {fixed[state.by]}  ({seconds * 1000:.0f} ms)"
