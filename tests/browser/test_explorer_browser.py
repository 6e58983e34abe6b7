"""The quickstart notebook in Voila + headless Chromium: the Explorer and Compare widgets render,
respond to clicks and dropdowns, and every FigureWidget takes updates from Python.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest tests/browser -q -m browser
The tests of this module share one page (one kernel) and run in file order.
"""

from __future__ import annotations

import re
import time

import pytest

from .browser_helpers import (
    DEAD_ANYWIDGETS_JS,
    errors_except,
    heatmaps,
    plot_state,
    status_text,
    wait_figure_settled,
)
from .frontend_checks import check_compare_click_marks_every_panel, click_in_panel

pytestmark = pytest.mark.browser

LOAD_TIMEOUT = 120_000  # kernel start + imports + model load + first map (about 20 s here)
UPDATE_TIMEOUT = 45_000  # one engine call and its round trip
CLICK_TIMEOUT = 20_000  # a click on the map: browser -> Python -> browser, no engine call


def _explorer_plot(page) -> dict:
    return plot_state(page)[0]


def _compare_plot(page) -> dict:
    return plot_state(page)[1]


def _wait_first_title_change(
    page, plot_index: int, old: str, must_include: str, timeout: int = UPDATE_TIMEOUT
) -> None:
    """Bounded wait until panel 0's title of a plot differs from ``old`` and contains a text."""
    page.wait_for_function(
        """([i, old, inc]) => { const gd = document.querySelectorAll('.js-plotly-plot')[i];
             const a = gd && gd.layout && gd.layout.annotations && gd.layout.annotations[0];
             return !!a && a.text !== old && a.text.includes(inc); }""",
        arg=[plot_index, old, must_include],
        timeout=timeout,
    )


def _wait_controls_enabled(page, timeout: int = UPDATE_TIMEOUT) -> None:
    """The Explorer disables its compute controls while busy; wait for them to come back."""
    page.wait_for_function(
        """() => { const s = document.querySelector('.widget-dropdown select');
                   return !!s && !s.disabled; }""",
        timeout=timeout,
    )


def _load_quickstart(page, url: str, timings: dict) -> None:
    """Open the page and wait (bounded) for the Explorer's map and the Compare figure."""
    t0 = time.monotonic()
    page.goto(url, timeout=90_000)
    page.wait_for_function(
        """() => { const gd = document.querySelector('.js-plotly-plot');
                   return !!gd && (gd.data || []).some(t => t.type === 'heatmap' && t.z); }""",
        timeout=LOAD_TIMEOUT,
    )
    timings["explorer_rendered_s"] = round(time.monotonic() - t0, 1)
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=LOAD_TIMEOUT
    )
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot')[1].querySelectorAll('.hm, image').length > 0",
        timeout=30_000,
    )
    timings["compare_rendered_s"] = round(time.monotonic() - t0, 1)


