"""The checks every Jupyter front end runs on the quickstart (JupyterLab 4, Notebook 7): the
Explorer's map renders, a prediction click makes a Python->browser round trip, and a click on the
Compare figure marks every panel. Each front end's module provides the page and its error filter.
"""

from __future__ import annotations

import re

from .browser_helpers import heatmaps, markers, plot_state, status_text

UPDATE_TIMEOUT = 60_000  # one engine call and its round trip
CLICK_TIMEOUT = 30_000  # a click on the map: browser -> Python -> browser, no engine call


def cell_output(page, nth: int):
    """The cell output holding the nth Plotly figure (0: Explorer, 1: Compare)."""
    return page.locator(".jp-OutputArea-output").filter(has=page.locator(".js-plotly-plot")).nth(nth)


def click_in_panel(page, plot_index: int, fx: float = 0.5, fy: float = 0.45) -> None:
    """Mouse click at a fraction of the first subplot's plot area of a figure."""
    drag = page.locator(".js-plotly-plot").nth(plot_index).locator(".nsewdrag").first
    drag.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = drag.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 50, box
    x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
    page.mouse.move(x, y)
    page.wait_for_timeout(300)  # let plotly register the hover before the click
    page.mouse.click(x, y)


def check_explorer_renders_map(page, real_errors) -> None:
    """The Explorer drew the class-285 map over the photo."""
    plot = plot_state(page)[0]
    hms = heatmaps(plot)
    assert len(hms) == 1, plot
    (heat,) = hms
    assert heat["finite"] > 0 and heat["sum"] > 0, heat
    assert max(heat["sample"]) > min(heat["sample"]), "the map is flat"
    assert plot["calcdataHeatmaps"] == 1, plot  # plotly computed it, i.e. drew it
    assert "(285)" in plot["titles"][0], plot["titles"]
    assert page.locator(".js-plotly-plot").first.locator("image").count() >= 1  # the photo
    assert not real_errors(page), page.errors


def check_prediction_button_round_trip(page, real_errors, screenshot) -> None:
    """Click the "282 ..." row of the top-5 list: Python recomputes, the DOM's z changes."""
    before = plot_state(page)[0]
    button = page.locator(".jupyter-button").filter(has_text=re.compile(r"^\s*282")).first
    button.scroll_into_view_if_needed()
    button.click()
    page.wait_for_function(
        """old => { const gd = document.querySelectorAll('.js-plotly-plot')[0];
             const a = gd && gd.layout && gd.layout.annotations && gd.layout.annotations[0];
             return !!a && a.text !== old && a.text.includes('(282)'); }""",
        arg=before["titles"][0],
        timeout=UPDATE_TIMEOUT,
    )
    page.wait_for_function(
        """() => { const s = document.querySelector('.widget-dropdown select');
                   return !!s && !s.disabled; }""",
        timeout=UPDATE_TIMEOUT,
    )
    after = plot_state(page)[0]
    (h0,), (h1,) = heatmaps(before), heatmaps(after)
    assert h1["finite"] > 0, h1
    assert h1["sample"] != h0["sample"], "heatmap z did not change in the browser"
    assert "(282)" in (status_text(page) or ""), status_text(page)
    out = cell_output(page, 0)
    out.scroll_into_view_if_needed()
    out.screenshot(path=str(screenshot))
    assert not real_errors(page), page.errors


def check_compare_click_marks_every_panel(page, real_errors, screenshot, plot_index: int = 1) -> None:
    """A click on the Compare map (the page's ``plot_index``-th figure: the quickstart's
    second) marks the same pixel in every panel and fills the table."""
    plot = plot_state(page)[plot_index]
    panels = heatmaps(plot)
    assert len(panels) >= 2 and all(h["finite"] > 0 for h in panels), plot
    assert len(markers(plot)) == len(panels), plot
    assert all(m["x"] == [] for m in markers(plot)), "markers before any click"
    click_in_panel(page, plot_index=plot_index)
    n = len(panels)
    page.wait_for_function(
        """([n, i]) => { const gd = document.querySelectorAll('.js-plotly-plot')[i];
             const s = gd.data.filter(t => t.type === 'scatter');
             return s.length === n && s.every(t => t.x && t.x.length === 1 && t.y && t.y.length === 1); }""",
        arg=[n, plot_index],
        timeout=CLICK_TIMEOUT,
    )
    after = markers(plot_state(page)[plot_index])
    xs, ys = {m["x"][0] for m in after}, {m["y"][0] for m in after}
    assert len(xs) == 1 and len(ys) == 1, f"markers differ between panels: {after}"
    x, y = xs.pop(), ys.pop()
    assert 0 <= x < 224 and 0 <= y < 224, (x, y)
    out = cell_output(page, plot_index)
    table = out.locator("table")
    table.first.wait_for(state="visible", timeout=CLICK_TIMEOUT)
    assert re.search(r"\d\.\d", table.first.inner_text()), table.first.inner_text()
    out.scroll_into_view_if_needed()
    out.screenshot(path=str(screenshot))
    assert not real_errors(page), page.errors
