"""Issue 17, outputs: special targets (a folder, a FIFO, /dev/full, /dev/zero, a read-only
folder) are one line before any work and are never read as if to resume; writes go to a
temporary file renamed over the target when complete, so a write that fails midway leaves
the previous file byte-identical; appended JSON-lines records are cut back to their length
before a failed append."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from cam_widgets.data import files
from cam_widgets.errors import InvalidParameterError
from process_helpers import run_bounded


def _no_temporaries(folder) -> bool:
    return not [p for p in os.listdir(folder) if ".tmp" in p or p.endswith(".probe")]


def _cli(*args, cwd=None, timeout=300):
    return run_bounded([sys.executable, "-m", "cam_widgets", *args], timeout=timeout, cwd=cwd)


# ------------------------------------------------------------------ the helper
def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous content\n" * 100)
    before = target.read_bytes()
    for failure in (RuntimeError("writer bug"), OSError(errno.ENOSPC, "No space left on device")):
        with pytest.raises((RuntimeError, InvalidParameterError)) as info:
            with files.atomic_write(target, "wb") as handle:
                handle.write(b"x" * 5000)  # some bytes written, then the failure
                raise failure
        assert target.read_bytes() == before and _no_temporaries(tmp_path)
        assert "\n" not in str(info.value)
    assert "No space left on device" in str(info.value) and "out.bin" in str(info.value)
    with files.atomic_write(target, "w") as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n" and _no_temporaries(tmp_path)


def test_a_replaced_file_keeps_its_permissions_and_links_stay_links(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with files.atomic_write(link, "w") as handle:
        handle.write("through the link")
    assert link.is_symlink() and target.read_text() == "through the link"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    fresh = tmp_path / "fresh.txt"
    with files.atomic_write(fresh, "w") as handle:
        handle.write("x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize(
    "special, kind", [("/dev/full", "a character device"), ("/dev/null", "a character device")]
)
def test_devices_are_refused_as_outputs_and_left_alone(special, kind):
    if not os.path.exists(special):
        pytest.skip(f"no {special}")
    with pytest.raises(InvalidParameterError) as info:
        with files.atomic_write(special, "wb") as handle:
            handle.write(b"x")
    assert f"'{special}' is {kind}" in str(info.value)
    assert stat.S_ISCHR(os.stat(special).st_mode)  # still the device, not a file renamed over it


def test_folders_fifos_and_read_only_places_are_refused_as_outputs(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "dir.txt").mkdir()
    (tmp_path / "file").write_text("")
    cases = [
        (tmp_path / "pipe.txt", "is a named pipe (FIFO)"),
        (tmp_path / "dir.txt", "is a folder"),
        (tmp_path / "file" / "x.txt", "is a regular file, not a folder"),
    ]
    if sys.platform.startswith("linux"):
        cases.append(("/proc/cam_widgets_test.txt", "does not take a new file"))
    for path, fragment in cases:
        with pytest.raises(InvalidParameterError) as info:
            files.check_output(path)
        assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


# ------------------------------------------------------------------ the CLI's explain
@pytest.fixture
def specials(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "null.png").symlink_to("/dev/null")
    return tmp_path


def test_cli_refuses_special_outputs_before_any_model_is_built(specials):
    for name, kind in [
        ("pipe.png", "a named pipe (FIFO)"),
        ("dir.png", "a folder"),
        ("null.png", "a character device"),
    ]:
        done = _cli("explain", "chelsea", "--out", str(specials / name), timeout=60)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
        assert f"is {kind}, not a file" in done.stderr and "Traceback" not in done.stderr
    assert stat.S_ISFIFO(os.stat(specials / "pipe.png").st_mode)


def test_cli_refuses_special_images_before_any_model_is_built(specials):
    for image, kind in [
        (specials / "pipe.png", "a named pipe (FIFO)"),
        ("/dev/zero", "a character device"),
        (specials / "dir.png", "a folder"),
    ]:
        done = _cli("explain", str(image), "--out", str(specials / "x.png"), timeout=60)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
        assert f"is {kind}: expected a regular file" in done.stderr
    done = _cli("explain", "http://host:99999/x.png", "--out", str(specials / "x.png"), timeout=60)
    assert done.returncode == 2 and "Malformed image URL" in done.stderr
    assert not (specials / "x.png").exists()


def test_cli_save_that_fails_midway_keeps_the_previous_file(tmp_path, monkeypatch, capsys):
    from cam_widgets.cli import main
    from cam_widgets.result import Explanation

    outputs = [tmp_path / "a.png", tmp_path / "a.npy"]
    for path in outputs:
        path.write_bytes(b"the previous export " * 50)

    def failing_save(self, path, **kwargs):
        with open(path, "wb") as handle:  # half written, then the disk is full
            handle.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Explanation, "save", failing_save)
    for path in outputs:
        assert main(["explain", "chelsea", "--out", str(path)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0] and str(path) in lines[0]
        assert path.read_bytes() == b"the previous export " * 50
    assert _no_temporaries(tmp_path)
    monkeypatch.undo()
    assert main(["explain", "chelsea", "--out", str(outputs[1])]) == 0
    assert np.load(outputs[1]).shape == (224, 224) and _no_temporaries(tmp_path)


def test_standalone_html_is_replaced_only_when_complete(tmp_path, monkeypatch):
    import plotly.graph_objects as go

    from cam_widgets.render import standalone_html

    target = tmp_path / "fig.html"
    target.write_text("<html>previous</html>")

    def failing(self, file, **kwargs):
        with open(file, "w") as handle:
            handle.write("<html><script>cut")
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(go.Figure, "write_html", failing)
    with pytest.raises(InvalidParameterError, match="Input/output error"):
        standalone_html(go.Figure(), target)
    assert target.read_text() == "<html>previous</html>" and _no_temporaries(tmp_path)
    monkeypatch.undo()
    standalone_html(go.Figure(), target)
    assert "plotly" in target.read_text().lower()


# ------------------------------------------------------------------ evaluate's records
def test_a_failed_append_cuts_the_records_file_back(tmp_path, monkeypatch):
    from cam_widgets.metrics import records

    path = tmp_path / "r.jsonl"
    path.write_text('{"image": "a", "method": "gradcam"}\n{"image": "b", "method": "gradcam"}\n')
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    with open(path, "a") as handle:
        monkeypatch.setattr(records.os, "write", half_then_full)
        with pytest.raises(InvalidParameterError) as info:
            records.write_records(handle, [{"image": f"c{i}", "method": "gradcam"} for i in range(50)])
        monkeypatch.undo()
    assert path.read_bytes() == before  # and close() wrote nothing left in a buffer
    assert "\n" not in str(info.value) and "No space left on device" in str(info.value)
    with open(path, "a") as handle:
        records.write_records(handle, [{"image": "c", "method": "gradcam"}])
    assert [r["image"] for r in records.read_records(path)] == ["a", "b", "c"]


def _evaluation(tmp_path):
    from test_evaluate import make_dataset, make_explainer

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    root.mkdir()
    rows = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(root / f"i{i}.png")
        rows.append(f"i{i}.png,{i % 3},1,1,9,9")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    explainer = make_explainer()
    return explainer, make_dataset(root, explainer)


def test_an_evaluation_whose_disk_fills_keeps_every_complete_batch(tmp_path, monkeypatch):
    from cam_widgets.metrics import records
    from cam_widgets.metrics.evaluate import evaluate, read_records

    explainer, dataset = _evaluation(tmp_path)
    whole = tmp_path / "whole.jsonl"
    evaluate(explainer, dataset, out=whole, batch_size=2, methods=("gradcam", "vanilla"))
    out = tmp_path / "out.jsonl"
    real_write, calls = os.write, []

    def full_on_the_second_batch(fd, data):
        calls.append(len(data))
        if len(calls) == 2:
            real_write(fd, bytes(data[:100]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(records.os, "write", full_on_the_second_batch)
    with pytest.raises(InvalidParameterError, match="No space left on device"):
        evaluate(explainer, dataset, out=out, batch_size=2, methods=("gradcam", "vanilla"))
    monkeypatch.undo()
    text = out.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 4  # batch 1: 2 images x 2 methods
    summary = evaluate(explainer, dataset, out=out, batch_size=2, methods=("gradcam", "vanilla"))
    assert summary["skipped"] == 4 and summary["computed"] == 8
    key = lambda r: (r["image"], r["method"])  # noqa: E731
    assert sorted(read_records(out), key=key) == sorted(read_records(whole), key=key)


def test_evaluate_refuses_special_outputs_without_reading_them(tmp_path):
    """Resuming reads the output first: a FIFO would block, /dev/zero never end."""
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    code = textwrap.dedent("""
        import sys
        from test_bad_input_outputs import _evaluation
        from cam_widgets.metrics.evaluate import evaluate
        import pathlib
        explainer, dataset = _evaluation(pathlib.Path(sys.argv[1]))
        for out in sys.argv[2:]:
            try:
                evaluate(explainer, dataset, out=out, batch_size=2)
                print("no error", out)
            except Exception as exc:
                print(type(exc).__name__, exc)
    """)
    outs = [tmp_path / "pipe.jsonl", tmp_path / "dir.jsonl", "/dev/zero", "/dev/full"]
    if sys.platform.startswith("linux"):
        outs.append("/proc/cam_widgets_test.jsonl")
    here = os.path.dirname(os.path.abspath(__file__))  # this module, imported by the child
    tests = os.path.dirname(here)  # conftest and the shared helpers
    work = tmp_path / "work"
    work.mkdir()
    done = run_bounded(
        [sys.executable, "-c", code, str(work), *map(str, outs)],
        timeout=120,
        cwd=tests,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([here, tests])),
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(outs), done.stdout + done.stderr[-2000:]
    fragments = [
        "is a named pipe (FIFO)",
        "is a folder",
        "is a character device",
        "is a character device",
        "does not take a new file",
    ]
    for line, fragment, out in zip(lines, fragments, outs):
        assert line.startswith("InvalidParameterError Cannot write") and fragment in line, line
        assert str(out) in line
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and stat.S_ISFIFO(os.stat(outs[0]).st_mode)


def test_cli_evaluate_refuses_special_outputs_before_building_the_model(tmp_path):
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "images").mkdir()
    for out, kind in [
        (tmp_path / "pipe.jsonl", "a named pipe (FIFO)"),
        ("/dev/full", "a character device"),
        (tmp_path, "a folder"),
    ]:
        done = _cli("evaluate", "--root", str(tmp_path / "images"), "--out", str(out), timeout=60)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
        assert f"is {kind}; hint: pick another --out" in done.stderr


def test_the_distributed_merge_replaces_out_only_when_complete(tmp_path, monkeypatch):
    import torch.distributed as dist

    from cam_widgets.metrics import distributed
    from cam_widgets.metrics.evaluate import read_records

    explainer, dataset = _evaluation(tmp_path)
    out = tmp_path / "merged.jsonl"
    previous = [
        {
            "image": "i0.png",
            "index": 0,
            "method": "gradcam",
            "layer": explainer.default_layer,
            "target": "label",
            "pointing_game": 1.0,
            "energy": 0.5,
            "average_drop": 0.1,
            "increase_in_confidence": 0.0,
        }
    ]
    out.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in previous))
    before = out.read_bytes()
    real = distributed.write_records

    def cut(handle, records):
        handle.write(json.dumps(records[0]))  # part of the merged file, then the failure
        raise OSError(errno.ENOSPC, "No space left on device")

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{distributed.free_port()}", rank=0, world_size=1
    )
    try:
        monkeypatch.setattr(distributed, "write_records", cut)
        with pytest.raises(InvalidParameterError, match="No space left on device"):
            distributed.evaluate_distributed(explainer, dataset, out=out, batch_size=2)
        assert out.read_bytes() == before  # the merge failed: out as it was
        rank_file = distributed.rank_path(out, 0)
        assert len(read_records(rank_file)) == 5  # the computed records wait there for a resume
        monkeypatch.setattr(distributed, "write_records", real)
        summary = distributed.evaluate_distributed(explainer, dataset, out=out, batch_size=2)
    finally:
        dist.destroy_process_group()
    assert summary["computed"] == 0 and summary["records"] == 6 and not rank_file.exists()
    assert _no_temporaries(tmp_path)


def test_open_append_never_blocks_and_refuses_special_files(tmp_path):
    """For the appended results file (evaluate's run_plan opens it with open(out, "a"), which
    blocks on a FIFO without a reader)."""
    os.mkfifo(tmp_path / "pipe.jsonl")
    for path, fragment in [
        (tmp_path / "pipe.jsonl", "No such device or address"),
        (tmp_path, "Is a directory"),
        ("/dev/full", "is a character device"),
    ]:
        with pytest.raises(InvalidParameterError) as info:
            files.open_append(path).close()
        assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
    target = tmp_path / "r.jsonl"
    target.write_text("one\n")
    with files.open_append(target) as handle:
        handle.write("two\n")
    assert target.read_text() == "one\ntwo\n"
