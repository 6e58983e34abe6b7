"""Loading images from anywhere into one format: a numpy ``uint8`` array (H, W, 3), RGB.

:func:`load_image` accepts paths, http(s) URLs, encoded bytes, PIL images and numpy
arrays, and turns every problem (missing file, non-image, truncated file, NaN array,
absurd size...) into a one-line :class:`~cam_widgets.errors.InvalidImageError`.
:func:`resize_for_model` brings any of those to a model's input size.
:mod:`.samples` gives real photos bundled with scikit-image (no download).

This module sorts sources by kind and checks paths; the work is done next to it:
:mod:`.fetch` downloads URLs, :mod:`.image_decoding` decodes files and bytes strictly,
:mod:`.image_conversion` turns PIL images and arrays into RGB ``uint8``.
"""

from __future__ import annotations

import io
import os
import pathlib

import numpy as np
from PIL import Image

from cam_widgets.errors import (
    InvalidImageError,
    InvalidParameterError,
    Received,
    close_matches,
    describe,
    expected,
)

from .fetch import HINT as _FETCH_HINT
from .fetch import fetch_bytes, size_text
from .files import open_regular

# MIN_SIDE and MAX_FILE_PIXELS are re-exported (public here since before the split)
from .image_conversion import MIN_SIDE, array_to_rgb, pil_to_rgb
from .image_decoding import MAX_DECODED_SIDE, MAX_FILE_PIXELS, decode_file

__all__ = [
    "load_image",
    "resize_for_model",
    "MIN_SIDE",
    "MAX_FILE_PIXELS",
    "MAX_DECODED_SIDE",
]

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

_EXPECTED = "a file path, an http(s) URL, encoded image bytes, a PIL image or a numpy array"


# --------------------------------------------------------------------------- public API
def load_image(
    source: ImageSource,
    *,
    timeout: float = 10.0,
    max_bytes: int = 20_000_000,
    max_side: int | None = MAX_DECODED_SIDE,
) -> np.ndarray:
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
        timeout: seconds allowed for the whole download (connection, headers and every
            read: a server that trickles a byte at a time is cut off there).
        max_bytes: largest download (or bytes input) accepted.
        max_side: an encoded image (file, URL, bytes) larger than this a side is reduced
            while it is decoded, by an integer factor (box filter; JPEG by DCT scaling), so
            that memory does not grow with the file's pixels; None keeps every pixel.
            Arrays and PIL images are not reduced.

    Grayscale is replicated to 3 channels, alpha (RGBA, LA, palette transparency) is
    composited on white, palette, CMYK and 16-bit images are converted, and the EXIF
    orientation tag is applied. Files above :data:`MAX_FILE_PIXELS` are refused (PIL's
    decompression-bomb guard); arrays have no size limit. Every side must be at least
    :data:`MIN_SIDE` pixels.

    Raises:
        InvalidImageError: the source is missing, unreadable, truncated, of the wrong
            type/shape/dtype, contains NaN or inf, or is too small or too large.
        InvalidParameterError: ``timeout``, ``max_bytes`` or ``max_side`` is not a
            positive number.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float, np.integer, np.floating))
        or not 0 < timeout <= 1e6
    ):
        raise InvalidParameterError(
            expected(
                "timeout", "a positive number of seconds (at most 1e6)", timeout, "pass e.g. timeout=10.0"
            )
        )
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
        raise InvalidParameterError(
            expected("max_bytes", "a positive int", max_bytes, "pass e.g. max_bytes=20_000_000")
        )
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < MIN_SIDE
    ):
        raise InvalidParameterError(
            expected(
                "max_side",
                f"an int >= {MIN_SIDE} or None",
                max_side,
                f"pass e.g. max_side={MAX_DECODED_SIDE}",
            )
        )
    max_side = None if max_side is None else int(max_side)
    if isinstance(source, np.ndarray):
        return array_to_rgb(source)
    if isinstance(source, Image.Image):
        return pil_to_rgb(source, what="PIL image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise InvalidImageError(
                expected(
                    "image bytes",
                    f"at most {size_text(max_bytes)}",
                    Received(size_text(len(data))),
                    "use a smaller file (in Python: a larger max_bytes)",
                    problem="Image too large",
                )
            )
        return decode_file(io.BytesIO(data), what="image bytes", max_side=max_side)
    if isinstance(source, str) and not source.strip():
        raise InvalidImageError(
            expected(
                "image source",
                "a path, URL or sample name",
                source,
                "pass e.g. 'chelsea'",
                problem="Image source is empty",
            )
        )
    if isinstance(source, str) and source.strip().lower().startswith(("http://", "https://")):
        url = source.strip()
        data = fetch_bytes(url, timeout=float(timeout), max_bytes=int(max_bytes))
        return decode_file(io.BytesIO(data), what=f"image at {url!r}", max_side=max_side)
    if isinstance(source, str) and "://" in source:
        scheme = source.split("://", 1)[0]
        raise InvalidImageError(
            expected(
                "URL",
                "an http:// or https:// address",
                Received(repr(source[:60])),
                _FETCH_HINT,
                problem=f"Unsupported URL scheme {scheme!r}",
            )
        )
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source, max_side)
    if type(source).__module__.split(".")[0] == "torch":
        raise InvalidImageError(
            expected(
                "image",
                _EXPECTED,
                source,
                "convert the tensor with t.permute(1, 2, 0).cpu().numpy() (H, W, C)",
                problem="Unsupported image type",
            )
        )
    raise InvalidImageError(
        expected(
            "image", _EXPECTED, source, "pass e.g. load_image('cat.jpg')", problem="Unsupported image type"
        )
    )


