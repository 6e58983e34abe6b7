"""load_image / resize_for_model / samples: formats and one-line typed errors."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from cam_widgets.data import (
    MIN_SIDE,
    list_samples,
    load_image,
    resize_for_model,
    sample_descriptions,
    sample_image,
)
from cam_widgets.errors import CamWidgetsError, InvalidImageError, InvalidParameterError
from http_helpers import local_server


def _check_rgb(arr, shape=None):
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    if shape is not None:
        assert arr.shape[:2] == shape


def _one_line(exc_info, *words):
    msg = str(exc_info.value)
    assert "\n" not in msg
    assert "expected" in msg and "received" in msg
    for word in words:
        assert word.lower() in msg.lower(), msg
    assert isinstance(exc_info.value, CamWidgetsError)
    return msg


def _gradient(h=32, w=48):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 100)], axis=2).astype(np.uint8)


# ------------------------------------------------------------------ files
def test_rgb_png_path_and_str(tmp_path):
    arr = _gradient()
    path = tmp_path / "rgb.png"
    Image.fromarray(arr).save(path)
    out = load_image(path)
    _check_rgb(out, (32, 48))
    assert np.array_equal(out, arr)
    assert np.array_equal(load_image(str(path)), arr)
    assert np.array_equal(load_image(path.read_bytes()), arr)


def test_grayscale_png(tmp_path):
    gray = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    out = load_image(path)
    _check_rgb(out, (16, 16))
    assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)


def test_16bit_png(tmp_path):
    data = (np.arange(20 * 30, dtype=np.uint32).reshape(20, 30) * 100).astype(np.uint16)
    data[0, 0] = 65535
    path = tmp_path / "deep.png"
    Image.fromarray(data).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    out = load_image(path)
    _check_rgb(out, (20, 30))
    assert out[0, 0, 0] == 255
    expected = np.round(data / 257.0).astype(np.uint8)
    assert np.abs(out[:, :, 1].astype(int) - expected).max() <= 1


def test_palette_png(tmp_path):
    arr = _gradient()
    path = tmp_path / "pal.png"
    Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)
    with Image.open(path) as im:
        assert im.mode == "P"
    out = load_image(path)
    _check_rgb(out, (32, 48))
    assert np.abs(out.astype(int) - arr).mean() < 30


def test_rgba_png_composited_on_white(tmp_path):
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:8, :, 3] = 255  # top half opaque red, bottom half transparent
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    out = load_image(path)
    _check_rgb(out, (16, 16))
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[15, 15]) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(_gradient()).convert("CMYK").save(path)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    _check_rgb(load_image(path), (32, 48))


def test_exif_orientation(tmp_path):
    img = Image.fromarray(_gradient(16, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    out = load_image(path)
    assert out.shape == (40, 16, 3)


def test_missing_file(tmp_path):
    (tmp_path / "cat.png").write_bytes(b"")
    with pytest.raises(InvalidImageError) as info:
        load_image(tmp_path / "cta.png")
    _one_line(info, "not found", "cat.png")


def test_missing_relative_path_names_the_full_path_tried(tmp_path, monkeypatch):
    """Read in the Explorer's status line: the full path looked for, no "relative paths
    start at" jargon, a way out that works in the widget (upload)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidImageError) as info:
        load_image("photos/dog.jpg")
    msg = _one_line(info, "not found", "upload button")
    assert repr(str(tmp_path / "photos" / "dog.jpg")) in msg
    assert "relative paths" not in msg and "that is a" not in msg


def test_directory(tmp_path):
    with pytest.raises(InvalidImageError) as info:
        load_image(tmp_path)
    _one_line(info, "directory")


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    _one_line(info, "not an image")


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "full.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(InvalidImageError) as info:
        load_image(cut)
    _one_line(info, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES == before


def test_truncated_png_even_if_pil_global_is_lenient(tmp_path):
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(InvalidImageError, match="Truncated"):
            load_image(cut)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "full.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=95)
    data = path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError) as info:
        load_image(cut)
    _one_line(info, "truncated")


def _png_with_size(width, height):
    """A 1x1 PNG whose IHDR claims width x height (PIL reads the size lazily)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    # signature (8) + length (4) + b"IHDR" (4) then width, height (big-endian)
    struct.pack_into(">II", data, 16, width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    struct.pack_into(">I", data, 29, crc)
    return bytes(data)


@pytest.mark.parametrize("side", [11_000, 30_000])  # 121 MP (above our limit), 900 MP (PIL bomb error)
def test_decompression_bomb(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with_size(side, side))
    max_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    _one_line(info, "too large", "megapixels")
    assert Image.MAX_IMAGE_PIXELS == max_before


def test_decompression_bomb_numbers_differ_from_the_limit(tmp_path):
    """10001x10000 is 100.01 megapixels: the message must not read '100 ... 100'."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with_size(10_001, 10_000))
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    msg = _one_line(info, "too large")
    assert "100,010,000 pixels" in msg or "100.01 megapixels" in msg, msg


