"""A widget that fits the Plotly figures of its box to the box's width (see FitWidth)."""

from __future__ import annotations

import anywidget
import traitlets

from ...render.figures import FIGURE_EXTRA, FIGURE_EXTRA_HEIGHT

#: Pixels kept free below a window-fitted figure (the page's edge is not the map's).
BELOW_THE_MAP = 8


class FitWidth(anywidget.AnyWidget):
    """An invisible widget that fits the Plotly figures of its box to the box's width.

    plotly's FigureWidget sizes a figure without a width to its container once, when it draws
    it; under anywidget no resize message reaches it, and its ``responsive`` option follows
    only the window's resize events, not JupyterLab's panels (its sidebar). This widget
    watches the box's width and, when a figure was drawn or the width changed, sets the
    figure's height for panels of that width (``panels`` side by side, or ``columns`` in each
    of ``rows`` rows; ``aspect`` = photo height / width, plus the margins; panels at most
    ``max_panel`` wide) and calls the figure's ``responsive`` handler (plotly.js's
    ``Plots.resize``), which reads both again. It reports the width it measured (``width``),
    from which Python lays out panels that wrap into rows.

    With ``window_reserve`` the figure also stays in view, though panels stay ``min_panel``
    wide, and its box no wider than its height allows (a map that grows on a large screen and
    stays on the first one of a laptop). Where it can be whole on the first screen (its place
    on the page with every scroller at the top, measured: an introduction above the widget
    counts), it is no taller than what that screen has left; else no taller than the window
    less what sits above it in its widget (the ancestor of CSS class ``anchor``; without one,
    ``window_reserve`` pixels), so that scrolled to the widget, the map is whole.
    """

    _esm = r"""
    // Where the figure's box would be with every scroller at the top (viewport px), and the
    // bottom of what shows it (the window, or the scrolling panel holding the page: Voila's,
    // JupyterLab's notebook).
    const place = (box, anchor) => {
      let top = box.getBoundingClientRect().top;
      for (let e = box.parentElement; e; e = e.parentElement) top += e.scrollTop;
      let viewTop = 0, bottom = window.innerHeight;
      for (let e = (anchor || box).parentElement; e && e !== document.body; e = e.parentElement) {
        const overflow = getComputedStyle(e).overflowY;
        if ((overflow === "auto" || overflow === "scroll") && e.scrollHeight > e.clientHeight + 1) {
          const r = e.getBoundingClientRect();
          viewTop = Math.max(0, r.top);
          bottom = Math.min(bottom, r.bottom);
          break;
        }
      }
      return {top, viewTop, bottom};
    };

    // The height a window-fitted figure may take and stay in view (see the class's notes).
    const room = (box, anchorClass, reserve, below, shortest) => {
      const anchor = anchorClass ? box.closest("." + anchorClass) : null;
      const {top, viewTop, bottom} = place(box, anchor);
      const firstScreen = bottom - top - below;
      if (firstScreen >= shortest) return firstScreen;
      const above = anchor ? box.getBoundingClientRect().top - anchor.getBoundingClientRect().top
                           : reserve;
      return bottom - viewTop - above - below;
    };

    export default {
      render({ model, el }) {
        el.style.height = "0px";
        el.style.overflow = "hidden";
        let timer = null;
        const fit = () => {
          const box = el.parentElement;
          const width = el.getBoundingClientRect().width;
          if (!box || width === 0) return;  // not shown (yet)
          if (model.get("width") !== Math.round(width)) {  // for panels that wrap (Python lays them out)
            model.set("width", Math.round(width));
            model.save_changes();
          }
          const aspect = model.get("aspect"), rows = Math.max(1, model.get("rows"));
          const panels = Math.max(1, model.get("columns") || model.get("panels"));  // in a row
          const extraWidth = model.get("extra_width"), extraHeight = model.get("extra_height");
          const rowGap = model.get("row_gap");
          const heightOf = (panel) => Math.round(rows * panel * aspect + (rows - 1) * rowGap + extraHeight);
          const share = model.get("share") || 1 / panels;  // of the plot width, per panel
          let maxHeight = heightOf(model.get("max_panel"));
          const reserve = model.get("window_reserve");
          if (reserve > 0) {  // in view: on the first screen, or below the widget's top
            const shortest = heightOf(model.get("min_panel"));
            const fits = room(box, model.get("anchor"), reserve, model.get("below"), shortest);
            maxHeight = Math.min(maxHeight, Math.max(shortest, Math.floor(fits)));
            // and no wider than that height allows: the width to spare goes to the box's neighbours
            const panel = (maxHeight - extraHeight - (rows - 1) * rowGap) / rows / aspect;
            const widest = Math.round(panel / share + extraWidth);
            box.style.maxWidth = widest + "px";  // a narrower box: the observer fits again
          }
          const side = (width - extraWidth) * share;
          const height = Math.min(maxHeight, heightOf(side));
          for (const gd of box.querySelectorAll(".js-plotly-plot")) {
            if (typeof gd._responsiveChartHandler !== "function") continue;  // not drawn yet
            gd.style.height = height + "px";  // Plots.resize reads it, and the width
            gd._responsiveChartHandler();
          }
        };
        const later = () => { clearTimeout(timer); timer = setTimeout(fit, 60); };
        let last = -1;
        const observer = new ResizeObserver((entries) => {
          const width = Math.round(entries[0].contentRect.width);
          if (width !== last) { last = width; later(); }  // not when only the height changed
        });
        observer.observe(el);
        const drawn = (event) => {  // a figure of this box drawn after the box was sized
          const box = el.parentElement;
          if (box && box.contains(event.detail.element)) later();
        };
        document.addEventListener("plotlywidget-after-render", drawn);
        model.on("change:aspect", later);
        model.on("change:rows change:columns change:share", later);  // laid out again in Python: a new height
        window.addEventListener("resize", later);  // a taller or shorter window (window_reserve)
        return () => {
          observer.disconnect();
          clearTimeout(timer);
          document.removeEventListener("plotlywidget-after-render", drawn);
          model.off("change:aspect", later);
          model.off("change:rows change:columns change:share", later);
          window.removeEventListener("resize", later);
        };
      }
    };
    """
    panels = traitlets.Int(1).tag(sync=True)
    aspect = traitlets.Float(1.0).tag(sync=True)
    max_panel = traitlets.Int(320).tag(sync=True)
    extra_width = traitlets.Int(FIGURE_EXTRA).tag(sync=True)
    extra_height = traitlets.Int(FIGURE_EXTRA_HEIGHT).tag(sync=True)
    #: 0: the window's height does not matter; else fit the window (what sits above the map
    #: in its widget, in px, where no ``anchor`` is found)
    window_reserve = traitlets.Int(0).tag(sync=True)
    min_panel = traitlets.Int(320).tag(sync=True)
    #: CSS class of the widget the figure belongs to (its top is kept in view with the map)
    anchor = traitlets.Unicode("").tag(sync=True)
    below = traitlets.Int(BELOW_THE_MAP).tag(sync=True)
    #: the panels' rows, laid out in Python (HeatmapPanels' ``wrap``): at most ``columns`` in a
    #: row (0: all ``panels``), ``row_gap`` px between rows
    columns = traitlets.Int(0).tag(sync=True)
    rows = traitlets.Int(1).tag(sync=True)
    row_gap = traitlets.Int(0).tag(sync=True)
    #: each panel's share of the plot width (its width less ``extra_width``; 0: 1 / ``panels``)
    share = traitlets.Float(0.0).tag(sync=True)
    #: the box's width (px), as the browser last measured it (0: not shown yet)
    width = traitlets.Int(0).tag(sync=True)
