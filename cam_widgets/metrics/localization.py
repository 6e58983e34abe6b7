"""Localization scores of saliency maps against ground-truth boxes or masks.

Every function takes one map (H, W) with one target, or a batch (N, H, W) with one target
per map, and returns a scalar or an (N,) array. A map is a numpy array, a torch tensor or
an :class:`~cam_widgets.result.Explanation` (its ``heatmap``). A target is a
:class:`~cam_widgets.data.scenes.Box`, an ``(x0, y0, x1, y1)`` tuple (``x1``/``y1``
exclusive), a boolean (H, W) mask, or a list of those (their union: every instance of the
class). Coordinates are pixels of the map, which must have the image's size.

- :func:`pointing_game`: Zhang et al. 2018 (Excitation Backprop), hit when the maximum lies
  within ``tolerance`` pixels of the target (they use 15 px).
- :func:`energy_pointing_game`: Wang et al. 2020 (Score-CAM, sec. 5.2), the fraction of the
  map's energy inside the target.
- :func:`iou_at_thresholds`: Chattopadhay et al. 2018 (Grad-CAM++, sec. 6.2), the IoU of the
  map thresholded at ``delta * max`` with the target, per delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, Received, expected

__all__ = ["pointing_game", "energy_pointing_game", "iou_at_thresholds", "as_masks", "as_maps"]

IOU_REGIONS = ("mask", "box")


# --------------------------------------------------------------------------- inputs
def as_maps(heatmap: Any) -> tuple[np.ndarray, bool]:
    """(N, H, W) float64 maps and whether the input was a single map."""
    if hasattr(heatmap, "heatmap"):
        heatmap = heatmap.heatmap
    elif isinstance(heatmap, (list, tuple)) and heatmap and hasattr(heatmap[0], "heatmap"):
        heatmap = np.stack([h.heatmap for h in heatmap])
    if hasattr(heatmap, "detach"):
        heatmap = heatmap.detach().cpu().numpy()
    try:
        maps = np.asarray(heatmap, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            expected("heatmap", "a numeric (H, W) or (N, H, W) array", heatmap)
        ) from None
    if maps.ndim not in (2, 3) or 0 in maps.shape:
        raise InvalidParameterError(
            expected("heatmap", "shape (H, W) or (N, H, W)", Received(f"shape {maps.shape}"))
        )
    if not np.isfinite(maps).all():
        raise InvalidParameterError(
            expected(
                "heatmap", "finite values", Received("NaN or infinite values"), "use np.nan_to_num(heatmap)"
            )
        )
    single = maps.ndim == 2
    return (maps[None] if single else maps), single


def _is_box_tuple(value: Any) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 4
        and all(isinstance(v, (Integral, Real)) and not isinstance(v, bool) for v in value)
    )


def _one_mask(target: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of one target (a box, a 4-tuple, a mask, or a list of them)."""
    h, w = shape
    if hasattr(target, "xyxy"):
        target = target.xyxy
    if _is_box_tuple(target):
        x0, y0, x1, y1 = (int(round(float(v))) for v in target)
        mask = np.zeros(shape, dtype=bool)
        mask[max(y0, 0) : max(min(y1, h), 0), max(x0, 0) : max(min(x1, w), 0)] = True
    elif hasattr(target, "shape") or (
        isinstance(target, (list, tuple))
        and target
        and isinstance(target[0], (list, tuple))
        and not _is_box_tuple(target[0])
    ):
        arr = target.detach().cpu().numpy() if hasattr(target, "detach") else np.asarray(target)
        if arr.shape != shape:
            raise InvalidParameterError(
                expected("target mask", f"the map's shape {shape}", Received(f"shape {arr.shape}"))
            )
        mask = arr.astype(bool)
    elif isinstance(target, (list, tuple)) and target:
        mask = np.zeros(shape, dtype=bool)
        for item in target:
            mask |= _one_mask(item, shape)
    else:
        raise InvalidParameterError(
            expected(
                "target", "a Box, an (x0, y0, x1, y1) tuple, a boolean (H, W) mask or a list of those", target
            )
        )
    if not mask.any():
        raise InvalidParameterError(
            expected(
                "target",
                f"a target covering pixels of the {h}x{w} map",
                target,
                "check that boxes are (x0, y0, x1, y1) in map pixels",
                problem=f"The target covers no pixel of the {h}x{w} map",
            )
        )
    return mask


def as_masks(targets: Any, shape: tuple[int, int], count: int, single: bool) -> np.ndarray:
    """(N, H, W) boolean masks: one target for a single map, one per map for a batch."""
    if single:
        return _one_mask(targets, shape)[None]
    if hasattr(targets, "shape") and len(targets.shape) == 3:
        items = list(targets)
    elif isinstance(targets, (list, tuple)):
        items = list(targets)
    else:
        raise InvalidParameterError(
            expected(
                "targets",
                f"for a batch of {count} maps, a list with one target per map or an (N, H, W) mask array",
                targets,
            )
        )
    if len(items) != count:
        raise InvalidParameterError(
            expected("targets", f"one target per map ({count} maps)", Received(f"{len(items)} targets"))
        )
    return np.stack([_one_mask(t, shape) for t in items])