@pytest.fixture(scope="module")
def quickstart(page, voila_server):
    """Open the quickstart, wait for the Explorer's map and (bounded) the Compare figure, and
    check that every FigureWidget model initialised. One reload (a fresh kernel) is allowed:
    for anywidget's 2 s deadline (see conftest), and for a page whose websocket stalled (once
    in ~10 CI-like runs on a loaded 2-core VM: Voila logged a 90 s ping timeout after the
    Explorer had drawn; the same page passed 2 of 2 runs right after)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # only with a browser

    timings = {}
    last_error = None
    for attempt in range(2):
        try:
            _load_quickstart(page, voila_server.url + "/", timings)
        except PlaywrightTimeoutError as error:
            if attempt:
                raise
            last_error = f"attempt {attempt}: page did not finish loading: {str(error)[:200]}"
            print(last_error)
            continue
        voila_server.remember_children()
        dead = page.evaluate(DEAD_ANYWIDGETS_JS)
        timings["dead_probe"] = dead
        if not dead:
            break
        last_error = f"attempt {attempt}: anywidget models not initialised in 2 s: {dead}"
        print(last_error)
    else:
        pytest.fail(last_error)
    print("quickstart timings:", timings)
    return timings


# ------------------------------------------------------------------------ Explorer
def test_explorer_renders_photo_and_map(page, quickstart, artifacts):
    plot = _explorer_plot(page)
    assert [t["type"] for t in plot["traces"]] == ["image", "heatmap", "scatter"], plot
    (heat,) = heatmaps(plot)
    assert heat["finite"] > 0 and heat["sum"] > 0, heat
    assert max(heat["sample"]) > min(heat["sample"]), "the map is flat"
    assert plot["calcdataHeatmaps"] == 1  # plotly computed it, i.e. drew it
    assert "Egyptian cat (285)" in plot["titles"][0], plot["titles"]
    # the top-5 list: five buttons, the first one the predicted class
    buttons = page.locator(".jupyter-button").filter(has_text=re.compile(r"^\d+ \S"))
    texts = [t.strip() for t in buttons.all_text_contents()]
    assert len(texts) >= 5 and texts[0].startswith("285 Egyptian cat"), texts
    assert "Egyptian cat (285)" in (status_text(page) or ""), status_text(page)
    # a drawn photo: plotly's image layer has an <image> with the JPEG data URI
    assert page.locator(".js-plotly-plot").first.locator("image").count() >= 1
    # a short toolbar (zoom, pan, reset, download): the full one covered the title
    buttons = page.locator(".js-plotly-plot").first.locator(".modebar-btn")
    assert buttons.count() == 4, [buttons.nth(k).get_attribute("data-title") for k in range(buttons.count())]
    page.locator(".js-plotly-plot").first.screenshot(path=str(artifacts / "explorer_figure.png"))
    _explorer_widget(page).screenshot(path=str(artifacts / "explorer.png"))


def _explorer_widget(page):
    """The Explorer's outermost box: the cell output holding the first figure."""
    return page.locator(".jp-OutputArea-output").filter(has=page.locator(".js-plotly-plot")).first


def test_explorer_prediction_button_switches_class(page, quickstart):
    before = _explorer_plot(page)
    status_before = status_text(page)
    button = page.locator(".jupyter-button").filter(has_text=re.compile(r"^282 ")).first
    button.click()
    _wait_first_title_change(page, 0, before["titles"][0], "(282)")
    _wait_controls_enabled(page)
    after = _explorer_plot(page)
    (h0,), (h1,) = heatmaps(before), heatmaps(after)
    assert h1["sample"] != h0["sample"], "heatmap z did not change in the browser"
    assert "tiger cat (282)" in after["titles"][0], after["titles"]
    page.wait_for_function(
        "old => { const e = document.querySelector('.cw-status, .cw-warning, .cw-error');"
        " return !!e && e.textContent !== old && e.textContent.includes('(282)'); }",
        arg=status_before,
        timeout=UPDATE_TIMEOUT,
    )
    # the selected row is highlighted
    assert "mod-info" in (button.get_attribute("class") or "")


def test_explorer_method_dropdown_changes_map(page, quickstart, artifacts):
    before = _explorer_plot(page)
    method = (
        page.locator(".widget-dropdown")
        .filter(has=page.locator("label", has_text=re.compile(r"^method$")))
        .first.locator("select")
    )
    method.select_option(label="Grad-CAM++")
    _wait_first_title_change(page, 0, before["titles"][0], "Grad-CAM++")
    _wait_controls_enabled(page)
    after = _explorer_plot(page)
    (h0,), (h1,) = heatmaps(before), heatmaps(after)
    assert h1["sample"] != h0["sample"], "heatmap z did not change after the method change"
    assert "Grad-CAM++" in (status_text(page) or ""), status_text(page)
    assert not errors_except(page), page.errors
    _explorer_widget(page).screenshot(path=str(artifacts / "explorer_gradcampp_282.png"))
    # a map of another resolution (224x224 gradients, then a 7x7 CAM) keeps the photo's size:
    # the axes show the photo, exactly (they drifted wider at every such switch)
    for label in ("Vanilla gradient", "Grad-CAM", "Vanilla gradient", "Grad-CAM++"):
        shown = _explorer_plot(page)["titles"][0]
        method.select_option(label=label)
        _wait_first_title_change(page, 0, shown, label)
        _wait_controls_enabled(page)
    ranges = page.evaluate(
        "() => { const l = document.querySelectorAll('.js-plotly-plot')[0]"
        "._fullLayout; return [l.xaxis.range, l.yaxis.range]; }"
    )
    assert ranges == [[-0.5, 223.5], [223.5, -0.5]], ranges


