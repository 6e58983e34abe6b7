"""Distributed variables set without a launcher end in one line within seconds, never a hang
(issue 17): WORLD_SIZE without RANK, nonsense values, a rendezvous nobody joins."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from cam_widgets.errors import InvalidParameterError
from cam_widgets.metrics.distributed import launcher_environment


@pytest.mark.parametrize(
    "env, words",
    [
        ({"WORLD_SIZE": "2"}, "RANK is not"),
        ({"WORLD_SIZE": "two"}, "whole number"),
        ({"WORLD_SIZE": "0"}, "1 or more"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "Invalid RANK: expected a rank in [0, WORLD_SIZE=2), received 2."),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR is not"),
        ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1"}, "MASTER_PORT is not"),
        ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "x"}, "whole number"),
    ],
)
def test_launcher_variables_are_checked_in_one_line(env, words):
    with pytest.raises(InvalidParameterError) as info:
        launcher_environment(env)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_launcher_environment_is_read():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29500"}
    assert launcher_environment(env) == (4, 3, 1)
    assert launcher_environment({}) == (1, 0, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rendezvous_nobody_joins_ends_in_one_line_within_its_deadline(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (32, 32), (120, 90, 60)).save(root / "one.png")
    env = dict(
        os.environ,
        WORLD_SIZE="2",
        RANK="0",
        LOCAL_RANK="0",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        CAM_WIDGETS_RENDEZVOUS_SECONDS="3",
    )
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cam_widgets.metrics",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "r.jsonl"),
            "--device",
            "cpu",
            "--num-workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: rank 0 of 2 could not join"), done.stderr[-2000:]
    assert time.monotonic() - started < 200  # (3 s of rendezvous, the rest is imports and a model)


def test_the_join_deadline_is_for_joining_only_not_for_the_run(tmp_path):
    """A rank done long before another waits for it at the end: the short deadline is the
    meeting's, the run keeps torch's own timeout (a 3 s deadline, a rank 8 s late to the
    final barrier)."""
    script = tmp_path / "ranks.py"
    script.write_text(
        "import sys, time\n"
        "import torch.distributed as dist\n"
        "from cam_widgets.metrics.distributed import join\n"
        "rank = int(sys.argv[1])\n"
        "join('gloo', 2, rank)\n"
        "time.sleep(8 if rank == 1 else 0)\n"
        "dist.barrier()\n"
        "print('ok', rank)\n"
        "dist.destroy_process_group()\n"
    )
    env = dict(
        os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), CAM_WIDGETS_RENDEZVOUS_SECONDS="3"
    )
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), str(r)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for r in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=120) for p in ranks]
    finally:
        for p in ranks:
            p.kill()
    assert [p.returncode for p in ranks] == [0, 0], [o[1][-1500:] for o in outs]
    assert [o[0].strip() for o in outs] == ["ok 0", "ok 1"]


def test_a_bad_rendezvous_setting_is_one_line():
    env = {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
        "CAM_WIDGETS_RENDEZVOUS_SECONDS": "abc",
    }
    with pytest.raises(InvalidParameterError, match="CAM_WIDGETS_RENDEZVOUS_SECONDS"):
        launcher_environment(env)
