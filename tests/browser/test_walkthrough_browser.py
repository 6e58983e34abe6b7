"""Issue 19, a classroom walkthrough, in a real browser (headless Chromium against Voila).

* The quickstart's first screen: at 1280x800, 1366x768 and 1920x1080, with nothing scrolled,
  the Explorer's whole map (titles, panel, colour bar) is on screen, and stays there when the
  text above the Explorer grows (the map is sized from where it is, not from a fixed reserve).
* Side by side draws the photo beside the map; one choice of an export format downloads it,
  the status line untouched; the console has no module-federation error or anywidget failure.
* Studies wrap: a ten-panel SmoothGradStudy at 1280 px and at 800 px puts its panels in rows
  of panels at least 150 px wide, no panel, title or colour bar past the output area's right
  edge, no two titles overlapping.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest -q tests/browser/test_walkthrough_browser.py
"""

from __future__ import annotations

import shutil

import pytest

from .browser_helpers import figure_geometry, save_failure_evidence, wait_figure_settled, watched_page
from .conftest import (
    require_browser_pieces,
    start_voila,
)
from .lab_helpers import write_notebook

pytestmark = pytest.mark.browser

LOAD_TIMEOUT = 150_000  # kernel start + imports + model load + first map
#: the screens a class meets: a laptop, the most common projector-era laptop, a desktop
SCREENS = ((1280, 800), (1366, 768), (1920, 1080))
#: the Explorer's map never gets smaller than this (panel px): readable on a projector
MIN_MAP = 318
SLACK = 1  # rounding of the browser's boxes (px)

#: The Explorer's figure (the page's first) in viewport px: the union of its layers (titles and
#: colour bar included), its panel and colour bar; and how far anything on the page is scrolled.
FIRST_FIGURE_JS = """() => {
  const gd = document.querySelectorAll('.js-plotly-plot')[0];
  const box = e => { const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height}; };
  const svgs = [...gd.querySelectorAll('.main-svg')].map(box);
  let scrolled = 0;
  for (const e of document.querySelectorAll('*')) scrolled += e.scrollTop;
  return {
    figure: {top: Math.min(...svgs.map(b => b.top)), bottom: Math.max(...svgs.map(b => b.bottom)),
             right: Math.max(...svgs.map(b => b.right))},
    panel: box(gd.querySelector('.nsewdrag')),
    colorbar: box(gd.querySelector('.colorbar')),
    titles: [...gd.querySelectorAll('.annotation')].map(box),
    scrolled,
  };
}"""

#: Text of ``px`` pixels inserted above the Explorer (a teacher's longer introduction).
LONGER_INTRO_JS = """px => {
  const explorer = document.querySelector('.cw-explorer');
  const cell = explorer.closest('.jp-Cell') || explorer.closest('.jp-OutputArea') || explorer;
  const note = document.createElement('div');
  note.className = 'cw-test-intro';
  note.style.height = px + 'px';
  note.textContent = 'A longer introduction';
  cell.parentElement.insertBefore(note, cell);
  window.dispatchEvent(new Event('resize'));
}"""


@pytest.fixture(scope="module")
def quickstart_page(browser, voila_server, artifacts):
    """The quickstart in Voila on a page of its own (a 1280x800 window), its map drawn."""
    ctx, page = watched_page(browser, {"width": 1280, "height": 800})
    page.failed_requests = []  # (the console's "Failed to load resource" names no address)
    page.on("requestfailed", lambda r: page.failed_requests.append(r.url))
    try:
        page.goto(voila_server.url + "/", timeout=90_000)
        page.wait_for_function(
            """() => { const gd = document.querySelector('.js-plotly-plot');
                       return !!gd && (gd.data || []).some(t => t.type === 'heatmap' && t.z); }""",
            timeout=LOAD_TIMEOUT,
        )
        voila_server.remember_children()
        # drawn 410 px high first (a 320-px panel), then fitted to the screen by FitWidth
        page.wait_for_function(
            "() => document.querySelector('.js-plotly-plot .main-svg').getBoundingClientRect().height !== 410",
            timeout=30_000,
        )
        yield page
    except BaseException:
        save_failure_evidence(
            page, artifacts / "failure_walkthrough_quickstart.png", lambda p: p.evaluate(FIRST_FIGURE_JS)
        )
        raise
    finally:
        ctx.close()


