"""SmoothGrad (cam_widgets/methods/smoothgrad.py) over any method: precisions and what the
title says, one- and two-backward methods, snapshots of the running mean, bad settings. The
widgets' SmoothGrad (its study, the Explorer's checkbox) is tested in tests/widgets, its
reference agreement with captum in tests/methods/test_reference.py."""

from __future__ import annotations

import numpy as np
import pytest

from cam_widgets.engine import count_hooks
from cam_widgets.errors import InvalidParameterError


def test_smoothgrad_in_bf16_agrees_with_fp32_and_says_so(lite_explainer, chelsea_tensor):
    fp32 = lite_explainer.explain(chelsea_tensor, "vanilla", 285, samples=8, seed=3)
    bf16 = lite_explainer.explain(chelsea_tensor, "vanilla", 285, samples=8, seed=3, precision="bf16")
    assert bf16.params["precision"] == "bf16" and "precision" not in fp32.params
    assert bf16.raw.dtype == np.float32 and np.isfinite(bf16.raw).all()
    assert 0.9 < np.corrcoef(fp32.heatmap.ravel(), bf16.heatmap.ravel())[0, 1] < 1.0
    assert count_hooks(lite_explainer.engine.model) == 0
    # the title says what was computed: display name, SmoothGrad settings, precision
    assert fp32.title.startswith("Vanilla gradient + SmoothGrad (n=8, noise 0.2): ")
    assert bf16.title.startswith("Vanilla gradient + SmoothGrad (n=8, noise 0.2, bf16): ")
    assert lite_explainer.explain(chelsea_tensor, "gradcam++", 285).title.startswith(
        "Grad-CAM++ @ features.8: Egyptian cat (285) p=0.7"
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"precision": "fp16", "samples": 2}, "needs a CUDA device"),
        ({"precision": "half", "samples": 2}, "Invalid precision: expected one of fp32, bf16, fp16"),
        ({"precision": "bf16"}, "applies to SmoothGrad only"),
    ],
)
def test_bad_precision_is_a_one_line_error(lite_explainer, chelsea_tensor, params, message):
    with pytest.raises(InvalidParameterError, match=message):
        lite_explainer.explain(chelsea_tensor, "vanilla", 285, **params)


@pytest.mark.parametrize("method", ["guided_gradcam", "gradcam++", "vanilla"])
def test_smoothgrad_over_one_and_two_backward_methods(lite_explainer, chelsea_tensor, method):
    result = lite_explainer.explain(chelsea_tensor, method, 285, samples=3, batch_size=2)
    assert np.isfinite(result.heatmap).all() and result.status.ok
    assert count_hooks(lite_explainer.engine.model) == 0


def test_on_snapshot_hands_each_running_mean_as_the_explanation_keeps_it(lite_explainer, chelsea_tensor):
    got = {}
    result = lite_explainer.explain(
        chelsea_tensor,
        "vanilla",
        285,
        samples=6,
        snapshots=(2, 6),
        on_snapshot=lambda n, heatmaps: got.setdefault(n, heatmaps),
    )
    assert sorted(got) == [2, 6]
    for count in (2, 6):
        np.testing.assert_array_equal(got[count][0], result.snapshots[count])
    with pytest.raises(Exception, match="'on_snapshot' applies to SmoothGrad only"):
        lite_explainer.explain(chelsea_tensor, "vanilla", 285, on_snapshot=print)
