"""The sample photos: read from scikit-image's own files, the same pixels as ``skimage.data``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cam_widgets.data import samples


@pytest.mark.parametrize("name", samples.list_samples())
def test_each_sample_is_the_pixels_of_skimage_data(name):
    import skimage.data as skdata

    from cam_widgets.data.image_conversion import array_to_rgb

    assert samples._bundled_file(name) is not None, name  # read directly, not through skimage
    raw = skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)()
    got = samples.sample_image(name)
    assert got.dtype == np.uint8 and got.ndim == 3 and got.shape[2] == 3
    np.testing.assert_array_equal(got, array_to_rgb(np.asarray(raw)))


def test_a_sample_loads_without_importing_scikit_image():
    code = (
        "import sys; from cam_widgets.data import sample_image; sample_image('chelsea');"
        "print('skimage' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_without_the_file_the_sample_comes_from_skimage_data(monkeypatch):
    monkeypatch.setattr(samples, "_bundled_file", lambda name: None)
    samples._load_sample.cache_clear()
    try:
        assert samples.sample_image("coffee").shape == (400, 600, 3)
    finally:
        samples._load_sample.cache_clear()
