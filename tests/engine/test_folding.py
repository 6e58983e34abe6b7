"""The BatchNorm-folded twin: same function, used only where it can stand in, model untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from cam_widgets import Explainer
from cam_widgets.engine import count_hooks
from cam_widgets.engine.folding import build_twin, conv_bn_pairs
from cam_widgets.engine.inplace import ReLU6InPlaceWithoutGraph


class ConvBnNet(nn.Module):
    """conv -> BN -> ReLU -> conv -> BN -> GAP -> linear, with non-trivial BN statistics;
    ``reuse``: the first conv's output is also added after its BN (folding must then refuse)."""

    def __init__(self, reuse: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 3)
        self.reuse = reuse
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.running_mean.copy_(torch.randn(4, generator=gen))
                bn.running_var.copy_(torch.rand(4, generator=gen) + 0.5)
                bn.weight.copy_(torch.randn(4, generator=gen))
                bn.bias.copy_(torch.randn(4, generator=gen))
        self.eval()

    def forward(self, x):
        y = self.conv1(x)
        x = self.relu(self.bn1(y) + (y if self.reuse else 0))
        return self.fc(self.pool(self.bn2(self.conv2(x))).flatten(1))


def _modules(model):
    return [(n, m) for n, m in model.named_modules() if n]


