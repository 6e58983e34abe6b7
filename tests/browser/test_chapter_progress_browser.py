"""Issue 16, time: a chapter served by Voila says which section is computing.

Voila (progressive rendering) shows every markdown cell at once and the same grey placeholder
for every code cell not yet run, the running one included. Chapter 02 (the shortest chapter
with numbered sections) is served as scripts/explorer.sh serves notebooks; while it runs, the
line of ``cam_widgets.chapter_progress`` is pinned in the window and names one of its
headings, and at the end it reads "Done" in its place. Waits are generous and bounded; no
timing is asserted (a loaded machine only makes it slower).
"""

from __future__ import annotations

import shutil

import pytest

from .browser_helpers import watched_page
from .conftest import (
    ROOT,
    require_browser_pieces,
    start_voila,
)

pytestmark = pytest.mark.browser

CHAPTER = ROOT / "notebooks" / "02_guided_gradcam.ipynb"
APPEAR_TIMEOUT = 300_000  # the first code cell: kernel, imports, the model and the photo
DONE_TIMEOUT = 900_000  # the whole chapter on a busy 2-core machine
#: The line's text (its <style> left out), whether it is pinned (position fixed) and where.
LINE_JS = """() => {
  const e = document.querySelector('.cw-chapter-progress');
  if (!e) return null;
  const span = e.querySelector('span'), r = e.getBoundingClientRect();
  return {text: span ? span.textContent : '', running: e.classList.contains('cw-chapter-progress-running'),
          position: getComputedStyle(e).position, top: r.top, bottom: r.bottom,
          height: window.innerHeight, placeholders: document.querySelectorAll('.voila-skeleton-container').length};
}"""


@pytest.fixture
def chapter_server(tmp_path, artifacts):
    require_browser_pieces()
    shutil.copy(CHAPTER, tmp_path / CHAPTER.name)
    srv = start_voila(
        tmp_path,
        CHAPTER.name,
        probe_path="/voila/labextensions/@jupyter-widgets/jupyterlab-manager/package.json",
    )
    yield srv
    srv.stop()
    shutil.copy(srv.log_path, artifacts / "voila_chapter_progress.log")


def test_the_running_section_is_named_and_the_end_says_done(chapter_server, browser, artifacts):
    ctx, page = watched_page(browser, {"width": 1280, "height": 800})
    try:
        page.goto(chapter_server.url + "/", wait_until="commit", timeout=120_000)
        # while the chapter runs: the line is pinned in the window and names a heading of the page
        page.wait_for_function(
            "() => { const e = document.querySelector('.cw-chapter-progress-running span');"
            " return e && e.textContent.startsWith('Computing: '); }",
            timeout=APPEAR_TIMEOUT,
            polling=250,
        )
        running = page.evaluate(LINE_JS)
        page.screenshot(path=str(artifacts / "chapter_progress_running.png"))
        headings = page.evaluate(
            "() => [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent.replace('¶', ''))"
        )
        if running["running"]:  # not already done in between (a fast machine)
            assert running["position"] == "fixed", running
            assert 0 <= running["top"] and running["bottom"] <= running["height"], running
            # scrolled to the end of the page, the line is still in the window
            page.evaluate("() => document.querySelector('[cell-index]:last-of-type').scrollIntoView()")
            scrolled = page.evaluate(LINE_JS)
            if scrolled["running"]:
                assert 0 <= scrolled["top"] and scrolled["bottom"] <= scrolled["height"], scrolled
        if running["text"].startswith("Computing: "):
            section = running["text"].removeprefix("Computing: ").rsplit(" (", 1)[0]
            assert any(h.startswith(section) for h in headings), (section, headings)
        # at the end: done, back in its place
        page.wait_for_function(
            "() => { const e = document.querySelector('.cw-chapter-progress span');"
            " return e && e.textContent.includes('Done: every section computed in'); }",
            timeout=DONE_TIMEOUT,
            polling=500,
        )
        done = page.evaluate(LINE_JS)
        page.screenshot(path=str(artifacts / "chapter_progress_done.png"))
        assert not done["running"] and done["position"] != "fixed", done
        assert page.errors == [] or all("setData is not a function" in e for e in page.errors), page.errors
    except Exception:
        page.screenshot(path=str(artifacts / "failure_chapter_progress.png"))
        print("voila log:", chapter_server.tail())
        raise
    finally:
        ctx.close()
