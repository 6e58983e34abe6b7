"""The benchmark script runs end to end and prints its table (a smoke run, not a timing)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_engine.py"


@pytest.mark.slow
def test_benchmark_quick_run_prints_the_table(tmp_path):
    pytest.importorskip("pytorch_grad_cam")
    pytest.importorskip("captum")
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--repeats",
            "1",
            "--smooth-samples",
            "4",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert "| case | median ms |" in text
    for row in (
        "forward (no_grad)",
        "ours Grad-CAM, fresh image",
        "class switch",
        "top-5 classes",
        "pytorch-grad-cam GradCAM",
        "captum LayerGradCam",
        "ours SmoothGrad n=4",
        "captum NoiseTunnel",
        "sequential loop n=4",
        "Guided Backprop",
        "RSS growth",
    ):
        assert row in text, row
    assert "| bar | measured | result |" in text
    assert text.count("**PASS**") + text.count("**FAIL**") == 6
    assert out.read_text().strip() == text.strip()
