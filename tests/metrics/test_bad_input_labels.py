"""Issue 17, evaluate's labels files: Excel's "CSV UTF-8" (a BOM and a header) is read as
meant; latin-1 or UTF-16 bytes, other separators, infinite or NaN boxes, odd class ids and
special files are one line each; an error inside a DataLoader worker prints the same one
line as without workers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cam_widgets import Explainer
from cam_widgets.errors import CamWidgetsError, InvalidImageError, InvalidParameterError, one_line
from cam_widgets.metrics.evaluate import ImageFolderDataset, evaluate
from conftest import TinyNet


def _explainer() -> Explainer:
    return Explainer(TinyNet(), input_size=(8, 8), labels=["a", "b", "c"], device="cpu")


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("one.png", "two.png", "café.png"):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(tmp_path / name)
    return tmp_path


def _labels(root, data: bytes):
    path = root / "labels.csv"
    path.write_bytes(data)
    return ImageFolderDataset(root, _explainer(), labels=path)


def test_excel_csv_utf8_with_bom_and_header_is_read_as_meant(root):
    text = "path,class_id,x0,y0,x1,y1\r\none.png,b,1,2,9,10\r\ncafé.png,2,0,0,4,4\r\n"
    dataset = _labels(root, "\ufeff".encode() + text.encode("utf-8"))
    assert dataset.paths == ["café.png", "one.png"]  # the header is not a row, é is é
    # the box in pixels of the 16x12 image, scaled to the 8x8 model input
    found = dataset.annotation(1)
    assert found["class_id"] == 1 and len(found["boxes"]) == 1
    assert found["boxes"][0] == pytest.approx((1 * 8 / 16, 2 * 8 / 12, 9 * 8 / 16, 10 * 8 / 12))
    assert dataset.annotation(0)["class_id"] == 2


@pytest.mark.parametrize("header", ["Image,Label", "file,class", "filename,class_id", "name,label"])
def test_other_header_spellings(root, header):
    assert _labels(root, f"{header}\none.png,0\n".encode()).paths == ["one.png"]


def test_a_full_width_digit_is_the_id_int_reads(root):
    assert _labels(root, "one.png,\uff12\n".encode()).annotation(0)["class_id"] == 2


def test_a_header_after_a_comment_line_is_still_a_header(root):
    assert _labels(root, b"# made by hand\npath,class_id\ntwo.png,1\n").paths == ["two.png"]


@pytest.mark.parametrize(
    "data, message",
    [
        (
            "path,class_id\none.png,0\ncafé.png,1\n".encode("latin-1"),
            "labels.csv line 3 is not UTF-8 text (byte 0xe9",
        ),
        ("path,class_id\none.png,0\n".encode("utf-16"), "is UTF-16 text"),
        (b"path;class_id\none.png;0\n", "Invalid labels row (labels.csv line 1): expected 'path,class_id'"),
        (b"one.png\t0\n", "separated by '\\t'"),
        (
            b"one.png,0,0,0,inf,10\n",
            "line 1): expected finite numbers of pixels, received ['0', '0', 'inf', '10']",
        ),
        (b"one.png,0,nan,0,4,10\n", "line 1): expected finite numbers of pixels"),
        (b"one.png,0,0,0,1e999,10\n", "line 1): expected finite numbers of pixels"),
        (b"one.png,0,-inf,0,4,10\n", "line 1): expected finite numbers of pixels"),
        (b"one.png,0,0,0,x,10\n", "expected numbers x0,y0,x1,y1, received ['0', '0', 'x', '10']"),
        (b"one.png,0,5,0,4,10\n", "expected x1 > x0 and y1 > y0, received (5.0, 0.0, 4.0, 10.0)"),
        ("one.png,\u00b2\n".encode(), "Unknown class name '\u00b2'"),  # isdigit() but not int()
        (b"one.png,7\n", "0..2"),
        (
            b"one.png,0\none.png,1\n",
            "line 2): expected class 0, which 'one.png' already has, received class 1",
        ),
        (b"missing.png,0\n", "line 1: image 'missing.png' not found"),
        (b"one.png,0,1,2\n", "received 4 fields"),
        (b'one.png,"0\n', "line 2 is not CSV"),  # an unclosed quote to the end of the file
    ],
)
def test_bad_labels_files_are_one_line(root, data, message):
    with pytest.raises(InvalidParameterError) as info:
        _labels(root, data)
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_field_too_large_for_csv_is_one_line(root):
    with pytest.raises(InvalidParameterError, match=r"labels.csv line \d+ is not CSV \(field larger"):
        _labels(root, b'"' + b"x" * 200_000 + b'",0\n')


def test_special_labels_files_and_listed_images_are_refused_without_blocking(root):
    fifo = root / "pipe.csv"
    os.mkfifo(fifo)
    os.mkfifo(root / "pipe.png")
    code = (
        "import sys\n"
        "from cam_widgets import Explainer\n"
        "from cam_widgets.metrics.evaluate import ImageFolderDataset\n"
        "from conftest import TinyNet\n"
        "ex = Explainer(TinyNet(), input_size=(8, 8), labels=list('abc'), device='cpu')\n"
        "for labels in sys.argv[2:]:\n"
        "    try:\n"
        "        ImageFolderDataset(sys.argv[1], ex, labels=labels)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    (root / "lists_pipe.csv").write_bytes(b"pipe.png,0\n")
    (root / "lists_zero.csv").write_bytes(b"/dev/zero,0\n")
    tests = os.path.dirname(os.path.dirname(__file__))
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                str(root),
                str(fifo),
                str(root),
                str(root / "lists_pipe.csv"),
                str(root / "lists_zero.csv"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tests,
            env=dict(os.environ, PYTHONPATH=tests),
        )
    except subprocess.TimeoutExpired:
        pytest.fail("reading a labels FIFO blocked")
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4, done.stdout + done.stderr[-2000:]
    assert "'the labels CSV' " not in lines[0]
    assert lines[0].startswith("InvalidParameterError the labels CSV") and "is a named pipe" in lines[0]
    assert lines[1].startswith("InvalidParameterError the labels CSV") and "is a folder" in lines[1]
    assert "line 1): expected an image file, received 'pipe.png', which is a named pipe (FIFO)" in lines[2]
    assert "line 1): expected an image file, received '/dev/zero', which is a character device" in lines[3]


# ------------------------------------------------------------------ DataLoader workers
def test_a_worker_error_is_the_same_one_line_as_without_workers(root):
    (root / "broken.png").write_bytes(b"not an image")
    explainer = _explainer()
    dataset = ImageFolderDataset(root, explainer)
    messages = []
    for workers in (0, 2):
        with pytest.raises(InvalidImageError) as info:
            evaluate(
                explainer,
                dataset,
                out=root / f"w{workers}.jsonl",
                target="top1",
                num_workers=workers,
                batch_size=2,
                metrics=("average_drop",),
            )
        messages.append(one_line(info.value))
    assert messages[0] == messages[1] and messages[0].startswith("Not an image: ")
    assert "broken.png" in messages[0] and "\n" not in messages[0]


def test_one_line_keeps_ordinary_messages():
    assert one_line(InvalidParameterError("plain message")) == "plain message"
    assert one_line(CamWidgetsError("two\nlines ")) == "two lines"
    wrapped = InvalidImageError(
        "Caught InvalidImageError in DataLoader worker process 1.\nOriginal Traceback (most "
        'recent call last):\n  File "x.py", line 3, in f\n    raise e\n'
        "cam_widgets.errors.InvalidImageError: Not an image: it: is not.\n"
    )
    assert one_line(wrapped) == "Not an image: it: is not."


def test_the_cli_prints_one_line_for_a_worker_error(tmp_path):
    """``cam-widgets evaluate --num-workers 2`` and ``0``: the same single line, exit 2."""
    from cam_widgets.data import sample_image

    Image.fromarray(sample_image("chelsea")).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    outputs = []
    for workers in ("0", "2"):
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cam_widgets",
                    "evaluate",
                    "--root",
                    str(tmp_path),
                    "--out",
                    str(tmp_path / f"r{workers}.jsonl"),
                    "--target",
                    "top1",
                    "--metrics",
                    "average_drop",
                    "--batch-size",
                    "2",
                    "--num-workers",
                    workers,
                    "--device",
                    "cpu",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the evaluation did not end")
        assert done.returncode == 2, done.stderr[-2000:]
        outputs.append(done.stderr)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 1
    assert outputs[0].startswith("error: Not an image: ") and "b.png" in outputs[0]