def test_tiny_file(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    _one_line(info, "too small", "8x8", "4x4")


# ------------------------------------------------------------------ PIL and arrays
def test_pil_inputs():
    arr = _gradient()
    _check_rgb(load_image(Image.fromarray(arr)), (32, 48))
    _check_rgb(load_image(Image.fromarray(arr).convert("L")), (32, 48))
    _check_rgb(load_image(Image.fromarray(arr).convert("1")), (32, 48))
    _check_rgb(load_image(Image.fromarray(arr).convert("LA")), (32, 48))
    _check_rgb(load_image(Image.fromarray(arr).convert("P")), (32, 48))
    _check_rgb(
        load_image(Image.fromarray(np.linspace(0, 1, 32 * 48, dtype=np.float32).reshape(32, 48))), (32, 48)
    )


def test_array_dtypes_and_shapes():
    base = _gradient()
    assert np.array_equal(load_image(base), base)
    out = load_image(base)
    out[0, 0] = 0
    assert not np.shares_memory(out, base)  # a copy is returned
    gray = base[:, :, 0]
    assert np.array_equal(load_image(gray)[:, :, 1], gray)
    assert np.array_equal(load_image(gray[:, :, None])[:, :, 2], gray)
    rgba = np.dstack([base, np.full(base.shape[:2], 255, np.uint8)])
    assert np.array_equal(load_image(rgba), base)
    rgba[..., 3] = 0
    assert (load_image(rgba) == 255).all()
    assert np.array_equal(load_image(base.astype(np.uint16) * 257), base)
    mask = np.zeros((10, 10), bool)
    mask[2:5] = True
    out = load_image(mask)
    assert out.max() == 255 and out.min() == 0
    assert np.array_equal(load_image(base.astype(np.float32) / 255.0), base)
    assert np.array_equal(load_image(base.astype(np.float64)), base)
    assert np.array_equal(load_image(base.astype(np.int64)), base)
    ones = np.ones((9, 9, 3))
    assert (load_image(ones) == 255).all()  # max <= 1 -> [0, 1] scale


def test_large_thin_array_ok():
    arr = np.zeros((10, 10_000), dtype=np.uint8)
    _check_rgb(load_image(arr), (10, 10_000))
    _check_rgb(load_image(arr.T), (10_000, 10))


@pytest.mark.parametrize(
    "arr, words",
    [
        (np.full((16, 16, 3), np.nan), ["NaN"]),
        (np.array([[np.inf] * 16] * 16), ["inf"]),
        (np.zeros((0, 0, 3), np.uint8), ["empty"]),
        (np.zeros((16, 16, 2), np.uint8), ["shape", "(16, 16, 2)"]),
        (np.zeros((3, 16, 16), np.uint8), ["channels", "transpose"]),
        (np.zeros((2, 16, 16, 3), np.uint8), ["shape", "batch"]),
        (np.zeros(64, np.uint8), ["shape"]),
        (np.zeros((4, 4, 3), np.uint8), ["too small", "8x8", "4x4"]),
        (np.zeros((100, 5), np.uint8), ["too small", "5x100"]),
        (np.full((16, 16), -0.5), ["out of range"]),
        (np.full((16, 16), 300.0), ["out of range"]),
        (np.full((16, 16), 1000, np.int32), ["out of range", "0..255"]),
        (np.full((16, 16), "a"), ["dtype"]),
        (np.zeros((16, 16), complex), ["dtype"]),
    ],
)
def test_bad_arrays(arr, words):
    with pytest.raises(InvalidImageError) as info:
        load_image(arr)
    _one_line(info, *words)


@pytest.mark.parametrize("bad", [None, 42, [[1, 2], [3, 4]], {"a": 1}])
def test_bad_types(bad):
    with pytest.raises(InvalidImageError) as info:
        load_image(bad)
    _one_line(info, "unsupported")


def test_bad_parameters():
    with pytest.raises(InvalidParameterError, match="timeout"):
        load_image(_gradient(), timeout=0)
    with pytest.raises(InvalidParameterError, match="max_bytes"):
        load_image(_gradient(), max_bytes=-1)


def test_bytes_limit():
    buf = io.BytesIO()
    Image.fromarray(_gradient()).save(buf, format="PNG")
    with pytest.raises(InvalidImageError, match="too large"):
        load_image(buf.getvalue(), max_bytes=10)


# ------------------------------------------------------------------ URLs
def test_url_unreachable_fails_fast():
    start = time.monotonic()
    with pytest.raises(InvalidImageError) as info:
        load_image("http://127.0.0.1:9/x.png", timeout=2.0)
    assert time.monotonic() - start < 5.0
    msg = _one_line(info, "could not be fetched", "upload button", "'http://127.0.0.1:9/x.png'")
    assert "local file path" not in msg and "that is a" not in msg


def test_unsupported_scheme():
    with pytest.raises(InvalidImageError) as info:
        load_image("ftp://example.com/x.png")
    msg = _one_line(info, "scheme 'ftp'", "http://", "'ftp://example.com/x.png'", "upload button")
    assert "pass the local file" not in msg and "that is a" not in msg


def test_url_from_local_server(tmp_path):
    import http.server

    buf = io.BytesIO()
    Image.fromarray(_gradient()).save(buf, format="PNG")
    payload = buf.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/x.png":
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    with local_server(Handler) as base:
        assert np.array_equal(load_image(base + "/x.png", timeout=5), _gradient())
        with pytest.raises(InvalidImageError, match="HTTP 404"):
            load_image(base + "/missing.png", timeout=5)
        with pytest.raises(InvalidImageError, match="too large"):
            load_image(base + "/x.png", timeout=5, max_bytes=100)


# ------------------------------------------------------------------ resize and samples
def test_resize_for_model():
    arr = _gradient(32, 48)
    out = resize_for_model(arr)
    _check_rgb(out, (224, 224))
    _check_rgb(resize_for_model(arr, (100, 50)), (100, 50))
    _check_rgb(resize_for_model(arr, 64), (64, 64))
    _check_rgb(resize_for_model(arr[:, :, 0], 64), (64, 64))
    same = resize_for_model(arr, (32, 48))
    assert np.array_equal(same, arr) and same is not arr
    # whole image, no crop: corners keep their colors
    assert out[0, -1, 0] > 240 and out[-1, 0, 1] > 240
    for bad in [(0, 10), (10,), "224", 2.5, (224, 224.0), True]:
        with pytest.raises(InvalidParameterError, match="size"):
            resize_for_model(arr, bad)


def test_samples():
    names = list_samples()
    for required in ["chelsea", "coffee", "astronaut", "rocket", "motorcycle", "camera"]:
        assert required in names
    assert set(sample_descriptions()) == set(names)
    for name in names:
        img = sample_image(name)
        _check_rgb(img)
        assert min(img.shape[:2]) >= MIN_SIDE
    cam = sample_image("camera")
    assert np.array_equal(cam[:, :, 0], cam[:, :, 2])  # grayscale converted to RGB
    a = sample_image("chelsea")
    a[:] = 0
    assert sample_image("chelsea").max() > 0  # fresh copy each call


def test_unknown_sample():
    with pytest.raises(InvalidParameterError) as info:
        sample_image("chelsee")
    _one_line(info, "unknown sample", "'chelsea'")
    with pytest.raises(InvalidParameterError):
        sample_image(3)


def test_article_photo_is_none_offline(monkeypatch):
    import time

    from cam_widgets.data import samples

    monkeypatch.setattr(samples, "ARTICLE_PHOTO_URL", "http://127.0.0.1:9/both.png")
    started = time.perf_counter()
    assert samples.article_photo(timeout=2) is None
    assert time.perf_counter() - started < 5


def test_bundled_images_are_named_in_any_case_and_scenes_with_or_without_their_prefix(tmp_path, monkeypatch):
    """'Chelsea' was looked for as a file, and the scenes 'cam-widgets samples' lists could
    not be explained at all."""
    from cam_widgets import Explainer, explain
    from cam_widgets.data import get_scene
    from cam_widgets.data.named import load_named

    np.testing.assert_array_equal(load_named(" Chelsea"), sample_image("chelsea"))
    np.testing.assert_array_equal(load_named("two_class"), get_scene("two_class").image)
    np.testing.assert_array_equal(load_named("scene:two_class"), get_scene("two_class").image)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        InvalidImageError,
        match=r"Image not found: expected a bundled image \(chelsea, .*scene:two_class.*"
        r"received 'chelsee' that is a str\. Did you mean 'chelsea'",
    ):
        load_named("chelsee")
    with pytest.raises(InvalidImageError, match="Image file not found"):
        load_named("missing.png")  # a path: load_image's error, which names the folder's files
    Image.fromarray(sample_image("coffee")).save(tmp_path / "mycat", format="PNG")
    np.testing.assert_array_equal(load_named("mycat"), sample_image("coffee"))  # a file, no suffix
    result = explain("Scene:two_class", method="gradcam")
    assert result.heatmap.shape == (224, 224)
    engine = Explainer("efficientnet_lite0", device="cpu")
    assert engine.prepare("COFFEE") is engine.prepare("coffee")  # one name, decoded once