def _prepare(heatmap: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    maps, single = as_maps(heatmap)
    return maps, as_masks(targets, maps.shape[1:], len(maps), single), single


def _out(values: np.ndarray, single: bool):
    return values[0].item() if single else values


# --------------------------------------------------------------------------- metrics
def pointing_game(heatmap: Any, targets: Any, tolerance: float = 0) -> bool | np.ndarray:
    """Hit when the map's maximum lies within ``tolerance`` pixels of the target.

    Zhang et al. 2018 (Top-down neural attention by excitation backprop) count a hit when the
    maximum point is on an annotated instance, with a 15-pixel tolerance. Distance is Euclidean
    from the maximum's pixel to the nearest target pixel. When several pixels tie for the
    maximum, any of them within tolerance is a hit (as Quantus's ``PointingGame``). A flat map
    (max == min, e.g. all zeros) points nowhere and is a miss.

    Returns:
        bool for one map, an (N,) bool array for a batch.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (Integral, Real)) or tolerance < 0:
        raise InvalidParameterError(expected("tolerance", "a number of pixels >= 0", tolerance))
    maps, masks, single = _prepare(heatmap, targets)
    hits = np.zeros(len(maps), dtype=bool)
    for i, (m, mask) in enumerate(zip(maps, masks)):
        top = m.max()
        if top == m.min():
            continue
        peaks = m == top
        if tolerance > 0:
            from scipy.ndimage import distance_transform_edt

            near = distance_transform_edt(~mask) <= float(tolerance)
        else:
            near = mask
        hits[i] = bool((peaks & near).any())
    return _out(hits, single)


def energy_pointing_game(heatmap: Any, targets: Any) -> float | np.ndarray:
    """Fraction of the map's energy inside the target: sum(L * mask) / sum(L).

    Wang et al. 2020 (Score-CAM, sec. 5.2): Proportion = sum_{(i,j) in bbox} L_ij / sum_(i,j) L_ij.
    Negative values are clipped to 0 first (display maps are already in [0, 1]); an all-zero
    map has no energy to place and scores 0.0. Equal to Quantus's ``RelevanceMassAccuracy``
    on non-negative maps.
    """
    maps, masks, single = _prepare(heatmap, targets)
    energy = np.clip(maps, 0.0, None)
    total = energy.sum(axis=(1, 2))
    inside = (energy * masks).sum(axis=(1, 2))
    values = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return _out(values, single)


def iou_at_thresholds(
    heatmap: Any, targets: Any, deltas: Sequence[float] = (0.0, 0.25, 0.5, 0.75), region: str = "mask"
) -> dict:
    """IoU between the map thresholded at ``delta * max`` and the target, for each delta.

    A pixel is kept when its value is strictly above ``delta * max`` (so delta 0 keeps the
    map's support). ``region="mask"`` (default) scores the kept pixels themselves: this is the
    Grad-CAM++ paper's Loc(delta) = internal / (box area + external), which is exactly
    |kept & target| / |kept | target|. ``region="box"`` scores the bounding box of the largest
    8-connected kept region (the CAM / Grad-CAM weakly-supervised box protocol). A flat or
    all-zero map keeps nothing and scores 0.

    Returns:
        {delta: IoU} with floats for one map, (N,) arrays for a batch.
    """
    if region not in IOU_REGIONS:
        raise InvalidParameterError(expected("region", f"one of {', '.join(map(repr, IOU_REGIONS))}", region))
    deltas = _check_deltas(deltas)
    maps, masks, single = _prepare(heatmap, targets)
    top = maps.max(axis=(1, 2), keepdims=True)
    flat = (top == maps.min(axis=(1, 2), keepdims=True)) | (top <= 0)
    result = {}
    for delta in deltas:
        kept = (maps > delta * top) & ~flat
        if region == "box":
            kept = np.stack([_largest_region_box(k) for k in kept])
        inter = (kept & masks).sum(axis=(1, 2))
        union = (kept | masks).sum(axis=(1, 2))
        result[delta] = _out(inter / union, single)
    return result


def _check_deltas(deltas: Sequence[float]) -> list[float]:
    values = [deltas] if isinstance(deltas, (Integral, Real)) else list(deltas)
    for d in values:
        if isinstance(d, bool) or not isinstance(d, (Integral, Real)) or not 0.0 <= d < 1.0:
            raise InvalidParameterError(
                expected("deltas", "numbers in [0, 1)", d, "pass e.g. deltas=(0.25, 0.5)")
            )
    if not values:
        raise InvalidParameterError(
            expected("deltas", "at least one threshold", deltas, "pass e.g. deltas=(0.25, 0.5)")
        )
    return [float(d) for d in values]


def _largest_region_box(kept: np.ndarray) -> np.ndarray:
    """Mask of the bounding box of the largest 8-connected True region (empty stays empty)."""
    if not kept.any():
        return kept
    from scipy.ndimage import label

    labels, count = label(kept, structure=np.ones((3, 3), dtype=int))
    sizes = np.bincount(labels.ravel())[1:]
    ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    box = np.zeros_like(kept)
    box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    return box
