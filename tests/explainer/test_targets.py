"""Targets that are functions of the logits (pytorch-grad-cam's and captum's style) and the
"A vs B" contrast: maps agree with pytorch-grad-cam given the same function."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import cam_widgets as cw
from cam_widgets.errors import InvalidParameterError, MethodNotApplicableError

pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")


def _r(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _reference(explainer, cam_class, target) -> np.ndarray:
    model = explainer.spec.model
    layer = dict(model.named_modules())["features.8"]
    x = explainer.prepare("chelsea").tensor
    with cam_class(model=model, target_layers=[layer]) as cam:
        return cam(input_tensor=x, targets=[target])[0]


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("contrast", lambda z: z[..., 282] - z[..., 285], lambda o: o[282] - o[285]),
        ("probability", lambda z: torch.softmax(z, -1)[..., 281], lambda o: torch.softmax(o, -1)[281]),
        ("sum of cats", lambda z: z[..., 281:286].sum(-1), lambda o: o[281:286].sum()),
    ],
)
def test_function_targets_agree_with_pytorch_grad_cam(lite_explainer, name, ours, theirs):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    pairs = [("gradcam", GradCAM), ("gradcam++", GradCAMPlusPlus)]
    if name == "probability":  # gradients ~1e-4: pytorch-grad-cam's eps (1e-7) in Grad-CAM++'s
        pairs = pairs[:1]  # alpha denominator outweighs g^2 there; ours has no eps
    for method, cam_class in pairs:
        result = lite_explainer.explain("chelsea", method, ours, "features.8")
        assert _r(result.heatmap, _reference(lite_explainer, cam_class, theirs)) >= 0.99, (name, method)
        assert result.class_id == -1 and math.isnan(result.probability)
        assert result.title.endswith("score function") and result.summary()["probability"] is None


def test_a_contrast_differs_from_either_class_and_names_both(lite_explainer):
    contrast = lite_explainer.explain("chelsea", "gradcam", cw.contrast("tiger cat", 285))
    function = lite_explainer.explain("chelsea", "gradcam", lambda z: z[..., 282] - z[..., 285])
    tiger = lite_explainer.explain("chelsea", "gradcam", 282)
    assert np.allclose(contrast.heatmap, function.heatmap, atol=1e-5)
    assert _r(contrast.raw, tiger.raw) < 0.999  # the Egyptian cat's gradient is taken away
    assert contrast.class_id == 282 and contrast.label == "tiger cat vs Egyptian cat"
    assert contrast.probability == pytest.approx(tiger.probability)


def test_function_targets_mix_with_classes_and_batches(lite_explainer):
    mixed = lite_explainer.explain_classes("chelsea", [282, cw.contrast(282, 285), None], "gradcam")
    assert [r.class_id for r in mixed] == [282, 282, lite_explainer.predict("chelsea", 1)[0].class_id]
    batch = lite_explainer.explain(["chelsea", "coffee"], "vanilla", cw.contrast(282, 285))
    alone = lite_explainer.explain("coffee", "vanilla", cw.contrast(282, 285))
    assert np.allclose(batch[1].heatmap, alone.heatmap, atol=1e-5)


@pytest.mark.parametrize(
    "method, target, error, words",
    [
        ("cam", cw.contrast(282, 285), MethodNotApplicableError, "not a function"),
        ("gradcam", lambda z: z, InvalidParameterError, "one score per image"),
        ("gradcam", lambda z: z.detach()[..., 1], InvalidParameterError, "carry no gradient"),
        ("gradcam", cw.contrast("tiger cat", "no such class"), cw.CamWidgetsError, "no such class"),
    ],
)
def test_bad_function_targets_get_one_line(lite_explainer, method, target, error, words):
    with pytest.raises(error) as info:
        lite_explainer.explain("chelsea", method, target)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_function_target_leaves_no_hooks(lite_explainer):
    from cam_widgets.engine import count_hooks

    lite_explainer.explain("chelsea", "guided_gradcam", cw.contrast(282, 285))
    assert count_hooks(lite_explainer.spec.model) == 0


def test_a_function_target_with_smoothgrad_is_refused_in_one_line(lite_explainer):
    with pytest.raises(InvalidParameterError, match="without SmoothGrad"):
        lite_explainer.explain("chelsea", "vanilla", cw.contrast(282, 285), samples=3)


def test_layer_comparisons_take_a_class_not_a_contrast_in_one_line(lite_explainer):
    """explain_layers (Compare by layer, LayerSweep) follows one class in one backward."""
    for target in (cw.contrast(282, 285), lambda logits: logits[..., 282]):
        with pytest.raises(MethodNotApplicableError, match="takes a class id or name, not a function"):
            lite_explainer.explain_layers("chelsea", target, "gradcam", ["features.5", "features.8"])


def test_a_contrast_typed_as_text_parses_and_resolves_once():
    from cam_widgets.models import parse_target, resolve_target

    labels = cw.get_explainer("efficientnet_lite0").labels
    assert parse_target(" 282 tiger cat  vs. 285 ") == cw.contrast(282, 285)
    assert resolve_target("tiger cat vs egyptian", labels) == cw.contrast(282, 285)
    assert resolve_target("282 tiger cat", labels) == 282 and resolve_target(None, labels) is None
    assert parse_target("   ") is None
