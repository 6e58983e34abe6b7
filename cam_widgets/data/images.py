"""Loading images from anywhere into one format: a numpy ``uint8`` array (H, W, 3), RGB.

:func:`load_image` accepts paths, http(s) URLs, encoded bytes, PIL images and numpy
arrays, and turns every problem (missing file, non-image, truncated file, NaN array,
absurd size...) into a one-line :class:`~cam_widgets.errors.InvalidImageError`.
:mod:`.samples` gives real photos bundled with scikit-image (no download).
"""
from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import warnings
from typing import Iterator, Tuple, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cam_widgets.errors import InvalidImageError, InvalidParameterError, close_matches, describe

from .fetch import fetch_bytes

__all__ = [
    "load_image",
    "resize_for_model",
    "MIN_SIDE",
    "MAX_FILE_PIXELS",
]

#: Smallest accepted image side, in pixels.
MIN_SIDE = 8
#: Largest accepted image (width * height) decoded from a file, URL or bytes.
MAX_FILE_PIXELS = 100_000_000

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

_EXPECTED = "a file path, an http(s) URL, encoded image bytes, a PIL image or a numpy array"


# --------------------------------------------------------------------------- public API
def load_image(source: ImageSource, *, timeout: float = 10.0, max_bytes: int = 20_000_000) -> np.ndarray:
    """Load an image as a fresh ``uint8`` numpy array of shape (H, W, 3), RGB.

    Args:
        source: one of
            * a path (``str`` or ``pathlib.Path``) to an image file PIL can read;
            * an ``http://`` or ``https://`` URL (fetched with ``urllib``);
            * ``bytes`` holding an encoded image file (for example a widget upload);
            * a PIL image;
            * a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of dtype uint8,
              uint16 (scaled to 8 bits), bool, an integer type with values in 0..255,
              or float with values in [0, 1] (if the maximum is <= 1) or else [0, 255].
        timeout: seconds allowed for each network operation and for the whole download.
        max_bytes: largest download (or bytes input) accepted.

    Grayscale is replicated to 3 channels, alpha (RGBA, LA, palette transparency) is
    composited on white, palette, CMYK and 16-bit images are converted, and the EXIF
    orientation tag is applied. Files above :data:`MAX_FILE_PIXELS` are refused (PIL's
    decompression-bomb guard); arrays have no size limit. Every side must be at least
    :data:`MIN_SIDE` pixels.

    Raises:
        InvalidImageError: the source is missing, unreadable, truncated, of the wrong
            type/shape/dtype, contains NaN or inf, or is too small or too large.
        InvalidParameterError: ``timeout`` or ``max_bytes`` is not a positive number.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidParameterError(
            f"Invalid timeout: expected a positive number of seconds, received {describe(timeout)}."
            " Hint: pass e.g. timeout=10.0."
        )
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
        raise InvalidParameterError(
            f"Invalid max_bytes: expected a positive int, received {describe(max_bytes)}."
            " Hint: pass e.g. max_bytes=20_000_000."
        )
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, what="PIL image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise InvalidImageError(
                f"Image bytes too large: expected at most {max_bytes} bytes, received {len(data)} bytes."
                " Hint: pass a larger max_bytes or a smaller file."
            )
        return _decode(io.BytesIO(data), what="image bytes")
    if isinstance(source, str) and source.strip().lower().startswith(("http://", "https://")):
        url = source.strip()
        data = fetch_bytes(url, timeout=float(timeout), max_bytes=int(max_bytes))
        return _decode(io.BytesIO(data), what=f"image at {url!r}")
    if isinstance(source, str) and "://" in source:
        scheme = source.split("://", 1)[0]
        raise InvalidImageError(
            f"Unsupported URL scheme {scheme!r}: expected a file path or an http(s) URL,"
            f" received {describe(source)}. Hint: download the image and pass the local file."
        )
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source)
    if type(source).__module__.split(".")[0] == "torch":
        raise InvalidImageError(
            f"Unsupported image type: expected {_EXPECTED}, received {describe(source)}."
            " Hint: convert the tensor with t.permute(1, 2, 0).cpu().numpy() (H, W, C)."
        )
    raise InvalidImageError(
        f"Unsupported image type: expected {_EXPECTED}, received {describe(source)}."
        " Hint: pass e.g. load_image('cat.jpg')."
    )


def resize_for_model(rgb: ImageSource, size: Union[int, Tuple[int, int]] = (224, 224)) -> np.ndarray:
    """Resize a whole image to the model input size: ``uint8`` (height, width, 3).

    ``size`` is ``(height, width)`` (the order of ``ModelSpec.input_size``) or one int for
    a square. The full image is resized with PIL's bilinear filter (which antialiases when
    shrinking); there is no center crop, so the aspect ratio is not kept and every pixel
    of the input stays visible, which lets heatmaps be mapped back onto the whole image.
    ``rgb`` may be anything :func:`load_image` accepts.
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)
    )
    if not ok:
        raise InvalidParameterError(
            f"Invalid size: expected (height, width) as two positive ints or one int,"
            f" received {describe(size)}. Hint: pass e.g. size=(224, 224)."
        )
    height, width = int(size[0]), int(size[1])
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        arr = rgb
        if min(arr.shape[:2]) < 1:
            arr = _array_to_rgb(arr)  # raises the "empty" error
    else:
        arr = load_image(rgb)
    if arr.shape[0] == height and arr.shape[1] == width:
        return np.array(arr, dtype=np.uint8, copy=True)
    pil = Image.fromarray(np.ascontiguousarray(arr))
    return np.asarray(pil.resize((width, height), resample=Image.BILINEAR), dtype=np.uint8).copy()


