"""Overlays that let the photo show where the map is low (issue 19).

Pixel-level maps (vanilla gradients, Guided Backprop, SmoothGrad of them) are near zero almost
everywhere: blended at one opacity they turned the whole photo the colormap's low colour. Their
overlay is now transparent where the map is low (alpha proportional to the map), and CAM
overlays fade out below half the map's range, unchanged above.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from cam_widgets.errors import InvalidParameterError
from cam_widgets.render import apply_colormap, plotly_colorscale
from cam_widgets.render.colormaps import CAM_FADE_FULL, fade_alpha
from cam_widgets.render.overlay import fade_for, overlay

RNG = np.random.default_rng(19)


def photo(h: int = 24, w: int = 32) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ the blend, numpy
@pytest.mark.parametrize("fade", ["pixel", "cam"])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.8, 1.0])
def test_a_zero_map_leaves_the_photo_unchanged(fade, alpha):
    img = photo()
    for colormap in ("viridis", "jet", "gray"):
        np.testing.assert_array_equal(
            overlay(img, np.zeros((24, 32)), alpha=alpha, colormap=colormap, fade=fade), img
        )
    assert not np.array_equal(overlay(img, np.zeros((24, 32)), alpha=alpha), img)  # it tinted


@pytest.mark.parametrize("fade", ["pixel", "cam"])
@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5, 0.7, 0.95, 1.0])
def test_a_map_of_ones_gives_the_blend_without_fade(fade, alpha):
    img = photo()
    for colormap in ("viridis", "jet", "inferno"):
        expected = overlay(img, np.ones((24, 32)), alpha=alpha, colormap=colormap)
        np.testing.assert_array_equal(
            overlay(img, np.ones((24, 32)), alpha=alpha, colormap=colormap, fade=fade), expected
        )


def test_a_pixel_overlay_of_a_mostly_zero_map_changes_only_where_the_map_is_high():
    img = photo(40, 40)
    m = np.zeros((40, 40))
    m[10:14, 20:23] = 1.0
    m[30, 5] = 0.5
    out = overlay(img, m, alpha=0.6, colormap="viridis", fade="pixel")
    changed = np.any(out != img, axis=2)
    np.testing.assert_array_equal(changed, m > 0)  # 13 pixels of 1600, nothing else
    lut_hot, lut_mid = apply_colormap(np.array([[1.0]]))[0, 0], apply_colormap(np.array([[0.5]]))[0, 0]
    # alpha proportional to the map: 0.6 at 1, 0.3 at 0.5 (hand-computed blends, rounded)
    assert np.abs(out[11, 21] - (0.4 * img[11, 21] + 0.6 * lut_hot.astype(float))).max() <= 0.501
    assert np.abs(out[30, 5] - (0.7 * img[30, 5] + 0.3 * lut_mid.astype(float))).max() <= 0.501
    # the old look: every pixel tinted
    assert np.any(overlay(img, m, alpha=0.6) != img, axis=2).all()


def test_cam_fade_keeps_the_high_half_and_fades_the_low_half():
    img = photo(1, 4)
    m = np.array([[0.0, 0.25, CAM_FADE_FULL, 0.9]])
    out = overlay(img, m, alpha=0.5, colormap="jet", fade="cam").astype(float)
    plain = overlay(img, m, alpha=0.5, colormap="jet")
    colour = apply_colormap(m, "jet").astype(float)
    np.testing.assert_array_equal(out[0, 0], img[0, 0])
    # 0.25 is half way to full: alpha 0.25 instead of 0.5
    assert np.abs(out[0, 1] - (0.75 * img[0, 1] + 0.25 * colour[0, 1])).max() <= 0.501
    np.testing.assert_array_equal(out[0, 2:], plain[0, 2:])  # from CAM_FADE_FULL up: as before


def test_a_small_cam_map_fades_after_upsampling():
    """A 7x7 map is upsampled first; cells far from the hot one stay the photo."""
    img = photo(28, 28)
    m = np.zeros((7, 7))
    m[3, 3] = 1.0
    out = overlay(img, m, alpha=0.5, fade="cam")
    np.testing.assert_array_equal(out[:8, :8], img[:8, :8])
    assert np.any(out[12:16, 12:16] != img[12:16, 12:16])


def test_fade_alpha_values_and_bad_fades():
    v = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0, np.nan, 2.0, -1.0])
    np.testing.assert_allclose(fade_alpha(v, "pixel"), [0, 0.1, 0.25, 0.5, 0.75, 1, 0, 1, 0])
    np.testing.assert_allclose(fade_alpha(v, "cam"), [0, 0.2, 0.5, 1, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(fade_alpha(v, None), np.ones(9))
    assert (fade_for(True), fade_for(False)) == ("pixel", "cam")
    with pytest.raises(
        InvalidParameterError,
        match=r"^Invalid fade: expected None or one of 'cam', 'pixel', "
        r".*received 'pixle' that is a str\. Did you mean 'pixel'",
    ) as error:
        overlay(photo(), np.zeros((24, 32)), fade="pixle")
    assert "\n" not in str(error.value)
    with pytest.raises(InvalidParameterError, match="Invalid fade: expected None or one of"):
        plotly_colorscale("jet", fade=True)


# ------------------------------------------------------------------ the browser's blend
def _stops(scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions, rgb (n, 3), alpha (n,)) of a plotly colorscale of "rgb"/"rgba" strings."""
    pos, rgb, alpha = [], [], []
    for p, colour in scale:
        parts = [float(x) for x in re.findall(r"[\d.]+", colour)]
        pos.append(p)
        rgb.append(parts[:3])
        alpha.append(parts[3] if colour.startswith("rgba") else 1.0)
    return np.array(pos), np.array(rgb), np.array(alpha)


