"""Tests of the render layer (pure functions: normalise, resize, colour, overlay, figures)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from cam_widgets.errors import CamWidgetsError, InvalidImageError, InvalidParameterError
from cam_widgets.render import (
    MapStatus,
    apply_colormap,
    colormap_lut,
    image_data_uri,
    list_colormaps,
    normalize_map,
    overlay,
    plotly_colorscale,
    png_data_uri,
    save_png,
    shared_scale,
    to_png_bytes,
    upsample_map,
)

RNG = np.random.default_rng(0)


def photo(h=224, w=224):
    """A smooth synthetic photo (compresses like a real one, unlike noise)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(xx / 17.0)
    g = 128 + 100 * np.cos(yy / 23.0)
    b = (xx + yy) * 255.0 / (h + w)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- normalize_map


def test_normalize_ramp():
    ramp = np.arange(12, dtype=np.float64).reshape(3, 4) - 3.0
    out, st = normalize_map(ramp)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out.ravel(), np.linspace(0, 1, 12), atol=1e-6)
    assert isinstance(st, MapStatus)
    assert not (st.flat or st.all_zero or st.negative_only or st.has_nonfinite)
    assert st.message is None and st.ok


def test_normalize_modes():
    ramp = np.array([[-2.0, 0.0], [1.0, 4.0]])
    out, _ = normalize_map(ramp, mode="max")
    np.testing.assert_allclose(out, [[0, 0], [0.25, 1]])
    out, _ = normalize_map(ramp, clip_negative=True)
    np.testing.assert_allclose(out, [[0, 0], [0.25, 1]])
    out, _ = normalize_map(np.array([[-0.5, 0.3], [0.9, 2.0]]), mode="none")
    np.testing.assert_allclose(out, [[0, 0.3], [0.9, 1.0]], atol=1e-7)
    with pytest.raises(InvalidParameterError, match="minmax"):
        normalize_map(ramp, mode="minmx")


@pytest.mark.parametrize("value", [0.0, 3.5, -2.0, 1e-12])
def test_normalize_constant_is_flat(value):
    out, st = normalize_map(np.full((7, 7), value))
    assert np.all(out == 0) and not np.isnan(out).any()
    assert st.flat and st.message and "flat" in st.message.lower()
    assert st.all_zero == (value == 0.0)
    assert "\n" not in st.message


def test_normalize_all_zero_message():
    _, st = normalize_map(np.zeros((7, 7)))
    assert st.flat and st.all_zero and not st.negative_only
    assert "every value is 0.0" in st.message


def test_normalize_negative_only():
    neg = -np.abs(RNG.normal(size=(7, 7))) - 0.1
    out, st = normalize_map(neg)
    assert st.negative_only and not st.flat and "negative" in st.message.lower()
    assert out.max() == pytest.approx(1.0) and out.min() == 0.0
    out, st = normalize_map(neg, clip_negative=True)
    assert st.negative_only and st.flat and st.all_zero and np.all(out == 0)
    out, st = normalize_map(neg, mode="max")
    assert st.negative_only and np.all(out == 0)
    # zero maximum with negative values still counts as negative-only
    _, st = normalize_map(np.array([[0.0, -1.0]]))
    assert st.negative_only


def test_normalize_nonfinite():
    m = RNG.random((5, 6))
    m[0, 0], m[1, 2], m[3, 3] = np.nan, np.inf, -np.inf
    out, st = normalize_map(m)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert st.has_nonfinite and "3 NaN/inf" in st.message
    out, st = normalize_map(np.full((3, 3), np.nan))
    assert np.all(out == 0) and st.has_nonfinite and st.flat and st.all_zero


def test_normalize_batched_and_validation():
    batch = np.stack([np.arange(9.0).reshape(3, 3), np.zeros((3, 3)), -np.ones((3, 3))])
    out, sts = normalize_map(batch)
    assert out.shape == (3, 3, 3) and out.dtype == np.float32
    assert isinstance(sts, list) and len(sts) == 3
    assert [s.flat for s in sts] == [False, True, True]
    assert sts[2].negative_only and out[0].max() == 1.0
    for bad in (np.zeros(5), np.zeros((1, 1, 1, 1)), np.zeros((0, 3)), np.array([["a"]])):
        with pytest.raises(InvalidParameterError):
            normalize_map(bad)