def resize_for_model(rgb: ImageSource, size: int | tuple[int, int] = (224, 224)) -> np.ndarray:
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
            expected(
                "size", "(height, width) as two positive ints or one int", size, "pass e.g. size=(224, 224)"
            )
        )
    height, width = int(size[0]), int(size[1])
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        arr = rgb
        if min(arr.shape[:2]) < 1:
            arr = array_to_rgb(arr)  # raises the "empty" error
    else:
        arr = load_image(rgb)
    if arr.shape[0] == height and arr.shape[1] == width:
        return np.array(arr, dtype=np.uint8, copy=True)
    pil = Image.fromarray(np.ascontiguousarray(arr))
    return np.asarray(pil.resize((width, height), resample=Image.BILINEAR), dtype=np.uint8).copy()


# --------------------------------------------------------------------------- helpers
def _load_path(source: str | os.PathLike, max_side: int | None) -> np.ndarray:
    try:
        path = pathlib.Path(source).expanduser()
    except (TypeError, ValueError):
        raise InvalidImageError(
            expected("image path", _EXPECTED, source, "pass e.g. load_image('cat.jpg')")
        ) from None
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the system
        raise InvalidImageError(
            expected(
                "image path",
                "a path this system can open",
                Received(f"{describe(str(source))} ({str(exc).splitlines()[0][:80]})"),
                "check the name",
            )
        ) from None
    if not exists:
        hint = ""
        parent = path.parent if str(path.parent) else pathlib.Path(".")
        if parent.is_dir():
            try:
                hint = close_matches(path.name, [p.name for p in parent.iterdir()])
            except OSError:
                hint = ""
        # the full path: where a relative one was looked for
        raise InvalidImageError(
            expected(
                "image path",
                "an existing image file",
                Received(repr(str(path.absolute()))),
                hint
                or "check the name and the folder (in a widget, the upload button takes a file from your computer)",
                problem="Image file not found",
            )
        )
    if path.is_dir():
        raise InvalidImageError(
            expected(
                "image path",
                "an image file",
                Received(repr(str(source))),
                "pick one file inside it",
                problem="Image path is a folder",
            )
        )
    try:  # a FIFO, /dev/zero or a socket is refused before it is opened (it would block)
        with open_regular(path, "Image path", InvalidImageError, "give an image file") as fh:
            return decode_file(fh, what=f"file {str(path)!r}", max_side=max_side)
    except PermissionError:
        raise InvalidImageError(
            expected(
                "image path",
                "a file this user can read",
                Received(repr(str(source))),
                "check the file permissions",
                problem="Image file not readable",
            )
        ) from None
    except OSError as exc:  # EIO, a file that vanished meanwhile...
        raise InvalidImageError(
            expected(
                "image path",
                "a readable image file",
                Received(f"{str(source)!r} ({type(exc).__name__}: {exc.strerror or exc})"),
                "check the file",
                problem="Image file not readable",
            )
        ) from None
