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
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from cam_widgets.errors import InvalidImageError

from .image_conversion import pil_to_rgb

#: Largest accepted image (width * height) decoded from a file, URL or bytes.
MAX_FILE_PIXELS = 100_000_000


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


def decode_file(fp: io.IOBase, what: str) -> np.ndarray:
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
            raise _bomb(what, f"{width}x{height} = {_pixels(width * height)}")
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(what, str(exc)) from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError) as exc:
            raise _corrupt(what, exc) from None
        return pil_to_rgb(img, what=what)


def _pixels(count: int) -> str:
    """E.g. "100,010,000 pixels (100.01 megapixels)": exact, so a size never reads as the limit."""
    return f"{count:,} pixels ({count / 1e6:.2f} megapixels)"


def _bomb(what: str, detail: str) -> InvalidImageError:
    found = re.search(r"\((\d+) pixels\)", detail)
    if found:  # PIL's "Image size (900000000 pixels) exceeds limit of ..."
        detail = _pixels(int(found.group(1)))
    return InvalidImageError(
        f"Image too large: expected at most {MAX_FILE_PIXELS:,} pixels"
        f" ({MAX_FILE_PIXELS / 1e6:g} megapixels), received {what} of {detail.splitlines()[0][:80]}."
        " Hint: downscale the image first (possible decompression bomb)."
    )


def _corrupt(what: str, exc: BaseException) -> InvalidImageError:
    text = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
    return InvalidImageError(
        f"Truncated or corrupt image: expected a complete image file, received {what}"
        f" that could not be decoded ({text}). Hint: re-download or re-save the file."
    )
