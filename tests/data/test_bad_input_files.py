"""Issue 17, paths that are not regular files: a named pipe, a device, a folder, a socket given
as an image are refused from os.stat before anything opens them (open() on a FIFO blocks until
a writer comes, /dev/zero never ends). The candidates run in a subprocess with a timeout, so a
regression fails the test instead of hanging the suite."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading

import numpy as np
import pytest
from PIL import Image

from process_helpers import run_bounded

_LOAD = textwrap.dedent("""
    import json, sys
    from cam_widgets.data import load_image
    from cam_widgets.errors import CamWidgetsError
    out = {}
    for path in sys.argv[1:]:
        try:
            out[path] = ["ok", list(load_image(path).shape)]
        except CamWidgetsError as exc:
            out[path] = [type(exc).__name__, str(exc)]
    print(json.dumps(out))
""")


@pytest.fixture
def specials(tmp_path):
    """{name: path} of a FIFO, a folder named like an image, a socket, devices, a link to one."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    sock_path = tmp_path / "s.png"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(sock_path))
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    yield {
        "fifo": str(fifo),
        "folder": str(folder),
        "socket": str(sock_path),
        "zero": "/dev/zero",
        "null": "/dev/null",
        "link to /dev/zero": str(link),
    }
    sock.close()


def test_special_paths_are_refused_by_load_image_without_opening_them(specials, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(good)
    done = run_bounded([sys.executable, "-c", _LOAD, *specials.values(), str(good)])
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    kinds = {
        "fifo": "is a named pipe (FIFO)",
        "folder": "is a folder",
        "socket": "is a socket",
        "zero": "is a character device",
        "null": "is a character device",
        "link to /dev/zero": "is a character device",
    }
    for name, path in specials.items():
        kind, message = found[path]
        assert kind == "InvalidImageError" and "\n" not in message, (name, message)
        if name == "folder":
            assert "Image path is a folder" in message
        else:
            assert f"{path!r} {kinds[name]}: expected a regular file" in message, (name, message)
    assert found[str(good)] == ["ok", [20, 30, 3]]


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """The check and the open are two steps: the open itself must not block on a FIFO."""
    from cam_widgets.data import files
    from cam_widgets.errors import InvalidImageError

    fifo = tmp_path / "later.png"
    os.mkfifo(fifo)
    monkeypatch.setattr(files, "check_regular", lambda *a, **k: None)  # the race: check passed
    outcome = []

    def attempt():
        try:
            files.open_regular(fifo, "Image path", InvalidImageError).close()
            outcome.append("opened")
        except InvalidImageError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked in open(): a writer lets it go, then the test fails
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail("open_regular blocked on a FIFO")
    assert len(outcome) == 1 and "is a named pipe (FIFO): expected a regular file" in outcome[0]


def test_odd_path_strings_are_one_line(tmp_path):
    from cam_widgets.data import load_image
    from cam_widgets.errors import InvalidImageError

    for bad in ["x" * 5000 + ".png", str(tmp_path / ("y" * 300 + ".png"))]:
        with pytest.raises(InvalidImageError) as info:
            load_image(bad)
        assert "\n" not in str(info.value) and len(str(info.value)) < 600
