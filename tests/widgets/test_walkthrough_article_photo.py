"""The articles' dog-and-cat photo (issue 19): the Grad-CAM authors' cat_dog.jpg, fetched within
a timeout when online, cached, credited; offline, None and a sentence saying why. Served here by
a local HTTP server on 127.0.0.1 (CAM_WIDGETS_ARTICLE_PHOTO_URL points at it)."""

from __future__ import annotations

import http.server
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from cam_widgets.data import samples
from cam_widgets.data.images import load_image
from http_helpers import local_server

#: a JPEG as the authors' photo is one (any photo does: the bytes are what is checked)
PHOTO = Image.fromarray(samples.sample_image("coffee")).resize((160, 120))


def _jpeg() -> bytes:
    out = io.BytesIO()
    PHOTO.save(out, format="JPEG", quality=90)
    return out.getvalue()


class _Photos(http.server.BaseHTTPRequestHandler):
    """/cat_dog.jpg a photo; /page.html a web page; /slow.jpg answers only when released."""

    served: list = []
    release = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).served.append(self.path)
        if self.path == "/slow.jpg":
            type(self).release.wait(10)  # bounded: the test's timeout is shorter
            return
        body, kind = (
            (_jpeg(), "image/jpeg")
            if self.path == "/cat_dog.jpg"
            else (b"<html><body>not a photo</body></html>", "text/html")
        )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def server():
    """A local HTTP server (127.0.0.1, a free port), stopped after the test."""
    _Photos.served = []
    _Photos.release = threading.Event()
    with local_server(_Photos, release=_Photos.release.set) as url:
        yield url


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(samples.CACHE_ENV, str(folder))
    monkeypatch.delenv(samples.OFFLINE_ENV, raising=False)
    return folder


def test_the_photo_is_the_grad_cam_authors_and_credited():
    assert (
        samples.ARTICLE_PHOTO_URL
        == "https://raw.githubusercontent.com/ramprs/grad-cam/master/images/cat_dog.jpg"
    )
    assert "ramprs/grad-cam" in samples.ARTICLE_PHOTO_CREDIT
    assert "images/cat_dog.jpg" in samples.ARTICLE_PHOTO_CREDIT


def test_downloaded_once_then_read_from_the_cache(server, cache, monkeypatch):
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server + "/cat_dog.jpg")
    first = samples.load_article_photo(timeout=5)
    expected = load_image(_jpeg())
    assert first.image is not None and first.image.shape == (120, 160, 3)
    np.testing.assert_array_equal(first.image, expected)
    assert first.note.startswith(f"downloaded from {server}/cat_dog.jpg, cached at {cache}")
    (cached,) = (cache / "article_photo").iterdir()
    assert cached.name.endswith("-cat_dog.jpg") and cached.read_bytes() == _jpeg()
    assert _Photos.served == ["/cat_dog.jpg"]
    second = samples.load_article_photo(timeout=5)  # no request: the cache
    assert _Photos.served == ["/cat_dog.jpg"] and second.note == f"the photo cached at {cached}"
    np.testing.assert_array_equal(second.image, expected)
    np.testing.assert_array_equal(samples.article_photo(), expected)
    # the switch that forbids downloads still reads the cache
    monkeypatch.setenv(samples.OFFLINE_ENV, "1")
    np.testing.assert_array_equal(samples.article_photo(), expected)
    assert _Photos.served == ["/cat_dog.jpg"]


def test_a_server_that_does_not_answer_gives_none_within_the_timeout(server, cache, monkeypatch):
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server + "/slow.jpg")
    started = time.monotonic()
    got = samples.load_article_photo(timeout=1.0)
    took = time.monotonic() - started
    assert got.image is None and 0.9 <= took < 3.0, took
    assert got.note.startswith("offline or unreachable:") and "within 1 s" in got.note, got.note
    assert "\n" not in got.note and not (cache / "article_photo").exists()  # nothing cached


def test_a_page_that_is_not_a_photo_is_refused_and_not_cached(server, cache, monkeypatch):
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server + "/page.html")
    got = samples.load_article_photo(timeout=5)
    assert got.image is None and got.note.startswith("offline or unreachable:"), got.note
    assert _Photos.served == ["/page.html"] and not (cache / "article_photo").exists()