def _first_screen(page, width: int, height: int) -> dict:
    page.set_viewport_size({"width": width, "height": height})
    wait_figure_settled(page, quiet_ms=800, timeout=20_000)
    return page.evaluate(FIRST_FIGURE_JS)


def _assert_on_screen(geo: dict, height: int, when: str) -> None:
    assert geo["scrolled"] == 0, f"{when}: the page was scrolled ({geo['scrolled']} px): {geo}"
    fig, panel, bar = geo["figure"], geo["panel"], geo["colorbar"]
    assert fig["top"] >= 0 and fig["bottom"] <= height + SLACK, (
        f"{when}: the map spans {fig['top']:.0f} to {fig['bottom']:.0f} px on a {height}-px screen: {geo}"
    )
    assert panel["top"] >= 0 and panel["bottom"] <= height + SLACK, (when, geo)
    assert bar["bottom"] <= height + SLACK, (when, geo)
    assert geo["titles"] and all(t["top"] >= 0 for t in geo["titles"]), (when, geo)
    assert panel["width"] >= MIN_MAP and panel["height"] >= MIN_MAP, (
        f"{when}: the map is {panel['width']:.0f} px, too small for a projector: {geo}"
    )


def test_the_whole_map_is_on_the_first_screen(quickstart_page, artifacts):
    """Issue 19: at 1280x800 the map spanned 442 to 918 px (half off screen): the reserve
    above it assumed the widget sat at the top of the page."""
    page, measured = quickstart_page, {}
    try:
        for width, height in SCREENS:
            geo = _first_screen(page, width, height)
            page.screenshot(path=str(artifacts / f"walkthrough_first_screen_{width}x{height}.png"))
            measured[f"{width}x{height}"] = (
                round(geo["figure"]["top"]),
                round(geo["figure"]["bottom"]),
                round(geo["panel"]["width"]),
            )
            _assert_on_screen(geo, height, f"{width}x{height}")
            # it uses the screen: no more than a few px of the first screen left under it
            assert geo["figure"]["bottom"] >= height - 40 or geo["panel"]["width"] >= 718, (
                width,
                height,
                geo,
            )
    finally:
        print("first screen (map top, bottom, panel px):", measured)


def test_the_map_follows_a_longer_introduction(quickstart_page, artifacts):
    """The map is sized from where it is: 300 px more text above the Explorer, and the map
    shrinks to stay whole on the first screen (a fixed reserve left it 300 px too low)."""
    page = quickstart_page
    before = _first_screen(page, 1920, 1080)
    page.evaluate(LONGER_INTRO_JS, 300)
    page.wait_for_function(
        "top => document.querySelector('.js-plotly-plot .nsewdrag').getBoundingClientRect().top > top + 250",
        arg=before["panel"]["top"],
        timeout=10_000,
    )
    after = _first_screen(page, 1920, 1080)
    page.screenshot(path=str(artifacts / "walkthrough_longer_intro_1920x1080.png"))
    print(
        "longer introduction (map top, bottom):",
        round(after["figure"]["top"]),
        round(after["figure"]["bottom"]),
        "before:",
        round(before["figure"]["top"]),
        round(before["figure"]["bottom"]),
    )
    _assert_on_screen(after, 1080, "1920x1080, 300 px more introduction")
    assert after["panel"]["width"] < before["panel"]["width"] - 200, (before, after)
    page.evaluate("() => document.querySelectorAll('.cw-test-intro').forEach(e => e.remove())")


