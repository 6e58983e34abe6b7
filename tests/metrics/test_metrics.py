"""Metrics: hand-computed oracles on tiny maps and models, and agreement with the peers
(pytorch-grad-cam's DropInConfidence / IncreaseInConfidence, Quantus's PointingGame and
RelevanceMassAccuracy) on the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cam_widgets import Explainer
from cam_widgets.data.scenes import Box
from cam_widgets.engine.hooks import count_hooks
from cam_widgets.errors import InvalidParameterError
from cam_widgets.metrics import (
    average_drop_increase,
    blur_baseline,
    deletion_insertion,
    energy_pointing_game,
    iou_at_thresholds,
    pearson,
    pointing_game,
    randomization_sanity,
    randomization_steps,
    spearman,
)

# A 4x4 map: maximum 1.0 at (y=1, x=2); a lone 0.5 at (3, 3), diagonal to the 0.4 at (2, 2).
MAP = np.array(
    [[0.0, 0.1, 0.2, 0.0], [0.0, 0.5, 1.0, 0.0], [0.0, 0.3, 0.4, 0.0], [0.0, 0.0, 0.0, 0.5]], dtype=np.float32
)
BOX = (1, 0, 3, 3)  # x 1..2, y 0..2: six pixels holding 0.1 0.2 0.5 1.0 0.3 0.4


# --------------------------------------------------------------------------- localization
def test_pointing_game_hit_miss_and_tolerance():
    assert pointing_game(MAP, BOX) is True
    assert pointing_game(MAP, (0, 0, 2, 2)) is False  # max at x=2 is outside x 0..1
    assert pointing_game(MAP, (0, 0, 2, 2), tolerance=1) is True  # one pixel from (1, 1)
    assert pointing_game(MAP, (0, 3, 2, 4), tolerance=2) is False  # nearest (3, 1): sqrt(1+4) > 2
    assert pointing_game(MAP, (0, 3, 2, 4), tolerance=math.sqrt(5)) is True
    assert pointing_game(MAP, Box(2, 1, 3, 2, 285, "cat")) is True
    assert pointing_game(np.zeros((4, 4)), BOX) is False  # a flat map points nowhere


def test_energy_pointing_game_exact():
    assert energy_pointing_game(MAP, BOX) == pytest.approx(2.5 / 3.0, abs=1e-7)
    mask = np.zeros((4, 4), bool)
    mask[3, 3] = True
    assert energy_pointing_game(MAP, mask) == pytest.approx(0.5 / 3.0, abs=1e-7)
    assert energy_pointing_game(MAP, [BOX, mask]) == pytest.approx(1.0, abs=1e-7)  # union
    assert energy_pointing_game(np.zeros((4, 4)), BOX) == 0.0


def test_iou_at_thresholds_exact_mask_and_box_regions():
    ious = iou_at_thresholds(MAP, BOX)
    # kept = value > delta * max: 7, 5, 1, 1 pixels; the box has 6.
    assert ious == pytest.approx({0.0: 6 / 7, 0.25: 4 / 7, 0.5: 1 / 6, 0.75: 1 / 6})
    boxes = iou_at_thresholds(MAP, BOX, deltas=(0.25, 0.5), region="box")
    # delta .25: one 8-connected region (0.4 touches 0.5 diagonally), bbox 3x3 -> 4 / (9 + 6 - 4)
    assert boxes == pytest.approx({0.25: 4 / 11, 0.5: 1 / 6})
    assert iou_at_thresholds(np.zeros((4, 4)), BOX, deltas=(0.5,)) == {0.5: 0.0}


def test_batches_match_single_maps_and_accept_explanation_like_inputs():
    other = np.rot90(MAP).copy()
    maps = torch.from_numpy(np.stack([MAP, other]))
    targets = [BOX, [(0, 0, 1, 1), (3, 3, 4, 4)]]
    hits = pointing_game(maps, targets)
    assert hits.dtype == bool and hits.tolist() == [pointing_game(MAP, BOX), pointing_game(other, targets[1])]
    assert energy_pointing_game(maps, targets) == pytest.approx(
        [energy_pointing_game(MAP, BOX), energy_pointing_game(other, targets[1])]
    )
    batch = iou_at_thresholds(maps, targets, deltas=(0.25,))
    assert batch[0.25] == pytest.approx(
        [iou_at_thresholds(m, t, deltas=(0.25,))[0.25] for m, t in zip([MAP, other], targets)]
    )

    class Result:
        heatmap = MAP

    assert energy_pointing_game(Result(), BOX) == energy_pointing_game(MAP, BOX)


@pytest.mark.parametrize(
    "call",
    [
        lambda: pointing_game(MAP, "box"),
        lambda: pointing_game(MAP, (10, 10, 12, 12)),  # outside the map
        lambda: pointing_game(MAP, np.ones((3, 3), bool)),  # wrong mask shape
        lambda: pointing_game(np.stack([MAP, MAP]), [BOX]),  # one target for two maps
        lambda: pointing_game(MAP, BOX, tolerance=-1),
        lambda: energy_pointing_game(np.full((4, 4), np.nan), BOX),
        lambda: iou_at_thresholds(MAP, BOX, deltas=(1.5,)),
        lambda: iou_at_thresholds(MAP, BOX, region="hull"),
    ],
)
def test_localization_bad_input_raises_typed_one_line_errors(call):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert "\n" not in str(info.value)


def test_localization_agrees_with_quantus():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    maps = rng.random((6, 16, 16)).astype(np.float32)
    boxes = [(int(x), int(y), int(x) + 5, int(y) + 7) for x, y in rng.integers(0, 9, (6, 2))]
    masks = np.stack([Box(*b, class_id=0, class_name="x").mask(16, 16) for b in boxes]).astype(np.float32)
    kwargs = dict(
        model=None,
        x_batch=rng.random((6, 3, 16, 16)).astype(np.float32),
        y_batch=np.zeros(6, int),
        a_batch=maps[:, None],
        s_batch=masks[:, None],
    )
    theirs_pg = quantus.PointingGame(disable_warnings=True)(**kwargs)
    theirs_mass = quantus.RelevanceMassAccuracy(disable_warnings=True)(**kwargs)
    assert pointing_game(maps, boxes).tolist() == [bool(v) for v in theirs_pg]
    assert energy_pointing_game(maps, list(masks)) == pytest.approx(np.float64(theirs_mass), rel=1e-5)


# --------------------------------------------------------------------------- faithfulness
class SumNet(nn.Module):
    """logits = [sum of all inputs, 0]: the class-0 probability is sigmoid(sum)."""

    def forward(self, x):
        total = x.flatten(1).sum(1)
        return torch.stack([total, torch.zeros_like(total)], dim=1)


def _sum_explainer(size=(2, 2)):
    return Explainer(
        SumNet(),
        input_size=size,
        labels=["a", "b"],
        device="cpu",
        preprocess=lambda rgb: torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
    )


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("batch_size", [None, 1])
def test_average_drop_and_increase_by_hand(batch_size):
    ex = _sum_explainer()
    image = ex.prepare(torch.ones(1, 3, 2, 2))
    heatmap = np.array([[1.0, 0.0], [0.0, 0.5]], dtype=np.float32)  # masked sum 3 * 1.5 = 4.5
    out = average_drop_increase(
        ex, [image, image], np.stack([heatmap, heatmap]), [0, 1], batch_size=batch_size
    )
    y0, o0 = _sigmoid(12.0), _sigmoid(4.5)  # class 0 drops
    y1, o1 = _sigmoid(-12.0), _sigmoid(-4.5)  # class 1 rises
    assert [p["full"] for p in out["per_image"]] == pytest.approx([y0, y1], rel=1e-5)
    assert [p["masked"] for p in out["per_image"]] == pytest.approx([o0, o1], rel=1e-5)
    assert out["average_drop"] == pytest.approx(((y0 - o0) / y0 * 100 + 0.0) / 2, rel=1e-5)
    assert out["increase_in_confidence"] == 50.0
    assert [p["increase"] for p in out["per_image"]] == [False, True]


def test_average_drop_pixel_space_equals_tensor_space_when_preprocess_is_linear():
    ex = _sum_explainer((8, 8))
    image = ex.prepare(np.full((8, 8, 3), 255, np.uint8))
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[0, 0], heatmap[1, 1] = 1.0, 0.2  # 255 * 0.2 = 51 exactly
    a = average_drop_increase(ex, image, heatmap, 0, space="tensor")
    b = average_drop_increase(ex, image, heatmap, 0, space="pixel")
    assert a["average_drop"] == pytest.approx(b["average_drop"], rel=1e-6)
    assert a["per_image"][0]["masked"] == pytest.approx(_sigmoid(3 * 1.2), rel=1e-5)


def test_average_drop_agrees_with_pytorch_grad_cam(lite_explainer):
    metrics = pytest.importorskip("pytorch_grad_cam.metrics.cam_mult_image")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    ex = lite_explainer
    image = ex.prepare("chelsea")
    results = ex.explain_classes(image, [None, 967], "gradcam")  # top class (a cat) and espresso
    images = [image, image]
    maps = np.stack([r.heatmap for r in results])
    ids = [r.class_id for r in results]
    ours = average_drop_increase(ex, images, maps, ids)
    tensor = torch.cat([p.tensor for p in images])
    targets = [ClassifierOutputSoftmaxTarget(c) for c in ids]
    drop = metrics.DropInConfidence()(tensor, maps, targets, ex.engine.model)
    rise = metrics.IncreaseInConfidence()(tensor, maps, targets, ex.engine.model)
    # theirs: max(0, Y - O); ours: max(0, Y - O) / Y * 100
    assert [p["drop"] * p["full"] / 100 for p in ours["per_image"]] == pytest.approx(
        np.ravel(drop).tolist(), abs=1e-5
    )
    assert [p["increase"] for p in ours["per_image"]] == [bool(v) for v in np.ravel(rise)]


def _closed_form_curves(values, order, kept_from_image):
    """sigmoid(3 * sum of the pixels taken from the image) per step, zero baseline."""
    out = []
    for k in range(len(order) + 1):
        chosen = order[:k] if kept_from_image == "top" else order[k:]
        out.append(_sigmoid(3.0 * sum(values[i] for i in chosen)))
    return np.array(out)


@pytest.mark.parametrize("batch_size", [None, 2])
def test_deletion_insertion_curves_and_auc_by_hand(batch_size):
    ex = _sum_explainer()
    values = [0.4, -0.2, 1.0, 0.3]  # pixel values, raster order
    x = torch.tensor(values).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    saliency = np.array([[0.5, 0.1], [0.9, 0.1]], np.float32)  # order 2, 0, then the tie 1, 3
    order = [2, 0, 1, 3]
    out = deletion_insertion(ex, ex.prepare(x), saliency, 0, steps=4, baseline="zero", batch_size=batch_size)
    deletion = _closed_form_curves(values, order, "rest")
    insertion = _closed_form_curves(values, order, "top")
    assert out["fractions"] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert out["deletion_curve"] == pytest.approx(deletion, rel=1e-5)
    assert out["insertion_curve"] == pytest.approx(insertion, rel=1e-5)
    trapezoid = lambda y: sum((y[i] + y[i + 1]) / 2 * 0.25 for i in range(4))  # noqa: E731
    assert out["deletion_auc"] == pytest.approx(trapezoid(deletion), rel=1e-5)
    assert out["insertion_auc"] == pytest.approx(trapezoid(insertion), rel=1e-5)
    # 3 steps of ceil(4 / 3) = 2 pixels: counts 0, 2, 4, 4; the last interval has zero width
    coarse = deletion_insertion(ex, ex.prepare(x), saliency, 0, steps=3, baseline="zero")
    assert coarse["fractions"] == pytest.approx([0, 0.5, 1.0, 1.0])
    assert coarse["deletion_curve"] == pytest.approx(deletion[[0, 2, 4, 4]], rel=1e-5)
    assert coarse["deletion_auc"] == pytest.approx(
        0.25 * (deletion[0] + deletion[2]) + 0.25 * (deletion[2] + deletion[4]), rel=1e-5
    )


def test_blur_baseline_keeps_constants_and_deletion_with_blur_on_a_flat_image_is_flat():
    flat = torch.full((1, 3, 6, 5), 0.01)
    assert torch.allclose(blur_baseline(flat), flat, atol=1e-6)
    impulse = torch.zeros(1, 3, 21, 21)
    impulse[..., 10, 10] = 1.0
    assert float(blur_baseline(impulse).sum()) == pytest.approx(3.0, rel=1e-5)  # kernel sums to 1
    ex = _sum_explainer((6, 5))
    out = deletion_insertion(
        ex, ex.prepare(flat), np.random.default_rng(0).random((6, 5)), 0, steps=5, baseline=("blur", "blur")
    )
    assert out["deletion_curve"] == pytest.approx(np.full(6, _sigmoid(0.01 * 90)), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs", [dict(steps=0), dict(baseline="noise"), dict(batch_size=0), dict(heatmap=np.zeros((3, 3)))]
)
def test_deletion_insertion_bad_input(kwargs):
    ex = _sum_explainer()
    args = dict(heatmap=np.zeros((2, 2)), steps=4)
    args.update(kwargs)
    with pytest.raises(InvalidParameterError):
        deletion_insertion(ex, ex.prepare(torch.ones(1, 3, 2, 2)), class_id=0, **args)


# --------------------------------------------------------------------------- sanity
def test_rank_and_linear_correlations_by_hand():
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # average ranks for ties
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1])
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_randomization_steps_order_and_errors(tiny_net):
    assert randomization_steps(tiny_net) == ["fc", "conv"]
    assert randomization_steps(tiny_net, "blocks") == ["fc", "conv"]
    assert randomization_steps(tiny_net, ["conv"]) == ["conv"]
    with pytest.raises(InvalidParameterError, match="Did you mean 'conv'"):
        randomization_steps(tiny_net, ["con"])


def test_randomization_on_tiny_net_is_seeded_and_leaves_model_and_rng_alone(tiny_explainer, tiny_net):
    from conftest import tiny_input

    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    rng = torch.random.get_rng_state()
    image = tiny_explainer.prepare(tiny_input())
    first = randomization_sanity(tiny_explainer, image, "gradcam", 0, layer="relu")
    again = randomization_sanity(tiny_explainer, image, "gradcam", 0, layer="relu")
    alone = randomization_sanity(tiny_explainer, image, "gradcam", 0, layer="relu", independent=True)
    assert [r["step"] for r in first] == [0, 1, 2]
    assert [r["randomized"] for r in first] == [[], ["fc"], ["fc", "conv"]]
    assert [r["randomized"] for r in alone] == [[], ["fc"], ["conv"]]
    assert first[0]["spearman"] == pytest.approx(1.0) and first[0]["ssim"] == pytest.approx(1.0)
    for a, b in zip(first, again):
        assert np.array_equal(a["heatmap"], b["heatmap"])
    assert all(torch.equal(before[k], v) for k, v in tiny_net.state_dict().items())
    assert torch.equal(rng, torch.random.get_rng_state())
    assert count_hooks(tiny_net) == 0


@pytest.mark.slow
def test_randomization_decorrelates_efficientnet_and_leaves_original_untouched(lite_explainer):
    model = lite_explainer.engine.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = randomization_sanity(lite_explainer, "chelsea", "gradcam", cascade="blocks", max_steps=2)
    assert [r["randomized"] for r in rows] == [[], ["classifier.1"], ["classifier.1", "features.8"]]
    assert rows[0]["spearman"] == pytest.approx(1.0)
    assert rows[2]["spearman"] < 0.5 and abs(rows[2]["pearson"]) < 0.5
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert count_hooks(model) == 0


@pytest.mark.slow
def test_localization_benchmark_quick_run_prints_table_and_verdict(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_localization.py"
    spec = importlib.util.spec_from_file_location("bench_localization", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
    text = capsys.readouterr().out
    assert "| gradcam | features.8 | 1 |" in text and "| gradcam++ | features.8 | 1 |" in text
    assert "Claim 'Grad-CAM++ covers multiple instances better than Grad-CAM' **" in text
