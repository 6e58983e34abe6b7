"""Compare: N maps side by side in one figure, one per class, method, layer or model.

This module is the widget: how its controls, the figure, the probe table and the metrics
section follow the state. The state and its parsing live in :mod:`.state`, the engine
work in :mod:`.work`, what the panels show (scaling, probe values) in :mod:`.view`, the
controls in :mod:`.controls`; the names in ``__all__`` are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import ipywidgets as W
import numpy as np

from ...api import widget_model
from ...methods import get_method
from ...models import DEFAULT_MODEL
from ...result import Explanation
from ..shared.controls import first_view
from ..shared.images import ImageMenu, image_choice, show_choice
from ..shared.lifecycle import close_widget, replace_in_cell
from ..shared.maps import overlay_fades, with_notes
from ..shared.panels import PANEL_SIZE, HeatmapPanels
from ..shared.state_requests import StateRequests, control_value
from ..shared.status import busy
from .controls import build_controls, class_text, compare_layout, fill_menus, show_scale
from .metrics_panel import MetricsPanel
from .state import (
    DEFAULT_VALUES,
    DIMENSIONS,
    DISPLAY,
    PLACEHOLDERS,
    CompareState,
    check_by,
    parse_values,
    values_text,
)
from .view import mark_unseen, probe_table_html, scaled_maps, summary_line, value_at
from .work import ComparePanels, CompareWork

__all__ = ["Compare", "CompareState", "DEFAULT_VALUES", "DIMENSIONS", "DISPLAY", "parse_values", "value_at"]


class Compare(W.VBox):
    """N maps of one photo in one linked figure, one per value of ``by``.

    Args:
        image: a bundled photo or scene name, or your own image (a path, URL, array or PIL
            image; every widget then offers it too).
        by: ``"class"`` (one batched backward), ``"method"``, ``"layer"`` (one backward for
            all layers) or ``"model"`` (zoo names; the photo is prepared for each model).
        values: the compared values, methods by name or title, any case (None or empty: the
            defaults of ``by``, which follow the image and model: the image's top 2 classes,
            the model's stage outputs, three CAM methods, two models).
        method, target, layer, model: the fixed dimensions (target None: the top class; with
            ``by="model"``, the first model's top class, so that every panel shows one class).
        shared_scale: one colour range over the raw maps (clipped at 0) instead of each
            map normalised to [0, 1]; off while the panels mix CAM and pixel-level maps.
        background: compute browser changes off the kernel's loop (None: when in a kernel;
            see :class:`~cam_widgets.widgets.explorer.Explorer`).
        colormap, opacity: the first view's (as the Explorer's).

    The "metrics" checkbox (off by default; ``self.metrics``, a
    :class:`~cam_widgets.widgets.compare.metrics_panel.MetricsPanel`) adds a table of localization
    and faithfulness scores per panel against a typed, drawn or scene ground-truth box, and
    the deletion / insertion curve of one panel.

    ``results``, ``titles`` and ``sources`` (each panel's explainer and prepared photo) are
    those of the maps on show.
    """

    def __init__(
        self,
        image: str = "chelsea",
        model: str = DEFAULT_MODEL,
        by: str = "class",
        values: Sequence | None = None,
        method: str = "gradcam",
        target=None,
        layer: str | None = None,
        shared_scale: bool = False,
        background: bool | None = None,
        colormap: str = "viridis",
        opacity: float = 0.5,
    ) -> None:
        check_by(by)  # the "compare" menu cannot show another value
        self._yours: list = []  # your models' Explainers, held while this widget lives
        model = widget_model(model, self._yours)  # your nn.Module or Explainer too
        values = (
            tuple(widget_model(v, self._yours) for v in values or ())
            if by == "model"
            else tuple(values or ())
        )
        colormap, opacity = first_view(colormap, opacity)
        self.state = CompareState(
            image=image_choice(image),
            model=model,
            by=by,
            values=values,
            method=get_method(method).name,
            target=target,
            layer=layer,
            shared_scale=shared_scale,
            opacity=opacity,
            colormap=colormap,
            auto_values=not values,
        )
        # a newer "compare by" voids the older values (of another dimension)
        self._requests = StateRequests(
            self,
            background,
            implied={"by": ("values", "auto_values")},
            display=lambda state: DISPLAY,
            normalize=self._normalize,
            parse_control=self._parse_control,
        )
        self.status = self._requests.status
        self.results: list[Explanation] = []
        self.titles: list[str] = []  # each panel's title, as drawn
        self.sources: list = []  # (explainer, prepared image) of each panel, for metrics
        self._unseen: list[str] = []  # per panel: its class is one the model does not see
        self._work = CompareWork()
        self.seconds = 0.0  # wall time of the last update's engine work
        self.probed: tuple[float, float] | None = None
        self._controls = build_controls(self.state)
        self.table = W.HTML(value="")
        self.panels: HeatmapPanels | None = None
        # the figure fits the page's width, its panels in rows; past one narrowest panel it scrolls
        self._figure_box = W.Box([], layout=W.Layout(overflow="auto", max_width="100%"))
        self.metrics = MetricsPanel(self)
        super().__init__(
            [
                compare_layout(self._controls),
                self._figure_box,
                self.table,
                self.metrics.widget,
                self.status.widget,
            ]
        )
        with busy([], self.status):
            self._apply(*self._compute(self.state, self.status.report))
            self.status.keep()
        if self.panels is None:  # the first computation failed: empty panels, error shown
            self.titles = [str(v) for v in values] or ["(none)"]
            self._build_panels(np.zeros((224, 224, 3), np.uint8))
        self._sync_controls()
        self._requests.watch(self._controls)
        self._image_menu = ImageMenu(self._controls["image"], self._requests.quiet)
        replace_in_cell(self)

    def set(self, **changes):
        """Change settings from Python, as the controls do (``values``, ``by``, ``method``,
        ``target``, ``layer``, ``model``, ``image``, the view's); returns the results. An
        error shows in the status line, and the previous state and figure are kept."""
        self._requests.set(changes)
        return self.results

    def close(self) -> None:
        """Close this widget and every widget it built; running work stops at its next
        progress report, and its results are dropped."""
        close_widget(self)
        super().close()

    # ---------------------------------------------------------------- controls
    @staticmethod
    def _parse_control(name: str, value):
        return parse_values(value) if name == "values" else control_value(name, value)

    def _sync_controls(self, keep_text: bool = False) -> None:
        """Controls show the state (without triggering a computation); the varied one is off."""
        s, c = self.state, self._controls
        self._requests.syncing = True
        try:
            show_choice(c["image"], s.image)
            for name in ("model", "by", "method", "opacity", "colormap"):
                c[name].value = getattr(s, name)
            if not keep_text:
                c["values"].value = values_text(s)
                c["target"].value = class_text(s)
            c["values"].placeholder = PLACEHOLDERS.get(s.by, "")
            self._fill_menus(s.model, s.layer)  # by "model" too: the layer stays fixed
            c["layer"].value = s.layer or ""
            self._sync_scale_toggle()
        except Exception as error:  # noqa: BLE001 - shown in the widget
            self.status.error(error)
        finally:
            self._requests.syncing = False
        for name, varied in (
            ("target", "class"),
            ("method", "method"),
            ("layer", "layer"),
            ("model", "model"),
        ):
            c[name].disabled = s.by == varied or (name == "layer" and s.by == "model")

    def _fill_menus(self, model: str, layer: str | None) -> None:
        """The layer and class menus, when the model or layer changed."""
        if getattr(self, "_menus_for", None) != (model, layer):
            fill_menus(self._controls, model, layer, classes=getattr(self, "_menus_for", (None,))[0] != model)
            self._menus_for = (model, layer)

    def _sync_scale_toggle(self) -> None:
        show_scale(self._controls["shared_scale"], self.state.shared_scale, self.results)

    # ----------------------------------------------------------------- actions
    def _show_display(self, **changes) -> None:
        """Display settings (scale, opacity, colormap): a re-render, no engine call."""
        self.state = replace(self.state, **changes)
        self._render()
        if self.results:  # the summary says whether the shared scale is in use
            self._report()
        else:
            self.status.restore()  # not an old error
        self._sync_scale_toggle()

    def _normalize(self, changes: dict) -> dict:
        """Given values are kept; none given (or a new ``by``): the defaults, which follow the
        image and model (see resolve_state)."""
        if "values" in changes:
            changes["values"] = tuple(changes["values"] or ())
            changes["auto_values"] = not changes["values"]
        elif changes.get("by", self.state.by) != self.state.by:
            changes["values"], changes["auto_values"] = (), True
        return changes

    def probe(self, x: float, y: float) -> list[float]:
        """Mark pixel (x, y) in every panel; returns each panel's value there as drawn and
        as its hover shows it: the map cell under the pixel, in the colour bar's units."""
        self.probed = (float(x), float(y))
        self.panels.mark(x, y)
        return self._fill_table(x, y)

    def _fill_table(self, x: float, y: float) -> list[float]:
        p = self.panels
        # read back from the figure: the very numbers the hover shows
        values = [
            value_at(np.asarray(p.heatmap(k).z, dtype=float), x, y, p.image_shape) for k in range(p.count)
        ]
        unit = p.figure.layout.coloraxis.colorbar.title.text or ""
        self.table.value = probe_table_html(self.titles, values, x, y, unit)
        return values

    def _on_probe(self, panel: int, x: float, y: float) -> None:
        with busy([], self.status):
            self.probe(x, y)
            self.metrics.probed()

    # ------------------------------------------------------------------ engine
    @property
    def engine_calls(self) -> int:
        """Requests that reached the engine so far (display changes make none)."""
        return self._work.calls

    def _compute(self, state: CompareState, report) -> tuple[CompareState, ComparePanels]:
        """The engine work (in a worker thread for a change made in the browser)."""
        return self._work.run(state, report)

    def _apply(self, state: CompareState, panels: ComparePanels) -> None:
        """Show what :meth:`_compute` gave for ``state``."""
        results, rgb, unseen = panels.results, panels.rgb, panels.unseen
        self.state, self.results, self.sources = state, results, panels.sources
        self.titles, self._unseen = mark_unseen(panels.titles, unseen, state.by), unseen
        self.seconds = panels.seconds
        rebuilt = self.panels is None or self.panels.count != len(results)
        if rebuilt:
            self._build_panels(rgb)
        else:
            if getattr(self, "_photo_key", None) != (state.image, rgb.shape):
                self.panels.set_image(rgb)
            self._render()
        self._photo_key = (state.image, rgb.shape)
        self._report()
        if self.probed is not None:
            self.probe(*self.probed)
        with busy([], self.status):  # a metric error is shown; the new maps stay
            self.metrics.refresh(new_figure=rebuilt)

    def _report(self) -> None:
        """The summary line, a warning for the first flagged map, or the summary with a
        warning for each class the model does not see."""
        summary = summary_line(self.state, self.results, self.seconds)
        flagged = [(t, r) for t, r in zip(self.titles, self.results) if r.flagged]
        if flagged:
            self.status.warn(with_notes(f"{flagged[0][0]}: {flagged[0][1].status.message}", self._unseen))
        elif any(self._unseen):
            self.status.warn(with_notes(summary, self._unseen))
        else:
            self.status.info(summary)

    # ------------------------------------------------------------------ render
    def _build_panels(self, rgb: np.ndarray) -> None:
        """A new figure in its final state, placed only once built (see HeatmapPanels)."""
        maps, zrange, label = self._scaled_maps()
        self.panels = HeatmapPanels(
            rgb,
            maps,
            self.titles,
            opacity=self.state.opacity,
            colormap=self.state.colormap,
            zrange=zrange,
            colorbar_title=label,
            fades=self._fades(),
            probe=self.probed,
            panel_size=PANEL_SIZE,
            fit_width=True,
            wrap=True,
        )
        self.panels.on_probe(self._on_probe)
        self.metrics.figure_built(self.panels.figure)
        self._figure_box.children = [self.panels.widget]
        if self.probed is not None:
            self._fill_table(*self.probed)

    def _fades(self) -> list:
        """Each panel's overlay fade, as the Explorer's (placeholders: none)."""
        return overlay_fades(self.results) if self.results else []

    def _scaled_maps(self):
        """Maps per panel in [0, 1], or raw maps clipped at 0 on one shared scale."""
        return scaled_maps(self.results, self.state.shared_scale, len(self.titles))

    def _render(self) -> None:
        """Maps from the results (no engine call): per panel in [0, 1] or on a shared scale."""
        s, p = self.state, self.panels
        maps, zrange, label = self._scaled_maps()
        with p.figure.batch_update():
            p.set_maps(maps, self.titles, zrange=zrange, colorbar_title=label, fades=self._fades())
            p.set_opacity(s.opacity)
            p.set_colormap(s.colormap)
        if self.probed is not None:
            self.probe(*self.probed)

    def _compute_controls(self) -> list:
        return [self._controls[n] for n in ("image", "model", "by", "values", "method", "target", "layer")]
