"""Downloading an image URL within one total deadline and a size limit.

``timeout`` bounds the whole download: name lookup, connection, TLS, headers and every read.
A socket timeout alone bounds each operation only, so a server that sends a byte every half
second kept a read going for ever; here the download runs in a daemon thread, the caller
waits for it until the deadline, and at the deadline the connection is shut down (which ends
a blocked read at once) and the caller gets a one-line :class:`InvalidImageError`.
Malformed addresses (no host, a bad port, spaces, a broken IPv6 literal) are refused before
any connection, with one line too.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from cam_widgets.errors import InvalidImageError, Received, expected

#: Read in the widgets' status line too (which has no path field): plain words, one line.
HINT = "download the image, then use the upload button (in Python: pass its file path)"


def size_text(size: int) -> str:
    """ "20.0 MB" / "512 bytes": a size in words."""
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _shown(url: str) -> str:
    """The URL as an error shows it: quoted, one line, at most ~100 characters."""
    text = repr(url)
    return text if len(text) <= 100 else text[:97] + "...'"


def check_url(url: str) -> None:
    """Refuse an address that cannot be fetched, before any connection (one line)."""
    problem = None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError: not a number, or out of 0..65535
    except ValueError as exc:
        problem = str(exc) or "malformed"
    else:
        if parts.scheme.lower() not in ("http", "https"):
            problem = f"the scheme is {parts.scheme!r}"
        elif not parts.hostname:
            problem = "no host name"
        elif port == 0:
            problem = "port 0"
        elif any(ord(c) <= 32 or ord(c) == 127 for c in url):
            problem = "spaces or control characters (write a space as %20)"
    if problem is not None:
        raise InvalidImageError(
            expected(
                "image URL",
                "an address such as 'https://host/cat.jpg'",
                Received(f"{_shown(url)} ({problem})"),
                HINT,
                problem="Malformed image URL",
            )
        )


class _Sockets:
    """The sockets of one download, shut down at its deadline (a blocked read then ends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.closed = False

    def add(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._open.append(sock)
            if self.closed:
                _shutdown(sock)
        return sock

    def shut(self) -> None:
        with self._lock:
            self.closed = True
            for sock in self._open:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:  # the plain socket's shutdown (an SSL socket's would talk TLS from this thread)
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _watched(base: type, sockets: _Sockets) -> type:
    """An ``http.client`` connection class whose sockets ``sockets`` can shut down."""

    class Watched(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            create = self._create_connection
            self._create_connection = lambda *a, **k: sockets.add(create(*a, **k))

    return Watched


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self.sockets = sockets

    def http_open(self, req):
        return self.do_open(_watched(http.client.HTTPConnection, self.sockets), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self.sockets = sockets

    def https_open(self, req):
        return self.do_open(_watched(http.client.HTTPSConnection, self.sockets), req, context=self._context)


class _Download:
    """One download's state, shared by the caller and the thread that reads."""

    def __init__(self, url: str, timeout: float, max_bytes: int) -> None:
        self.url, self.timeout, self.max_bytes = url, timeout, max_bytes
        self.deadline = time.monotonic() + timeout
        self.sockets = _Sockets()
        self.received = 0
        self.data: bytes | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.data = self._read()
        except BaseException as exc:  # handed to the caller's thread, raised there
            self.error = exc
        finally:
            self.done.set()

    def _read(self) -> bytes:
        opener = urllib.request.build_opener(_HTTP(self.sockets), _HTTPS(self.sockets))
        request = urllib.request.Request(self.url, headers={"User-Agent": "cam_widgets"})
        with opener.open(request, timeout=self.timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
                raise InvalidImageError(
                    expected(
                        "image size",
                        f"at most {size_text(self.max_bytes)}",
                        Received(f"the announced size {size_text(int(length))}"),
                        HINT,
                        problem=f"Image at {_shown(self.url)} is too large",
                    )
                )
            chunks: list[bytes] = []
            while not self.sockets.closed:
                chunk = response.read1(65536)  # what one read gives: the deadline is checked
                if not chunk:
                    break
                self.received += len(chunk)
                if self.received > self.max_bytes:
                    raise InvalidImageError(
                        expected(
                            "image size",
                            f"at most {size_text(self.max_bytes)}",
                            Received("more"),
                            HINT,
                            problem=f"Image at {_shown(self.url)} is too large",
                        )
                    )
                chunks.append(chunk)
            return b"".join(chunks)


def fetch_bytes(url: str, timeout: float, max_bytes: int) -> bytes:
    """The bytes at ``url``: within ``timeout`` seconds in all and at most ``max_bytes``."""
    check_url(url)
    download = _Download(url, timeout, max_bytes)
    worker = threading.Thread(target=download.run, name="cam_widgets-fetch", daemon=True)
    worker.start()
    if not download.done.wait(timeout):
        download.sockets.shut()
        download.done.wait(1.0)  # a read ends at once; a name lookup may not: left behind
        raise InvalidImageError(
            expected(
                "download",
                f"the whole image within {timeout:g} s",
                Received(f"only {size_text(download.received)} from {_shown(url)}"),
                HINT,
                problem="Image URL could not be fetched",
            )
        )
    if download.error is not None:
        raise _one_line(download.error, url, timeout) from None
    return download.data if download.data is not None else b""


def _one_line(exc: BaseException, url: str, timeout: float) -> BaseException:
    """The error a failed download raises in the caller's thread: always one line."""
    if isinstance(exc, InvalidImageError) or not isinstance(exc, Exception):
        return exc  # ours already, or KeyboardInterrupt / SystemExit as they are
    if isinstance(exc, urllib.error.HTTPError):
        return InvalidImageError(
            expected(
                "download",
                f"an image at {_shown(url)}",
                Received(f"HTTP {exc.code} {' '.join(str(exc.reason).split())[:80]}"),
                HINT,
                problem="Image URL could not be fetched",
            )
        )
    reason = getattr(exc, "reason", None) or exc
    text = " ".join(str(reason).split())[:80] or type(exc).__name__
    return InvalidImageError(
        expected(
            "download",
            f"an http(s) address reachable within {timeout:g} s",
            Received(f"{_shown(url)} ({text})"),
            HINT,
            problem="Image URL could not be fetched",
        )
    )
