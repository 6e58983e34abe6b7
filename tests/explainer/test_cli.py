"""The command line: outputs written, one-line errors with non-zero exit, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "cam_widgets", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_explain_writes_png_npy_html(tmp_path):
    png, npy, html = tmp_path / "a.png", tmp_path / "a.npy", tmp_path / "a.html"
    done = cli(
        "explain",
        "chelsea",
        "--class",
        "tiger cat",
        "--method",
        "gradcam++",
        "--out",
        str(png),
        "--out",
        str(npy),
        "--out",
        str(html),
    )
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
    done = cli(
        "explain",
        str(source),
        "--method",
        "vanilla",
        "--samples",
        "3",
        "--noise",
        "0.2",
        "--out",
        str(tmp_path / "v.npy"),
        "--out",
        str(tmp_path / "v.png"),
        "--annotated",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["params"]["samples"] == 3
    width, height = Image.open(tmp_path / "v.png").size  # 224 a side, enlarged, plus title and bar
    assert width > 448 + 40 and height > 448 + 20


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["explain", "chelsea", "--class", "tigr cat", "--out", "x.png"], "tiger cat"),
        (["explain", "chelsea", "--layer", "features.88", "--out", "x.png"], "features.8"),
        (["explain", "chelsea", "--layer", "avgpool", "--out", "x.png"], "spatial"),
        (["explain", "missing.png", "--out", "x.png"], "not found"),
        (["explain", "chelsea", "--method", "gradcamm", "--out", "x.png"], "gradcam"),
        (
            ["explain", "chelsea", "--method", "vanilla", "--layer", "features.8", "--out", "x.png"],
            "reads no layer",
        ),
        (["explain", "chelsea", "--out", "x.jpg"], ".png, .npy or .html"),
        (["explain", "chelsea", "--class", "1000", "--out", "x.png"], "0..999"),
        (["explain", "chelsea", "--model", "vgg61", "--out", "x.png"], "vgg16"),
        (
            [
                "explain",
                "chelsea",
                "--device",
                "cpu",
                "--samples",
                "2",
                "--precision",
                "fp16",
                "--out",
                "x.png",
            ],
            "needs a CUDA device",
        ),
        (["explain", "chelsea", "--precision", "bf16", "--out", "x.png"], "SmoothGrad only"),
    ],
)
def test_errors_are_one_line(tmp_path, monkeypatch, capsys, args, fragment):
    from cam_widgets.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["explain", "chelsea", "--samples", "abc", "--out", "x.png"], "invalid int value: 'abc'"),
        (["explain", "chelsea"], "required: --out"),
        (["explian"], "invalid choice: 'explian'"),
        (["explain", "chelsea", "--device", "meta", "--out", "x.png"], "meta devices are not supported"),
    ],
)
def test_usage_errors_are_one_line_too(tmp_path, monkeypatch, capsys, args, fragment):
    from cam_widgets.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors exit from inside the parser
        code = exit_.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


def test_error_process_exits_2_without_traceback(tmp_path):
    done = cli("explain", "chelsea", "--class", "zebraa", "--out", "x.png", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "zebra" in done.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["models"], "efficientnet_lite0"),
        (["layers", "efficientnet_lite0"], "1280 x 7x7  (default)"),
        (["classes", "boxer"], "242  boxer"),
        (["methods"], "gradcam++"),
        (["samples"], "chelsea"),
    ],
)
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
    args = [
        "evaluate",
        "--root",
        str(folder),
        "--out",
        str(out),
        "--methods",
        "gradcam",
        "--metrics",
        "average_drop",
        "--target",
        "top1",
    ]
    assert main(args) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and {json.loads(line)["method"] for line in lines} == {"gradcam"}
    assert main(args) == 0  # resumed: nothing recomputed, nothing duplicated
    assert out.read_text().splitlines() == lines


def test_precision_choices_are_the_engines():
    """The CLI spells the precisions out (importing them would load torch for --help)."""
    from cam_widgets.cli import _parser
    from cam_widgets.methods.smoothgrad import PRECISIONS

    explain = _parser()._subparsers._group_actions[0].choices["explain"]
    (precision,) = [a for a in explain._actions if a.dest == "precision"]
    assert tuple(precision.choices) == tuple(PRECISIONS)


# ------------------------------------------------------------------ output paths
def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_output_under_a_file_is_one_line_error(tmp_path, capsys):
    from cam_widgets.cli import main

    existing = tmp_path / "existing.png"
    existing.write_bytes(b"not a folder")
    for out in (existing / "x.npy", existing / "sub" / "x.png"):
        assert main(["explain", "chelsea", "--out", str(out)]) == 2
        line = _one_error_line(capsys)
        assert str(out) in line and "existing.png' is a file, not a folder" in line
        assert "Not a directory" in line  # the OS reason
    assert existing.read_bytes() == b"not a folder"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_unwritable_output_is_one_line_error(capsys):
    from cam_widgets.cli import main

    assert main(["explain", "chelsea", "--out", "/proc/x.npy"]) == 2
    line = _one_error_line(capsys)
    assert "'/proc/x.npy'" in line and "cannot be written" in line
    assert "No such file or directory" in line or "Permission denied" in line


def test_unwritable_output_process_has_no_traceback(tmp_path):
    (tmp_path / "f.png").write_bytes(b"")
    done = cli("explain", "chelsea", "--out", "f.png/x.npy", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "f.png/x.npy" in done.stderr


def test_every_output_type_creates_its_folder(tmp_path, capsys):
    from cam_widgets.cli import main

    outs = [tmp_path / "a" / "b" / "x.NPY", tmp_path / "c" / "x.png", tmp_path / "d" / "e" / "x.html"]
    args = ["explain", "chelsea"]
    for out in outs:
        args += ["--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    assert all(out.is_file() for out in outs)  # x.NPY where it was asked for, not x.NPY.npy
    assert np.load(outs[0]).shape == (224, 224) and not (tmp_path / "a" / "b" / "x.NPY.npy").exists()


# ------------------------------------------------------------------ weights
@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """No torchvision weights on this machine, downloads disabled."""
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv("CAM_WIDGETS_OFFLINE", "1")
    return tmp_path


def _random_state_file(path, name):
    import torch
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    gen = torch.Generator().manual_seed(0)
    torch.save(
        {
            k: torch.rand(v.shape, generator=gen) * 0.01
            if v.is_floating_point()
            else torch.zeros(v.shape, dtype=v.dtype)
            for k, v in model.state_dict().items()
        },
        path,
    )
    return path


def test_layers_need_no_weight_file(empty_hub, capsys):
    from cam_widgets.cli import main

    assert main(["layers", "vgg16"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "features.29" in out and "512 x 14x14  (default)" in out
    assert not list(empty_hub.rglob("*.pth"))  # nothing was fetched


def test_weights_option_is_passed_to_the_loader(empty_hub, capsys):
    from cam_widgets.cli import main

    good = _random_state_file(empty_hub / "alexnet.pth", "alexnet")
    wrong = _random_state_file(empty_hub / "resnet18.pth", "resnet18")
    assert main(["layers", "alexnet", "--weights", str(good)]) == 0
    assert "features.11" in capsys.readouterr().out
    out = empty_hub / "alexnet.npy"
    assert (
        main(["explain", "chelsea", "--model", "alexnet", "--weights", str(good), "--out", str(out)]) == 0
    ), capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layer"] == "features.11"
    assert out.is_file()
    for command in (["layers", "alexnet"], ["explain", "chelsea", "--model", "alexnet", "--out", str(out)]):
        assert main(command + ["--weights", str(wrong)]) == 2
        line = _one_error_line(capsys)
        assert "does not match alexnet" in line and "resnet18.pth" in line
    assert main(["layers", "alexnet", "--weights", str(empty_hub / "missing.pth")]) == 2
    assert "missing.pth" in _one_error_line(capsys)


def test_missing_weights_error_names_the_option(empty_hub, capsys):
    from cam_widgets.cli import main

    assert main(["explain", "chelsea", "--model", "alexnet", "--out", str(empty_hub / "x.png")]) == 2
    assert "--weights PATH" in _one_error_line(capsys)


def test_misspelled_zoo_name_suggests_the_zoo_first(capsys):
    from cam_widgets.cli import main

    assert main(["layers", "efficentnet_lite0"]) == 2
    line = _one_error_line(capsys)
    assert "Did you mean 'efficientnet_lite0'" in line and "efficentnet_lite0" in line


# ------------------------------------------------------------------ classes
def test_classes_without_a_match_is_an_error(capsys):
    from cam_widgets.cli import main

    assert main(["classes", "zzzz"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no ImageNet class matches 'zzzz'")


def test_classes_finds_a_typo_word_by_word(capsys):
    from cam_widgets.cli import main

    assert main(["classes", "catt"]) == 0
    top = capsys.readouterr().out.splitlines()[:4]
    assert {line.split(None, 1)[1] for line in top} == {
        "tiger cat",
        "Persian cat",
        "Siamese cat",
        "Egyptian cat",
    }


def test_output_piped_into_a_reader_that_stopped_exits_quietly():
    """`cam-widgets methods | head -1` could end in a BrokenPipeError traceback: here the
    reader is gone before anything is written."""
    import os

    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cam_widgets", "methods"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == "", done.stderr


def test_version_and_the_evaluate_usage_name_the_command(capsys):
    from cam_widgets import __version__
    from cam_widgets.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"cam-widgets {__version__}"
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert capsys.readouterr().out.startswith("usage: cam-widgets evaluate")


def test_the_evaluation_module_runs_without_a_double_import_warning():
    """`torchrun -m cam_widgets.metrics.distributed` warned that the module was already
    imported (by the package): the documented entry is `-m cam_widgets.metrics`."""
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "cam_widgets.metrics", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m cam_widgets.metrics "), done
    assert "RuntimeWarning" not in done.stderr