# --------------------------------------------------------------------------- helpers
def _too_small(width: int, height: int, what: str) -> InvalidImageError:
    return InvalidImageError(
        f"Image too small: expected at least {MIN_SIDE}x{MIN_SIDE} pixels, received a"
        f" {width}x{height} (width x height) {what}. Hint: use a larger image."
    )


def _load_path(source: Union[str, os.PathLike]) -> np.ndarray:
    try:
        path = pathlib.Path(source).expanduser()
    except (TypeError, ValueError):
        raise InvalidImageError(
            f"Invalid image path: expected {_EXPECTED}, received {describe(source)}."
            " Hint: pass e.g. load_image('cat.jpg')."
        ) from None
    if not path.exists():
        hint = ""
        parent = path.parent if str(path.parent) else pathlib.Path(".")
        if parent.is_dir():
            try:
                hint = close_matches(path.name, [p.name for p in parent.iterdir()])
            except OSError:
                hint = ""
        if not hint:
            hint = f" Hint: check the path (relative paths start at {os.getcwd()!r})."
        raise InvalidImageError(
            f"Image file not found: expected an existing image file, received {describe(str(source))}.{hint}"
        )
    if path.is_dir():
        raise InvalidImageError(
            f"Image path is a directory: expected an image file, received {describe(str(source))}."
            " Hint: pass one file inside it."
        )
    try:
        with open(path, "rb") as fh:
            return _decode(fh, what=f"file {str(path)!r}")
    except PermissionError:
        raise InvalidImageError(
            f"Image file not readable: expected a file this user can read, received {describe(str(source))}."
            " Hint: check the file permissions."
        ) from None


@contextlib.contextmanager
def _strict_pil() -> Iterator[None]:
    """Make PIL refuse truncated files and absurd sizes (restores the globals after)."""
    old_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    old_max = Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = MAX_FILE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old_truncated
        Image.MAX_IMAGE_PIXELS = old_max


def _decode(fp: io.IOBase, what: str) -> np.ndarray:
    """Decode an encoded image file (path handle or bytes) fully and strictly."""
    with _strict_pil():
        try:
            img = Image.open(fp)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(what, str(exc)) from None
        except UnidentifiedImageError:
            raise InvalidImageError(
                f"Not an image: expected an image file PIL can read (PNG, JPEG, ...),"
                f" received {what} that is not a recognised image format."
                " Hint: check that the file really is an image."
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise _corrupt(what, exc) from None
        width, height = img.size
        if width * height > MAX_FILE_PIXELS:
            raise _bomb(what, f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels)")
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(what, str(exc)) from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError) as exc:
            raise _corrupt(what, exc) from None
        return _pil_to_rgb(img, what=what)


