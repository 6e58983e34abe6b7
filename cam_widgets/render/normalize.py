"""Turning raw explanation maps into displayable [0, 1] maps, and resizing them.

Pure numpy: no torch, no widgets.  Every function here is total on numeric input: it never
divides by zero and never returns NaN; what went wrong with a map (flat, negative-only,
non-finite values) is reported in a :class:`MapStatus` instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameterError, Received, close_matches, describe, expected

__all__ = [
    "MapStatus",
    "normalize_map",
    "shared_scale",
    "upsample_map",
    "NORMALIZE_MODES",
    "DISPLAY_PERCENTILE",
    "percentile_scale",
]

#: Pixel-level maps (gradients) are spiky: a few pixels hold the maximum and, on a [0, max]
#: colour scale, the rest looks empty. They are drawn relative to their 99th percentile,
#: clipped at 1, as the SmoothGrad paper (Smilkov et al. 2017) and PAIR's saliency library do.
DISPLAY_PERCENTILE = 99.0

#: ``"minmax"``: (x - min) / (max - min).  ``"max"``: x / max with values <= 0 shown as 0
#: (the usual Grad-CAM convention after ReLU).  ``"none"``: values are already in [0, 1];
#: they are only clipped to it.
NORMALIZE_MODES = ("minmax", "max", "none")

#: A map whose span (max - min) is at most this fraction of its largest magnitude is flat.
FLAT_RTOL = 1e-6


@dataclass(frozen=True)
class MapStatus:
    """What :func:`normalize_map` found in one map.

    Attributes:
        flat: max - min is within a tiny relative tolerance (includes all-zero maps); the
            normalised map is then all zeros.
        all_zero: every value was 0 (after non-finite values were replaced and, with
            ``clip_negative``, negatives were clipped).
        negative_only: max <= 0 < |min|: only negative evidence, which a ReLU silently zeros.
        has_nonfinite: NaN or +/-inf were present; they were replaced by 0.
        message: one-line human explanation when any flag is set, else None.
    """

    flat: bool = False
    all_zero: bool = False
    negative_only: bool = False
    has_nonfinite: bool = False
    message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the map has something to show and nothing was repaired."""
        return not (self.flat or self.negative_only or self.has_nonfinite)


