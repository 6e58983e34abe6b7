"""Sample photos bundled with scikit-image, loaded at run time (nothing copied or downloaded)."""
from __future__ import annotations

import functools
from typing import Dict, List, Optional, Tuple

import numpy as np

from cam_widgets.errors import InvalidImageError, InvalidParameterError, close_matches, describe

from .image_conversion import array_to_rgb
from .images import load_image
_SAMPLES: Dict[str, Tuple[str, str]] = {
    # name: (loader key, description)
    "chelsea": ("chelsea", "Chelsea the cat, a tabby (ImageNet: tabby / tiger cat / Egyptian cat)"),
    "coffee": ("coffee", "a cup of espresso on a saucer (ImageNet: espresso / cup)"),
    "astronaut": ("astronaut", "astronaut Eileen Collins, portrait with the US flag"),
    "rocket": ("rocket", "a SpaceX Falcon 9 on its launch pad"),
    "motorcycle": ("motorcycle", "a motorcycle (left image of the Middlebury stereo pair)"),
    "camera": ("camera", "the cameraman, a grayscale photo converted to RGB"),
    "clock": ("clock", "a wall clock, a grayscale photo converted to RGB"),
}


def list_samples() -> List[str]:
    """Names of the bundled sample photos (from scikit-image's data, loaded offline)."""
    return list(_SAMPLES)


def sample_descriptions() -> Dict[str, str]:
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
            hint = " Hint: see list_samples()."
        raise InvalidParameterError(
            f"Unknown sample image: expected one of {', '.join(_SAMPLES)}, received {describe(name)}.{hint}"
        )
    return _load_sample(name.strip().lower()).copy()


@functools.lru_cache(maxsize=None)
def _load_sample(name: str) -> np.ndarray:
    key = _SAMPLES[name][0]
    try:
        import skimage.data as skdata

        if key == "motorcycle":
            raw = skdata.stereo_motorcycle()[0]
        else:
            raw = getattr(skdata, key)()
    except Exception as exc:  # ImportError, missing data file, pooch not installed...
        raise InvalidImageError(
            f"Sample {name!r} could not be loaded: expected scikit-image's bundled data file,"
            f" received {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}."
            " Hint: pip install scikit-image, or pass your own image file."
        ) from None
    arr = array_to_rgb(np.asarray(raw))
    arr.setflags(write=False)
    return arr


#: The dog-and-cat photo of the Grad-CAM paper (boxer 242, tiger cat 282) that the articles use.
ARTICLE_PHOTO_URL = "https://raw.githubusercontent.com/jacobgil/pytorch-grad-cam/master/examples/both.png"


def article_photo(timeout: float = 5.0) -> Optional[np.ndarray]:
    """The articles' dog-and-cat photo when online (fetched, never stored), else None.

    Offline the fetch fails within ``timeout`` and the chapters fall back to a bundled scene.
    """
    try:
        return load_image(ARTICLE_PHOTO_URL, timeout=timeout)
    except InvalidImageError:
        return None
