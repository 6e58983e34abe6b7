"""Turning decoded pixels (PIL images, numpy arrays) into the one format: ``uint8`` (H, W, 3), RGB.

Handles every mode and dtype :func:`~cam_widgets.data.images.load_image` accepts: grayscale is
replicated, alpha is composited on white, 16-bit and float data are scaled, EXIF orientation is
applied, and bad pixels (NaN, inf, out of range) or too-small images become a one-line
:class:`~cam_widgets.errors.InvalidImageError`. Nothing here opens files or decodes bytes
(:mod:`.images` and :mod:`.image_decoding` do), so arrays and PIL images come straight here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cam_widgets.errors import InvalidImageError, Received, expected

#: Smallest accepted image side, in pixels.
MIN_SIDE = 8


def too_small(width: int, height: int, what: str) -> InvalidImageError:
    return InvalidImageError(
        expected(
            "image",
            f"at least {MIN_SIDE}x{MIN_SIDE} pixels",
            Received(f"a {width}x{height} (width x height) {what}"),
            "use a larger image",
            problem="Image too small",
        )
    )


#: EXIF orientation tag value -> the transpose that shows the image upright.
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def orientation(img: Image.Image) -> int:
    """The EXIF orientation tag of ``img`` (1: as stored; malformed EXIF reads as 1)."""
    try:
        value = img.getexif().get(0x0112, 1)
        return int(value) if int(value) in _ORIENT else 1
    except Exception:  # malformed EXIF: keep the stored orientation
        return 1


def upright(img: Image.Image, tag: int) -> Image.Image:
    """``img`` turned as its EXIF orientation ``tag`` says (the same object when upright):
    one copy only when it must turn (``ImageOps.exif_transpose`` copies every image)."""
    return img.transpose(_ORIENT[tag]) if tag in _ORIENT else img


def pil_to_rgb(img: Image.Image, what: str, orient: bool = True) -> np.ndarray:
    """RGB ``uint8`` pixels of a PIL image; ``orient``: apply its EXIF orientation first."""
    if orient:
        img = upright(img, orientation(img))
    width, height = img.size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise too_small(width, height, what)
    mode = img.mode
    try:
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            arr = np.asarray(img)
            if mode == "F" or arr.dtype.kind == "f":
                return array_to_rgb(arr.astype(np.float64))
            arr = arr.astype(np.int64)
            if mode.startswith("I;16") or (arr.size and arr.min() >= 0 and arr.max() <= 65535):
                gray = _scale16(arr)
            else:  # 32-bit signed data: stretch to 0..255
                lo, hi = float(arr.min()), float(arr.max())
                gray = (
                    np.zeros(arr.shape, np.uint8)
                    if hi <= lo
                    else np.round((arr - lo) * 255.0 / (hi - lo)).astype(np.uint8)
                )
            return np.repeat(gray[:, :, None], 3, axis=2)
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
        elif mode in ("PA", "LA", "La", "RGBa"):
            img = img.convert("RGBA")
        if img.mode == "RGBA":
            return _composite_white(np.asarray(img, dtype=np.uint8))
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.array(img, dtype=np.uint8, copy=True)
    except InvalidImageError:
        raise
    except (OSError, ValueError) as exc:
        raise InvalidImageError(
            expected(
                "image mode",
                "an image convertible to RGB",
                Received(f"{what} in mode {mode!r} ({str(exc)[:80]})"),
                "re-save it as an 8-bit RGB PNG or JPEG",
                problem="Unsupported image mode",
            )
        ) from None


#: Pixels per band of the conversions below: their temporaries stay a few MB, whatever the size.
_BAND_PIXELS = 1 << 20


def _bands(height: int, width: int):
    step = max(1, _BAND_PIXELS // max(1, width))
    return (slice(top, top + step) for top in range(0, height, step))


def _scale16(arr: np.ndarray) -> np.ndarray:
    """16-bit values (0..65535) to 8 bits, rounded: round(x / 257) in integers, band by band
    (x / 257 is never a tie: 257 is odd), so a large image makes no float64 copy."""
    out = np.empty(arr.shape, np.uint8)
    for rows in _bands(arr.shape[0], arr.shape[1] if arr.ndim > 1 else 1):
        out[rows] = ((arr[rows].astype(np.uint32) + 128) // 257).clip(0, 255)
    return out


def _composite_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an 8-bit RGBA array on a white background: round((c a + 255 (255 - a)) / 255)
    in 16-bit integers (the numerator is at most 65025; never a tie), band by band."""
    out = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for rows in _bands(rgba.shape[0], rgba.shape[1]):
        band = rgba[rows]
        alpha = band[:, :, 3:4].astype(np.uint16)
        out[rows] = (band[:, :, :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255
    return out


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    received = f"an array of shape {tuple(arr.shape)} and dtype {arr.dtype}"
    if arr.size == 0:
        raise InvalidImageError(
            expected(
                "image",
                f"an array of shape (H, W) or (H, W, C) with H, W >= {MIN_SIDE}",
                Received(received),
                "check how the array was built",
                problem="Empty image",
            )
        )
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise InvalidImageError(
            expected(
                "array dtype",
                "uint8, uint16, bool, integer or float pixels",
                Received(received),
                "convert with arr.astype(np.uint8)",
                problem="Unsupported array dtype",
            )
        )
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        raise InvalidImageError(
            expected(
                "image shape",
                "channels last (H, W, C) with C in 1, 3, 4",
                Received(received),
                "it looks channels-first; use arr.transpose(1, 2, 0)",
                problem="Wrong image shape",
            )
        )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise InvalidImageError(
            expected(
                "image shape",
                "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)",
                Received(received),
                "pass one image, not a batch",
                problem="Wrong image shape",
            )
        )
    height, width = arr.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise too_small(width, height, "array")
    if kind == "b":
        data = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint8:
        data = arr
    elif arr.dtype == np.uint16:
        data = _scale16(arr)
    elif kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InvalidImageError(
                expected(
                    "pixel values",
                    f"{arr.dtype} values in 0..255",
                    Received(f"{received} with values in {lo}..{hi}"),
                    "rescale, or pass uint16 for 16-bit data",
                    problem="Pixel values out of range",
                )
            )
        data = arr.astype(np.uint8)
    else:  # float
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(arr.size - finite.sum() - n_nan)
            raise InvalidImageError(
                expected(
                    "pixel values",
                    "finite pixel values",
                    Received(f"{received} with {n_nan} NaN and {n_inf} inf values"),
                    "use np.nan_to_num(arr) first",
                    problem="Image contains NaN or inf",
                )
            )
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 255.0 + 1e-6:
            raise InvalidImageError(
                expected(
                    "pixel values",
                    "floats in [0, 1] or [0, 255]",
                    Received(f"{received} with values in [{lo:.4g}, {hi:.4g}]"),
                    "rescale, e.g. (a - a.min()) / (a.max() - a.min())",
                    problem="Pixel values out of range",
                )
            )
        scale = 255.0 if hi <= 1.0 else 1.0
        data = np.round(arr.astype(np.float64) * scale).clip(0, 255).astype(np.uint8)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.shape[2] == 1:
        return np.repeat(data, 3, axis=2)
    if data.shape[2] == 4:
        return _composite_white(data)
    return np.array(data, dtype=np.uint8, copy=True)