def test_explorer_map_click_reports_pixel(page, quickstart):
    """Clicking the map marks the pixel and writes its value in the status line."""
    click_in_panel(page, plot_index=0)
    page.wait_for_function(
        """() => { const gd = document.querySelectorAll('.js-plotly-plot')[0];
             const s = gd.data.find(t => t.type === 'scatter');
             return !!s && s.x && s.x.length === 1; }""",
        timeout=CLICK_TIMEOUT,
    )
    page.wait_for_function(
        "() => /pixel \\(\\d+, \\d+\\): value/.test((document.querySelector('.cw-status') || {}).textContent || '')",
        timeout=CLICK_TIMEOUT,
    )


def test_explorer_map_grows_with_the_window_and_stays_on_its_first_screen(page, quickstart, artifacts):
    """A 320-px map left most of a 1920x1080 screen empty: the map now grows with the window,
    no taller than the window less the controls above it, beside the predictions."""
    explorer = _explorer_widget(page)
    panels = {}
    try:
        for width, height in ((1280, 720), (1920, 1080)):
            page.set_viewport_size({"width": width, "height": height})
            explorer.scroll_into_view_if_needed()
            page.evaluate(f"() => window.scrollBy(0, {explorer.bounding_box()['y']:.0f})")
            geometry = wait_figure_settled(page)
            page.screenshot(path=str(artifacts / f"explorer_{width}x{height}.png"))
            top = explorer.bounding_box()["y"]
            assert geometry["figure"]["bottom"] - top <= height, (width, top, geometry)
            first_prediction = (
                page.locator(".jupyter-button").filter(has_text=re.compile(r"^\d+ \S")).first.bounding_box()
            )
            assert first_prediction["x"] >= geometry["figure"]["right"] - 5, (width, geometry)
            panels[width] = geometry["panels"][0]["width"]
    finally:
        page.set_viewport_size({"width": 1400, "height": 1800})
    assert panels[1280] >= 318 and panels[1920] > panels[1280] + 150, panels


# ------------------------------------------------------------------------- Compare
def test_compare_renders_linked_panels(page, quickstart, artifacts):
    plot = _compare_plot(page)
    panels = heatmaps(plot)
    assert len(panels) == 2 and all(h["finite"] > 0 and h["sum"] > 0 for h in panels), plot
    assert panels[0]["sample"] != panels[1]["sample"], "both classes give the same map"
    assert [t["type"] for t in plot["traces"]] == ["image", "heatmap", "scatter"] * 2, plot
    assert any("(285)" in t for t in plot["titles"]) and any("(282)" in t for t in plot["titles"]), plot
    output = page.locator(".jp-OutputArea-output").filter(has=page.locator(".js-plotly-plot")).nth(1)
    page.locator(".js-plotly-plot").nth(1).screenshot(path=str(artifacts / "compare_figure.png"))
    output.screenshot(path=str(artifacts / "compare.png"))
    page.screenshot(path=str(artifacts / "quickstart_page.png"), full_page=True)


def test_compare_receives_updates(page, quickstart):
    """Python -> browser round trip on the Compare figure: its colormap dropdown."""
    before = page.evaluate(
        "() => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[1].layout.coloraxis.colorscale)"
    )
    colormap = (
        page.locator(".widget-dropdown")
        .filter(has=page.locator("label", has_text=re.compile(r"^colormap$")))
        .nth(1)
        .locator("select")
    )
    colormap.select_option("inferno")
    page.wait_for_function(
        """old => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[1].layout.coloraxis.colorscale) !== old""",
        arg=before,
        timeout=UPDATE_TIMEOUT,
    )


def test_compare_click_marks_every_panel(page, quickstart, artifacts):
    check_compare_click_marks_every_panel(page, errors_except, artifacts / "compare_probe.png")


def test_explorer_export_downloads_in_the_browser(page, quickstart, tmp_path):
    """Voila's kernel writes exports/ on the server: the browser gets a download link."""
    export = (
        page.locator(".widget-dropdown select").filter(has=page.locator("option", has_text="export...")).first
    )
    export.select_option(label="PNG figure")
    page.wait_for_selector("a.cw-download", timeout=UPDATE_TIMEOUT)
    with page.expect_download(timeout=UPDATE_TIMEOUT) as download:
        page.locator("a.cw-download").first.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(".png") and saved.read_bytes()[:4] == b"\x89PNG"