def _as_float_array(raw: object, name: str = "raw", float32_ok: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(raw)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InvalidParameterError(
            expected(name, "a numeric array", Received(f"{describe(raw)} ({exc})"))
        ) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InvalidParameterError(
            expected(name, "a numeric array", Received(f"dtype {arr.dtype} ({describe(raw)})"))
        )
    if np.iscomplexobj(arr):
        raise InvalidParameterError(expected(name, "a real-valued array", arr))
    if float32_ok and arr.dtype == np.float32:
        return arr
    return arr.astype(np.float64, copy=False)


def as_map(m: object, name: str = "map", dtype=np.float64) -> np.ndarray:
    """``m`` as one non-empty (h, w) array of ``dtype``; a one-line error otherwise."""
    a = _as_float_array(m, name, float32_ok=dtype == np.float32).astype(dtype, copy=False)
    if a.ndim != 2 or a.size == 0:
        raise InvalidParameterError(expected(name, "a non-empty (h, w) array", a))
    return a


def _checked_maps(raw: object, mode: str, modes: tuple, shapes: str, float32_ok: bool = False) -> np.ndarray:
    """``raw`` as a float array of one or N maps, after checking ``mode``; one-line errors."""
    if mode not in modes:
        raise InvalidParameterError(
            expected(
                "mode", f"one of {', '.join(repr(m) for m in modes)}", mode, close_matches(str(mode), modes)
            )
        )
    x = _as_float_array(raw, float32_ok=float32_ok)
    if x.ndim not in (2, 3) or x.size == 0:
        raise InvalidParameterError(expected("raw", f"a non-empty {shapes} array", x))
    return x


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _normalize_one(x: np.ndarray, mode: str, clip_negative: bool) -> tuple[np.ndarray, MapStatus]:
    raw_max, raw_min = float(x.max()), float(x.min())
    n_bad = 0
    if not (np.isfinite(raw_max) and np.isfinite(raw_min)):  # max/min propagate NaN and inf
        finite = np.isfinite(x)
        n_bad = int(x.size - np.count_nonzero(finite))
        x = np.where(finite, x, 0.0)
        raw_max, raw_min = float(x.max()), float(x.min())
    negative_only = raw_max <= 0.0 < abs(raw_min)
    # the extremes after an optional ReLU, without a second pass over the map
    hi, lo = (max(raw_max, 0.0), max(raw_min, 0.0)) if clip_negative else (raw_max, raw_min)
    span = hi - lo
    scale = max(abs(hi), abs(lo))
    all_zero = scale == 0.0
    flat = all_zero or span <= FLAT_RTOL * scale

    if flat:
        out = np.zeros(x.shape, dtype=np.float32)
    elif mode == "minmax":  # max(x, lo) is the ReLU when clipping, a no-op otherwise
        out = ((np.maximum(x, lo) - lo) / span).astype(np.float32, copy=False)
    elif mode == "max":
        out = (
            (np.maximum(x, 0.0) / hi).astype(np.float32, copy=False)
            if hi > 0
            else np.zeros(x.shape, np.float32)
        )
    else:  # "none"
        out = (np.maximum(x, 0.0) if clip_negative else x).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)

    parts: list[str] = []
    if n_bad:
        parts.append(f"{n_bad} NaN/inf value{'s' if n_bad != 1 else ''} replaced by 0")
    if negative_only:
        what = "clipped to 0" if clip_negative else ("shown as 0" if mode == "max" else "kept")
        parts.append(
            f"negative-only map (max {_fmt(raw_max)}, min {_fmt(raw_min)}): only negative "
            f"evidence, which a ReLU would zero; negatives {what}"
        )
    if flat:
        if all_zero:
            parts.append("flat map: every value is 0.0; nothing to show for this class/layer")
        else:
            parts.append(f"flat map: every value is {_fmt(hi)}; nothing to show for this class/layer")
    elif mode == "max" and hi <= 0 and not negative_only:
        parts.append("no positive values: nothing to show with mode='max'")
    message = "; ".join(parts) if parts else None
    if message:
        message = message[0].upper() + message[1:]
    status = MapStatus(
        flat=bool(flat),
        all_zero=bool(all_zero),
        negative_only=bool(negative_only),
        has_nonfinite=bool(n_bad),
        message=message,
    )
    return out, status


def normalize_map(
    raw: np.ndarray,
    *,
    mode: str = "minmax",
    clip_negative: bool = False,
) -> tuple[np.ndarray, MapStatus | list[MapStatus]]:
    """Normalise a raw map (H, W) or a batch of maps (N, H, W) to float32 in [0, 1].

    Each map of a batch is normalised on its own.  NaN/inf are replaced by 0; a flat map
    (including all-zero) becomes all zeros.  Returns ``(map01, status)`` for a 2-D input and
    ``(maps01, [status, ...])`` for a 3-D input.

    Args:
        raw: numeric array (H, W) or (N, H, W).
        mode: one of :data:`NORMALIZE_MODES`.
        clip_negative: clip values below 0 to 0 first (a ReLU), as Grad-CAM does.
    """
    # float32 maps (the engine's) are normalised in float32: one pass fewer, same result to 1e-7
    x = _checked_maps(raw, mode, NORMALIZE_MODES, "(H, W) or (N, H, W)", float32_ok=True)
    if x.ndim == 2:
        return _normalize_one(x, mode, bool(clip_negative))
    outs, statuses = [], []
    for m in x:
        o, s = _normalize_one(m, mode, bool(clip_negative))
        outs.append(o)
        statuses.append(s)
    return np.stack(outs).astype(np.float32, copy=False), statuses