def test_side_by_side_in_the_browser(quickstart_page, artifacts):
    """The "side by side" view draws a new figure (two panels: the photo, the map over it)
    in the old one's place, takes updates, and keeps the whole map on the first screen."""
    page = quickstart_page
    page.set_viewport_size({"width": 1280, "height": 800})
    explorer = page.locator(".cw-explorer")
    explorer.locator(".widget-toggle-buttons button", has_text="side by side").click()
    page.wait_for_function(
        """() => { const gd = document.querySelector('.cw-explorer .js-plotly-plot');
                   return !!gd && gd.querySelectorAll('.nsewdrag').length === 2
                          && gd.querySelectorAll('image').length >= 2; }""",
        timeout=30_000,
    )
    assert page.evaluate("() => document.querySelectorAll('.cw-explorer .js-plotly-plot').length") == 1
    geo = wait_figure_settled(page, quiet_ms=800, timeout=20_000)
    page.screenshot(path=str(artifacts / "walkthrough_side_by_side_1280x800.png"))
    left, right = geo["panels"]
    assert right["left"] >= left["right"] and abs(left["width"] - right["width"]) <= 2, geo
    assert geo["figure"]["bottom"] <= 800 + SLACK and left["width"] >= MIN_MAP - 40, geo
    titles = page.evaluate(
        "() => document.querySelector('.cw-explorer .js-plotly-plot').layout.annotations.map(a => a.text)"
    )
    assert titles[0] == "photo" and "Egyptian cat (285)" in titles[1], titles
    # the new figure takes updates from Python: a click on a prediction retitles the map
    explorer.locator(".jupyter-button", has_text="282 tiger cat").click()
    page.wait_for_function(
        """() => document.querySelector('.cw-explorer .js-plotly-plot').layout.annotations[1]
                 .text.includes('(282)')""",
        timeout=45_000,
    )
    explorer.locator(".widget-toggle-buttons button", has_text="overlay").click()
    page.wait_for_function(
        "() => document.querySelector('.cw-explorer .js-plotly-plot .nsewdrag') &&"
        " document.querySelectorAll('.cw-explorer .js-plotly-plot .nsewdrag').length === 1",
        timeout=30_000,
    )


def test_one_choice_of_a_format_downloads_it(quickstart_page, tmp_path):
    """Issue 19: the export link replaced the status line, was clipped, and needed a second
    click. Choosing a format now downloads the file (no second click), in a row of its own:
    the status line still shows the method and the probed value."""
    page = quickstart_page
    page.set_viewport_size({"width": 1280, "height": 800})
    explorer = page.locator(".cw-explorer")
    status = explorer.locator(".cw-status").first
    before = status.text_content()
    export = (
        explorer.locator(".widget-dropdown select")
        .filter(has=page.locator("option", has_text="export..."))
        .first
    )
    with page.expect_download(timeout=45_000) as download:
        export.select_option(label="PNG figure")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_bytes()[:4] == b"\x89PNG"
    name = download.value.suggested_filename
    assert name.endswith(".png") and name.count(".") <= 2 and len(name) <= 84, name  # features.8
    link = explorer.locator("a.cw-download")
    assert link.is_visible() and link.text_content().endswith(name)
    box, row = link.bounding_box(), explorer.locator(".cw-download").locator("xpath=..").bounding_box()
    assert box["x"] + box["width"] <= row["x"] + row["width"] + SLACK, (box, row)  # not clipped
    assert status.text_content() == before  # the status line is untouched


#: Console messages of the module-federation failure that scripts/voila.py's denylist removes,
#: and of an anywidget model that missed its 2 s deadline (it then ignores every update).
CONSOLE_NOISE = (
    "RUNTIME-012",
    "Failed to create module",
    "Federation Runtime",
    "[anywidget] Failed to initialize model",
)
#: What an offline machine may fail to load: Voila's template asks a CDN for Font Awesome
#: (the icons come from ipywidgets' own copy)
OFFLINE_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/"


def test_the_console_has_no_errors_of_ours(quickstart_page):
    """Issue 19: Voila's console showed a module-federation error (Notebook 7's extension,
    now left out) and warnings. After the walkthrough above (load, resizes, side by side, a
    class, an export): no such line, no uncaught error, and no error line but the offline
    Font Awesome requests (if offline)."""
    from .browser_helpers import errors_except

    page = quickstart_page
    lines = page.console_lines
    assert not [line for line in lines if any(noise in line for noise in CONSOLE_NOISE)], lines
    assert not errors_except(page), page.errors
    assert all(url.startswith(OFFLINE_CDN) for url in page.failed_requests), page.failed_requests
    errors = [line for line in lines if line.startswith("error:")]
    assert all("Failed to load resource" in line for line in errors), errors
    assert len(errors) <= len(page.failed_requests), (errors, page.failed_requests)
    # the warnings left: ipywidgets' extension built for a newer JupyterLab (see voila.py)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert all(
        "Unsatisfied version" in w
        or "No satisfying version" in w
        or w.startswith("warning: Available versions")
        for w in warnings
    ), warnings


