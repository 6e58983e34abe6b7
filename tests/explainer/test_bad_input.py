"""Bad input end to end: clear one-line errors or flagged results, never NaN or a leaked hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cam_widgets.engine import count_hooks
from cam_widgets.errors import CamWidgetsError, InvalidImageError, InvalidParameterError
from conftest import tiny_input


def check_result(result):
    assert result.heatmap.shape == (224, 224) and result.heatmap.dtype == np.float32
    assert np.isfinite(result.heatmap).all() and np.isfinite(result.raw).all()
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0


@pytest.mark.parametrize(
    "mode, size", [("L", (60, 40)), ("RGBA", (50, 70)), ("P", (64, 64)), ("I;16", (40, 40)), ("RGB", (8, 9))]
)
def test_odd_image_files_are_explained(lite_explainer, tmp_path, mode, size):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, size=size[::-1] + (3,), dtype=np.uint8))
    image = (
        rgb.convert(mode)
        if mode != "I;16"
        else Image.fromarray(rng.integers(0, 65535, size=size[::-1], dtype=np.uint16))
    )
    path = tmp_path / "odd.png"
    image.save(path)
    check_result(lite_explainer.explain(str(path), "gradcam"))


def test_huge_and_thin_arrays_are_explained(lite_explainer):
    check_result(lite_explainer.explain(np.zeros((10, 10_000, 3), dtype=np.uint8) + 90, "gradcam"))


@pytest.mark.parametrize(
    "bad",
    [
        np.full((32, 32, 3), np.nan),
        np.zeros((4, 4, 3), dtype=np.uint8),
        np.zeros((0, 5, 3)),
        np.zeros((3, 32, 32)),
        "no/such/file.png",
        42,
    ],
)
def test_unusable_images_are_one_line_errors(lite_explainer, bad):
    with pytest.raises(InvalidImageError) as info:
        lite_explainer.explain(bad, "gradcam")
    assert "\n" not in str(info.value)
    assert count_hooks(lite_explainer.engine.model) == 0


def test_non_image_and_truncated_files(lite_explainer, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:60])
    for path in (text, truncated):
        with pytest.raises(InvalidImageError):
            lite_explainer.explain(str(path), "gradcam")


def test_flat_map_is_flagged_not_nan(tiny_explainer):
    dark = -torch.ones(1, 3, 4, 4) * 5  # every conv output is negative: ReLU leaves all zeros
    dark[:, 1] = 5
    result = tiny_explainer.explain(dark, "cam", 0, "relu")
    assert result.flagged and result.status.flat and np.all(result.heatmap == 0)
    assert "flat" in result.status.message.lower()


def test_negative_only_map_is_flagged(tiny_explainer):
    result = tiny_explainer.explain(tiny_input(), "gradcam", 2, "relu")  # both weights < 0
    assert result.raw.max() <= 0 < -result.raw.min()
    assert result.status.negative_only and result.flagged and np.all(result.heatmap == 0)
    assert "negative" in result.status.message.lower()


def test_cam_needs_a_gap_linear_head(lite_explainer, chelsea_tensor):
    with pytest.raises(CamWidgetsError, match="global-average-pool"):
        lite_explainer.explain(chelsea_tensor, "cam", 285, "features.6")
    assert lite_explainer.explain(chelsea_tensor, "cam", 285, "features.8").raw.shape == (7, 7)


@pytest.mark.parametrize(
    "method, params, message",
    [
        (
            "scorecam",
            {"batch_size": -3},
            "parameter 'batch_size': expected an int >= 1 or None, received -3 that is",
        ),
        ("scorecam", {"batch_size": "x"}, "batch_size'?: expected an int >= 1 or None"),
        ("integrated_gradients", {"baseline": "x"}, "parameter 'baseline': expected a finite number"),
        ("integrated_gradients", {"steps": 0}, "parameter 'steps': expected an int >= 1"),
        ("gradcam++", {"alpha": "bogus"}, "parameter 'alpha': expected one of 'paper', 'uniform'"),
        ("gradcam++", {"positive_gradients": "no"}, "parameter 'positive_gradients': expected True or False"),
        ("vanilla", {"samples": 2, "seed": "a"}, "seed'?: expected an int"),
        ("vanilla", {"samples": 2, "snapshots": (1, "x")}, "Invalid snapshots: expected sample counts"),
        ("vanilla", {"samples": 2, "batch_size": 0}, "batch_size'?: expected an int >= 1 or None"),
    ],
)
def test_parameters_of_the_wrong_kind_are_one_line_errors(tiny_explainer, method, params, message):
    with pytest.raises(CamWidgetsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_explainer.explain(tiny_input(), method, 1, **params)


def test_empty_targets_and_top_are_one_line_errors(tiny_explainer):
    with pytest.raises(CamWidgetsError, match="Invalid targets: expected a non-empty list"):
        tiny_explainer.explain_classes(tiny_input(), [])
    with pytest.raises(CamWidgetsError, match="Invalid top: expected an int >= 1"):
        tiny_explainer.predict(tiny_input(), top=-1)


def test_smoothgrad_defaults_to_the_articles_100_samples(tiny_explainer):
    assert tiny_explainer.explain(tiny_input(), "vanilla", 1, noise=0.2).params["samples"] == 100


class _FlattenHead(torch.nn.Module):
    """Conv then a linear layer over the flattened map: works at 8x8 inputs only."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)
        self.fc = torch.nn.Linear(2 * 8 * 8, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_a_user_model_that_fails_on_the_input_size_says_so(tiny_net):
    from cam_widgets import Explainer

    explainer = Explainer(_FlattenHead(), labels=["a", "b", "c"])  # input_size left at 224x224
    with pytest.raises(
        CamWidgetsError,
        match=r"failed on an input of shape \(1, 3, 224, 224\) "
        r"\(RuntimeError: .*input_size=\(H, W\)",
    ) as error:
        explainer.explain(np.zeros((224, 224, 3), np.uint8))
    assert "\n" not in str(error.value) and count_hooks(explainer.engine.model) == 0
    good = Explainer(_FlattenHead(), labels=["a", "b", "c"], input_size=(8, 8))
    check = good.explain(np.zeros((8, 8, 3), np.uint8) + 100, "gradcam", 1)
    assert check.heatmap.shape == (8, 8)
    with pytest.raises(CamWidgetsError, match="the model gives 3, received 1000 labels"):
        Explainer(tiny_net, input_size=(4, 4)).explain(tiny_input())  # default: ImageNet labels


class _SqrtHead(torch.nn.Module):
    """A head whose gradient is NaN where the pooled activation is 0 (sqrt at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)
        self.relu = torch.nn.ReLU()
        with torch.no_grad():
            self.conv.weight.fill_(-1.0)
            self.conv.bias.fill_(-1.0)

    def forward(self, x):  # all activations 0: d sqrt / d pooled = inf, and inf * 0 = NaN
        return torch.sqrt(self.relu(self.conv(x)).mean(dim=(2, 3)))


def test_nan_gradients_give_a_finite_flagged_raw_map():
    from cam_widgets import Explainer

    result = Explainer(_SqrtHead(), labels=["a", "b"], input_size=(4, 4)).explain(
        torch.ones(1, 3, 4, 4), "gradcam", 0, layer="relu"
    )
    assert result.status.has_nonfinite and result.flagged
    assert np.isfinite(result.raw).all() and np.isfinite(result.heatmap).all()


def test_weights_path_goes_with_a_zoo_name(tiny_net):
    from cam_widgets import Explainer

    with pytest.raises(CamWidgetsError, match="'weights_path' goes with a zoo name"):
        Explainer(tiny_net, weights_path="w.pth")


def test_numpy_scalars_are_parameters_like_any_number(tiny_explainer):
    ig = tiny_explainer.explain(
        tiny_input(),
        "integrated_gradients",
        1,
        baseline=np.float32(0.0),
        steps=np.int64(8),
        batch_size=np.int64(4),
    )
    smooth = tiny_explainer.explain(tiny_input(), "vanilla", 1, samples=4, seed=np.int64(3))
    plus = tiny_explainer.explain(tiny_input(), "gradcam++", 1, positive_gradients=np.bool_(False))
    assert np.isfinite(ig.heatmap).all() and np.isfinite(smooth.heatmap).all() and not plus.flagged


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda ex: ex.explain(tiny_input(), "vanilla", 1, samples=3, snapshots=5),
            "Invalid snapshots: expected sample counts",
        ),
        (
            lambda ex: ex.explain(tiny_input(), "vanilla", 1, samples=2, seed=2**64),
            "Invalid seed: expected an int in",
        ),
        (
            lambda ex: ex.explain(
                tiny_input(), "vanilla", 1, samples=3, noise_samples=torch.zeros(3, 3, 2, 2)
            ),
            r"Invalid noise_samples: expected a tensor of shape \(3, 3, 4, 4\)",
        ),
        (
            lambda ex: ex.explain(
                tiny_input(), "vanilla", 1, samples=2, noise_samples=np.zeros((2, 3, 4, 4))
            ),
            "received a ndarray of shape",
        ),
        (
            lambda ex: ex.explain(tiny_input(), "scorecam", 1, "relu", progress=True),
            "Invalid progress: expected a function",
        ),
        (lambda ex: ex.explain_classes(tiny_input(), None), "Invalid targets: expected a non-empty list"),
        (lambda ex: ex.explain(tiny_input(), "gradcam", 1, ["relu"]), "expected a layer given by its name"),
        (lambda ex: ex.explain(tiny_input(), "gradcam", 1, ex.engine.model.relu), "here 'relu'"),
        (lambda ex: ex.explain(tiny_input(), "integrated_gradients", 1, steps=10**6), "at most 2000"),
        (lambda ex: ex.explain(tiny_input(), "integrated_gradients", 1, baseline=1e39), "within"),
        (
            lambda ex: ex.explain(tiny_input(), "integrated_gradients", 1, baseline=np.zeros((3, 4, 4))),
            "parameter 'baseline': expected a finite number",
        ),
    ],
)
def test_odd_arguments_are_one_line_errors(tiny_explainer, call, message):
    with pytest.raises(CamWidgetsError, match=message) as raised:
        call(tiny_explainer)
    assert "\n" not in str(raised.value)
    assert count_hooks(tiny_explainer.engine.model) == 0


def test_numpy_scalars_set_smoothgrad_and_a_layer_name_alone_is_one_layer(tiny_explainer):
    result = tiny_explainer.explain(tiny_input(), "vanilla", 1, samples=np.int64(2), noise=np.float32(0.1))
    assert type(result.params["samples"]) is int and result.params["noise"] == pytest.approx(0.1)
    assert [r.layer for r in tiny_explainer.explain_layers(tiny_input(), 1, "gradcam", "relu")] == ["relu"]


def test_eigencam_of_noisy_copies_the_model_fails_on_is_the_usual_error(tiny_explainer):
    from cam_widgets.errors import MethodNotApplicableError

    with pytest.raises(MethodNotApplicableError, match="NaN or infinite values for the noisy copies"):
        tiny_explainer.explain(
            tiny_input(),
            "eigencam",
            1,
            "relu",
            samples=2,
            noise_samples=torch.full((2, 3, 4, 4), float("nan")),
        )


@pytest.mark.parametrize("size", ["224", (100_000, 100_000), (0, 4), True])
def test_model_input_sizes_are_checked_before_the_model_runs(tiny_net, size):
    from cam_widgets import Explainer

    with pytest.raises(CamWidgetsError, match="Invalid input_size: expected \\(height, width\\)"):
        Explainer(tiny_net, input_size=size, labels=list("abc"))


@pytest.mark.parametrize(
    "image, message",
    [
        ("", "Image source is empty"),
        (torch.empty(3, 4, 4, device="meta"), "dense tensor with values"),
        (torch.zeros(3, 4, 4).to_sparse(), "dense tensor with values"),
    ],
)
def test_empty_names_and_valueless_tensors_are_one_line_errors(tiny_explainer, image, message):
    with pytest.raises(InvalidImageError, match=message):
        tiny_explainer.explain(image, "gradcam", 1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_a_half_or_double_model_is_told_to_be_float32_not_resized(dtype):
    from cam_widgets import Explainer
    from cam_widgets.errors import MethodNotApplicableError
    from conftest import TinyNet

    with pytest.raises(MethodNotApplicableError, match=r"weights are torch.float.*model.float\(\)"):
        Explainer(TinyNet().to(dtype), input_size=(4, 4), labels=list("abc")).explain(
            tiny_input(), "gradcam", 1
        )


def test_arguments_that_would_do_nothing_are_refused(tiny_explainer):
    """explain_layers with a pixel method gave one identical map per layer; snapshots without
    SmoothGrad came back empty. Both now say why."""
    from cam_widgets.errors import MethodNotApplicableError

    with pytest.raises(MethodNotApplicableError, match="Vanilla gradient reads no layer"):
        tiny_explainer.explain_layers(tiny_input(), 1, "vanilla")
    with pytest.raises(InvalidParameterError, match="'snapshots' applies to SmoothGrad only"):
        tiny_explainer.explain(tiny_input(), "vanilla", 1, snapshots=[1, 2])
