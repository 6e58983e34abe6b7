"""Strict decoding of encoded image files (opened files or bytes) with PIL.

Truncated files are refused rather than silently padded, and images above
:data:`MAX_FILE_PIXELS` are refused before their pixels are decoded (decompression bombs);
both become a one-line :class:`~cam_widgets.errors.InvalidImageError`. The decoded image is
handed to :mod:`.image_conversion` for the RGB conversion.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from cam_widgets.errors import InvalidImageError, Received, expected

from .image_conversion import MIN_SIDE, orientation, pil_to_rgb, too_small, upright

#: Largest accepted image (width * height) decoded from a file, URL or bytes.
MAX_FILE_PIXELS = 100_000_000

#: Longest side of an image decoded from a file, URL or bytes: larger ones are reduced while
#: decoded (an integer box filter; JPEGs by DCT scaling). Every caller resizes to a model input
#: (224 to 600 pixels a side) and shows the image at that size: 2048 leaves more than 3x the
#: largest, and memory stays bounded by what one decoding in the file's own mode holds.
MAX_DECODED_SIDE = 2048


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


def decode_file(fp: io.IOBase, what: str, max_side: int | None = MAX_DECODED_SIDE) -> np.ndarray:
    """Decode an encoded image file (path handle or bytes) fully and strictly.

    An image larger than ``max_side`` a side is reduced while it is decoded (see
    :func:`reduction`); None keeps every pixel (within :data:`MAX_FILE_PIXELS`).
    """
    with _strict_pil():
        try:
            img = Image.open(fp)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(what, str(exc)) from None
        except UnidentifiedImageError:
            raise InvalidImageError(
                expected(
                    "image",
                    "an image file PIL can read (PNG, JPEG, ...)",
                    Received(f"{what} that is not a recognised image format"),
                    "check that the file really is an image",
                    problem="Not an image",
                )
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise _corrupt(what, exc) from None
        width, height = img.size
        if width * height > MAX_FILE_PIXELS:
            raise _bomb(what, f"{width}x{height} = {_pixels(width * height)}")
        if min(width, height) < MIN_SIDE:  # before decoding: 1 x 100,000,000 is 100 MP of nothing
            raise too_small(width, height, what)
        tag = orientation(img)  # read from the header, before any reduction
        factor = reduction(width, height, max_side)
        try:
            if factor > 1:  # JPEG: decoded at 1/2, 1/4 or 1/8 scale (DCT scaling), never whole
                img.draft(None, (-(-width // factor), -(-height // factor)))
            img.load()
            img = _reduced(img, reduction(img.size[0], img.size[1], max_side))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(what, str(exc)) from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError) as exc:
            raise _corrupt(what, exc) from None
        return pil_to_rgb(upright(img, tag), what=what, orient=False)


def reduction(width: int, height: int, max_side: int | None) -> int:
    """The integer factor that brings the longer side to at most ``max_side`` (1: none),
    never taking the shorter side below :data:`MIN_SIDE`."""
    if max_side is None or max(width, height) <= max_side:
        return 1
    factor = -(-max(width, height) // int(max_side))
    return max(1, min(factor, min(width, height) // MIN_SIDE))


def _reduced(img: Image.Image, factor: int) -> Image.Image:
    """``img`` box-averaged ``factor`` times (PIL's ``reduce``; alpha premultiplied), in a mode
    ``reduce`` takes: palettes to RGB(A), bilevel to L, 16-bit to 32-bit integers."""
    if factor <= 1:
        return img
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    if img.mode not in ("LA", "RGBA"):
        return img.reduce(factor)
    # PIL premultiplies the whole image at once (a second full-size copy): a band at a time here
    premultiplied = {"LA": "La", "RGBA": "RGBa"}[img.mode]
    width, height = img.size
    out = Image.new(premultiplied, (-(-width // factor), -(-height // factor)))
    step = factor * max(1, (1 << 20) // (width * factor))  # rows per band: a multiple of factor
    for top in range(0, height, step):
        band = img.crop((0, top, width, min(height, top + step))).convert(premultiplied)
        out.paste(band.reduce(factor), (0, top // factor))
    return out.convert(img.mode)


def _pixels(count: int) -> str:
    """E.g. "100,010,000 pixels (100.01 megapixels)": exact, so a size never reads as the limit."""
    return f"{count:,} pixels ({count / 1e6:.2f} megapixels)"


def _bomb(what: str, detail: str) -> InvalidImageError:
    found = re.search(r"\((\d+) pixels\)", detail)
    if found:  # PIL's "Image size (900000000 pixels) exceeds limit of ..."
        detail = _pixels(int(found.group(1)))
    return InvalidImageError(
        expected(
            "image",
            f"at most {MAX_FILE_PIXELS:,} pixels ({MAX_FILE_PIXELS / 1e6:g} megapixels)",
            Received(f"{what} of {detail.splitlines()[0][:80]}"),
            "downscale the image first (possible decompression bomb)",
            problem="Image too large",
        )
    )


def _corrupt(what: str, exc: BaseException) -> InvalidImageError:
    text = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
    return InvalidImageError(
        expected(
            "image",
            "a complete image file",
            Received(f"{what} that could not be decoded ({text})"),
            "re-download or re-save the file",
            problem="Truncated or corrupt image",
        )
    )
