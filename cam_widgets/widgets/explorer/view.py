"""The map of an :class:`~cam_widgets.widgets.explorer.Explorer`: a Plotly figure with a click
probe, or a PNG for front ends that cannot show one; drawing only (the Explorer decides what).
Side by side, the figure has two panels: the photo alone, then the map over it.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as W
import numpy as np

from ...render.figures import FIGURE_EXTRA
from ...render.overlay import overlay, to_png_bytes
from ...result import Explanation
from ..shared.lifecycle import close_owned
from ..shared.maps import colorbar_note, display_map, map_fade
from ..shared.panels import MIN_WINDOW_FIT_PANEL, HeatmapPanels
from .state import SIDE_BY_SIDE, ExplorerState, probe_message, static_png

#: The map's widest (px) on a large screen. It stays in view (FitWidth measures where it is):
#: whole on the first screen where it can be there (an introduction above the Explorer
#: counts: a fixed 250-px reserve put half of the quickstart's map below the fold at
#: 1280x800), else whole below the Explorer's top, found by its CSS class EXPLORER_CLASS;
#: ABOVE_THE_MAP is what a front end that lacks the class keeps free above the map (the
#: three rows of controls, the page's margin; JupyterLab adds ~90 px of its own).
LARGEST_MAP, ABOVE_THE_MAP = 720, 250
EXPLORER_CLASS = "cw-explorer"


#: The photo's panel, side by side with the map.
PHOTO_TITLE = "photo"
#: White pixels between the photo and the map in the static side by side view.
SIDE_GAP = 8


def view_png(result: Explanation, state: ExplorerState) -> bytes:
    """The PNG of the static view: the faded overlay of the map as drawn, the map alone, or
    side by side the photo and that overlay."""
    if state.view == "raw" or result.image is None:
        return static_png(result, state)
    over = overlay(
        result.image,
        result.display_heatmap(),
        alpha=state.opacity,
        colormap=state.colormap,
        fade=map_fade(result, state.view),
    )
    if state.view == SIDE_BY_SIDE:
        gap = np.full((over.shape[0], SIDE_GAP, 3), 255, np.uint8)
        over = np.concatenate([np.asarray(result.image, np.uint8), gap, over], axis=1)
    return to_png_bytes(over)


def panel_count(view: str) -> int:
    """Panels of the figure of ``view``: two side by side (the photo, the map), else one."""
    return 2 if view == SIDE_BY_SIDE else 1


class MapView:
    """Draws one result over its photo as ``state`` says (colormap, opacity, overlay, raw or
    side by side). ``on_rebuilt(old, new)``: the figure's widget was replaced (side by side
    on or off: another count of panels), so that its place shows the new one."""

    def __init__(
        self,
        rgb: np.ndarray,
        result: Explanation,
        state: ExplorerState,
        static: bool,
        on_rebuilt: Callable[[W.Widget, W.Widget], None] | None = None,
    ) -> None:
        self._on_rebuilt = on_rebuilt
        self._rgb = rgb  # the photo on show (a figure built later draws it)
        self._probe_handlers: list[Callable[[float, float], None]] = []
        self.panels: HeatmapPanels | None = None
        if static:
            self.widget: W.Widget = W.Image(value=b"", format="png")
            self.show_display(result, state)
        else:
            self._build(rgb, result, state)

    def _build(self, rgb: np.ndarray, result: Explanation, state: ExplorerState) -> None:
        """The figure for ``state.view``, built in its final state (no update before the
        browser draws it)."""
        count = panel_count(state.view)
        maps, titles = self._maps(result, count)
        self.panels = HeatmapPanels(
            rgb,
            maps,
            titles,
            opacity=state.opacity,
            colormap=state.colormap,
            fades=[map_fade(result)] * count,
            zrange=(0.0, 1.0),
            view=state.view,
            colorbar_title=colorbar_note([result]),
            panel_size=LARGEST_MAP,
            fit_width=True,
            window_reserve=ABOVE_THE_MAP,
            anchor=EXPLORER_CLASS,
            title_px=MIN_WINDOW_FIT_PANEL,
            bare=range(count - 1),
        )
        self.widget = self.panels.widget
        # beside the predictions: from 320-px panels, growing where the page has room
        self.widget.layout.width = "auto"
        self.widget.layout.flex = f"1 1 {MIN_WINDOW_FIT_PANEL * count + FIGURE_EXTRA}px"
        self.panels.on_probe(self._probed)

    @staticmethod
    def _maps(result: Explanation, count: int) -> tuple[list, list]:
        """Maps and titles of ``count`` panels: the map last, the photo's panel before it."""
        shown = display_map(result)
        return [shown] * count, [PHOTO_TITLE] * (count - 1) + [result.title]

    def on_probe(self, handler: Callable[[float, float], None]) -> None:
        """``handler(x, y)`` on a click in the map (the static view has none)."""
        self._probe_handlers.append(handler)

    def _probed(self, panel: int, x: float, y: float) -> None:
        for handler in self._probe_handlers:
            handler(x, y)

    def set_image(self, rgb: np.ndarray) -> None:
        self._rgb = rgb
        if self.panels is not None:
            self.panels.set_image(rgb)

    @property
    def map_panel(self) -> int:
        """The panel that shows the map (the last)."""
        return 0 if self.panels is None else self.panels.count - 1

    def show(self, result: Explanation, state: ExplorerState) -> None:
        """A new map; the probe marker goes with the old pixel readout."""
        if self.panels is not None and self.panels.count == panel_count(state.view):
            maps, titles = self._maps(result, self.panels.count)
            self.panels.set_maps(
                maps,
                titles,
                zrange=(0.0, 1.0),
                colorbar_title=colorbar_note([result]),
                fades=[map_fade(result)] * self.panels.count,
            )
            if self.panels.marker(0).x:
                self.panels.mark(None, None)
        self.show_display(result, state)

    def show_display(self, result: Explanation, state: ExplorerState) -> None:
        """Colormap, opacity, overlay/raw/side by side (no engine work; side by side on or
        off builds the figure of its count of panels, from the result)."""
        if self.panels is None:
            self.widget.value = view_png(result, state)
            return
        if self.panels.count != panel_count(state.view):
            old = self.panels
            self._build(self._rgb, result, state)
            if self._on_rebuilt is not None:
                self._on_rebuilt(old.widget, self.widget)
            close_owned(old)  # its figure, FitWidth and box, in the kernel and the browser
            return
        with self.panels.figure.batch_update():
            self.panels.set_colormap(state.colormap, fades=[map_fade(result)] * self.panels.count)
            self.panels.set_view(state.view, state.opacity)

    def probe(self, result: Explanation, x: float, y: float) -> str:
        """Marks pixel (x, y) and says the map's value there: the drawn cell, as the hover."""
        self.panels.mark(x, y)
        drawn = np.asarray(self.panels.heatmap(self.map_panel).z, dtype=float)
        return probe_message(drawn, x, y, result.heatmap.shape, colorbar_note([result]))