def test_shared_scale():
    a, b = np.array([[0.0, 1.0]]), np.array([[-2.0, np.nan, 3.0]])
    assert shared_scale([a, b]) == (-2.0, 3.0)
    assert shared_scale([a, b], symmetric=True) == (-3.0, 3.0)
    lo, hi = shared_scale([np.zeros((2, 2))])
    assert lo < hi
    lo, hi = shared_scale([np.full((2, 2), 5.0)])
    assert lo < 5.0 < hi
    with pytest.raises(InvalidParameterError):
        shared_scale([])


# ---------------------------------------------------------------- upsample_map


@pytest.mark.parametrize("src,dst", [((7, 7), (224, 224)), ((14, 10), (224, 160)), ((5, 9), (3, 4))])
def test_upsample_matches_torch_bilinear(src, dst):
    torch = pytest.importorskip("torch")
    raw = RNG.normal(size=src).astype(np.float32)
    ours = upsample_map(raw, dst)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(raw)[None, None], size=dst, mode="bilinear", align_corners=False
    )[0, 0].numpy()
    assert ours.dtype == np.float32 and ours.shape == dst
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_upsample_nearest_and_batch_match_torch():
    torch = pytest.importorskip("torch")
    raw = RNG.normal(size=(2, 7, 7)).astype(np.float32)
    ref_n = torch.nn.functional.interpolate(torch.from_numpy(raw)[None], size=(224, 224), mode="nearest")[0]
    np.testing.assert_array_equal(upsample_map(raw, (224, 224), mode="nearest"), ref_n.numpy())
    ref_b = torch.nn.functional.interpolate(
        torch.from_numpy(raw)[None], size=(50, 30), mode="bilinear", align_corners=False
    )[0]
    np.testing.assert_allclose(upsample_map(raw, (50, 30)), ref_b.numpy(), atol=1e-5)
    # nearest shows the raw grid: each 32x32 block is one layer cell
    up = upsample_map(raw[0], (224, 224), mode="nearest")
    assert np.all(up[:32, :32] == raw[0, 0, 0])
    with pytest.raises(InvalidParameterError, match="bilinear"):
        upsample_map(raw[0], (8, 8), mode="bicubic")
    with pytest.raises(InvalidParameterError):
        upsample_map(raw[0], (0, 8))


# ---------------------------------------------------------------- colormaps


def test_jet_values():
    lut = colormap_lut("jet")
    assert tuple(apply_colormap(np.array([[0.0]]), "jet")[0, 0]) == (0, 0, 128)  # mpl jet(0)=(0,0,.5)
    assert tuple(apply_colormap(np.array([[1.0]]), "jet")[0, 0]) == (128, 0, 0)  # mpl jet(1)=(.5,0,0)
    mid = apply_colormap(np.array([[0.5]]), "jet")[0, 0].astype(int)
    assert mid[1] == 255 and abs(mid[0] - mid[2]) < 10 and 100 < mid[0] < 160  # green-ish
    assert lut.shape == (256, 3) and lut.dtype == np.uint8


def test_jet_matches_opencv_rgb():
    cv2 = pytest.importorskip("cv2")
    gray = np.arange(256, dtype=np.uint8)[None]
    bgr = cv2.applyColorMap(gray, cv2.COLORMAP_JET)[0]
    np.testing.assert_array_equal(colormap_lut("jet"), bgr[:, ::-1])  # RGB, not BGR


def test_viridis_endpoints_and_matplotlib():
    assert tuple(apply_colormap(np.array([[0.0]]))[0, 0]) == (68, 1, 84)
    assert tuple(apply_colormap(np.array([[1.0]]))[0, 0]) == (253, 231, 37)
    matplotlib = pytest.importorskip("matplotlib")
    for name in ("viridis", "inferno", "RdBu", "jet", "gray"):
        ref = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255
        tol = 1 if name != "jet" else 40  # mpl jet differs from OpenCV's in the middle
        assert np.abs(colormap_lut(name).astype(float) - ref).max() <= tol, name