def _bomb(what: str, detail: str) -> InvalidImageError:
    found = re.search(r"(\d+) pixels", detail)
    if found:  # PIL's "Image size (900000000 pixels) exceeds limit of ..."
        detail = f"{int(found.group(1)) / 1e6:.0f} megapixels"
    return InvalidImageError(
        f"Image too large: expected at most {MAX_FILE_PIXELS // 1_000_000} megapixels,"
        f" received {what} of {detail.splitlines()[0][:80]}. Hint: downscale the image first"
        " (possible decompression bomb)."
    )


def _corrupt(what: str, exc: BaseException) -> InvalidImageError:
    text = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
    return InvalidImageError(
        f"Truncated or corrupt image: expected a complete image file, received {what}"
        f" that could not be decoded ({text}). Hint: re-download or re-save the file."
    )


def _pil_to_rgb(img: Image.Image, what: str) -> np.ndarray:
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # malformed EXIF: keep the stored orientation
        pass
    width, height = img.size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _too_small(width, height, what)
    mode = img.mode
    try:
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            arr = np.asarray(img)
            if mode == "F" or arr.dtype.kind == "f":
                return _array_to_rgb(arr.astype(np.float64))
            arr = arr.astype(np.int64)
            if mode.startswith("I;16") or (arr.size and arr.min() >= 0 and arr.max() <= 65535):
                gray = _scale16(arr)
            else:  # 32-bit signed data: stretch to 0..255
                lo, hi = float(arr.min()), float(arr.max())
                gray = np.zeros(arr.shape, np.uint8) if hi <= lo else np.round((arr - lo) * 255.0 / (hi - lo)).astype(np.uint8)
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
            f"Unsupported image mode: expected an image convertible to RGB, received {what} in"
            f" mode {mode!r} ({str(exc)[:80]}). Hint: re-save it as an 8-bit RGB PNG or JPEG."
        ) from None


def _scale16(arr: np.ndarray) -> np.ndarray:
    return np.round(arr.astype(np.float64) / 257.0).clip(0, 255).astype(np.uint8)


def _composite_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an 8-bit RGBA array on a white background."""
    rgb = rgba[:, :, :3].astype(np.float64)
    alpha = rgba[:, :, 3:4].astype(np.float64) / 255.0
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.round(out).clip(0, 255).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    received = f"an array of shape {tuple(arr.shape)} and dtype {arr.dtype}"
    if arr.size == 0:
        raise InvalidImageError(
            f"Empty image: expected an array of shape (H, W) or (H, W, C) with H, W >= {MIN_SIDE},"
            f" received {received}. Hint: check how the array was built."
        )
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise InvalidImageError(
            f"Unsupported array dtype: expected uint8, uint16, bool, integer or float pixels,"
            f" received {received}. Hint: convert with arr.astype(np.uint8)."
        )
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        raise InvalidImageError(
            f"Wrong image shape: expected channels last (H, W, C) with C in 1, 3, 4, received"
            f" {received}. Hint: it looks channels-first; use arr.transpose(1, 2, 0)."
        )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise InvalidImageError(
            f"Wrong image shape: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4),"
            f" received {received}. Hint: pass one image, not a batch."
        )
    height, width = arr.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise _too_small(width, height, "array")
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
                f"Pixel values out of range: expected {arr.dtype} values in 0..255, received"
                f" {received} with values in {lo}..{hi}. Hint: rescale, or pass uint16 for 16-bit data."
            )
        data = arr.astype(np.uint8)
    else:  # float
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(arr.size - finite.sum() - n_nan)
            raise InvalidImageError(
                f"Image contains NaN or inf: expected finite pixel values, received {received}"
                f" with {n_nan} NaN and {n_inf} inf values. Hint: use np.nan_to_num(arr) first."
            )
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 255.0 + 1e-6:
            raise InvalidImageError(
                f"Pixel values out of range: expected floats in [0, 1] or [0, 255], received"
                f" {received} with values in [{lo:.4g}, {hi:.4g}]."
                " Hint: rescale, e.g. (a - a.min()) / (a.max() - a.min())."
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
