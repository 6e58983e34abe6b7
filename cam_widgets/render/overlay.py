"""Blending a colour-mapped explanation over the photo, and encoding images as PNG."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np

from ..errors import InvalidImageError, InvalidParameterError, expected
from .colormaps import DEFAULT_COLORMAP, apply_colormap, check_fade, fade_alpha
from .normalize import as_map, upsample_map

__all__ = ["overlay", "fade_for", "to_png_bytes", "png_data_uri", "image_data_uri", "save_png", "check_rgb"]


def check_rgb(rgb: object, name: str = "rgb") -> np.ndarray:
    """Validate an RGB uint8 (H, W, 3) image and return it as a numpy array."""
    arr = np.asarray(rgb) if not isinstance(rgb, np.ndarray) else rgb
    if arr.dtype != np.uint8:
        raise InvalidImageError(
            expected(
                name,
                "a uint8 array (0..255)",
                arr,
                "use (x * 255).round().astype(np.uint8) for a 0..1 float image"
                if arr.dtype.kind == "f"
                else "",
            )
        )
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidImageError(expected(name, "an RGB array of shape (H, W, 3)", arr))
    return arr


def check_opacity(value: object, name: str = "opacity") -> float:
    """``value`` as an opacity in [0, 1]; a one-line error naming ``name`` otherwise."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError  # True is no opacity, though float() takes it
        a = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParameterError(expected(name, "a number in [0, 1]", value)) from None
    if not 0.0 <= a <= 1.0:
        raise InvalidParameterError(expected(name, "a number in [0, 1]", value))
    return a


def fade_for(pixel_level: bool) -> str:
    """The fade an overlay of a map uses: ``"pixel"`` for input-resolution maps (a method of
    the registry's ``pixel`` family), ``"cam"`` for layer maps."""
    return "pixel" if pixel_level else "cam"


def overlay(
    rgb: np.ndarray,
    map01: np.ndarray,
    *,
    alpha: float = 0.5,
    colormap: str = DEFAULT_COLORMAP,
    fade: str | None = None,
) -> np.ndarray:
    """Alpha-blend ``colormap(map01)`` over the photo: ``(1 - alpha) * rgb + alpha * colour``.

    ``map01`` (h, w) with values in [0, 1] (normalise first) is resized to the image size with
    torch-compatible bilinear interpolation when the shapes differ.  Returns RGB uint8
    (H, W, 3); alpha 0 gives the image back unchanged, alpha 1 the colour map.

    ``fade`` (``"pixel"`` or ``"cam"``, see :func:`~.colormaps.fade_alpha`) makes the alpha
    per pixel, ``alpha * fade_alpha(m)``: where the map is 0 the photo is unchanged, where the
    fade is 1 the pixel is exactly the blend without fade.
    """
    img = check_rgb(rgb)
    a = check_opacity(alpha, "alpha")
    check_fade(fade)
    m = np.nan_to_num(as_map(map01, "map01"), nan=0.0, posinf=1.0, neginf=0.0)
    if m.shape != img.shape[:2]:
        m = upsample_map(m, img.shape[:2], mode="bilinear")
    colour = apply_colormap(m, colormap)
    if a == 0.0:
        return img.copy()
    if fade is None:
        if a == 1.0:
            return colour
        out = (1.0 - a) * img.astype(np.float32) + a * colour.astype(np.float32)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # weights in float64 cast to float32, as the scalar ones above: a fade of 1 gives the
    # very same float32 sums (and pixels) as no fade
    weight = a * fade_alpha(m, fade)
    keep = (1.0 - weight).astype(np.float32)[..., None]
    add = weight.astype(np.float32)[..., None]
    out = keep * img.astype(np.float32) + add * colour.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _to_pil(rgb: object):
    from PIL import Image

    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise InvalidImageError(expected("image", "a uint8 array", arr))
    if arr.ndim == 2 and arr.size:
        return Image.fromarray(np.ascontiguousarray(arr))
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.shape[0] and arr.shape[1]:
        return Image.fromarray(np.ascontiguousarray(arr))
    raise InvalidImageError(expected("image", "an array of shape (H, W), (H, W, 3) or (H, W, 4)", arr))


def to_png_bytes(rgb: np.ndarray) -> bytes:
    """Encode a uint8 image (H, W, 3) RGB (also (H, W) gray or (H, W, 4) RGBA) as PNG bytes."""
    buf = io.BytesIO()
    _to_pil(rgb).save(buf, format="PNG")
    return buf.getvalue()


def png_data_uri(rgb: np.ndarray) -> str:
    """``"data:image/png;base64,..."`` for embedding an image in HTML or a plotly figure."""
    return "data:image/png;base64," + base64.b64encode(to_png_bytes(rgb)).decode("ascii")


def image_data_uri(rgb: np.ndarray, fmt: str = "png", quality: int = 90) -> str:
    """Data URI as PNG (lossless) or JPEG (``fmt="jpeg"``, much smaller for photos)."""
    f = str(fmt).lower()
    if f == "png":
        return png_data_uri(rgb)
    if f not in ("jpeg", "jpg"):
        raise InvalidParameterError(expected("fmt", "'png' or 'jpeg'", fmt))
    if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise InvalidParameterError(expected("quality", "an int in [1, 100]", quality))
    img = _to_pil(rgb)
    if img.mode == "RGBA":
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write a uint8 image as a PNG file (parent folders are created); returns the path. The
    file is written beside the target and renamed over it when complete: a failed write (a
    full disk) leaves an existing file as it was."""
    from ..data.files import atomic_write

    p = Path(path)
    data = to_png_bytes(rgb)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(p, "wb") as file:
        file.write(data)
    return p
