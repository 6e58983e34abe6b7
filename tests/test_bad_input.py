"""Bad input end to end: clear one-line errors or flagged results, never NaN or a leaked hook."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cam_widgets.engine import count_hooks
from cam_widgets.errors import CamWidgetsError, InvalidImageError
from conftest import tiny_input


def check_result(result):
    assert result.heatmap.shape == (224, 224) and result.heatmap.dtype == np.float32
    assert np.isfinite(result.heatmap).all() and np.isfinite(result.raw).all()
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0


@pytest.mark.parametrize("mode, size", [("L", (60, 40)), ("RGBA", (50, 70)), ("P", (64, 64)),
                                        ("I;16", (40, 40)), ("RGB", (8, 9))])
def test_odd_image_files_are_explained(lite_explainer, tmp_path, mode, size):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, size=size[::-1] + (3,), dtype=np.uint8))
    image = rgb.convert(mode) if mode != "I;16" else Image.fromarray(
        rng.integers(0, 65535, size=size[::-1], dtype=np.uint16))
    path = tmp_path / "odd.png"
    image.save(path)
    check_result(lite_explainer.explain(str(path), "gradcam"))


def test_huge_and_thin_arrays_are_explained(lite_explainer):
    check_result(lite_explainer.explain(np.zeros((10, 10_000, 3), dtype=np.uint8) + 90, "gradcam"))


@pytest.mark.parametrize("bad", [
    np.full((32, 32, 3), np.nan), np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((0, 5, 3)),
    np.zeros((3, 32, 32)), "no/such/file.png", 42,
])
def test_unusable_images_are_one_line_errors(lite_explainer, bad):
    with pytest.raises(InvalidImageError) as info:
        lite_explainer.explain(bad, "gradcam")
    assert "\n" not in str(info.value)
    assert count_hooks(lite_explainer.engine.model) == 0


def test_non_image_and_truncated_files(lite_explainer, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:60])
    for path in (text, truncated):
        with pytest.raises(InvalidImageError):
            lite_explainer.explain(str(path), "gradcam")


def test_flat_map_is_flagged_not_nan(tiny_explainer):
    dark = -torch.ones(1, 3, 4, 4) * 5  # every conv output is negative: ReLU leaves all zeros
    dark[:, 1] = 5
    result = tiny_explainer.explain(dark, "cam", 0, "relu")
    assert result.flagged and result.status.flat and np.all(result.heatmap == 0)
    assert "flat" in result.status.message.lower()


def test_negative_only_map_is_flagged(tiny_explainer):
    result = tiny_explainer.explain(tiny_input(), "gradcam", 2, "relu")  # both weights < 0
    assert result.raw.max() <= 0 < -result.raw.min()
    assert result.status.negative_only and result.flagged and np.all(result.heatmap == 0)
    assert "negative" in result.status.message.lower()


def test_cam_needs_a_gap_linear_head(lite_explainer, chelsea_tensor):
    with pytest.raises(CamWidgetsError, match="global-average-pool"):
        lite_explainer.explain(chelsea_tensor, "cam", 285, "features.6")
    assert lite_explainer.explain(chelsea_tensor, "cam", 285, "features.8").raw.shape == (7, 7)