def _example():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_twin_computes_the_same_logits_and_leaves_the_model_alone():
    model = ConvBnNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    twin = build_twin(model, _modules(model), _example())
    assert twin is not None and twin.folded_convs == {"conv1", "conv2"}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.model.modules())
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(twin.model(x), model(x), rtol=1e-5, atol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert isinstance(model.bn1, nn.BatchNorm2d) and count_hooks(model) == 0


def test_a_conv_output_read_twice_is_not_folded():
    model = ConvBnNet(reuse=True)
    assert ("conv1", "bn1") in conv_bn_pairs(model, _modules(model), _example())
    assert build_twin(model, _modules(model), _example()) is None  # caught by the logit check
    assert count_hooks(model) == 0


def test_a_model_with_hooks_of_its_own_is_not_copied():
    model = ConvBnNet()
    handle = model.bn2.register_forward_hook(lambda m, i, o: o * 2)
    assert build_twin(model, _modules(model), _example()) is None
    handle.remove()


def test_smoothgrad_on_the_twin_agrees_with_the_model(lite_explainer, chelsea_tensor):
    engine = lite_explainer.engine
    args = (chelsea_tensor, "vanilla", 285)
    try:
        engine.fold_batch_norm = False
        plain = lite_explainer.explain(*args, samples=8).heatmap
        engine.fold_batch_norm = True
        folded = lite_explainer.explain(*args, samples=8).heatmap
    finally:
        engine.fold_batch_norm = True
    assert engine._twin is not None and "features.0.0" in engine._twin.folded_convs
    assert not np.array_equal(plain, folded)  # the twin really ran
    assert np.corrcoef(plain.ravel(), folded.ravel())[0, 1] > 0.99999


def test_twin_gradients_are_as_close_to_float64_as_the_models(lite_explainer, chelsea_tensor):
    """Mean relative L2 error of input gradients over a noisy batch. One image's max error is
    no measure: float32 rounding flips a few ReLU6 units at their kinks, differently for every
    summation order, and one flip moves a whole region (1e-4 to 1.5e-2 for one class, in
    either direction, between two exact layouts of the same model)."""
    engine = lite_explainer.engine
    noisy = chelsea_tensor + 0.2 * torch.randn(
        (8,) + chelsea_tensor.shape[1:], generator=torch.Generator().manual_seed(3)
    )
    reference = copy.deepcopy(engine.model).double()
    leaf = noisy.double().requires_grad_(True)
    (exact,) = torch.autograd.grad(reference(leaf)[:, 285].sum(), leaf)

    def error(fold: bool) -> float:
        engine.fold_batch_norm = fold
        forward = engine.run(noisy, [])
        (grad,) = forward.gradients(torch.tensor([285]), [forward.inputs])
        diff = (grad[0].double() - exact).flatten(1).norm(dim=1) / exact.flatten(1).norm(dim=1)
        return float(diff.mean())

    try:
        plain, folded = error(False), error(True)
    finally:
        engine.fold_batch_norm = True
    assert plain < 5e-3 and folded < 5e-3, (folded, plain)
    assert folded <= 2 * plain, (folded, plain)


def test_a_folded_conv_layer_runs_on_the_model_itself(lite_explainer, chelsea_tensor):
    engine = lite_explainer.engine
    args = (chelsea_tensor, "gradcam", 285, "features.1.0.block.0.0")  # a conv before its BN
    try:
        engine.fold_batch_norm = False
        plain = lite_explainer.explain(*args, samples=4).heatmap
    finally:
        engine.fold_batch_norm = True
    np.testing.assert_array_equal(lite_explainer.explain(*args, samples=4).heatmap, plain)


def test_the_twin_follows_weight_changes():
    model = ConvBnNet()
    ex = Explainer(model, input_size=(8, 8), labels=list("abc"), device="cpu")
    x = torch.randn(3, 3, 8, 8)
    first = ex.engine.scores(x)
    with torch.no_grad():
        model.bn2.weight.mul_(-2.0)  # written in place, as an optimizer step would
        expected = model(x)
    torch.testing.assert_close(ex.engine.scores(x), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(first, expected)


@pytest.mark.parametrize("method", ["vanilla", "guided_backprop", "integrated_gradients"])
def test_batched_methods_on_a_conv_bn_net_match_without_folding(method):
    model = ConvBnNet()
    ex = Explainer(model, input_size=(8, 8), labels=list("abc"), device="cpu")
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    params = {"steps": 8} if method == "integrated_gradients" else {"samples": 6}
    folded = ex.explain(x, method, 1, **params).raw
    ex.engine.fold_batch_norm = False
    plain = ex.explain(x, method, 1, **params).raw
    torch.testing.assert_close(torch.as_tensor(folded), torch.as_tensor(plain), rtol=1e-4, atol=1e-6)
    assert count_hooks(model) == 0


def test_folding_can_be_turned_off():
    ex = Explainer(ConvBnNet(), input_size=(8, 8), labels=list("abc"), device="cpu", fold_batch_norm=False)
    ex.explain(torch.randn(1, 3, 8, 8), "vanilla", 0, samples=2)
    assert ex.engine._twin is None and ex.engine._twin_key is None


def _explainer(model, **kwargs):
    return Explainer(model, input_size=(8, 8), labels=list("abc"), device="cpu", **kwargs)


def test_a_capture_never_builds_the_twin():
    ex = _explainer(ConvBnNet())
    ex.explain(torch.randn(1, 3, 8, 8), "gradcam", 0)
    assert ex.engine._twin is None and ex.engine._twin_key is None


def test_a_model_that_cannot_be_copied_still_runs_batched_methods():
    import threading

    model = ConvBnNet()
    model.lock = threading.Lock()  # deepcopy fails on it
    ex = _explainer(model)
    result = ex.explain(torch.randn(1, 3, 8, 8), "vanilla", 0, samples=2)
    assert ex.engine._twin is None and np.isfinite(result.heatmap).all()


@pytest.mark.parametrize("change", ["repoint data", "swap module", "add hook"])
def test_the_twin_follows_changes_autograd_does_not_count(change):
    model = ConvBnNet()
    ex = _explainer(model)
    x = torch.randn(3, 3, 8, 8)
    ex.engine.scores(x)
    if change == "repoint data":  # what torch.nn.utils.vector_to_parameters does
        model.bn2.weight.data = model.bn2.weight.data * -2.0
    elif change == "swap module":
        model.fc = nn.Linear(4, 3)
    else:
        model.bn2.register_forward_hook(lambda m, i, o: o * 2)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(ex.engine.scores(x), expected, rtol=1e-5, atol=1e-5)


def test_clear_cache_drops_the_twin_after_an_in_place_data_write():
    model = ConvBnNet()
    ex = _explainer(model)
    x = torch.randn(3, 3, 8, 8)
    ex.engine.scores(x)
    model.bn2.weight.data.mul_(-2.0)  # invisible to version counters
    ex.engine.clear_cache()
    with torch.no_grad():
        torch.testing.assert_close(ex.engine.scores(x), model(x), rtol=1e-5, atol=1e-5)


def test_twin_checked_in_the_layout_it_runs_in():
    class Flattens(ConvBnNet):
        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            return self.fc(x.view(x.shape[0], -1)[:, :4])  # a view that needs NCHW strides

    model = Flattens()
    assert build_twin(model, _modules(model), _example(), channels_last=True) is None
    assert build_twin(model, _modules(model), _example(), channels_last=False) is not None


def test_conv_changed_in_place_before_its_batchnorm_is_not_paired():
    class InPlace(ConvBnNet):
        def forward(self, x):
            x = self.bn1(torch.relu_(self.conv1(x)))
            return self.fc(self.pool(self.bn2(self.conv2(x))).flatten(1))

    model = InPlace()
    assert conv_bn_pairs(model, _modules(model), _example()) == [("conv2", "bn2")]


def test_twin_built_inside_inference_mode_serves_gradients_later():
    ex = _explainer(ConvBnNet())
    x = torch.randn(1, 3, 8, 8)
    ex.layers()
    with torch.inference_mode():
        ex.engine.scores(x)
    assert ex.engine._twin is not None
    assert np.isfinite(ex.explain(x, "vanilla", 0, samples=2).heatmap).all()


def test_a_backward_hook_keeps_the_model_itself():
    model = ConvBnNet()
    model.bn1.register_full_backward_hook(lambda m, gi, go: None)
    assert build_twin(model, _modules(model), _example()) is None


def test_a_model_without_batchnorm_is_not_even_run(monkeypatch):
    """No BatchNorm, nothing to fold: no trial forward (the dilated VGG16's took 26 s, 1.8 GB)."""
    from cam_widgets.engine import folding

    searched = []
    monkeypatch.setattr(folding, "conv_bn_pairs", lambda *args: searched.append(1) or [])
    plain = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    ).eval()
    assert build_twin(plain, _modules(plain), _example()) is None and searched == []
    build_twin(ConvBnNet(), _modules(ConvBnNet()), _example())
    assert searched == [1]  # with BatchNorm the search runs


class ReluAfterBn(ConvBnNet):
    """conv -> BN -> ReLU with nothing in between (ConvBnNet adds 0 before its ReLU)."""

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.fc(self.pool(self.bn2(self.conv2(x))).flatten(1))


class ReluReadTwice(ConvBnNet):
    """bn1's output is both ReLU'd and added after: that ReLU must not overwrite it."""

    def forward(self, x):
        y = self.bn1(self.conv1(x))
        x = self.relu(y) + y
        return self.fc(self.pool(self.bn2(self.conv2(x))).flatten(1))


def _inplace_relus(twin):
    return {
        n
        for n, m in twin.model.named_modules()
        if isinstance(m, ReLU6InPlaceWithoutGraph) or isinstance(m, nn.ReLU) and m.inplace
    }


def test_the_twin_runs_a_relu_after_a_folded_conv_in_place():
    model = ReluAfterBn()
    twin = build_twin(model, _modules(model), _example())
    assert twin is not None and _inplace_relus(twin) == {"relu"}
    assert twin.feeds_inplace == {"conv1", "bn1"}  # (bn1: the Identity left of the BatchNorm)
    assert not model.relu.inplace  # the caller's model untouched
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(twin.model(x), model(x), rtol=1e-5, atol=1e-5)


def test_a_relu_whose_input_is_read_elsewhere_stays_out_of_place():
    model = ReluReadTwice()
    twin = build_twin(model, _modules(model), _example())
    assert twin is not None and _inplace_relus(twin) == set() and twin.feeds_inplace == set()


@pytest.mark.parametrize("layers", [[], ["bn1"], ["relu"], ["bn1", "relu"]])
def test_in_place_relus_give_the_gradients_of_the_model(layers):
    """The twin's passes (in-place ReLU) against the model's: logits, the recorded outputs
    (bn1 is the output the ReLU overwrites: recorded, a copy passed on) and gradients to them
    and to the input."""
    model = ReluAfterBn()
    ex = _explainer(model)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))

    def gradients(folded: bool):
        forward = ex.engine.run(x, layers, folded=folded)
        wrt = [forward.inputs] + [forward.outputs[name] for name in layers]
        grads = forward.gradients(torch.tensor([1]), wrt)
        return [forward.logits.detach()] + [forward.activations(n) for n in layers] + grads

    plain, twin = gradients(False), gradients(True)
    assert ex.engine._twin is not None and _inplace_relus(ex.engine._twin) == {"relu"}
    for got, want in zip(twin, plain):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert count_hooks(model) == 0


