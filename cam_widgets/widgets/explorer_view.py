"""The map of an :class:`~cam_widgets.widgets.explorer.Explorer`: a Plotly figure with a click
probe, or a PNG for front ends that cannot show one; drawing only (the Explorer decides what).
"""
from __future__ import annotations

from typing import Callable, Optional

import ipywidgets as W
import numpy as np

from ..render import plotly_colorscale
from ..render.figures import FIGURE_EXTRA
from ..render.overlay import fade_for, overlay, to_png_bytes
from ..result import Explanation
from .common import colorbar_note, display_map
from .explorer_state import ExplorerState, probe_message, static_png
from .panels import MIN_WINDOW_FIT_PANEL, HeatmapPanels

#: The map's widest (px) on a large screen. It stays in view (FitWidth measures where it is):
#: whole on the first screen where it can be there (an introduction above the Explorer
#: counts: a fixed 250-px reserve put half of the quickstart's map below the fold at
#: 1280x800), else whole below the Explorer's top, found by its CSS class EXPLORER_CLASS;
#: ABOVE_THE_MAP is what a front end that lacks the class keeps free above the map (the
#: three rows of controls, the page's margin; JupyterLab adds ~90 px of its own).
LARGEST_MAP, ABOVE_THE_MAP = 720, 250
EXPLORER_CLASS = "cw-explorer"


def map_fade(result: Explanation, view: str) -> Optional[str]:
    """How the overlay of ``result`` fades where its map is low (the photo shows through
    there): by the value for pixel-level maps, below half for CAM maps; the raw view (the
    map alone) does not fade."""
    return None if view == "raw" else fade_for(result.pixel_level)


def colorscale(result: Explanation, state: ExplorerState) -> list:
    """The figure's colour scale: the colormap, with the overlay's fade as its alpha (plotly
    draws the heatmap with it, times the opacity: the blend of :func:`overlay`)."""
    return plotly_colorscale(state.colormap, fade=map_fade(result, state.view))


def view_png(result: Explanation, state: ExplorerState) -> bytes:
    """The PNG of the static view: the faded overlay of the map as drawn, or the map alone."""
    if state.view == "raw" or result.image is None:
        return static_png(result, state)
    return to_png_bytes(overlay(result.image, result.display_heatmap(), alpha=state.opacity,
                                colormap=state.colormap, fade=map_fade(result, state.view)))


class MapView:
    """Draws one result over its photo as ``state`` says (colormap, opacity, overlay or raw)."""

    def __init__(self, rgb: np.ndarray, result: Explanation, state: ExplorerState,
                 static: bool) -> None:
        if static:
            self.panels: Optional[HeatmapPanels] = None
            self.widget = W.Image(value=b"", format="png")
            self.show_display(result, state)
        else:  # built in its final state: no update before the browser draws it
            self.panels = HeatmapPanels(rgb, [display_map(result)], [result.title],
                                        opacity=state.opacity, colormap=colorscale(result, state),
                                        zrange=(0.0, 1.0), view=state.view,
                                        colorbar_title=colorbar_note([result]),
                                        panel_size=LARGEST_MAP, fit_width=True,
                                        window_reserve=ABOVE_THE_MAP, anchor=EXPLORER_CLASS,
                                        title_px=MIN_WINDOW_FIT_PANEL)
            self.widget = self.panels.widget
            # beside the predictions: from a 320-px map, growing where the page has room
            self.widget.layout.width = "auto"
            self.widget.layout.flex = f"1 1 {MIN_WINDOW_FIT_PANEL + FIGURE_EXTRA}px"

    def on_probe(self, handler: Callable[[float, float], None]) -> None:
        """``handler(x, y)`` on a click in the map (the static view has none)."""
        if self.panels is not None:
            self.panels.on_probe(lambda panel, x, y: handler(x, y))

    def set_image(self, rgb: np.ndarray) -> None:
        if self.panels is not None:
            self.panels.set_image(rgb)

    def show(self, result: Explanation, state: ExplorerState) -> None:
        """A new map; the probe marker goes with the old pixel readout."""
        if self.panels is not None:
            self.panels.set_maps([display_map(result)], [result.title], zrange=(0.0, 1.0),
                                 colorbar_title=colorbar_note([result]))
            if self.panels.marker(0).x:
                self.panels.mark(None, None)
        self.show_display(result, state)

    def show_display(self, result: Explanation, state: ExplorerState) -> None:
        """Colormap, opacity and overlay/raw (no engine work)."""
        if self.panels is None:
            self.widget.value = view_png(result, state)
            return
        with self.panels.figure.batch_update():
            # (the same scale again sends nothing: an opacity change sends only the opacity)
            self.panels.figure.layout.coloraxis.colorscale = colorscale(result, state)
            self.panels.set_view(state.view, state.opacity)

    def probe(self, result: Explanation, x: float, y: float) -> str:
        """Marks pixel (x, y) and says the map's value there: the drawn cell, as the hover."""
        self.panels.mark(x, y)
        drawn = np.asarray(self.panels.heatmap(0).z, dtype=float)
        return probe_message(drawn, x, y, result.heatmap.shape, colorbar_note([result]))
