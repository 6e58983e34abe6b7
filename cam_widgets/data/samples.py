"""Sample photos bundled with scikit-image, loaded at run time (nothing copied or downloaded)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import urllib.parse
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cam_widgets.errors import (
    CamWidgetsError,
    InvalidImageError,
    InvalidParameterError,
    Received,
    close_matches,
    expected,
)

from .image_conversion import array_to_rgb
from .images import load_image

_SAMPLES: dict[str, tuple[str, str]] = {
    # name: (loader key, description)
    "chelsea": ("chelsea", "Chelsea the cat, a tabby (ImageNet: tabby / tiger cat / Egyptian cat)"),
    "coffee": ("coffee", "a cup of espresso on a saucer (ImageNet: espresso / cup)"),
    "astronaut": ("astronaut", "astronaut Eileen Collins, portrait with the US flag"),
    "rocket": ("rocket", "a SpaceX Falcon 9 on its launch pad"),
    "motorcycle": ("motorcycle", "a motorcycle (left image of the Middlebury stereo pair)"),
    "camera": ("camera", "the cameraman, a grayscale photo converted to RGB"),
    "clock": ("clock", "a wall clock, a grayscale photo converted to RGB"),
}


def list_samples() -> list[str]:
    """Names of the bundled sample photos (from scikit-image's data, loaded offline)."""
    return list(_SAMPLES)


def sample_descriptions() -> dict[str, str]:
    """``{name: one-line description}`` of the sample photos, in :func:`list_samples` order."""
    return {name: desc for name, (_, desc) in _SAMPLES.items()}


def sample_image(name: str) -> np.ndarray:
    """A sample photo as a fresh ``uint8`` (H, W, 3) RGB array.

    The pixels come from ``skimage.data`` at run time (files installed with
    scikit-image); nothing is copied into this repository or downloaded.

    Raises:
        InvalidParameterError: ``name`` is not one of :func:`list_samples`.
        InvalidImageError: scikit-image or its data file is not available.
    """
    if not isinstance(name, str) or name.strip().lower() not in _SAMPLES:
        hint = close_matches(str(name).strip().lower(), list(_SAMPLES)) if isinstance(name, str) else ""
        if not hint:
            hint = "see list_samples()"
        raise InvalidParameterError(
            expected(
                "sample image", f"one of {', '.join(_SAMPLES)}", name, hint, problem="Unknown sample image"
            )
        )
    return _load_sample(name.strip().lower()).copy()


#: Each sample's file in scikit-image's ``data`` folder, read with Pillow when it is there:
#: importing ``skimage.data`` (its fetcher, pooch's registry) costs a kernel about 0.25 s of
#: CPU before the first picture, five times over when five students start at once; the
#: pixels are the same (tests/data/test_samples.py).
_FILES = {
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "astronaut": "astronaut.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "camera": "camera.png",
    "clock": "clock_motion.png",
}


def _bundled_file(name: str) -> Path | None:
    """scikit-image's own file of sample ``name``, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "data" / _FILES[name]
        if path.is_file():
            return path
    return None


@functools.cache
def _load_sample(name: str) -> np.ndarray:
    key = _SAMPLES[name][0]
    path = _bundled_file(name)
    if path is not None:
        from PIL import Image

        with Image.open(path) as image:
            arr = array_to_rgb(np.asarray(image))
        arr.setflags(write=False)
        return arr
    try:
        import skimage.data as skdata

        if key == "motorcycle":
            raw = skdata.stereo_motorcycle()[0]
        else:
            raw = getattr(skdata, key)()
    except Exception as exc:  # ImportError, missing data file, pooch not installed...
        raise InvalidImageError(
            expected(
                "sample",
                "scikit-image's bundled data file",
                Received(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"),
                "pip install scikit-image, or pass your own image file",
                problem=f"Sample {name!r} could not be loaded",
            )
        ) from None
    arr = array_to_rgb(np.asarray(raw))
    arr.setflags(write=False)
    return arr


#: The dog-and-cat photo of the Grad-CAM paper (boxer 242, tiger cat 282; the paper's Torch
#: code numbers them 243 and 283, from 1): the example photo of the authors' repository.
ARTICLE_PHOTO_URL = "https://raw.githubusercontent.com/ramprs/grad-cam/master/images/cat_dog.jpg"
#: Who to credit wherever the photo is shown.
ARTICLE_PHOTO_CREDIT = (
    "Photo: the example of the Grad-CAM authors (R. R. Selvaraju et al.), images/cat_dog.jpg "
    "in github.com/ramprs/grad-cam (BSD license)"
)
#: Another address for the photo (a mirror, or a local server in the tests).
ARTICLE_PHOTO_URL_ENV = "CAM_WIDGETS_ARTICLE_PHOTO_URL"
#: Folder of downloaded files kept between sessions (default: the user's cache folder).
CACHE_ENV = "CAM_WIDGETS_CACHE"
#: The switch that forbids downloads (models.weight_files reads it too; data imports no layer).
OFFLINE_ENV = "CAM_WIDGETS_OFFLINE"
#: Largest photo accepted (the authors' is ~30 kB).
ARTICLE_PHOTO_MAX_BYTES = 5_000_000


class ArticlePhoto(NamedTuple):
    """The articles' photo (None when it could not be had) and a sentence saying where it
    came from, or why it is missing."""

    image: np.ndarray | None
    note: str


def cache_folder() -> Path:
    """Where downloaded files are kept: ``$CAM_WIDGETS_CACHE``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``cam_widgets``."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base).expanduser() / "cam_widgets"


def _cached_path(url: str) -> Path:
    """The cache file of ``url``: its base name and a digest of the whole address."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    name = os.path.basename(urllib.parse.urlsplit(url).path) or "photo"
    return cache_folder() / "article_photo" / f"{digest}-{name}"


def load_article_photo(timeout: float = 5.0) -> ArticlePhoto:
    """The articles' dog-and-cat photo: from the cache when it was downloaded before, else
    downloaded within ``timeout`` seconds and cached (written whole, then renamed); offline
    (or with ``CAM_WIDGETS_OFFLINE=1``) ``image`` is None and ``note`` says why. The address
    is :data:`ARTICLE_PHOTO_URL`, or ``$CAM_WIDGETS_ARTICLE_PHOTO_URL``."""
    from .fetch import fetch_bytes
    from .files import atomic_write

    url = os.environ.get(ARTICLE_PHOTO_URL_ENV, "").strip() or ARTICLE_PHOTO_URL
    cached = _cached_path(url)
    if cached.is_file():
        try:
            return ArticlePhoto(load_image(cached), f"the photo cached at {cached}")
        except InvalidImageError:
            pass  # damaged: fetched again below
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return ArticlePhoto(None, f"not downloaded: {OFFLINE_ENV}=1")
    try:
        data = fetch_bytes(url, timeout, ARTICLE_PHOTO_MAX_BYTES)
        image = load_image(data)  # an image, or one line saying what came instead
    except InvalidImageError as error:
        first = str(error).split(" Hint:")[0]
        return ArticlePhoto(None, f"offline or unreachable: {first}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cached, "wb") as handle:
            handle.write(data)
        where = f"downloaded from {url}, cached at {cached}"
    except (OSError, CamWidgetsError) as error:  # a read-only home: used, not kept
        where = f"downloaded from {url} (not cached: {' '.join(str(error).split())[:120]})"
    return ArticlePhoto(image, where)


def article_photo(timeout: float = 5.0) -> np.ndarray | None:
    """The articles' dog-and-cat photo when online or cached, else None (see
    :func:`load_article_photo`, which also says why). Offline the chapters fall back to a
    bundled photo or scene."""
    return load_article_photo(timeout).image