@pytest.mark.parametrize("method", ["gradcam", "guided_backprop", "vanilla"])
def test_a_batch_on_the_in_place_twin_equals_it_out_of_place(lite_explainer, chelsea_tensor, method):
    """EfficientNet-Lite0's twin runs every ReLU6 in place: a batch's raw maps are those of
    the same twin with them out of place (the same arithmetic), and agree with each image's
    own capture on the model (float rounding at ReLU6 kinks apart), also at a layer whose
    output a ReLU6 overwrites (a BatchNorm's, recorded: a copy goes on)."""
    engine = lite_explainer.engine
    images = chelsea_tensor + 0.1 * torch.randn(
        (3,) + chelsea_tensor.shape[1:], generator=torch.Generator().manual_seed(4)
    )
    for layer in [None, "features.7.0.block.1.1"] if method == "gradcam" else [None]:
        batch = lite_explainer.explain_batch(images, method, 285, layer)
        twin = engine._twin
        assert twin is not None and len(_inplace_relus(twin)) == 33
        relus = [m for m in twin.model.modules() if isinstance(m, nn.ReLU6)]
        try:
            for relu in relus:
                relu.__class__ = nn.ReLU6
            out_of_place = lite_explainer.explain_batch(images, method, 285, layer)
        finally:
            for relu in relus:
                relu.__class__ = ReLU6InPlaceWithoutGraph
        for image, result, plain in zip(images, batch, out_of_place):
            np.testing.assert_allclose(result.raw, plain.raw, rtol=1e-6, atol=1e-9)
            alone = lite_explainer.explain(image[None], method, 285, layer).raw
            assert np.corrcoef(result.raw.ravel(), alone.ravel())[0, 1] > 0.9999
