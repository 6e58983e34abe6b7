"""Bad input through the API (issue 17): tensors of other dtypes, absurd amounts of work,
outputs that are not files, and saves that fail midway."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_widgets.data.named import load_named
from cam_widgets.errors import InvalidImageError, InvalidParameterError


def test_a_uint8_tensor_is_a_0_255_image(lite_explainer):
    rgb = load_named("chelsea")
    as_tensor = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()  # torchvision.io's layout
    from_tensor = lite_explainer.explain(as_tensor, "gradcam", 285)
    from_array = lite_explainer.explain(rgb, "gradcam", 285)
    np.testing.assert_array_equal(from_tensor.heatmap, from_array.heatmap)
    assert from_tensor.image is not None
    batch = lite_explainer.explain(torch.stack([as_tensor, as_tensor]), "gradcam", 285)
    np.testing.assert_allclose(batch[1].heatmap, from_array.heatmap, atol=1e-4)  # (BN folded)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_other_dtypes_are_refused_in_one_line(lite_explainer, dtype):
    with pytest.raises(InvalidImageError) as info:
        lite_explainer.explain(torch.zeros(1, 3, 224, 224, dtype=dtype))
    assert str(dtype) in str(info.value) and "\n" not in str(info.value)


def test_absurd_work_is_refused_or_bounded(lite_explainer):
    with pytest.raises(InvalidParameterError, match="from 1 to 10,000"):
        lite_explainer.explain("chelsea", "vanilla", samples=10**9)
    budget = lite_explainer.engine.batch_size_for(requested=10**6)
    assert 1 <= budget < 10**6  # an explicit batch size is capped at the memory budget
    result = lite_explainer.explain("chelsea", "vanilla", samples=3, batch_size=10**6)
    assert result.status.ok


def test_evaluate_refuses_a_folder_or_device_before_touching_it(lite_explainer, tmp_path):
    from cam_widgets.metrics.evaluate import evaluate

    folder = tmp_path / "out_is_a_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    for out in (folder, "/dev/null"):
        with pytest.raises(InvalidParameterError) as info:
            evaluate(lite_explainer, [(np.zeros((32, 32, 3), np.uint8), 1)], out=out, resume=False)
        assert "\n" not in str(info.value)
    assert (folder / "keep.txt").read_text() == "x"


def test_a_save_that_fails_midway_keeps_the_old_file(lite_explainer, tmp_path, monkeypatch):
    import os

    result = lite_explainer.explain("chelsea", "gradcam", 285)

    def half_written(file, *args, **kwargs):  # np.save on a disk that fills up
        file.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")

    def full_at_sync(fd):  # the PNG's bytes written, the disk full when they are flushed
        raise OSError(28, "No space left on device")

    for name, patched in (("map.npy", (np, "save", half_written)), ("map.png", (os, "fsync", full_at_sync))):
        target = tmp_path / name
        target.write_bytes(b"the previous export")
        with monkeypatch.context() as patch:
            patch.setattr(*patched)
            with pytest.raises((OSError, InvalidParameterError)) as info:
                result.save(target)
        assert "\n" not in str(info.value)
        assert target.read_bytes() == b"the previous export"
        assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left
        result.save(target)
        assert target.read_bytes() != b"the previous export"
        target.unlink()


@pytest.mark.parametrize(
    "compile_", [torch.jit.script, lambda m: torch.jit.trace(m, torch.zeros(1, 3, 8, 8))]
)
def test_a_torchscript_model_is_refused_in_one_line(compile_):
    from cam_widgets import Explainer
    from cam_widgets.errors import MethodNotApplicableError
    from conftest import TinyNet

    scripted = compile_(TinyNet().eval())
    with pytest.raises(MethodNotApplicableError) as info:
        Explainer(scripted, input_size=(8, 8), labels=list("abc"))
    assert "TorchScript" in str(info.value) and "\n" not in str(info.value)