# ----------------------------------------------------------------------- studies wrap
#: notebooks of their own, served by one Voila in directory mode
STUDY_NOTEBOOK = "smoothgrad_wrap.ipynb"
STUDY_CELLS = [
    """from cam_widgets.widgets import SmoothGradStudy

study = SmoothGradStudy(image="chelsea", method="vanilla", samples=9, snapshots=range(1, 10))
study"""
]
NOTEBOOKS = {STUDY_NOTEBOOK: STUDY_CELLS}
#: ten panels drawn, the SmoothGrad run done (its last panel titled)
STUDY_DONE_JS = """() => { const gd = document.querySelector('.js-plotly-plot');
    return !!gd && gd.querySelectorAll('.nsewdrag').length === 10
           && ((gd.layout || {}).annotations || []).some(a => a.text === 'SmoothGrad n=9'); }"""
#: titles' boxes (the subplot titles: the figure's annotations)
TITLES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')[0].querySelectorAll('.annotation')]
    .map(e => { const r = e.getBoundingClientRect();
                return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })"""
MIN_WRAPPED_PANEL = 148  # MIN_WRAP_PANEL (150), less the browser's rounding of plotly's layout


@pytest.fixture(scope="module")
def voila_notebooks(tmp_path_factory, artifacts):
    """Voila (scripts' settings) serving a folder of this module's notebooks."""
    require_browser_pieces()
    work = tmp_path_factory.mktemp("voila_walkthrough")
    for name, cells in NOTEBOOKS.items():
        write_notebook(work / name, cells)
    srv = start_voila(work)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.copy(srv.log_path, artifacts / "voila_walkthrough.log")


def _overlapping(boxes: list) -> list:
    return [
        (a, b)
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["left"] < b["right"] - 1
        and b["left"] < a["right"] - 1
        and a["top"] < b["bottom"] - 1
        and b["top"] < a["bottom"] - 1
    ]


def _assert_wrapped(geo: dict, titles: list, when: str) -> None:
    out = geo["output"]
    assert out, geo
    assert len(geo["panels"]) == 10, geo
    for k, panel in enumerate(geo["panels"]):
        assert panel["right"] <= out["right"] + SLACK, (
            f"{when}: panel {k} ends at {panel['right']:.0f} px, past the output area's "
            f"{out['right']:.0f} px: {geo}"
        )
        assert panel["width"] >= MIN_WRAPPED_PANEL, (
            f"{when}: panel {k} is {panel['width']:.0f} px wide: {geo}"
        )
    assert geo["colorbar"]["right"] <= out["right"] + SLACK, (when, geo)
    assert geo["figure"]["right"] <= out["right"] + SLACK, (when, geo)
    assert all(t["right"] <= out["right"] + SLACK and t["left"] >= out["left"] - SLACK for t in titles), (
        when,
        titles,
        out,
    )
    assert not _overlapping(titles), (when, _overlapping(titles))
    assert not _overlapping(geo["panels"]), (when, geo["panels"])


def test_study_panels_wrap_into_rows_within_the_output(browser, voila_notebooks, artifacts):
    """Issue 19: ten SmoothGrad panels in one 1120-px row were 74 to 83 px, and cut off in
    JupyterLab with its file browser open; now rows of panels of 150 px or more."""
    ctx, page = watched_page(browser, {"width": 1280, "height": 900})
    rows = {}
    try:
        page.goto(f"{voila_notebooks.url}/voila/render/{STUDY_NOTEBOOK}", timeout=90_000)
        page.wait_for_function(STUDY_DONE_JS, timeout=LOAD_TIMEOUT)
        voila_notebooks.remember_children()
        for width in (1280, 1030, 800):  # 1030: an output 1000 px wide, as the issue asks
            page.set_viewport_size({"width": width, "height": 900})
            geo = wait_figure_settled(page, quiet_ms=1000, timeout=20_000)
            titles = page.evaluate(TITLES_JS)
            page.screenshot(path=str(artifacts / f"walkthrough_smoothgrad_{width}.png"), full_page=True)
            tops = sorted({round(p["top"]) for p in geo["panels"]})
            rows[width] = (
                len(tops),
                round(min(p["width"] for p in geo["panels"])),
                round(geo["output"]["width"]),
            )
            _assert_wrapped(geo, titles, f"{width} px")
        assert rows[1280][0] == 2 and rows[800][0] >= 3, rows  # 5 + 5 panels; then 3 a row
        assert 990 <= rows[1030][2] <= 1010 and rows[1030][1] >= 150, rows
    except BaseException:
        save_failure_evidence(page, artifacts / "failure_walkthrough_smoothgrad.png", figure_geometry)
        raise
    finally:
        print("study rows (rows, narrowest panel px, output px):", rows)
        ctx.close()
