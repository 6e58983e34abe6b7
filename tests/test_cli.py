"""The command line: outputs written, one-line errors with non-zero exit, no traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cam_widgets", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_explain_writes_png_npy_html(tmp_path):
    png, npy, html = tmp_path / "a.png", tmp_path / "a.npy", tmp_path / "a.html"
    done = cli("explain", "chelsea", "--class", "tiger cat", "--method", "gradcam++",
               "--out", str(png), "--out", str(npy), "--out", str(html))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["class_id"] == 282 and summary["layer"] == "features.8"
    heat = np.load(npy)
    assert heat.dtype == np.float32 and heat.shape == (224, 224)
    assert 0.0 <= heat.min() and heat.max() <= 1.0 and heat.max() == pytest.approx(1.0)
    assert Image.open(png).size == (224, 224)
    text = html.read_text()
    assert "plotly" in text.lower() and "heatmap" in text.lower() and len(text) > 1_000_000


def test_explain_a_file_with_smoothgrad(tmp_path):
    source = tmp_path / "gray.png"
    Image.fromarray((np.arange(64 * 80) % 255).astype(np.uint8).reshape(64, 80)).save(source)
    done = cli("explain", str(source), "--method", "vanilla", "--samples", "3", "--noise", "0.2",
               "--out", str(tmp_path / "v.npy"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["params"]["samples"] == 3


@pytest.mark.parametrize("args, fragment", [
    (["explain", "chelsea", "--class", "tigr cat", "--out", "x.png"], "tiger cat"),
    (["explain", "chelsea", "--layer", "features.88", "--out", "x.png"], "features.8"),
    (["explain", "chelsea", "--layer", "avgpool", "--out", "x.png"], "spatial"),
    (["explain", "missing.png", "--out", "x.png"], "not found"),
    (["explain", "chelsea", "--method", "gradcamm", "--out", "x.png"], "gradcam"),
    (["explain", "chelsea", "--out", "x.jpg"], ".png, .npy or .html"),
    (["explain", "chelsea", "--class", "1000", "--out", "x.png"], "0..999"),
    (["explain", "chelsea", "--model", "vgg61", "--out", "x.png"], "vgg16"),
    (["explain", "chelsea", "--device", "cpu", "--samples", "2", "--precision", "fp16",
      "--out", "x.png"], "needs a CUDA device"),
    (["explain", "chelsea", "--precision", "bf16", "--out", "x.png"], "SmoothGrad only"),
])
def test_errors_are_one_line(tmp_path, monkeypatch, capsys, args, fragment):
    from cam_widgets.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_error_process_exits_2_without_traceback(tmp_path):
    done = cli("explain", "chelsea", "--class", "zebraa", "--out", "x.png", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "zebra" in done.stderr


@pytest.mark.parametrize("args, fragment", [
    (["models"], "efficientnet_lite0"), (["layers", "efficientnet_lite0"], "1280 x 7x7  (default)"),
    (["classes", "boxer"], "242  boxer"), (["methods"], "gradcam++"), (["samples"], "chelsea"),
])
def test_listings(capsys, args, fragment):
    from cam_widgets.cli import main

    assert main(args) == 0
    assert fragment in capsys.readouterr().out


def test_evaluate_a_folder_and_resume(tmp_path, capsys):
    from cam_widgets.cli import main
    from cam_widgets.data import sample_image

    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        Image.fromarray(sample_image(name)).save(folder / f"{name}.png")
    out = tmp_path / "results.jsonl"
    args = ["evaluate", "--root", str(folder), "--out", str(out), "--methods", "gradcam",
            "--metrics", "average_drop", "--target", "top1"]
    assert main(args) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and {json.loads(l)["method"] for l in lines} == {"gradcam"}
    assert main(args) == 0  # resumed: nothing recomputed, nothing duplicated
    assert out.read_text().splitlines() == lines


def test_precision_choices_are_the_engines():
    """The CLI spells the precisions out (importing them would load torch for --help)."""
    from cam_widgets.cli import _parser
    from cam_widgets.methods.smoothgrad import PRECISIONS

    explain = _parser()._subparsers._group_actions[0].choices["explain"]
    (precision,) = [a for a in explain._actions if a.dest == "precision"]
    assert tuple(precision.choices) == tuple(PRECISIONS)
