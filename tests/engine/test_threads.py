"""Torch CPU threads per kernel: the cgroup's CPU quota (Binder), one in an app kernel,
CAM_WIDGETS_THREADS over both."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cam_widgets.engine.device import cpu_quota, cpu_threads


@pytest.mark.parametrize(
    "available, quota, app, override, expected",
    [
        (8, None, False, None, 8),  # nothing known: torch's own choice
        (8, 1.0, False, None, 1),  # Binder: 1 CPU granted, 8 cores visible
        (8, 2.5, False, None, 2),
        (8, 0.5, False, None, 1),  # never fewer than one
        (2, 4.0, False, None, 2),  # never more than torch saw
        (2, None, True, None, 1),  # a Voila kernel: one of many on the server
        (2, None, True, "2", 2),  # the override wins
        (2, 1.0, False, "3", 3),
        (2, None, False, "zero", 2),  # not a whole number >= 1: ignored
        (2, None, False, "0", 2),
    ],
)
def test_thread_policy(available, quota, app, override, expected):
    assert cpu_threads(available, quota, app, override) == expected


def test_cgroup_quota_files(tmp_path):
    v2, v1 = tmp_path / "cpu.max", tmp_path / "cpu.cfs_quota_us"
    v2.write_text("150000 100000\n")
    assert cpu_quota(str(v2), str(v1)) == 1.5
    v2.write_text("max 100000\n")
    assert cpu_quota(str(v2), str(v1)) is None
    v2.unlink()
    v1.write_text("50000\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(str(v2), str(v1)) == 0.5
    v1.write_text("-1\n")
    assert cpu_quota(str(v2), str(v1)) is None
    assert cpu_quota(str(tmp_path / "none"), str(tmp_path / "none")) is None


@pytest.mark.parametrize("env, expected", [({"VOILA_KERNEL_ID": "k"}, 1), ({"CAM_WIDGETS_THREADS": "1"}, 1)])
def test_an_engine_sets_the_threads_in_its_process(env, expected):
    code = (
        "import torch; from torch import nn; from cam_widgets.engine import Engine; "
        "torch.set_num_threads(2); Engine(nn.Conv2d(3, 2, 1), device='cpu'); "
        "print(torch.get_num_threads())"
    )
    import os

    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CAM_WIDGETS_THREADS", "VOILA_KERNEL_ID", "VOILA_BASE_URL")
    }
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**clean, **env}
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == str(expected)
