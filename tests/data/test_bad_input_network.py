"""Issue 17, networks that trickle: the timeout bounds the whole download (connection,
headers, every read), and malformed addresses are one-line errors before any connection."""

from __future__ import annotations

import http.server
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from cam_widgets.data import load_image
from cam_widgets.errors import InvalidImageError, InvalidParameterError
from http_helpers import local_server


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(32 * 48 * 3, dtype=np.uint8).reshape(32, 48, 3)).save(buf, "PNG")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    stop = threading.Event()  # set when the test ends: every trickle stops

    def do_GET(self):  # noqa: N802
        payload = _png()
        try:
            if self.path == "/body":  # headers at once, then a byte every half second
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.flush()
                self._trickle(payload)
            elif self.path == "/headers":  # even the status line comes a byte at a time
                self._trickle(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\n\r\n" + payload)
            elif self.path == "/whole":
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/body")
                self.end_headers()
        except OSError:  # the client hung up: what the deadline is for
            pass

    def _trickle(self, data: bytes) -> None:
        """A byte every 0.5 s, for 6 s at most (then the connection closes): a client that
        does not keep its deadline fails the test's timing instead of hanging it."""
        for i in range(min(len(data), 12)):
            if self.stop.wait(0.5):
                return
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.stop.clear()
    with local_server(_Handler, release=_Handler.stop.set) as url:
        yield url


@pytest.mark.parametrize("path", ["/body", "/headers", "/redirect"])
def test_a_trickling_server_is_cut_off_at_the_deadline(server, path):
    started = time.monotonic()
    with pytest.raises(InvalidImageError) as info:
        load_image(server + path, timeout=1.5)
    took = time.monotonic() - started
    message = str(info.value)
    assert 1.4 <= took < 3.5, took  # the deadline, not a per-read timeout (which never fires)
    assert "\n" not in message and "within 1.5 s" in message and server + path in message
    if path == "/body":  # the bytes that came are said; a byte every 0.5 s: 1 to 4 of them
        assert "received only" in message and " bytes from" in message


def test_no_download_thread_is_left_reading_after_the_deadline(server):
    with pytest.raises(InvalidImageError):
        load_image(server + "/body", timeout=1.0)
    deadline = time.monotonic() + 3
    while any(t.name == "cam_widgets-fetch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the download thread kept reading"
        time.sleep(0.05)


def test_a_server_that_answers_at_once_is_still_read(server):
    expected = np.arange(32 * 48 * 3, dtype=np.uint8).reshape(32, 48, 3)
    assert np.array_equal(load_image(server + "/whole", timeout=5), expected)


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://", "no host name"),
        ("https://", "no host name"),
        ("http:///x.png", "no host name"),
        ("http://user@/x.png", "no host name"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://host:99999/", "Port out of range"),
        ("http://127.0.0.1:0/x.png", "port 0"),
        ("http://host:-1/", "Port could not be cast"),
        ("http://host:abc/", "Port could not be cast"),
        ("http://a b/x.png", "spaces or control characters"),
        ("http://host/x\n.png", "spaces or control characters"),
        ("http://host/\x00.png", "spaces or control characters"),
    ],
)
def test_malformed_urls_are_one_line_before_any_connection(url, why):
    started = time.monotonic()
    with pytest.raises(InvalidImageError) as info:
        load_image(url, timeout=5)
    message = str(info.value)
    assert time.monotonic() - started < 1.0  # no name lookup, no connection
    assert message.startswith("Malformed image URL") and why in message and "\n" not in message


def test_other_schemes_and_long_urls_are_one_short_line():
    with pytest.raises(InvalidImageError, match="Unsupported URL scheme 'ftp'"):
        load_image("ftp://x")
    with pytest.raises(InvalidImageError) as info:
        load_image("http://" + "a" * 5000 + ":99999/", timeout=5)
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e300, -1, 0, "5", True])
def test_timeouts_that_cannot_bound_a_download_are_refused(timeout):
    with pytest.raises(InvalidParameterError, match="Invalid timeout"):
        load_image("http://127.0.0.1:9/x.png", timeout=timeout)
