"""A local HTTP server for the tests that fetch (URLs, the article photo): 127.0.0.1 only, a
free port, threads that never outlive the test."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def local_server(handler: type, release: Callable[[], None] = lambda: None) -> Iterator[str]:
    """Serve ``handler`` (a BaseHTTPRequestHandler class) on 127.0.0.1; yields the base URL.
    At the end ``release()`` first (lets handlers that wait or trickle return), then the
    server is shut down, closed and its thread joined (bounded)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
