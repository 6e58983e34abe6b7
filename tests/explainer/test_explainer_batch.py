"""Batches through the Explainer: one forward and one backward per slice, each map equal to
the one explain() gives for its image alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_widgets import Explainer
from cam_widgets.errors import InvalidImageError, InvalidParameterError
from conftest import TinyNet, tiny_input

IMAGES = ["chelsea", "coffee", "astronaut", "rocket"]
TARGETS = [285, 967, None, 812]


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("method", ["gradcam", "guided_backprop", "cam"])
def test_a_batch_equals_each_image_alone(lite_explainer, method):
    batch = lite_explainer.explain(IMAGES, method, TARGETS)
    assert isinstance(batch, list) and len(batch) == len(IMAGES)
    for image, target, result in zip(IMAGES, TARGETS, batch):
        alone = lite_explainer.explain(image, method, target)
        assert result.class_id == alone.class_id
        assert abs(result.probability - alone.probability) < 1e-4
        assert _r(result.heatmap, alone.heatmap) >= 0.999
        assert result.raw.shape == alone.raw.shape and result.image is not None
        assert (result.attribution is None) == (alone.attribution is None)
    assert batch[2].class_id == lite_explainer.predict("astronaut", top=1)[0].class_id


def test_a_gradient_method_takes_one_forward_per_slice(lite_explainer):
    prepared = [lite_explainer.prepare(name) for name in IMAGES]
    lite_explainer.layers()  # (the probe's forward is not the batch's)
    before = lite_explainer.engine.forward_calls
    lite_explainer.explain_batch(prepared, "gradcam", 285, batch_size=4)
    assert lite_explainer.engine.forward_calls - before == 1
    before = lite_explainer.engine.forward_calls
    sliced = lite_explainer.explain_batch(prepared, "gradcam", 285, batch_size=3)
    assert lite_explainer.engine.forward_calls - before == 2  # slices of 3 and 1
    assert [r.class_id for r in sliced] == [285] * 4


def test_a_tensor_batch_and_one_target_for_all():
    explainer = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"))
    batch = torch.cat([tiny_input(), tiny_input().flip(-1), -tiny_input()])
    results = explainer.explain(batch, "gradcam", 1, "relu")
    for row, result in enumerate(results):
        alone = explainer.explain(batch[row : row + 1], "gradcam", 1, "relu")
        np.testing.assert_allclose(result.raw, alone.raw, rtol=1e-5, atol=1e-6)
        assert result.class_id == 1 and result.image is None


def test_smoothgrad_in_a_batch_runs_image_by_image(lite_explainer):
    results = lite_explainer.explain_batch(IMAGES[:2], "vanilla", [285, 967], samples=3, seed=1)
    alone = lite_explainer.explain(IMAGES[1], "vanilla", 967, samples=3, seed=1)
    np.testing.assert_allclose(results[1].heatmap, alone.heatmap, atol=1e-5)


@pytest.mark.parametrize(
    "images, targets, error, words",
    [
        ([], None, InvalidImageError, "non-empty list"),
        (torch.zeros(3, 4, 4), None, InvalidImageError, "(N, 3, H, W)"),
        (["chelsea", "coffee"], [1, 2, 3], InvalidParameterError, "one target per image (2)"),
    ],
)
def test_bad_batches_get_one_line(lite_explainer, images, targets, error, words):
    with pytest.raises(error) as info:
        lite_explainer.explain_batch(images, "gradcam", targets)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_smoothing_settings_travel_as_one_value(lite_explainer):
    from cam_widgets.methods import Smoothing

    loose = lite_explainer.explain("chelsea", "vanilla", 285, samples=3, noise=0.1, seed=2)
    value = lite_explainer.explain(
        "chelsea", "vanilla", 285, smoothing=Smoothing(noise=0.1, samples=3, seed=2)
    )
    np.testing.assert_array_equal(loose.heatmap, value.heatmap)
    assert loose.smoothing == value.smoothing == Smoothing(noise=0.1, samples=3, seed=2)
    assert loose.params == {"noise": 0.1, "samples": 3, "seed": 2}  # as they always were
    assert "SmoothGrad (n=3, noise 0.1)" in value.title
    assert lite_explainer.explain("chelsea", "vanilla", 285).smoothing is None
    assert Smoothing() == Smoothing(noise=0.2, samples=100)  # the article's defaults, one place
    with pytest.raises(InvalidParameterError, match="once"):
        lite_explainer.explain("chelsea", "vanilla", smoothing=Smoothing(samples=3), samples=3)


def test_a_batch_takes_a_dataloaders_labels_smoothing_and_progress(lite_explainer):
    from cam_widgets.methods import Smoothing

    images = [lite_explainer.prepare(name) for name in IMAGES[:3]]
    calls = []
    results = lite_explainer.explain_batch(
        images,
        "gradcam",
        torch.tensor([285, 967, 812]),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert [r.class_id for r in results] == [285, 967, 812] and calls[-1] == (3, 3)
    smoothed = lite_explainer.explain_batch(
        images[:2], "vanilla", np.array([285, 967]), smoothing=Smoothing(samples=2)
    )
    assert [r.smoothing.samples for r in smoothed] == [2, 2]


def test_smoothing_and_loose_settings_together_are_one_line(lite_explainer):
    from cam_widgets.methods import Smoothing

    with pytest.raises(InvalidParameterError, match="once"):
        lite_explainer.explain("chelsea", "vanilla", smoothing=Smoothing(samples=2), seed=7)


def test_a_target_function_that_raises_is_one_line(lite_explainer):
    with pytest.raises(InvalidParameterError, match="target function raised ZeroDivisionError") as info:
        lite_explainer.explain("chelsea", "gradcam", lambda z: 1 / 0)
    assert "\n" not in str(info.value)
