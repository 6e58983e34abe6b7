"""One Plotly FigureWidget of N linked heatmap panels, updated in place.

Thin glue over :func:`cam_widgets.render.heatmap_figure`: the figure is built once (photo,
heatmap and an empty probe marker per panel, all passed to the constructor so that Voila
shows them), then every change is a ``batch_update`` of trace attributes, never a rebuild.
Trace order per panel k: 3k photo, 3k + 1 heatmap, 3k + 2 probe marker.

With ``fit_width`` the figure has no fixed width: it takes the width of its box (between
:data:`MIN_PANEL_WIDTH` and ``panel_size`` per panel), and :class:`.fit_width.FitWidth` fits its height
to that and re-fits it when the box changes width (a window resize, JupyterLab's sidebar).
With ``wrap`` too, panels narrower than :data:`~cam_widgets.render.figures.MIN_WRAP_PANEL`
wrap into rows instead (:func:`~cam_widgets.render.figures.panel_grid`): the browser reports
the box's width, and the panels' places (axis domains, title positions) move in place.

Overlays fade as the Explorer's and :func:`~cam_widgets.render.overlay.overlay` do: each
panel's ``fade`` (:func:`~cam_widgets.render.overlay.fade_for` of its map, see
:func:`.maps.overlay_fades`) is the alpha of its colour scale, so the photo shows through
where the map is low; the raw view does not fade. Panels of one fade share the colour axis
``coloraxis`` (the colour bar's); a second fade (CAM and pixel-level maps in one figure) draws
through ``coloraxis2``, the same colormap and colour range with its own alpha, no colour bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ...render import image_data_uri, plotly_colorscale
from ...render.colormaps import check_fade
from ...render.figures import (
    FIGURE_CONFIG,
    FIGURE_EXTRA,
    FIGURE_EXTRA_HEIGHT,
    MIN_PANEL_WIDTH,
    MIN_WRAP_PANEL,
    PAGE_WIDTH,
    ROW_GAP,
    PanelGrid,
    figure_widget,
    grid_domains,
    grid_height,
    heatmap_figure,
    map_side,
    panel_grid,
    prepare_map,
    title_width,
    wrap_title,
)
from .fit_width import FitWidth

TRACES_PER_PANEL = 3
#: The colour axes of a figure's fades, in the order the panels first use them (see the
#: module's notes): the first carries the colour bar.
COLOR_AXES = ("coloraxis", "coloraxis2")
#: With ``window_reserve``, panels stay at least this wide (px) however short the window.
MIN_WINDOW_FIT_PANEL = 320


def compact_z(m: np.ndarray, digits: int = 4) -> np.ndarray:
    """``m`` as float64 rounded to ``digits`` significant digits of its largest value: a
    FigureWidget sends 2-D arrays as JSON lists, where a float32 value prints with 17 digits
    (0.1234000027179718), three times the bytes of 0.1234."""
    m = np.asarray(m, dtype=np.float64)
    finite = np.abs(m[np.isfinite(m)])
    top = float(finite.max()) if finite.size else 0.0
    decimals = digits - 1 - math.floor(math.log10(top)) if top > 0 else digits
    return np.round(m, max(decimals, 0))


class HeatmapPanels:
    """N panels side by side: photo + map + probe marker; shared zoom and colour axis."""

    def __init__(
        self,
        image: np.ndarray,
        maps: Sequence[np.ndarray],
        titles: Sequence[str],
        *,
        opacity: float = 0.5,
        colormap: str = "viridis",
        panel_size: int = 320,
        zrange: tuple[float, float] | None = None,
        view: str = "overlay",
        colorbar_title: str = "",
        probe: tuple[float, float] | None = None,
        fit_width: bool = False,
        window_reserve: int = 0,
        anchor: str = "",
        title_px: int | None = None,
        wrap: bool = False,
        bare: Sequence[int] = (),
        fades: Sequence[str | None] = (),
    ) -> None:
        """``fit_width``: see the module's notes; ``window_reserve`` (with it): in view in the
        window (:class:`.fit_width.FitWidth`: on the first screen where it can be, else below
        the top of the widget of CSS class ``anchor``, or that many pixels), panels then
        growing from :data:`MIN_WINDOW_FIT_PANEL` up to ``panel_size``; ``title_px``: the
        width titles are wrapped to (default: the panel's, or its share of a 1280-px page);
        ``wrap`` (with ``fit_width``): rows of panels at least ``MIN_WRAP_PANEL`` wide, laid
        out for a 1280-px page first, then for the width the browser reports; ``bare``: the
        panels that show the photo alone (their maps hidden: the Explorer's side by side);
        ``fades``: each panel's overlay fade (``"cam"``, ``"pixel"`` or None, see the module's
        notes; none given: no fade), ``colormap`` a colormap's name then."""
        # Everything goes into the constructor: a FigureWidget updated after it was placed in
        # a container but before the browser drew it never gets its click events wired (seen
        # in Voila and JupyterLab), and Voila drops such early edits altogether.
        base = heatmap_figure(
            image,
            list(maps),
            list(titles),
            opacity=opacity,
            colorscale=colormap,
            panel_size=panel_size,
            image_format="jpeg",
            fit_width=fit_width,
            zmin=None if zrange is None else zrange[0],
            zmax=None if zrange is None else zrange[1],
        )
        figure = go.Figure(layout=base.layout)
        figure.layout.coloraxis.colorbar.title.text = colorbar_title
        self.count, self.panel_size = len(maps), panel_size
        self.colormap, self.view = colormap, view
        self.fades = _check_fades(fades, self.count)
        self.zrange = zrange
        h, w = image.shape[:2]
        self.wrap = bool(fit_width and wrap)
        #: the panels' rows (one row unless ``wrap``), as last laid out
        self.grid = PanelGrid(self.count, 1, float(panel_size), 1.0 / self.count)
        self._title_px = title_px or title_width(panel_size, self.count, fit_width)
        if self.wrap:
            self.grid = panel_grid(self.count, PAGE_WIDTH, max_panel=panel_size)
            self._title_px = int(self.grid.panel)
            _place_panels(figure.layout, self.grid, self.count, h / w)
            figure.layout.height = grid_height(self.grid, h / w)
        if title_px or self.wrap:  # (heatmap_figure wrapped them to the panel's width)
            for note, title in zip(figure.layout.annotations, titles):
                note.text = wrap_title(title, self._title_px)
        xs, ys = ([], []) if probe is None else ([probe[0]], [probe[1]])
        raw = view == "raw"
        axes = self._axes()
        self._scales(figure.layout, axes)
        for k in range(len(maps)):
            photo, heat = base.data[2 * k], base.data[2 * k + 1]
            photo.visible = not raw
            heat.z = compact_z(heat.z)
            heat.coloraxis = axes[k]
            if raw:
                heat.update(zsmooth=False, opacity=1.0)
            if k in bare:  # the photo alone, under its title: no map, no hover
                heat.update(visible=False, hoverinfo="skip")
            figure.add_trace(photo)
            figure.add_trace(heat)
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    showlegend=False,
                    hoverinfo="skip",
                    marker=dict(symbol="circle-open", size=14, color="red", line=dict(width=3)),
                    xaxis=heat.xaxis,
                    yaxis=heat.yaxis,
                    name=f"probe {k}",
                )
            )
        if window_reserve:  # drawn small first, then grown to the window
            figure.layout.height = int(min(MIN_WINDOW_FIT_PANEL, panel_size) * h / w + FIGURE_EXTRA_HEIGHT)
        self.figure = figure_widget(figure)  # (plotly's widget class imported quickly)
        self.figure._config = {**self.figure._config, **FIGURE_CONFIG}
        self.image_shape = image.shape[:2]
        #: what to show: the figure, or with ``fit_width`` a box the figure fills
        self.widget: W.Widget = self.figure
        self.fit: FitWidth | None = None
        if fit_width:
            # plotly.js's resize handler, which FitWidth calls (and the window's resize event)
            self.figure._config = {**self.figure._config, "responsive": True}
            # past its narrowest the box scrolls: one row of 100-px panels, or one wrapped column
            narrowest = (
                min(MIN_WRAP_PANEL, panel_size)
                if self.wrap
                else min(MIN_PANEL_WIDTH, panel_size) * self.count
            )
            self.fit = FitWidth(
                panels=self.count,
                aspect=h / w,
                max_panel=panel_size,
                window_reserve=window_reserve,
                anchor=anchor,
                min_panel=min(MIN_WINDOW_FIT_PANEL, panel_size),
                columns=self.grid.columns,
                rows=self.grid.rows,
                row_gap=ROW_GAP,
                share=self.grid.share if self.wrap else 0.0,
            )
            if self.wrap:
                self.fit.observe(self._on_width, names="width")
            self.widget = W.VBox(
                [self.figure, self.fit],
                layout=W.Layout(
                    width="100%",
                    min_width=f"{narrowest + FIGURE_EXTRA}px",
                    max_width=f"{panel_size * self.count + FIGURE_EXTRA}px",
                ),
            )
        self._click_handlers: list[Callable[[int, float, float], None]] = []
        for k in range(self.count):
            self.heatmap(k).on_click(self._make_click(k))

    def photo(self, k: int):
        return self.figure.data[TRACES_PER_PANEL * k]

    def heatmap(self, k: int):
        return self.figure.data[TRACES_PER_PANEL * k + 1]

    def marker(self, k: int):
        return self.figure.data[TRACES_PER_PANEL * k + 2]

    # ---------------------------------------------------------------- updates
    def set_maps(
        self,
        maps: Sequence[np.ndarray],
        titles: Sequence[str] | None = None,
        zrange: tuple[float, float] | None = None,
        colorbar_title: str | None = None,
        fades: Sequence[str | None] | None = None,
    ) -> None:
        """Replace the maps (and titles, colour bar title, the panels' ``fades``), keeping
        the figure; ``zrange`` fixes the colour axis."""
        h, w = self.image_shape
        with self.figure.batch_update():
            if fades is not None:
                self.fades = _check_fades(fades, self.count)
            for k, raw in enumerate(maps):
                m = prepare_map(raw, map_side(self.count))
                self.heatmap(k).update(
                    z=compact_z(m),
                    dx=w / m.shape[1],
                    dy=h / m.shape[0],
                    x0=w / m.shape[1] / 2 - 0.5,
                    y0=h / m.shape[0] / 2 - 0.5,
                )
                if titles is not None:
                    self.heatmap(k).name = titles[k]
                    self.figure.layout.annotations[k].text = wrap_title(titles[k], self._title_px)
            if colorbar_title is not None:
                self.figure.layout.coloraxis.colorbar.title.text = colorbar_title
            self.zrange = zrange
            if zrange is None:
                self.figure.layout.coloraxis.update(cmin=None, cmax=None, cauto=True)
            else:
                self.figure.layout.coloraxis.update(cmin=zrange[0], cmax=zrange[1], cauto=False)
            self._restyle()  # (a second colour axis takes the range)

    def lay_out(self, width: float) -> PanelGrid:
        """Panels in rows for a box ``width`` px wide (``wrap``; the browser reports its width
        through FitWidth): axis domains, title places and wrapping, in place; the grid."""
        if not self.wrap:
            return self.grid
        grid = panel_grid(self.count, width, max_panel=self.panel_size)
        if grid != self.grid:
            h, w = self.image_shape
            with self.figure.batch_update():
                _place_panels(self.figure.layout, grid, self.count, h / w)
                if int(grid.panel) // 7 != self._title_px // 7:  # (wrap_title's characters)
                    self._title_px = int(grid.panel)
                    for k in range(self.count):
                        self.figure.layout.annotations[k].text = wrap_title(
                            self.heatmap(k).name, self._title_px
                        )
            self.grid = grid
            with self.fit.hold_sync():  # the height follows, in the browser
                self.fit.columns, self.fit.rows, self.fit.share = grid.columns, grid.rows, grid.share
        return grid

    def _on_width(self, change) -> None:
        if change["new"] > 0:
            self.lay_out(change["new"])

    def set_image(self, image: np.ndarray) -> None:
        """A new photo (sent once, as JPEG); axes follow a change of size."""
        source = image_data_uri(image, "jpeg")
        h, w = image.shape[:2]
        with self.figure.batch_update():
            for k in range(self.count):
                self.photo(k).source = source
            if (h, w) != tuple(self.image_shape):
                self.image_shape = (h, w)
                if self.fit is not None:
                    self.fit.aspect = h / w
                if self.wrap:  # the rows' heights follow the photo's
                    _place_panels(self.figure.layout, self.grid, self.count, h / w)
                self.figure.update_xaxes(range=[-0.5, w - 0.5])
                self.figure.update_yaxes(range=[h - 0.5, -0.5])

    def set_opacity(self, opacity: float) -> None:
        with self.figure.batch_update():
            for k in range(self.count):
                self.heatmap(k).opacity = float(opacity)

    def set_colormap(self, name: str, fades: Sequence[str | None] | None = None) -> None:
        """The colormap's name; ``fades``: the panels' new fades (None: each keeps its own)."""
        self.colormap = name
        if fades is not None:
            self.fades = _check_fades(fades, self.count)
        self._restyle()

    def set_view(self, view: str, opacity: float) -> None:
        """``"overlay"``: photo under a smoothed map; ``"raw"``: the map alone, its grid visible."""
        raw = view == "raw"
        self.view = view
        with self.figure.batch_update():
            self._restyle()
            for k in range(self.count):
                self.photo(k).visible = not raw
                self.heatmap(k).zsmooth = False if raw else "best"
                self.heatmap(k).opacity = 1.0 if raw else float(opacity)

    # ---------------------------------------------------------- colour scales
    def fade(self, k: int) -> str | None:
        """The fade panel ``k`` is drawn with: its own, none in the raw view."""
        return None if self.view == "raw" else self.fades[k]

    def _axes(self) -> list[str]:
        """Each panel's colour axis: one per fade, in the order the panels use them."""
        order: list = []
        for k in range(self.count):
            if self.fade(k) not in order:
                order.append(self.fade(k))
        return [COLOR_AXES[order.index(self.fade(k))] for k in range(self.count)]

    def _scales(self, layout, axes: Sequence[str]) -> None:
        """The colour axes' colour scales (the second one, if used: the first's range, no bar)."""
        for name in COLOR_AXES:
            if name not in axes:
                continue
            fade = self.fade(list(axes).index(name))
            # (the same scale again sends nothing: an opacity change sends only the opacity)
            axis = dict(colorscale=plotly_colorscale(self.colormap, fade=fade))
            if name != COLOR_AXES[0]:  # (read from the layout, it is stale in a batch_update)
                lo, hi = (None, None) if self.zrange is None else self.zrange
                axis.update(showscale=False, cmin=lo, cmax=hi, cauto=self.zrange is None)
            layout.update({name: axis})  # (plotly makes "coloraxis2" only this way)

    def _restyle(self) -> None:
        """Colour scales and the panels' axes after a change of colormap, view or fades."""
        axes = self._axes()
        with self.figure.batch_update():
            self._scales(self.figure.layout, axes)
            for k in range(self.count):
                self.heatmap(k).coloraxis = axes[k]

    def mark(self, x: float | None, y: float | None) -> None:
        """Put the probe marker at (x, y) in every panel (None clears it)."""
        xs, ys = ([], []) if x is None else ([x], [y])
        with self.figure.batch_update():
            for k in range(self.count):
                self.marker(k).update(x=xs, y=ys)

    # ----------------------------------------------------------------- events
    def on_probe(self, handler: Callable[[int, float, float], None]) -> None:
        """``handler(panel, x, y)`` when a heatmap is clicked."""
        self._click_handlers.append(handler)

    def _make_click(self, panel: int):
        def clicked(trace, points, state):
            if not points.xs:
                return
            for handler in self._click_handlers:
                handler(panel, float(points.xs[0]), float(points.ys[0]))

        return clicked


