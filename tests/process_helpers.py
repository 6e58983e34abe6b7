"""Running a child process in a test: every one must end (a hang fails, it does not stall the suite)."""

from __future__ import annotations

import subprocess

import pytest


def run_bounded(args, timeout=60, **kwargs):
    """A command that must end: a hang is a failure after ``timeout`` seconds, not a hung suite."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args[:4]}... still running after {timeout} s (blocked on a special file?)")
