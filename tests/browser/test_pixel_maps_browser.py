"""Issue 19, "pixel maps tint the photo", in a real browser (headless Chromium against Voila).

A Compare by method (Grad-CAM, vanilla gradient) and a SmoothGradStudy of the vanilla
gradient: where a panel's map is low the page shows the photo itself (the Explorer's fade,
now every widget's), where it is high the map's colours. Each panel is screenshot twice,
once as drawn and once with its heatmap layers hidden (the photo alone, as the browser draws
it); in the cells where the map and its neighbours are low the two agree to a few levels
(before, the pixel maps' panels laid the colormap's low colour over the whole photo: a
difference of 40 levels and more), and in the cells where it is high they differ.

Run: CAM_WIDGETS_REQUIRE_BROWSER=1 .venv/bin/python -m pytest -q tests/browser/test_pixel_maps_browser.py
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from .browser_helpers import save_failure_evidence, watched_page
from .conftest import (
    require_browser_pieces,
    start_voila,
)
from .lab_helpers import write_notebook

pytestmark = pytest.mark.browser

LOAD_TIMEOUT = 150_000  # kernel start + imports + model load + the maps
NOTEBOOK = "pixel_maps.ipynb"
CELLS = [
    """from cam_widgets.widgets import Compare, SmoothGradStudy

compare = Compare(image="chelsea", model="efficientnet_lite0", by="method", values=("gradcam", "vanilla"))
compare""",
    """study = SmoothGradStudy(
    image="chelsea", model="efficientnet_lite0", method="vanilla", noise=0.2, samples=4, snapshots=(2, 4)
)
study""",
]
#: the figure (index among the page's plotly figures) whose titles include ``title``
FIGURE_JS = """title => [...document.querySelectorAll('.js-plotly-plot')].findIndex(gd =>
    ((gd.layout || {}).annotations || []).some(a => String(a.text).includes(title)))"""
#: both figures drawn, the SmoothGrad run done (its last panel titled)
DONE_JS = """() => { const plots = [...document.querySelectorAll('.js-plotly-plot')];
    const titled = t => plots.find(gd => ((gd.layout || {}).annotations || []).some(a => String(a.text).includes(t)));
    const compare = titled('Vanilla gradient'), study = titled('SmoothGrad n=4');
    return !!compare && !!study && compare.querySelectorAll('.nsewdrag').length === 2
           && study.querySelectorAll('.nsewdrag').length === 3; }"""
#: figure n: each panel's box (viewport px) and the z of its heatmap as the browser has it
PANELS_JS = """n => { const gd = document.querySelectorAll('.js-plotly-plot')[n];
    gd.scrollIntoView({block: 'center'});
    const heats = gd.data.filter(t => t.type === 'heatmap');
    return [...gd.querySelectorAll('.nsewdrag')].map((e, k) => {
      const r = e.getBoundingClientRect();
      return {left: r.left, top: r.top, width: r.width, height: r.height,
              z: Array.from(heats[k].z, row => Array.from(row, Number)),
              title: gd.layout.annotations[k].text};
    }); }"""
#: figure n's heatmap layers hidden (true) or shown again (false): the photo alone
HIDE_MAPS_JS = """([n, hide]) => { const gd = document.querySelectorAll('.js-plotly-plot')[n];
    gd.querySelectorAll('.heatmaplayer').forEach(e => { e.style.visibility = hide ? 'hidden' : ''; });
    return gd.querySelectorAll('.heatmaplayer').length; }"""

#: a cell is "low" when the largest value of it and its eight neighbours (the browser smooths
#: between cells) is among the panel's lowest LOW_SHARE and at most LOW of the colour range;
#: "high" when their smallest value is at least HIGH
LOW_SHARE, LOW, HIGH = 0.1, 0.2, 0.5
#: the photo shows through where the map is low: the median difference from the photo there
#: is at most PHOTO_LEVELS (of 255) and at most TINT_SHARE of what an overlay without fade
#: (the colormap's colour at OPACITY over the photo, as before) differs from the photo there
PHOTO_LEVELS, TINT_SHARE = 10.0, 0.25
#: the map shows: where it is high the drawn panel differs from the photo by at least this
MAP_LEVELS = 12.0
OPACITY, COLORMAP = 0.5, "viridis"  # the widgets' defaults


@pytest.fixture(scope="module")
def voila_pixel_maps(tmp_path_factory, artifacts):
    require_browser_pieces()
    work = tmp_path_factory.mktemp("voila_pixel_maps")
    write_notebook(work / NOTEBOOK, CELLS)
    srv = start_voila(work)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.copy(srv.log_path, artifacts / "voila_pixel_maps.log")


def _neighbourhood(z: np.ndarray, reduce) -> np.ndarray:
    """``reduce`` (np.maximum, np.minimum) of each cell's 3x3 neighbourhood."""
    padded = np.pad(z, 1, mode="edge")
    out = z.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out = reduce(out, padded[dy : dy + z.shape[0], dx : dx + z.shape[1]])
    return out


