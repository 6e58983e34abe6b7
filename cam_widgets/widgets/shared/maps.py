"""What a panel shows of an :class:`~cam_widgets.result.Explanation`, shared by every widget:
its display map and how its overlay fades, colour-bar note, a layer's resolution, a probed
pixel, and the note of a chosen class the model does not see."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...render import normalize_map, percentile_scale
from ...render.figures import map_side, prepare_map
from ...render.overlay import fade_for
from ...result import PERCENTILE_NOTE, Explanation


def display_map(result: Explanation, snapshot: int | None = None, panels: int = 1) -> np.ndarray:
    """What a panel of a figure of ``panels`` draws: the layer-resolution map normalised (the
    browser smooths it), or for pixel methods the heatmap at the figure's resolution
    (:func:`~cam_widgets.render.figures.map_side`), relative to its 99th percentile;
    ``snapshot``: SmoothGrad's running mean at that many samples instead."""
    if result.pixel_level:
        return result.display_heatmap(map_side(panels), snapshot)
    if snapshot is not None:
        return result.snapshots[snapshot]
    return normalize_map(result.raw, clip_negative=True)[0]


def snapshot_display(heatmap: np.ndarray, pixel_level: bool, panels: int = 1) -> np.ndarray:
    """What :func:`display_map` draws for a SmoothGrad running mean given as its heatmap
    (``Explainer.explain_classes``' ``on_snapshot``), before the Explanation exists."""
    if pixel_level:
        return percentile_scale(prepare_map(heatmap, map_side(panels)))
    return heatmap


def map_fade(result: Explanation, view: str = "overlay") -> str | None:
    """How the overlay of ``result`` fades where its map is low (the photo shows through
    there): by the value for pixel-level maps, below half for CAM maps; the raw view (the
    map alone) does not fade. What every widget's panels and static PNGs draw with."""
    return None if view == "raw" else fade_for(result.pixel_level)


def overlay_fades(results: Sequence[Explanation]) -> list[str | None]:
    """The overlay fade of each panel of ``results`` (HeatmapPanels' ``fades``)."""
    return [map_fade(r) for r in results]


#: A chosen class is flagged as one the model does not see when its probability is below
#: UNSEEN_PROBABILITY and it is not among the model's top UNSEEN_TOP classes for the image:
#: its map then answers "what here would make this a boxer", not "where is the boxer", and a
#: class was shown "boxer p=0.000" without a word (issue 19). The top-5 rule keeps a class
#: the model does consider (a cat photo's third cat breed at p=0.007) unflagged.
UNSEEN_PROBABILITY, UNSEEN_TOP = 0.01, 5


def top_classes(explainer, prepared) -> set[int]:
    """The ids of the model's top UNSEEN_TOP classes for a prepared image (its cached forward)."""
    return {p.class_id for p in explainer.predict(prepared, top=UNSEEN_TOP)}


def unseen_note(result: Explanation, top: set[int]) -> str:
    """ "boxer: p=0.000, the model does not see this class here" when ``result``'s class has a
    negligible probability (below UNSEEN_PROBABILITY, not in ``top``, the model's top
    classes), else "" (a target that is a function of the logits has no one class)."""
    if result.class_id < 0 or result.class_id in top or not result.probability < UNSEEN_PROBABILITY:
        return ""
    return f"{result.label}: p={result.probability:.3f}, the model does not see this class here"


def with_notes(text: str, notes: Sequence[str]) -> str:
    """``text``, then each distinct note (one per class), separated by "; "."""
    return "; ".join([text] + [n for n in dict.fromkeys(notes) if n])


def layer_resolution(explainer, layer: str) -> str:
    """ "14x14": the layer's own output size (a pixel-level map is the input's size instead:
    Guided Grad-CAM at features.6 is 224x224, its layer 14x14)."""
    return explainer.layer_info(layer).resolution


def colorbar_note(results: Sequence[Explanation]) -> str:
    """The colour bar's title for panels of ``results`` drawn by :func:`display_map`."""
    return PERCENTILE_NOTE if any(r.pixel_level for r in results) else ""


def nearest_pixel(x: float, y: float, image_shape, map_shape) -> tuple[int, int]:
    """(row, col) of a map of ``map_shape`` under pixel (x, y) of an image of ``image_shape``
    (pixel centres at integer coordinates, as Plotly's heatmaps place them)."""
    (h, w), (rows, cols) = image_shape[:2], map_shape[:2]
    row = min(max(int(np.floor((y + 0.5) * rows / h)), 0), rows - 1)
    col = min(max(int(np.floor((x + 0.5) * cols / w)), 0), cols - 1)
    return row, col
