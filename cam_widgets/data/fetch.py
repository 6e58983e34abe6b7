"""Downloading an image URL with a per-operation and an overall timeout and a size limit."""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from typing import List

from cam_widgets.errors import InvalidImageError


#: Read in the widgets' status line too (which has no path field): plain words, one line.
HINT = " Hint: download the image, then use the upload button (in Python: pass its file path)."


def size_text(size: int) -> str:
    """"20.0 MB" / "512 bytes": a size in words."""
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def fetch_bytes(url: str, timeout: float, max_bytes: int) -> bytes:
    """Download ``url`` with a per-operation and overall timeout and a size limit."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "cam_widgets"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise InvalidImageError(
                    f"Image at {url!r} is too large: expected at most {size_text(max_bytes)},"
                    f" received the announced size {size_text(int(length))}.{HINT}"
                )
            chunks: List[bytes] = []
            total = 0
            while True:
                chunk = response.read(65536)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise InvalidImageError(
                        f"Image at {url!r} is too large: expected at most {size_text(max_bytes)},"
                        f" received more.{HINT}"
                    )
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise InvalidImageError(
                        f"Image URL could not be fetched: expected the whole image within"
                        f" {timeout:g} s, received only {size_text(total)} from {url!r}.{HINT}"
                    )
            return b"".join(chunks)
    except InvalidImageError:
        raise
    except urllib.error.HTTPError as exc:
        raise InvalidImageError(
            f"Image URL could not be fetched: expected an image at {url!r}, received HTTP"
            f" {exc.code} {exc.reason}.{HINT}"
        ) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InvalidImageError(
            f"Image URL could not be fetched: expected an http(s) address reachable within"
            f" {timeout:g} s, received {url!r} ({str(reason)[:80] or type(exc).__name__}).{HINT}"
        ) from None