@pytest.mark.parametrize("fade", ["pixel", "cam"])
def test_the_figure_blends_as_the_overlay(fade):
    """Plotly draws a heatmap pixel with its colorscale's alpha times the trace's opacity over
    the photo: at every stop that is the numpy overlay, within a grey level."""
    plain_pos, plain_rgb, plain_alpha = _stops(plotly_colorscale("viridis"))
    pos, rgb, alpha = _stops(plotly_colorscale("viridis", fade=fade))
    np.testing.assert_array_equal(pos, plain_pos)
    np.testing.assert_array_equal(rgb, plain_rgb)  # same colours, only the alpha differs
    assert (plain_alpha == 1).all() and alpha[0] == 0 and alpha[-1] == 1
    img = photo(1, 1)
    opacity = 0.5
    for p, colour, a in zip(pos, rgb, alpha):
        browser = img[0, 0] * (1 - opacity * a) + colour * opacity * a
        numpy = overlay(img, np.full((1, 1), p), alpha=opacity, fade=fade)[0, 0]
        assert np.abs(browser - numpy).max() <= 1.0, (p, browser, numpy)


# ------------------------------------------------------------------ the Explorer
@pytest.fixture(scope="module")
def explorer():
    pytest.importorskip("ipywidgets")
    pytest.importorskip("plotly")
    from cam_widgets.widgets import Explorer

    widget = Explorer(image="chelsea", method="gradcam", colormap="viridis", opacity=0.5)
    yield widget
    widget.close()


def _scale(explorer) -> list:
    return [list(step) for step in explorer.panels.figure.layout.coloraxis.colorscale]


def test_explorer_fades_cam_maps_and_pixel_maps_by_their_family(explorer):
    assert _scale(explorer) == plotly_colorscale("viridis", fade="cam")
    explorer.set(method="vanilla")
    try:
        assert explorer.result.pixel_level
        assert _scale(explorer) == plotly_colorscale("viridis", fade="pixel")
        assert explorer.panels.heatmap(0).opacity == 0.5  # the opacity slider, as before
        explorer.set(view="raw")  # the map alone: opaque colours, no photo to show through
        assert _scale(explorer) == plotly_colorscale("viridis")
        explorer.set(view="overlay", colormap="gray")
        assert _scale(explorer) == plotly_colorscale("gray", fade="pixel")
    finally:
        explorer.set(method="gradcam", view="overlay", colormap="viridis")
    assert _scale(explorer) == plotly_colorscale("viridis", fade="cam")


def test_static_explorer_draws_a_pixel_map_without_tinting_the_photo():
    pytest.importorskip("ipywidgets")
    from cam_widgets.widgets import Explorer

    static = Explorer(image="chelsea", method="vanilla", static=True, opacity=0.5)
    try:
        r = static.result
        drawn = np.asarray(Image.open(io.BytesIO(static.view.value)).convert("RGB"))
        faded = overlay(r.image, r.display_heatmap(), alpha=0.5, colormap="viridis", fade="pixel")
        np.testing.assert_array_equal(drawn, faded)
        photo_rgb = r.image.astype(float)
        # what the view drew before: the map blended at one alpha all over (Explanation's
        # overlay fades as the Explorer draws now: exports match the screen)
        blended = overlay(r.image, r.display_heatmap(), alpha=0.5, colormap="viridis")
        np.testing.assert_array_equal(r.overlay(0.5, "viridis"), faded)
        tint_before = np.abs(blended - photo_rgb).mean()
        tint_now = np.abs(drawn - photo_rgb).mean()
        assert tint_now < 0.5 * tint_before, (tint_now, tint_before)
        # where the gradient is weakest (the lowest fifth) the photo is within a few levels
        low = r.display_heatmap() <= np.quantile(r.display_heatmap(), 0.2)
        assert np.abs(drawn - photo_rgb)[low].mean() < 0.25 * np.abs(blended - photo_rgb)[low].mean()
        static.set(view="raw")  # the map alone, as before
        raw = np.asarray(Image.open(io.BytesIO(static.view.value)).convert("RGB"))
        np.testing.assert_array_equal(raw, r.overlay(1.0, "viridis"))
    finally:
        static.close()
