"""Issue 19, a classroom walkthrough, in a real browser (headless Chromium against Voila).

* The quickstart's first screen: at 1280x800, 1366x768 and 1920x1080, with nothing scrolled,
  the Explorer's whole map (titles, panel, colour bar) is on screen, and stays there when the
  text above the Explorer grows (the map is sized from where it is, not from a fixed reserve).

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest -q tests/browser/test_walkthrough_browser.py
"""
from __future__ import annotations

import pytest

from .browser_helpers import save_failure_evidence, wait_figure_settled, watched_page

pytestmark = pytest.mark.browser

LOAD_TIMEOUT = 150_000     # kernel start + imports + model load + first map
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
    try:
        page.goto(voila_server.url + "/", timeout=90_000)
        page.wait_for_function(
            """() => { const gd = document.querySelector('.js-plotly-plot');
                       return !!gd && (gd.data || []).some(t => t.type === 'heatmap' && t.z); }""",
            timeout=LOAD_TIMEOUT)
        voila_server.remember_children()
        # drawn 410 px high first (a 320-px panel), then fitted to the screen by FitWidth
        page.wait_for_function(
            "() => document.querySelector('.js-plotly-plot .main-svg').getBoundingClientRect().height !== 410",
            timeout=30_000)
        yield page
    except BaseException:
        save_failure_evidence(page, artifacts / "failure_walkthrough_quickstart.png",
                              lambda p: p.evaluate(FIRST_FIGURE_JS))
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
        f"{when}: the map spans {fig['top']:.0f} to {fig['bottom']:.0f} px on a {height}-px "
        f"screen: {geo}")
    assert panel["top"] >= 0 and panel["bottom"] <= height + SLACK, (when, geo)
    assert bar["bottom"] <= height + SLACK, (when, geo)
    assert geo["titles"] and all(t["top"] >= 0 for t in geo["titles"]), (when, geo)
    assert panel["width"] >= MIN_MAP and panel["height"] >= MIN_MAP, (
        f"{when}: the map is {panel['width']:.0f} px, too small for a projector: {geo}")


def test_the_whole_map_is_on_the_first_screen(quickstart_page, artifacts):
    """Issue 19: at 1280x800 the map spanned 442 to 918 px (half off screen): the reserve
    above it assumed the widget sat at the top of the page."""
    page, measured = quickstart_page, {}
    try:
        for width, height in SCREENS:
            geo = _first_screen(page, width, height)
            page.screenshot(path=str(artifacts / f"walkthrough_first_screen_{width}x{height}.png"))
            measured[f"{width}x{height}"] = (round(geo["figure"]["top"]), round(geo["figure"]["bottom"]),
                                             round(geo["panel"]["width"]))
            _assert_on_screen(geo, height, f"{width}x{height}")
            # it uses the screen: no more than a few px of the first screen left under it
            assert geo["figure"]["bottom"] >= height - 40 or geo["panel"]["width"] >= 718, (
                width, height, geo)
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
        arg=before["panel"]["top"], timeout=10_000)
    after = _first_screen(page, 1920, 1080)
    page.screenshot(path=str(artifacts / "walkthrough_longer_intro_1920x1080.png"))
    print("longer introduction (map top, bottom):", round(after["figure"]["top"]),
          round(after["figure"]["bottom"]), "before:", round(before["figure"]["top"]),
          round(before["figure"]["bottom"]))
    _assert_on_screen(after, 1080, "1920x1080, 300 px more introduction")
    assert after["panel"]["width"] < before["panel"]["width"] - 200, (before, after)
    page.evaluate("() => document.querySelectorAll('.cw-test-intro').forEach(e => e.remove())")
