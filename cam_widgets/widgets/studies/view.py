"""What a study shows: :class:`StudyView` (what its engine work gives the figure and the
status line) and :class:`StudyPanels`, the one figure of panels every study draws into,
partial maps included; and the dilation study's table."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import NamedTuple

import ipywidgets as W
import numpy as np

from ...explainer import Explainer
from ...result import Explanation
from ..shared.panels import PANEL_SIZE, HeatmapPanels


class StudyView(NamedTuple):
    """What a study's engine work gives its figure and status line: the photo, the maps,
    their titles and colour bar note (:func:`..shared.maps.colorbar_note` of the results),
    the explainer (its classes go to the class box), a result of the class the maps show
    (the class box names it when it was left to the top class), each panel's overlay fade
    (:func:`..shared.maps.overlay_fades`; none: no fade), the status line, and the notes of
    chosen classes the model does not see (:func:`..shared.maps.unseen_note`)."""

    rgb: np.ndarray
    maps: list
    titles: list
    note: str
    explainer: Explainer
    shown: Explanation
    fades: Sequence = ()
    line: str = ""
    unseen: Sequence[str] = ()


class StudyPanels:
    """The figure of a study's panels, in a box that fits the page: built in its final
    state when the count of panels changes, updated in place otherwise; partial maps (of a
    request still running) can be shown and undone back to the last result's."""

    def __init__(self, look: Callable[[], tuple[float, str]]) -> None:
        """``look()`` -> the (opacity, colormap) on show."""
        self._look = look
        self.panels: HeatmapPanels | None = None
        # the figure fits the page's width, its panels in rows; past one narrowest panel it scrolls
        self.widget = W.Box([], layout=W.Layout(overflow="auto", max_width="100%"))
        self._last: tuple | None = None  # the last result's figure (partial maps undone to it)
        self._partial = False
        self._photo_key = None

    def show_result(self, view: StudyView, key) -> None:
        """Show a request's result (``key``: its photo's, unchanged photos are not resent)."""
        self._last = (view, key)
        self._partial = False
        self._draw(view, key)

    def show_partial(self, view: StudyView, key) -> None:
        """Show the maps a running request has so far."""
        self._partial = True
        self._draw(view, key)

    def discard_partial(self) -> None:
        """A request ended without a result: the last result's maps again."""
        if self._partial and self._last is not None:
            self._draw(*self._last)
        self._partial = False

    def _draw(self, view: StudyView, key) -> None:
        self.show(view.rgb, view.maps, view.titles, view.note, key=key, fades=view.fades)

    def show(self, rgb: np.ndarray, maps, titles, note: str = "", key=None, fades: Sequence = ()) -> None:
        opacity, colormap = self._look()
        if self.panels is None or self.panels.count != len(maps):
            # built in its final state, placed only once built (see HeatmapPanels)
            self.panels = HeatmapPanels(
                rgb,
                maps,
                titles,
                opacity=opacity,
                colormap=colormap,
                zrange=(0.0, 1.0),
                colorbar_title=note,
                fades=fades,
                panel_size=PANEL_SIZE,
                fit_width=True,
                wrap=True,
            )
            self.panels.on_probe(lambda k, x, y: self.panels.mark(x, y))
            self.widget.children = [self.panels.widget]
        else:
            with self.panels.figure.batch_update():
                if self._photo_key != key:
                    self.panels.set_image(rgb)
                self.panels.set_maps(maps, titles, zrange=(0.0, 1.0), colorbar_title=note, fades=fades)
            self.show_look()
        self._photo_key = key

    def show_look(self) -> None:
        """The opacity and colormap on show (a display change: no engine call)."""
        opacity, colormap = self._look()
        with self.panels.figure.batch_update():
            self.panels.set_opacity(opacity)
            self.panels.set_colormap(colormap)


#: Table cells with room between columns (front ends' themes give tables none).
_CELL = "padding:2px 14px 2px 0;text-align:left"


def dilation_table(names, predictions, shapes, timings) -> str:
    """HTML: the top-5 of a model and its dilated twin, their map sizes and forward times."""
    e = html.escape

    def row(cells, tag="td") -> str:
        return "<tr>" + "".join(f"<{tag} style='{_CELL}'>{c}</{tag}>" for c in cells) + "</tr>"

    rows = "".join(
        row([k + 1] + [f"{e(p.label)} ({p.class_id}) {p.probability:.3f}" for p in pair])
        for k, pair in enumerate(zip(*predictions))
    )
    return (
        "<table class='cw-dilation' style='border-collapse:collapse'>"
        + row(["top-5"] + [e(n) for n in names], "th")
        + rows
        + row(["Grad-CAM map"] + [f"{h}x{w}" for h, w in shapes])
        + row(["forward"] + [f"{ms:.0f} ms" for ms in timings])
        + row(["ratio", "", f"{timings[1] / timings[0]:.1f}x"])
        + "</table>"
    )