def test_colormap_api():
    names = list_colormaps()
    assert {"viridis", "jet", "inferno", "gray", "RdBu"} <= set(names)
    m = np.linspace(0, 1, 12).reshape(3, 4)
    for name in names:
        out = apply_colormap(m, name)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8
        cs = plotly_colorscale(name)
        assert cs[0][0] == 0.0 and cs[-1][0] == 1.0
        assert all(isinstance(c, str) and c.startswith("rgb(") for _, c in cs)
    assert plotly_colorscale("viridis")[0][1] == "rgb(68,1,84)"
    np.testing.assert_array_equal(colormap_lut("RdBu_r"), colormap_lut("RdBu")[::-1])
    # out of range / NaN do not crash
    out = apply_colormap(np.array([[-1.0, 2.0, np.nan]]), "gray")
    assert out[0, :, 0].tolist() == [0, 255, 0]
    with pytest.raises(InvalidParameterError, match="viridis") as ei:
        apply_colormap(m, "viridsi")
    assert "Did you mean" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(InvalidParameterError):
        apply_colormap(np.zeros((2, 2, 2)), "jet")


# ---------------------------------------------------------------- overlay


def test_overlay_alpha_extremes_and_resize():
    img = photo(32, 48)
    m = RNG.random((32, 48))
    np.testing.assert_array_equal(overlay(img, m, alpha=0.0), img)
    np.testing.assert_array_equal(overlay(img, m, alpha=1.0, colormap="jet"), apply_colormap(m, "jet"))
    half = overlay(img, m, alpha=0.5)
    expected = np.rint(0.5 * img.astype(float) + 0.5 * apply_colormap(m).astype(float))
    assert np.abs(half.astype(float) - expected).max() <= 1
    small = RNG.random((4, 6))
    full = overlay(img, small, alpha=1.0)
    np.testing.assert_array_equal(full, apply_colormap(upsample_map(small, (32, 48))))


def test_overlay_validation():
    img = photo(8, 8)
    with pytest.raises(InvalidParameterError):
        overlay(img, np.zeros((8, 8)), alpha=1.5)
    with pytest.raises(InvalidParameterError):
        overlay(img, np.zeros((8, 8)), alpha="half")
    with pytest.raises(InvalidImageError):
        overlay(img.astype(np.float32), np.zeros((8, 8)))
    with pytest.raises(InvalidImageError):
        overlay(img[..., :2], np.zeros((8, 8)))
    with pytest.raises(InvalidParameterError):
        overlay(img, np.zeros(8))
    with pytest.raises(CamWidgetsError):
        overlay(img, np.zeros((8, 8)), colormap="nope")