def test_offline_switch_and_no_cache_make_no_request(server, cache, monkeypatch):
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server + "/cat_dog.jpg")
    monkeypatch.setenv(samples.OFFLINE_ENV, "1")
    got = samples.load_article_photo(timeout=5)
    assert got == (None, "not downloaded: CAM_WIDGETS_OFFLINE=1") and _Photos.served == []


def test_a_damaged_cache_is_downloaded_again(server, cache, monkeypatch):
    url = server + "/cat_dog.jpg"
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, url)
    damaged = samples._cached_path(url)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\xff\xd8 half a jpeg")
    got = samples.load_article_photo(timeout=5)
    assert got.image is not None and got.note.startswith("downloaded from")
    assert damaged.read_bytes() == _jpeg() and _Photos.served == ["/cat_dog.jpg"]


def _compare_cell(name: str) -> str:
    import nbformat

    nb = nbformat.read(str(_notebooks() / name), as_version=4)
    (source,) = [c.source for c in nb.cells if c.cell_type == "code" and "load_article_photo" in c.source]
    return source


def _notebooks():
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "notebooks"


def test_the_quickstart_runs_the_classic_pair_with_the_photo_and_says_why_without(
    server, cache, monkeypatch, capsys
):
    """Online (here: the local server) the quickstart's Compare is boxer vs tiger cat on the
    authors' photo, credited; offline, today's pair on the bundled cat, and the reason."""
    pytest.importorskip("ipywidgets")
    source = _compare_cell("00_quickstart.ipynb")
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server + "/cat_dog.jpg")
    # the chapter's section line comes from its first cell, not run here
    online: dict = {"section": lambda title: None, "done": lambda: None}
    exec(compile(source, "00_quickstart", "exec"), online)  # noqa: S102 - the notebook's own cell
    said = capsys.readouterr().out
    compare = online["compare"]
    try:
        assert compare.state.values == (242, 282) and compare.state.image == "yours:cat_dog.jpg"
        assert samples.ARTICLE_PHOTO_CREDIT in said and "downloaded from" in said
    finally:
        compare.close()
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server.rsplit(":", 1)[0] + ":9/cat_dog.jpg")
    offline: dict = {"section": lambda title: None, "done": lambda: None}
    exec(compile(source, "00_quickstart", "exec"), offline)  # noqa: S102
    said = capsys.readouterr().out
    compare = offline["compare"]
    try:
        assert compare.state.values == (285, 282) and compare.state.image == "chelsea"
        assert said.startswith("The Grad-CAM photo is not here (offline or unreachable:"), said
    finally:
        compare.close()


def test_chapter_02_takes_the_photo_online_and_says_why_not_offline(server, cache, monkeypatch, capsys):
    """Chapter 02's first cells: online (the local server) boxer 242 vs tiger cat 282 on the
    authors' photo, credited; offline the bundled scene's pair, and the reason."""
    import nbformat

    nb = nbformat.read(str(_notebooks() / "02_guided_gradcam.ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    first = next(k for k, s in enumerate(code) if "load_article_photo" in s)
    source = "\n".join(code[first : first + 2])  # the photo, then the models and the classes
    stubs = {"section": lambda title: None, "done": lambda: None}  # (the section line: a browser's)
    source = source.replace("from cam_widgets.chapter_progress import done, section", "")
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server + "/cat_dog.jpg")
    online = dict(stubs)
    exec(compile(source, "02_guided_gradcam", "exec"), online)  # noqa: S102 - the notebook's own cells
    said = capsys.readouterr().out
    assert online["CLASSES"] == (242, 282) and online["PHOTO"] is not None
    assert samples.ARTICLE_PHOTO_CREDIT in said and "downloaded from" in said
    monkeypatch.setenv(samples.ARTICLE_PHOTO_URL_ENV, server.rsplit(":", 1)[0] + ":9/cat_dog.jpg")
    offline = dict(stubs)
    exec(compile(source, "02_guided_gradcam", "exec"), offline)  # noqa: S102
    said = capsys.readouterr().out
    assert offline["CLASSES"] == (282, 967) and offline["PHOTO"] is None
    assert "the bundled two_class scene: the Grad-CAM photo is not here (offline or unreachable:" in said
