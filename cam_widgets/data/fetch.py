"""Downloading an image URL with a per-operation and an overall timeout and a size limit."""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from typing import List

from cam_widgets.errors import InvalidImageError


def fetch_bytes(url: str, timeout: float, max_bytes: int) -> bytes:
    """Download ``url`` with a per-operation and overall timeout and a size limit."""
    hint = " Hint: download the image and pass the local file path instead."
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "cam_widgets"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise InvalidImageError(
                    f"Download too large: expected at most {max_bytes} bytes, received a"
                    f" Content-Length of {length} bytes for {url!r}.{hint}"
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
                        f"Download too large: expected at most {max_bytes} bytes, received more"
                        f" from {url!r}.{hint}"
                    )
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise InvalidImageError(
                        f"URL could not be fetched: expected the download to finish within"
                        f" {timeout:g} s, received only {total} bytes from {url!r}.{hint}"
                    )
            return b"".join(chunks)
    except InvalidImageError:
        raise
    except urllib.error.HTTPError as exc:
        raise InvalidImageError(
            f"URL could not be fetched: expected an image at {url!r}, received HTTP {exc.code}"
            f" {exc.reason}.{hint}"
        ) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InvalidImageError(
            f"URL could not be fetched: expected a reachable http(s) URL within {timeout:g} s,"
            f" received {url!r} ({str(reason)[:80] or type(exc).__name__}).{hint}"
        ) from None