def test_png_roundtrip(tmp_path):
    from PIL import Image

    img = photo(20, 30)
    data = to_png_bytes(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
    uri = png_data_uri(img)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == data
    assert image_data_uri(img, "jpeg").startswith("data:image/jpeg;base64,")
    p = save_png(tmp_path / "sub" / "x.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(p)), img)
    with pytest.raises(InvalidImageError):
        to_png_bytes(np.zeros((4, 4, 3), dtype=np.float64))


# ---------------------------------------------------------------- figures


def _figure(**kw):
    from cam_widgets.render import heatmap_figure

    maps = [RNG.random((7, 7)).astype(np.float64) for _ in range(3)]
    return heatmap_figure(photo(), maps, ["Grad-CAM", "Grad-CAM++", "Score-CAM"], **kw), maps


def test_figure_structure():
    import plotly.graph_objects as go

    fig, maps = _figure(zmin=0.0, zmax=1.0, opacity=0.6)
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 6
    images = [t for t in fig.data if t.type == "image"]
    heats = [t for t in fig.data if t.type == "heatmap"]
    assert len(images) == 3 and len(heats) == 3
    assert all(t.source.startswith("data:image/png;base64,") for t in images)
    lay = fig.layout
    # linked axes, y reversed, equal aspect
    assert lay.xaxis2.matches == "x" and lay.xaxis3.matches == "x"
    assert lay.yaxis2.matches == "y" and lay.yaxis3.matches == "y"
    assert lay.yaxis.scaleanchor == "x" and lay.yaxis.scaleratio == 1
    assert lay.yaxis.range[0] > lay.yaxis.range[1]
    # one shared colour bar
    assert all(t.coloraxis == "coloraxis" for t in heats)
    assert lay.coloraxis.cmin == 0.0 and lay.coloraxis.cmax == 1.0
    assert lay.coloraxis.colorscale[0][1] == "rgb(68,1,84)"
    # the colour bar's title runs along the bar, right of the ticks (above, it sat on "1")
    assert lay.coloraxis.colorbar.title.side == "right"
    assert lay.coloraxis.colorbar.title.font.size == 11
    for k, (img_t, h) in enumerate(zip(images, heats)):
        assert img_t.xaxis == h.xaxis and img_t.yaxis == h.yaxis  # same panel
        z = np.asarray(h.z, dtype=np.float64)
        assert z.shape == (7, 7)
        np.testing.assert_array_equal(z, maps[k].astype(np.float32))  # to the last bit
        assert h.zsmooth == "best" and h.opacity == 0.6
        assert h.z.dtype == np.float32  # compact float32 (base64 typed array in the JSON)
        # the hover label reads the trace name, which widgets update with the title
        assert h.name == fig.layout.annotations[k].text and "%{fullData.name}" in h.hovertemplate
        assert "%{z" in h.hovertemplate
        # the cells cover exactly the photo [-0.5, 223.5]
        assert h.x0 - h.dx / 2 == pytest.approx(-0.5) and h.y0 - h.dy / 2 == pytest.approx(-0.5)
        assert h.x0 + 6.5 * h.dx == pytest.approx(223.5) and h.y0 + 6.5 * h.dy == pytest.approx(223.5)
        # cell centres where F.interpolate(align_corners=False) puts them
        assert h.x0 == pytest.approx(224 / 7 / 2 - 0.5)
    assert [a.text for a in lay.annotations] == ["Grad-CAM", "Grad-CAM++", "Score-CAM"]
    fig2, _ = _figure(smooth=False)
    assert all(t.zsmooth in (False, None) for t in fig2.data if t.type == "heatmap")
    assert fig2.layout.coloraxis.cmin is None


def test_figure_json_is_small():
    fig, _ = _figure()
    text = fig.to_json()
    assert len(text.encode()) < 200_000
    # no full-resolution float arrays anywhere
    data = json.loads(text)
    for t in data["data"]:
        if t["type"] == "heatmap":
            assert len(json.dumps(t["z"])) < 2_000


def test_figure_downsamples_large_maps_and_jpeg():
    from cam_widgets.render import heatmap_figure

    noisy = RNG.integers(0, 256, size=(224, 224, 3), dtype=np.uint8)  # worst case for PNG
    big = RNG.random((224, 224))
    fig = heatmap_figure(noisy, [big, big], ["a", "b"], image_format="jpeg")
    z = np.asarray(fig.data[1].z)
    assert z.shape == (158, 158)  # two panels share 224 x 224 cells
    assert fig.data[1].x0 - fig.data[1].dx / 2 == pytest.approx(-0.5)
    maps = [t for t in json.loads(fig.to_json())["data"] if t["type"] == "heatmap"]
    assert sum(len(json.dumps(t)) for t in maps) < 280_000  # 224 x 224 float32 cells, base64


def test_figure_validation():
    from cam_widgets.render import heatmap_figure

    img = photo(16, 16)
    with pytest.raises(InvalidParameterError, match="titles"):
        heatmap_figure(img, [np.zeros((2, 2))], ["a", "b"])
    with pytest.raises(InvalidParameterError):
        heatmap_figure(img, [np.zeros((2, 2))], ["a"], opacity=2)
    with pytest.raises(InvalidParameterError):
        heatmap_figure(img, [], [])
    with pytest.raises(InvalidParameterError):
        heatmap_figure(img, [np.zeros((2, 2))], ["a"], zmin=1, zmax=0)
    with pytest.raises(InvalidImageError):
        heatmap_figure(img[..., 0], [np.zeros((2, 2))], ["a"])


def test_standalone_html(tmp_path):
    from cam_widgets.render import standalone_html

    fig, _ = _figure()
    p = standalone_html(fig, tmp_path / "fig.html")
    text = p.read_text(encoding="utf-8")
    assert "<html" in text and "Plotly" in text
    assert "cdn.plot.ly" not in text.split("<body>")[0] or len(text) > 1_000_000


def test_render_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, cam_widgets; had = set(sys.modules); import cam_widgets.render; "
        "new = set(sys.modules) - had; print('plotly' in new, 'torch' in new)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_percentile_scale_lifts_spiky_maps_and_stays_total():
    from cam_widgets.render import percentile_scale

    spiky = np.full((100, 100), 0.1, np.float32)
    spiky[0, :5] = 1.0  # 0.05% of the pixels hold the maximum
    shown = percentile_scale(spiky)
    assert shown.dtype == np.float32 and shown.max() == 1.0
    assert np.allclose(shown[1:], 1.0)  # the 99th percentile is 0.1: the rest is not dimmed
    ramp = np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    assert np.allclose(percentile_scale(ramp), np.clip(ramp / np.percentile(ramp, 99), 0, 1))
    mostly_empty = np.zeros((100, 100), np.float32)
    mostly_empty[0, 0] = 0.5  # 99th percentile 0: scaled by the maximum instead
    assert percentile_scale(mostly_empty)[0, 0] == 1.0
    assert not percentile_scale(np.zeros((4, 4))).any()
    assert shared_scale([ramp], percentile=99.0) == pytest.approx((0.0, np.percentile(ramp, 99)))


def test_overlays_draw_pixel_maps_relative_to_their_99th_percentile(lite_explainer):
    from cam_widgets.render import overlay, percentile_scale

    vanilla = lite_explainer.explain("chelsea", "vanilla", 282)
    gradcam = lite_explainer.explain("chelsea", "gradcam", 282)
    assert vanilla.pixel_level and not gradcam.pixel_level
    # and faded as the Explorer draws them: pixel maps in proportion, CAM maps where low
    np.testing.assert_array_equal(
        vanilla.overlay(0.5),
        overlay(vanilla.image, percentile_scale(vanilla.heatmap), alpha=0.5, fade="pixel"),
    )
    np.testing.assert_array_equal(
        gradcam.overlay(0.5), overlay(gradcam.image, gradcam.heatmap, alpha=0.5, fade="cam")
    )
    assert np.mean(vanilla.display_heatmap() == 1.0) >= 0.009  # the top 1% saturates


def test_figures_have_a_fixed_width_or_fit_their_container():
    fig, _ = _figure(panel_size=200)
    assert fig.layout.width == 3 * 200 + 120 and fig.layout.height == 200 + 90
    assert fig.layout.yaxis.constraintoward is None
    fitted, _ = _figure(panel_size=200, fit_width=True)
    assert fitted.layout.width is None and fitted.layout.height == 200 + 90
    # the 1:1 aspect stays; height to spare goes below the panels, not above them
    assert fitted.layout.yaxis.scaleanchor == "x" and fitted.layout.xaxis.constrain == "domain"
    assert [fitted.layout[f"yaxis{k}"].constraintoward for k in ("", "2", "3")] == ["top"] * 3


def test_long_panel_titles_wrap_between_what_and_which_class():
    from cam_widgets.render.figures import heatmap_figure, wrap_title

    assert wrap_title("Grad-CAM") == "Grad-CAM"
    assert (
        wrap_title("Grad-CAM @ features.8: Egyptian cat (285) p=0.791")
        == "Grad-CAM @ features.8:<br>Egyptian cat (285) p=0.791"
    )
    long = "Guided Grad-CAM++ @ features.8 + SmoothGrad (n=20, noise 0.2): tabby (281) p=0.071"
    lines = wrap_title(long).split("<br>")
    assert " ".join(lines) == long and all(len(line) <= 320 // 7 for line in lines)
    assert lines[-1] == "tabby (281) p=0.071"
    narrow = wrap_title("Vanilla gradient + SmoothGrad (n=20, noise 0.2): Egyptian cat (285) p=0.5", 200)
    assert all(not line.startswith("0.2") for line in narrow.split("<br>"))  # "noise 0.2" stays
    fig = heatmap_figure(photo(), [np.zeros((7, 7))], [long])
    assert fig.layout.annotations[0].text == wrap_title(long)


def test_figures_send_pixel_maps_whole_in_one_panel_and_share_a_budget_across_panels():
    from cam_widgets.render.figures import map_side

    assert [map_side(n) for n in (1, 2, 4, 10, 100)] == [224, 158, 112, 70, 56]


def _ink(region: np.ndarray) -> int:
    """Pixels of ``region`` that are not the white background."""
    return int(np.any(region != 255, axis=-1).sum())


def test_annotated_picture_has_its_title_above_and_its_colour_bar_beside_it():
    from cam_widgets.render.annotate import MIN_PICTURE_SIDE, annotated

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (MIN_PICTURE_SIDE, 600, 3), dtype=np.uint8)
    out = annotated(picture, "Grad-CAM @ features.8: tiger cat (282) p=0.088", "jet")
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    # the picture, untouched, below the title: found by its first row
    found = [
        (y, x)
        for y in range(out.shape[0] - MIN_PICTURE_SIDE + 1)
        for x in range(60)
        if np.array_equal(out[y, x : x + 600], picture[0])
    ]
    assert found, "the picture is not in the annotated image unchanged"
    top, left = found[0]
    np.testing.assert_array_equal(out[top : top + picture.shape[0], left : left + 600], picture)
    assert _ink(out[:top]) > 100  # the title
    # the colour bar: jet's 1 at the top, its 0 at the bottom, right of the picture
    lut = colormap_lut("jet")
    right = out[top : top + picture.shape[0], left + 600 :]
    column = next(x for x in range(right.shape[1]) if np.array_equal(right[0, x], lut[255]))
    np.testing.assert_array_equal(right[-1, column], lut[0])
    assert np.array_equal(right[0, column + 1], lut[255])  # a bar, not a stray pixel


def test_annotated_picture_wraps_long_titles_enlarges_small_pictures_and_names_its_scale():
    from cam_widgets.render.annotate import MIN_PICTURE_SIDE, annotated

    small = np.zeros((224, 224, 3), np.uint8)
    short = annotated(small, "Grad-CAM: cat")
    assert short.shape[1] > MIN_PICTURE_SIDE and short.shape[0] > MIN_PICTURE_SIDE  # 2x: 448
    long = "Guided Grad-CAM++ @ features.8 + SmoothGrad (n=20, noise 0.2): tabby, tabby cat (281) p=0.071"
    wrapped = annotated(small, long)
    assert wrapped.shape[1] == short.shape[1] and wrapped.shape[0] > short.shape[0]  # more lines
    noted = annotated(small, "Grad-CAM: cat", colorbar_title="1 = 99th pct")
    assert noted.shape[1] > short.shape[1]  # room for the bar's title, which is drawn there
    assert _ink(noted[:, short.shape[1] - 12 :]) > 20
    with pytest.raises(InvalidParameterError, match="colormap"):
        annotated(small, "x", "nope")
    with pytest.raises(InvalidImageError):
        annotated(np.zeros((4, 4)), "x")


def test_saved_annotated_png_says_when_the_map_is_empty(lite_explainer, tmp_path, monkeypatch):
    import dataclasses

    from cam_widgets.render import annotate

    seen = []
    monkeypatch.setattr(annotate, "annotated", lambda picture, title, *a: seen.append(title) or picture)
    result = lite_explainer.explain("chelsea", "gradcam", 282)
    result.save(tmp_path / "a.png", annotated=True)
    flat = dataclasses.replace(result, status=MapStatus(flat=True, all_zero=True, message="all-zero map"))
    flat.save(tmp_path / "b.png", annotated=True)
    assert seen == [result.title, f"{result.title}: all-zero map"]


def test_the_first_figure_widget_skips_jsonschemas_slow_optional_import():
    """plotly's FigureWidget -> nbformat -> jsonschema -> rfc3987_syntax (a grammar compiled at
    import: ~1 s a kernel); skipped while the class is first imported, importable after."""
    import subprocess
    import sys

    code = (
        "import sys; from cam_widgets.widgets import Explorer; Explorer().close(); "
        "print('rfc3987_syntax' in sys.modules); "
        "import importlib.util; print(importlib.util.find_spec('rfc3987_syntax') is not None or 'absent')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = done.stdout.split()
    assert lines[-2:] in (["False", "True"], ["False", "absent"]), done.stderr[-2000:]