def _shot(page, box: dict) -> np.ndarray:
    """The panel's pixels (RGB, a 2-px margin inside its box), as the page shows them."""
    from PIL import Image

    clip = {
        "x": box["left"] + 2,
        "y": box["top"] + 2,
        "width": box["width"] - 4,
        "height": box["height"] - 4,
    }
    data = page.screenshot(clip=clip)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def _pixel_cells(z: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The map's value under each screenshot pixel of ``shape`` (see :func:`_cell_masks`)."""
    h, w = shape
    rows = ((np.arange(h) + 2.5) / (h + 4) * z.shape[0]).astype(int).clip(0, z.shape[0] - 1)
    cols = ((np.arange(w) + 2.5) / (w + 4) * z.shape[1]).astype(int).clip(0, z.shape[1] - 1)
    return z[np.ix_(rows, cols)]


def _cell_masks(z: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) masks over a panel's screenshot pixels of ``shape``: the pixels whose
    map cell is low (high) with its neighbours (the panel spans the photo, the photo the
    cells; the screenshot starts 2 px inside the panel)."""
    around = _neighbourhood(z, np.maximum)
    low = around <= min(np.quantile(around, LOW_SHARE), LOW)
    high = _neighbourhood(z, np.minimum) >= HIGH
    return _pixel_cells(low, shape), _pixel_cells(high, shape)


def _panel_differences(page, figure: int, name: str, artifacts) -> list[dict]:
    """Per panel of figure ``figure``: the median difference from the photo alone in its
    low cells and the mean one in its high cells; screenshots of both states saved."""
    panels = page.evaluate(PANELS_JS, figure)
    page.wait_for_timeout(300)  # (scrolled into view: let the page paint)
    panels = page.evaluate(PANELS_JS, figure)  # boxes after the scroll
    drawn = [_shot(page, p) for p in panels]
    gd = page.locator(".js-plotly-plot").nth(figure)
    gd.screenshot(path=str(artifacts / f"pixel_maps_{name}.png"))
    assert page.evaluate(HIDE_MAPS_JS, [figure, True]) == len(panels)
    try:
        page.wait_for_timeout(200)
        photo = [_shot(page, p) for p in panels]
        gd.screenshot(path=str(artifacts / f"pixel_maps_{name}_photo_only.png"))
    finally:
        page.evaluate(HIDE_MAPS_JS, [figure, False])
    from cam_widgets.render import apply_colormap

    out = []
    for p, a, b in zip(panels, drawn, photo):
        z = np.asarray(p["z"], dtype=float)
        low, high = _cell_masks(z, a.shape[:2])
        diff = np.abs(a - b).max(axis=2)  # the largest channel's difference per pixel
        # what an overlay without fade would differ by: the cell's colour at OPACITY
        cells = _pixel_cells(z, a.shape[:2])
        colour = apply_colormap(np.clip(cells, 0.0, 1.0), COLORMAP).astype(np.float64)
        tint = (OPACITY * np.abs(colour - b)).max(axis=2)
        out.append(
            {
                "title": p["title"],
                "low_pixels": int(low.sum()),
                "high_pixels": int(high.sum()),
                "low_median": round(float(np.median(diff[low])), 2) if low.any() else None,
                "tint_median": round(float(np.median(tint[low])), 2) if low.any() else None,
                "high_mean": round(float(diff[high].mean()), 2) if high.any() else None,
            }
        )
    return out


def test_pixel_maps_leave_the_photo_where_they_are_low(browser, voila_pixel_maps, artifacts):
    """Issue 19: Compare's and SmoothGradStudy's pixel-map panels tinted the whole photo;
    now the photo shows through where the map is low, as in the Explorer."""
    ctx, page = watched_page(browser, {"width": 1280, "height": 1000})
    found = {}
    try:
        page.goto(f"{voila_pixel_maps.url}/voila/render/{NOTEBOOK}", timeout=90_000)
        page.wait_for_function(DONE_JS, timeout=LOAD_TIMEOUT, polling=500)
        voila_pixel_maps.remember_children()
        page.wait_for_timeout(500)  # (the last panel's map: drawn)
        page.screenshot(path=str(artifacts / "pixel_maps_page.png"), full_page=True)
        for name, title in (("compare", "Vanilla gradient"), ("smoothgrad", "SmoothGrad n=4")):
            figure = page.evaluate(FIGURE_JS, title)
            assert figure >= 0, (name, title)
            found[name] = _panel_differences(page, figure, name, artifacts)
        compare, study = found["compare"], found["smoothgrad"]
        # the pixel maps (Compare's vanilla panel, every SmoothGrad panel): the photo where low
        for panel in [compare[1], *study]:
            assert panel["low_pixels"] > 500, panel
            assert panel["low_median"] <= PHOTO_LEVELS, (panel, found)
            assert panel["low_median"] <= TINT_SHARE * panel["tint_median"], (panel, found)
        # ... and the map where high (the overlay is still drawn)
        for panel in [compare[0], compare[1], study[-1]]:
            assert panel["high_pixels"] > 50, panel
            assert panel["high_mean"] >= MAP_LEVELS, (panel, found)
        # the CAM panel fades too: where its map is low, the photo
        if compare[0]["low_pixels"] > 200:
            assert compare[0]["low_median"] <= PHOTO_LEVELS, (compare[0], found)
            assert compare[0]["low_median"] <= TINT_SHARE * compare[0]["tint_median"], (compare[0], found)
    except BaseException:
        save_failure_evidence(page, artifacts / "failure_pixel_maps.png", lambda pg: found, full_page=True)
        raise
    finally:
        print("pixel maps (per panel: low/high pixels, median/mean difference from the photo):", found)
        ctx.close()
