"""Render layer: pure functions from maps and photos to pixels, PNGs and plotly figures.

numpy + pillow only; ``heatmap_figure`` and ``standalone_html`` (plotly) are imported lazily
so that importing this package stays light.
"""

from __future__ import annotations

from .colormaps import DEFAULT_COLORMAP, apply_colormap, colormap_lut, list_colormaps, plotly_colorscale
from .normalize import (
    DISPLAY_PERCENTILE,
    NORMALIZE_MODES,
    MapStatus,
    normalize_map,
    percentile_scale,
    shared_scale,
    upsample_map,
)
from .overlay import image_data_uri, overlay, png_data_uri, save_png, to_png_bytes

__all__ = [
    "DEFAULT_COLORMAP",
    "NORMALIZE_MODES",
    "MapStatus",
    "apply_colormap",
    "colormap_lut",
    "heatmap_figure",
    "image_data_uri",
    "list_colormaps",
    "normalize_map",
    "overlay",
    "plotly_colorscale",
    "png_data_uri",
    "save_png",
    "shared_scale",
    "standalone_html",
    "to_png_bytes",
    "upsample_map",
    "percentile_scale",
    "DISPLAY_PERCENTILE",
]

_LAZY = {"heatmap_figure", "standalone_html"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import figures

        return getattr(figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