def percentile_scale(m: np.ndarray, percentile: float = DISPLAY_PERCENTILE) -> np.ndarray:
    """A map >= 0 as drawn relative to its ``percentile``-th percentile: float32, divided by
    it and clipped to [0, 1]. A map whose percentile is 0 (mostly empty) is divided by its
    maximum instead; an all-zero map stays all zeros."""
    a = np.nan_to_num(_as_float_array(m, "map"), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(np.percentile(a, percentile)) if a.size else 0.0
    top = top if top > 0 else (float(a.max()) if a.size else 0.0)
    if not top > 0:
        return np.zeros(a.shape, np.float32)
    return np.clip(a / top, 0.0, 1.0).astype(np.float32)


def shared_scale(
    maps: np.ndarray | Sequence[np.ndarray],
    *,
    symmetric: bool = False,
    percentile: float | None = None,
) -> tuple[float, float]:
    """A common (lo, hi) colour range for comparing several maps side by side.

    Non-finite values are ignored.  Always returns lo < hi: a flat or empty set of maps gives
    a unit-wide range.  With ``symmetric`` the range is (-m, m), m = largest |value|, which
    suits signed maps shown with a diverging colormap.  With ``percentile`` (e.g.
    :data:`DISPLAY_PERCENTILE`, for spiky pixel-level maps) hi is that percentile of the
    values, not their maximum: the top values saturate.
    """
    if isinstance(maps, np.ndarray):
        arrays = [maps]
    else:
        try:
            arrays = list(maps)
        except TypeError:
            raise InvalidParameterError(expected("maps", "an array or a sequence of arrays", maps)) from None
    if not arrays:
        raise InvalidParameterError(expected("maps", "at least one map", Received("an empty sequence")))
    finite = [a[np.isfinite(a)] for a in (_as_float_array(m, "maps[i]") for m in arrays)]
    values = np.concatenate([f.ravel() for f in finite]) if finite else np.zeros(0)
    if values.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if percentile is not None and float(np.percentile(values, percentile)) > lo:
        hi = float(np.percentile(values, percentile))
    if symmetric:
        m = max(abs(lo), abs(hi))
        return (-m, m) if m > 0 else (-1.0, 1.0)
    if hi - lo <= FLAT_RTOL * max(abs(lo), abs(hi)) or hi == lo:
        return (lo - 0.5, lo + 0.5) if lo != 0 else (0.0, 1.0)
    return lo, hi


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's bilinear/linear interpolation, align_corners=False."""
    scale = n_in / n_out
    dst = np.arange(n_out, dtype=np.float64)
    src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    w = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(w, (rows, i0), 1.0 - lam)
    np.add.at(w, (rows, i1), lam)
    return w


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """torch 'nearest' source indices: floor(dst * in / out)."""
    scale = n_in / n_out
    return np.minimum(np.floor(np.arange(n_out) * scale).astype(np.int64), n_in - 1)


UPSAMPLE_MODES = ("bilinear", "nearest")


def upsample_map(raw: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resize a map (h, w) or batch (N, h, w) to ``size`` = (H, W); returns float32.

    ``"bilinear"`` reproduces ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)``; ``"nearest"`` reproduces torch's ``mode="nearest"`` and shows the
    raw layer grid as blocks.  Works for down-sizing too (same formulas as torch, no
    antialiasing).  Non-finite values propagate; normalise first to remove them.
    """
    x = _checked_maps(raw, mode, UPSAMPLE_MODES, "(h, w) or (N, h, w)")
    try:
        out_h, out_w = (int(s) for s in size)
        ok = out_h > 0 and out_w > 0 and len(tuple(size)) == 2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidParameterError(expected("size", "(height, width) with two positive integers", size))
    in_h, in_w = x.shape[-2:]
    if mode == "nearest":
        out = x[..., _nearest_index(in_h, out_h)[:, None], _nearest_index(in_w, out_w)[None, :]]
        return np.ascontiguousarray(out, dtype=np.float32)
    wy = _bilinear_matrix(in_h, out_h)
    wx = _bilinear_matrix(in_w, out_w)
    out = np.einsum("Hh,...hw,Ww->...HW", wy, x, wx, optimize=True)
    return out.astype(np.float32)