def _check_fades(fades: Sequence[str | None], count: int) -> list[str | None]:
    """``fades`` of ``count`` panels (none: no fade), each checked."""
    fades = list(fades) or [None] * count
    if len(fades) != count:
        from ...errors import InvalidParameterError, Received, expected

        raise InvalidParameterError(
            expected("fades", f"one entry per panel ({count} panels)", Received(f"{len(fades)} fades"))
        )
    return [check_fade(f) for f in fades]


def _place_panels(layout, grid: PanelGrid, count: int, aspect: float) -> None:
    """Axis domains and title places of ``count`` panels laid out as ``grid`` (see
    :func:`~cam_widgets.render.figures.grid_domains`); the titles are the first annotations."""
    for k, (xd, yd) in enumerate(grid_domains(grid, count, aspect)):
        suffix = "" if k == 0 else str(k + 1)
        layout[f"xaxis{suffix}"].domain = xd
        layout[f"yaxis{suffix}"].domain = yd
        layout.annotations[k].update(x=(xd[0] + xd[1]) / 2, y=yd[1])


#: Panel width (px) at most (a wide page); narrower outputs get narrower panels, which wrap
#: into rows below MIN_WRAP_PANEL (HeatmapPanels' ``fit_width`` and ``wrap``).
PANEL_SIZE = 320
