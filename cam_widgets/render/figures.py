"""Interactive plotly figures of explanation maps over the photo.

The only module of :mod:`cam_widgets.render` that imports plotly.

Each panel draws the photo as a ``go.Image`` (a PNG/JPEG data URI, so the figure JSON holds
compressed bytes, not pixel arrays) with a ``go.Heatmap`` of the *low-resolution* map on top,
stretched over the photo with ``x0/dx/y0/dy``: cell (i, j) of an (h, w) map is centred on
photo pixel coordinates ``((j + 0.5) * W / w - 0.5, (i + 0.5) * H / h - 0.5)``, which is
exactly where ``F.interpolate(..., align_corners=False)`` puts it, and the cells together
cover the photo ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.  ``zsmooth="best"`` lets the browser
interpolate.  All panels share one coloraxis (one colour bar) and linked axes.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import InvalidParameterError, Received, expected
from .colormaps import DEFAULT_COLORMAP, plotly_colorscale
from .normalize import as_map
from .overlay import check_opacity, check_rgb, image_data_uri
from .titles import title_lines

#: An optional dependency of jsonschema that compiles a grammar when imported (1.0 to 1.2 s
#: on 2 cores), reached through plotly's FigureWidget -> nbformat -> jsonschema, for a format
#: ("iri") no notebook validation here uses.
_SLOW_OPTIONAL = "rfc3987_syntax"


def figure_widget(figure) -> go.FigureWidget:
    """``go.FigureWidget(figure)``, plotly's widget class first imported without jsonschema's
    optional "iri" format checker: a second less before every kernel's first figure, for a
    classroom of kernels starting at once. Only that import is skipped (``None`` in
    ``sys.modules`` makes it fail as if absent), and only while the class is first imported:
    the module stays importable for any code that asks for it later.

    The widget does not count its views (``_view_count`` None, ipywidgets' default; plotly
    sets 0 and never reads it): with a count, each view removed sends the kernel the count
    less one, and closing a notebook's tab in JupyterLab removes the views after the kernel's
    connection is gone, so the browser's console said "Could not send widget sync message"
    once for each figure."""
    if "plotly.basewidget" not in sys.modules and _SLOW_OPTIONAL not in sys.modules:
        sys.modules[_SLOW_OPTIONAL] = None  # type: ignore[assignment]
        try:
            widget_class = go.FigureWidget
        finally:
            if sys.modules.get(_SLOW_OPTIONAL, 0) is None:
                del sys.modules[_SLOW_OPTIONAL]
    else:
        widget_class = go.FigureWidget
    widget = widget_class(figure)
    widget._view_count = None
    return widget


__all__ = [
    "heatmap_figure",
    "standalone_html",
    "MAX_MAP_SIDE",
    "map_side",
    "prepare_map",
    "wrap_title",
    "PanelGrid",
    "panel_grid",
    "grid_height",
    "grid_domains",
]

#: Map cells one figure may send in all (the browser receives each as a number): one panel
#: shows a 224x224 pixel-level map whole, four panels 112x112 each.
MAP_CELLS_PER_FIGURE = 224 * 224
#: Maps larger than this on either side are box-downsampled before going into a figure.
MAX_MAP_SIDE = 224


def map_side(panels: int) -> int:
    """The largest map side each of ``panels`` panels may send (at least 56: detail stays)."""
    return max(56, min(MAX_MAP_SIDE, math.isqrt(MAP_CELLS_PER_FIGURE // max(int(panels), 1))))


def prepare_map(m: object, max_side: int = MAX_MAP_SIDE, name: str = "map") -> np.ndarray:
    """float32 (h, w) map, area-downsampled to at most ``max_side`` per side; not rounded: a
    figure's JSON holds float32 arrays as base64 (4 bytes a value, exact). Widgets round
    what they send as JSON lists themselves (see ``widgets.panels.compact_z``)."""
    a = as_map(m, name, np.float32)
    h, w = a.shape
    if max(h, w) > max_side:
        from PIL import Image

        s = max_side / max(h, w)
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        a = np.asarray(
            Image.fromarray(np.ascontiguousarray(a), mode="F").resize((nw, nh), Image.BOX), dtype=np.float32
        )
    finite = np.isfinite(a)
    if not finite.all():  # drawn as gaps (a new array: ``a`` may be the caller's)
        a = np.where(finite, a, np.float32(np.nan))
    return a


#: plotly.js config of every figure: a short toolbar (zoom, pan, reset, download as PNG); the
#: default one (9 buttons and the logo) covered a panel's title, and plotly.js 3 adds "Share
#: chart...", an upload to Plotly's cloud.
FIGURE_CONFIG = {
    "displaylogo": False,
    "showSendToCloud": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"],
}

#: Panel titles: font size, and pixels a character takes at that size (to wrap them).
TITLE_FONT_SIZE, TITLE_CHAR_PX = 13, 7
#: Colour bar title font size (the title runs along the bar).
COLORBAR_FONT_SIZE = 11
#: What a figure adds to its panels' width (the colour bar and the margins) and height (the
#: titles and the margins), in px.
FIGURE_EXTRA, FIGURE_EXTRA_HEIGHT = 120, 90
#: The width a page gives a figure that fits it (a 1280-px screen less the notebook's margins).
PAGE_WIDTH = 1200
#: Narrowest a panel of a page-fitted figure gets (px): ten panels (SmoothGrad's article
#: counts) fit a 1280-px page; below that the figure's box scrolls sideways.
MIN_PANEL_WIDTH = 100


#: Narrowest a panel of a wrapping figure gets (px) before its panels wrap into another row:
#: readable on a projector (ten SmoothGrad panels in one 1120-px row were 74 to 83 px, and
#: their titles ran into each other).
MIN_WRAP_PANEL = 150
#: Height (px) between two rows of panels: the lower row's titles (two lines) sit there.
ROW_GAP = 56
#: The figure's margins above the first row (its titles) and below the last (px); the rest of
#: FIGURE_EXTRA_HEIGHT is room under the panels.
TOP_MARGIN, BOTTOM_MARGIN = 64, 10


@dataclass(frozen=True)
class PanelGrid:
    """Panels in ``rows`` rows of at most ``columns``, each ``panel`` px wide: ``share`` of
    the figure's plot width (the paper's, between the margins and the colour bar)."""

    columns: int
    rows: int
    panel: float
    share: float


def column_gap(columns: int) -> float:
    """The gap between two columns of panels, as a share of the plot width (make_subplots')."""
    return min(0.03, 0.9 / (columns - 1)) if columns > 1 else 0.0


def column_share(columns: int) -> float:
    """The share of the plot width each of ``columns`` panels in a row gets."""
    return (1.0 - (columns - 1) * column_gap(columns)) / columns


def panel_grid(
    panels: int,
    width: float,
    min_panel: float = MIN_WRAP_PANEL,
    max_panel: float | None = None,
    extra: int = FIGURE_EXTRA,
) -> PanelGrid:
    """How ``panels`` panels fill a figure ``width`` px wide (colour bar and margins:
    ``extra``): as many in a row as fit at ``min_panel`` px each (at least one: an output
    narrower than one panel scrolls), the rows balanced (ten panels in 1,120 px: two rows of
    five, 200 px each, not six and four), each panel its share of the row, at most
    ``max_panel``."""
    count = max(int(panels), 1)
    room = max(float(width) - extra, 0.0)
    fits = next((c for c in range(count, 1, -1) if room * column_share(c) >= min_panel), 1)
    rows = math.ceil(count / fits)
    columns = math.ceil(count / rows)
    share = column_share(columns)
    panel = room * share
    return PanelGrid(columns, rows, panel if max_panel is None else min(panel, float(max_panel)), share)


def grid_height(
    grid: PanelGrid, aspect: float, extra_height: int = FIGURE_EXTRA_HEIGHT, row_gap: int = ROW_GAP
) -> int:
    """The figure's height (px) for ``grid`` of panels ``aspect`` (height / width) high:
    what :class:`~cam_widgets.widgets.fit_width.FitWidth` sets in the browser."""
    return int(round(grid.rows * grid.panel * aspect + (grid.rows - 1) * row_gap + extra_height))


def grid_domains(
    grid: PanelGrid, panels: int, aspect: float, row_gap: int = ROW_GAP
) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(x domain, y domain) of each of ``panels`` panels laid out as ``grid``, row by row, in
    the figure's paper fractions for the height of :func:`grid_height`; the last row reaches
    down to the bottom (a panel keeps its aspect under its title: ``constraintoward``)."""
    gap, column = column_gap(grid.columns), grid.share
    paper = grid_height(grid, aspect, row_gap=row_gap) - TOP_MARGIN - BOTTOM_MARGIN
    high = grid.panel * aspect
    out = []
    for k in range(int(panels)):
        row, col = divmod(k, grid.columns)
        top = row * (high + row_gap)
        bottom = 0.0 if row == grid.rows - 1 else max(0.0, 1.0 - (top + high) / paper)
        x0 = col * (column + gap)
        out.append(
            (
                (round(x0, 6), round(min(1.0, x0 + column), 6)),
                (round(bottom, 6), round(max(bottom, 1.0 - top / paper), 6)),
            )
        )
    return out


def title_width(panel_size: int, panels: int, fit_width: bool = False) -> int:
    """The width titles are wrapped to: the panel's, or for a figure that fits the page the
    width its panels get on a 1280-px screen (ten panels there get ~108 px, not their 320)."""
    if not fit_width:
        return int(panel_size)
    return max(MIN_PANEL_WIDTH, min(int(panel_size), (PAGE_WIDTH - FIGURE_EXTRA) // max(int(panels), 1)))


def wrap_title(title: object, panel_size: int = 320) -> str:
    """A panel title broken into lines (``<br>``) that fit the panel's width: "Guided
    Grad-CAM++ @ features.8 + SmoothGrad (n=20, noise 0.2): tabby (281) p=0.071" does not
    fit one line of a 320-pixel panel."""
    width = max(12, int(panel_size) // TITLE_CHAR_PX)
    return "<br>".join(title_lines(title, lambda line: len(line) <= width))


def heatmap_figure(
    image_rgb: np.ndarray,
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    opacity: float = 0.5,
    colorscale: str | list = DEFAULT_COLORMAP,
    zmin: float | None = None,
    zmax: float | None = None,
    smooth: bool = True,
    image_format: str = "png",
    panel_size: int = 320,
    fit_width: bool = False,
) -> go.Figure:
    """One row of panels, one per map: the photo with the map as a translucent heatmap.

    Args:
        image_rgb: the photo, RGB uint8 (H, W, 3), as fed to the model.
        maps: maps (h, w) (7x7 or 14x14 layer grids, input-resolution pixel maps; raw or
            normalised); above :func:`map_side` of their count per side they are
            area-downsampled to keep the figure small.
        titles: one title per map (shown above the panel and in the hover).
        opacity: heatmap opacity in [0, 1].
        colorscale: a name of :func:`~cam_widgets.render.colormaps.list_colormaps` or a
            plotly colorscale list.
        zmin, zmax: shared colour range (e.g. from ``shared_scale``); None = automatic over
            all panels (the coloraxis is shared, so panels are always comparable).
        smooth: ``zsmooth="best"`` (browser interpolation) instead of showing the raw grid.
        image_format: ``"png"`` (lossless) or ``"jpeg"`` (much smaller for real photos).
        panel_size: approximate pixel width of one panel (the figure's height follows it).
        fit_width: leave the width unset, so that the figure takes its container's width
            (Plotly's autosize); each panel keeps the photo's aspect ratio and any height to
            spare goes below the panels, not between them and their titles.
    """
    img = check_rgb(image_rgb, "image_rgb")
    if isinstance(maps, np.ndarray) and maps.ndim == 2:
        maps = [maps]
    maps = list(maps)
    titles = [titles] if isinstance(titles, str) else list(titles)
    if not maps:
        raise InvalidParameterError(expected("maps", "at least one (h, w) map", Received("none")))
    if len(titles) != len(maps):
        raise InvalidParameterError(
            expected("titles", f"one entry per map ({len(maps)} maps)", Received(f"{len(titles)} titles"))
        )
    op = check_opacity(opacity)
    for name, v in (("zmin", zmin), ("zmax", zmax)):
        if v is not None and not (isinstance(v, (int, float, np.number)) and np.isfinite(v)):
            raise InvalidParameterError(expected(name, "a finite number or None", v))
    if zmin is not None and zmax is not None and not zmin < zmax:
        raise InvalidParameterError(
            expected("zmin, zmax", "zmin below zmax", Received(f"zmin={zmin!r}, zmax={zmax!r}"))
        )
    scale = colorscale if isinstance(colorscale, (list, tuple)) else plotly_colorscale(colorscale)
    side = map_side(len(maps))
    prepared = [prepare_map(m, side, name=f"maps[{i}]") for i, m in enumerate(maps)]

    H, W = img.shape[:2]
    n = len(maps)
    source = image_data_uri(img, image_format)
    fig = make_subplots(
        rows=1,
        cols=n,
        subplot_titles=[wrap_title(t, title_width(panel_size, len(maps), fit_width)) for t in titles],
        horizontal_spacing=column_gap(n),
    )
    fig.update_annotations(font_size=TITLE_FONT_SIZE)
    for k, (m, title) in enumerate(zip(prepared, titles), start=1):
        h, w = m.shape
        dx, dy = W / w, H / h
        fig.add_trace(
            go.Image(source=source, x0=0, dx=1, y0=0, dy=1, hoverinfo="skip", name=f"{title} (photo)"),
            row=1,
            col=k,
        )
        fig.add_trace(
            go.Heatmap(
                z=m,
                x0=dx / 2.0 - 0.5,
                dx=dx,
                y0=dy / 2.0 - 0.5,
                dy=dy,
                coloraxis="coloraxis",
                opacity=op,
                zsmooth="best" if smooth else False,
                name=str(title),
                # the trace's name, not a copy of it: widgets rename traces when the map changes
                hovertemplate="<b>%{fullData.name}</b><br>x=%{x:.0f}, y=%{y:.0f}<br>value %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=k,
        )
    axis_common = dict(showgrid=False, zeroline=False, showticklabels=False, ticks="")
    x_range = [-0.5, W - 0.5]
    y_range = [H - 0.5, -0.5]  # reversed: row 0 at the top, as in images
    for k in range(1, n + 1):
        xa = "xaxis" if k == 1 else f"xaxis{k}"
        ya = "yaxis" if k == 1 else f"yaxis{k}"
        # constrain="domain": the 1:1 aspect shrinks the plot area, never widens the ranges
        # (with "range", Plotly widened them again at every map of another shape)
        fig.layout[xa].update(range=x_range, autorange=False, constrain="domain", **axis_common)
        fig.layout[ya].update(range=y_range, autorange=False, constrain="domain", **axis_common)
        if fit_width:  # narrower panels than panel_size: the photo stays under its title
            fig.layout[ya].constraintoward = "top"
        if k == 1:
            fig.layout[ya].update(scaleanchor="x", scaleratio=1)
        else:
            fig.layout[xa].update(matches="x")
            fig.layout[ya].update(matches="y", scaleanchor=False)
    # the title along the bar, right of the ticks: above it, it sat on the top tick
    colorbar = dict(thickness=12, len=0.9, title=dict(side="right", font=dict(size=COLORBAR_FONT_SIZE)))
    coloraxis = dict(colorscale=scale, colorbar=colorbar)
    if zmin is not None:
        coloraxis["cmin"] = float(zmin)
    if zmax is not None:
        coloraxis["cmax"] = float(zmax)
    fig.update_layout(
        coloraxis=coloraxis,
        width=None if fit_width else int(panel_size * n + FIGURE_EXTRA),
        height=int(panel_size * H / W + FIGURE_EXTRA_HEIGHT),
        margin=dict(l=10, r=10, t=TOP_MARGIN, b=BOTTOM_MARGIN),  # two lines of title
        hovermode="closest",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def standalone_html(fig: go.Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as one self-contained HTML file (plotly.js inlined: works offline)."""
    if not isinstance(fig, go.Figure):
        raise InvalidParameterError(expected("fig", "a plotly Figure", fig))
    from ..data.files import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:  # written beside it, renamed over it when complete
        fig.write_html(str(tmp), include_plotlyjs=True, full_html=True, config=FIGURE_CONFIG)
    return p
