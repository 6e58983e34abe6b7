"""Methods layer: small registered functions over engine captures.

Importing this package registers every method; use :func:`get_method` and
:func:`list_methods` to look them up.
"""

from . import cam_family, pixel, scorecam  # noqa: F401  (registration side effect)
from .batch import PER_IMAGE_NEEDS, READS_INPUT, batch_raw_maps, rooted_batch
from .context import MethodContext, upsampled
from .registry import MethodOutput, MethodSpec, get_method, list_methods
from .smoothgrad import ARTICLE_SNAPSHOTS, Smoothing, SmoothOutput, smooth

__all__ = [
    "ARTICLE_SNAPSHOTS",
    "MethodContext",
    "MethodOutput",
    "MethodSpec",
    "PER_IMAGE_NEEDS",
    "READS_INPUT",
    "SmoothOutput",
    "Smoothing",
    "batch_raw_maps",
    "rooted_batch",
    "get_method",
    "list_methods",
    "smooth",
    "upsampled",
]
