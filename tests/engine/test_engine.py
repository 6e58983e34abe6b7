"""Engine behaviour: caching, layer listing, lifecycle (no hooks left, model untouched)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cam_widgets import Explainer, list_methods
from cam_widgets.engine import count_hooks
from cam_widgets.errors import CamWidgetsError, MethodNotApplicableError
from conftest import TinyNet, tiny_input

FAST_PARAMS = {"integrated_gradients": {"steps": 4}}


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_switching_class_method_layer_reuses_one_forward(lite_explainer, chelsea_tensor):
    """A cached image's graph reaches back to the shallowest layer read so far: a class or a
    layer method switch costs no forward, reading the input (pixel methods) one, once."""
    engine = lite_explainer.engine
    engine.clear_cache()
    lite_explainer.explain(chelsea_tensor, "gradcam", 285)
    before = engine.forward_calls
    for method in ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "cam"):
        for target in (285, 282, "tabby"):
            lite_explainer.explain(chelsea_tensor, method, target)
    assert engine.forward_calls == before
    for method in ("vanilla", "guided_backprop", "guided_gradcam", "gradcam"):
        for target in (285, 282, "tabby"):
            lite_explainer.explain(chelsea_tensor, method, target)
    lite_explainer.explain(chelsea_tensor, "gradcam", 285, "features.6")
    assert engine.forward_calls == before + 1


def test_a_result_says_whether_its_forward_pass_was_reused(tiny_explainer):
    from conftest import tiny_input

    first = tiny_explainer.explain(tiny_input(), "gradcam", 0, "relu")
    again = tiny_explainer.explain(tiny_input(), "gradcam", 1, "relu")  # a class switch
    other = tiny_explainer.explain(tiny_input() * 2, "gradcam", 1, "relu")  # another image
    assert (first.forward_reused, again.forward_reused, other.forward_reused) == (False, True, False)


def test_gradients_are_cached_per_class_and_layer(lite_explainer, chelsea_tensor):
    _, capture = lite_explainer.capture(chelsea_tensor)
    lite_explainer.explain(chelsea_tensor, "gradcam", 281)
    calls = capture.backward_calls
    lite_explainer.explain(chelsea_tensor, "gradcam++", 281)
    lite_explainer.explain(chelsea_tensor, "layercam", 281)
    assert capture.backward_calls == calls


def test_layer_sweep_uses_one_backward(lite_explainer):
    image = lite_explainer.prepare("coffee")
    _, capture = lite_explainer.capture(image)
    results = lite_explainer.explain_layers(image, 967, "gradcam")
    assert capture.backward_calls == 1
    assert len(results) == len(lite_explainer.layers())
    assert {r.heatmap.shape for r in results} == {(224, 224)}


def test_layers_listed_with_resolution_and_default(lite_explainer):
    layers = {layer.name: layer for layer in lite_explainer.layers()}
    assert layers["features.8"].resolution == "7x7" and layers["features.8"].channels == 1280
    assert layers["features.0"].resolution == "112x112"
    assert "avgpool" not in layers and "classifier" not in layers
    assert lite_explainer.default_layer == "features.8"


@pytest.mark.parametrize("method", [m.name for m in list_methods()])
def test_no_hooks_left_and_model_untouched_after_every_method(method):
    net = TinyNet()
    net.train()
    net.fc.weight.requires_grad_(False)
    before = state(net)
    explainer = Explainer(net, input_size=(4, 4), labels=["a", "b", "c"])
    result = explainer.explain(tiny_input(), method, 1, "relu", **FAST_PARAMS.get(method, {}))
    smooth = explainer.explain(tiny_input(), method, 1, "relu", samples=3, **FAST_PARAMS.get(method, {}))
    assert count_hooks(net) == 0
    assert net.training and all(m.training for m in net.modules())
    assert not net.fc.weight.requires_grad and net.conv.weight.requires_grad
    assert all(p.grad is None for p in net.parameters())
    for key, value in state(net).items():
        assert torch.equal(value, before[key])
    for r in (result, smooth):
        assert np.isfinite(r.heatmap).all() and r.heatmap.dtype == np.float32


class Exploding(nn.Module):
    """Raises in the middle of the forward, after hooks were registered."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)
        self.explode = False

    def forward(self, x):
        y = self.relu(self.conv(x))
        if self.explode:
            raise RuntimeError("boom")
        return self.fc(y.mean(dim=(2, 3)))


def test_no_hooks_left_after_an_error():
    net = Exploding()
    explainer = Explainer(net, input_size=(8, 8), labels=["a", "b"])
    explainer.layers()
    net.explode = True
    with pytest.raises(RuntimeError, match="boom"):
        explainer.explain(torch.zeros(1, 3, 8, 8), "guided_backprop", 0)
    assert count_hooks(net) == 0
    cam_less = Exploding()
    with torch.no_grad():  # a ReLU that clips between 'conv' and the pooled head, always
        # (random biases were all positive 1 time in 16: then ReLU(bias) = bias on this zero
        # input, the head check passed and the test flaked)
        cam_less.conv.bias.copy_(torch.tensor([1.0, -1.0, 1.0, -1.0]))
        cam_less.fc.weight.fill_(1.0)
    with pytest.raises(MethodNotApplicableError):
        Explainer(cam_less, input_size=(8, 8), labels=["a", "b"]).explain(
            torch.zeros(1, 3, 8, 8), "cam", 0, "conv"
        )
    net.explode = False
    result = explainer.explain(torch.ones(1, 3, 8, 8), "guided_backprop", 0)
    assert count_hooks(net) == 0 and np.isfinite(result.heatmap).all()


def test_gradients_under_no_grad_and_clear_error_under_inference_mode(tiny_explainer):
    with torch.no_grad():
        inside = tiny_explainer.explain(tiny_input(), "gradcam", 0, "relu")
    assert inside.raw.max() > 0
    tiny_explainer.engine.clear_cache()
    with torch.inference_mode():
        with pytest.raises(MethodNotApplicableError, match="inference_mode"):
            tiny_explainer.explain(tiny_input(), "gradcam", 0, "relu")
    tiny_explainer.explain(tiny_input(), "gradcam", 0, "relu")  # cached now: same error
    for method in ("gradcam", "vanilla"):
        with torch.inference_mode(), pytest.raises(MethodNotApplicableError, match="inference_mode"):
            tiny_explainer.explain(tiny_input(), method, 1, "relu")
    fresh = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"))  # first call: not "size"
    with torch.inference_mode(), pytest.raises(MethodNotApplicableError, match="inference_mode"):
        fresh.explain(tiny_input(), "gradcam", 0)


class InplaceVGGish(nn.Module):
    """conv -> ReLU(inplace) like torchvision's VGG: the conv output is overwritten in place."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # fixed weights, the global generator left alone
            torch.manual_seed(0)
            self.features = nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(4, 5, 3, padding=1),
                nn.ReLU(inplace=True),
            )
            self.fc = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_inplace_relu_keeps_the_pre_activation_of_the_conv():
    net = InplaceVGGish()
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    explainer = Explainer(net, input_size=(6, 6), labels=list("abc"))
    _, capture = explainer.capture(x)
    conv_out = net.features[0](x)
    torch.testing.assert_close(capture.activations("features.0"), conv_out)
    assert (capture.activations("features.0") < 0).any()  # not overwritten by the ReLU
    torch.testing.assert_close(capture.activations("features.1"), conv_out.clamp(min=0))
    assert net.features[1].inplace and net.features[3].inplace
    # Grad-CAM at the conv: gradient w.r.t. the pre-activation includes the ReLU mask
    conv = explainer.explain(x, "gradcam", 1, "features.2")
    relu = explainer.explain(x, "gradcam", 1, "features.3")
    assert not np.allclose(conv.raw, relu.raw)


def test_guided_backprop_on_a_model_without_relu_is_a_clear_error():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    explainer = Explainer(net, input_size=(8, 8), labels=["a", "b"])
    for method in ("guided_backprop", "guided_gradcam"):
        with pytest.raises(MethodNotApplicableError, match="ReLU"):
            explainer.explain(torch.randn(3, 8, 8), method, 0)
    assert count_hooks(net) == 0


def test_user_model_is_not_moved_or_copied_on_its_device(tiny_net):
    explainer = Explainer(tiny_net, input_size=(4, 4), labels=list("abc"))
    assert explainer.engine.model is tiny_net
    assert explainer.device.type == "cpu"


def test_memory_stays_flat_over_many_calls(tiny_explainer):
    import tracemalloc

    def call(i):
        x = tiny_input() + i  # a new image each time: exercises the LRU cache
        tiny_explainer.explain(x, "gradcam++", i % 3, "relu")
        tiny_explainer.explain(x, "guided_gradcam", i % 3, "relu")

    for i in range(50):
        call(i)
    tracemalloc.start()
    first, _ = tracemalloc.get_traced_memory()
    for i in range(50, 550):
        call(i)
    second, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(tiny_explainer.engine._captures) <= tiny_explainer.engine.cache_size
    assert second - first < 2_000_000
    assert count_hooks(tiny_explainer.engine.model) == 0


def test_every_error_is_a_cam_widgets_error_with_one_line(tiny_explainer):
    cases = [
        lambda: tiny_explainer.explain(tiny_input(), "gradcamm", 0),
        lambda: tiny_explainer.explain(tiny_input(), "gradcam", 7),
        lambda: tiny_explainer.explain(tiny_input(), "gradcam", "zebra"),
        lambda: tiny_explainer.explain(tiny_input(), "gradcam", 0, "rellu"),
        lambda: tiny_explainer.explain(tiny_input(), "gradcam", 0, "pool"),
        lambda: tiny_explainer.explain(tiny_input(), "gradcam", 0, steps=3),
        lambda: tiny_explainer.explain(tiny_input(), "vanilla", 0, samples=0),
        lambda: tiny_explainer.explain(tiny_input(), "vanilla", 0, samples=2, noise=-1),
        lambda: tiny_explainer.explain(torch.full((1, 3, 4, 4), float("nan")), "gradcam", 0),
        lambda: tiny_explainer.explain(torch.zeros(1, 3, 5, 5), "gradcam", 0),
    ]
    for case in cases:
        with pytest.raises(CamWidgetsError) as info:
            case()
        assert "\n" not in str(info.value) and len(str(info.value)) > 20


def test_gradient_cache_is_bounded(monkeypatch):
    from cam_widgets.engine import capture as capture_module

    monkeypatch.setattr(capture_module, "MAX_CACHED_GRADIENT_BYTES", 2 * 2 * 16 * 4)  # 2 entries
    explainer = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"))
    for k in (0, 1, 2, 0, 1):
        result = explainer.explain(tiny_input(), "gradcam", k, "relu")
        assert result.class_id == k
    _, capture = explainer.capture(tiny_input())
    assert len(capture._layer_grads) == 2


def test_gradient_cache_keeps_the_latest_backward_whole_and_drops_older_ones(monkeypatch):
    from cam_widgets.engine import capture as capture_module

    monkeypatch.setattr(capture_module, "MAX_CACHED_GRADIENT_BYTES", 1)  # less than one entry
    explainer = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"))
    sweep = explainer.explain_layers(tiny_input(), 1, "gradcam")  # one backward, every layer
    _, capture = explainer.capture(tiny_input())
    assert capture.backward_calls == 1 and len(sweep) == len(explainer.layers()) > 1
    assert {key[1] for key in capture._layer_grads} == {1}
    explainer.explain(tiny_input(), "gradcam", 2, "relu")
    assert list(capture._layer_grads) == [("relu", 2)]
    assert capture._layer_grads.nbytes == 2 * 16 * 4  # (2 channels, 4x4, float32)


def test_return_freed_memory_runs_once_for_nested_calls(monkeypatch):
    from cam_widgets.engine import heap

    calls = []
    monkeypatch.setattr(heap, "_malloc_trim", lambda pad: calls.append(pad))
    explainer = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"))
    explainer.layers()
    calls.clear()
    explainer.explain(tiny_input(), "gradcam", 1, "relu")  # explain -> explain_classes
    assert calls == [0]
    with pytest.raises(CamWidgetsError):
        explainer.explain(tiny_input(), "no such method")
    assert calls == [0, 0]  # after a failed call too


def test_default_layer_of_a_plain_resnet_is_the_last_block_not_the_shortcut():
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    explainer = Explainer(net, input_size=(64, 64))
    assert explainer.default_layer == "layer4.1"
    assert "layer4.0.downsample" in {layer.name for layer in explainer.layers()}


def test_a_tensor_changed_through_a_numpy_view_is_not_served_from_the_cache(lite_explainer, chelsea_tensor):
    array = chelsea_tensor.numpy().copy()
    tensor = torch.from_numpy(array)
    before = lite_explainer.explain(tensor, "gradcam", 285)
    array[:, :, :112] = 0.0  # same object, same autograd version, other pixels
    after = lite_explainer.explain(tensor, "gradcam", 285)
    assert not np.allclose(before.heatmap, after.heatmap)
    np.testing.assert_array_equal(
        after.heatmap, lite_explainer.explain(torch.from_numpy(array.copy()), "gradcam", 285).heatmap
    )


def test_layers_returning_one_tensor_share_one_hook_and_give_one_map(lite_explainer, chelsea_tensor):
    aliases = lite_explainer.engine._aliases
    assert aliases["features.1"] == "features.1.0.block.1.1"
    inner = lite_explainer.explain(chelsea_tensor, "gradcam", 285, "features.1.0.block.1.1")
    outer = lite_explainer.explain(chelsea_tensor, "gradcam", 285, "features.1")
    np.testing.assert_array_equal(inner.heatmap, outer.heatmap)


def test_recording_leaves_user_hooks_and_patched_forwards_as_they_were(tiny_net):
    """Layers are recorded by wrapping forward for one call; a module with hooks of its own
    keeps a plain hook (its hook may change the output), a patched forward is restored."""
    seen = []
    handle = tiny_net.relu.register_forward_hook(lambda m, i, out: out * 2)
    original_conv_forward = tiny_net.conv.forward
    tiny_net.conv.forward = lambda x: original_conv_forward(x)  # a user's own patch
    patched = tiny_net.conv.forward
    try:
        explainer = Explainer(tiny_net, input_size=(4, 4), labels=list("abc"))
        _, capture = explainer.capture(tiny_input())
        with torch.no_grad():
            conv_out = tiny_net.conv(tiny_input())
        torch.testing.assert_close(capture.activations("relu"), conv_out.clamp(min=0) * 2)
        assert tiny_net.conv.__dict__["forward"] is patched
        assert "forward" not in tiny_net.relu.__dict__
        assert len(tiny_net.relu._forward_hooks) == 1 and count_hooks(tiny_net) == 1
        seen.append(True)
    finally:
        handle.remove()
        del tiny_net.conv.forward
    assert seen and count_hooks(tiny_net) == 0


def test_an_error_inside_the_forward_removes_every_wrapper():
    class Failing(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)
            self.fail = False

        def forward(self, x):
            x = self.conv(x)
            if self.fail:
                raise ValueError("boom")
            return self.fc(x.mean(dim=(2, 3)))

    net = Failing()
    explainer = Explainer(net, input_size=(6, 6), labels=["a", "b"])
    explainer.layers()
    net.fail = True
    with pytest.raises(Exception, match="boom"):  # (wrapped or not, the model's own error)
        explainer.explain(torch.randn(3, 6, 6), "gradcam", 0, "conv")
    assert count_hooks(net) == 0 and "forward" not in net.conv.__dict__


@pytest.mark.parametrize(
    "channels, channels_last, expected",
    [(8, True, 8), (96, True, 8), (200, True, 4), (400, True, 4), (96, False, 4), (64, False, 6)],
)
def test_cpu_batch_size_follows_the_layouts_activation_limit(channels, channels_last, expected):
    """CPU batch = largest activation under CPU_BLOCK_BYTES of its layout, between
    CPU_MIN_BATCH and CPU_BATCH."""
    from cam_widgets.engine.device import CPU_BATCH, CPU_BLOCK_BYTES, CPU_MIN_BATCH

    net = nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, 2),
    )
    explainer = Explainer(net, input_size=(112, 112), labels=["a", "b"], device="cpu")
    explainer.engine.layers
    assert explainer.engine._nhwc  # a plain conv net accepts the layout
    explainer.engine._nhwc = channels_last
    largest = channels * 112 * 112 * 4  # bytes of the conv output for one image
    assert (
        explainer.engine.batch_size_for()
        == expected
        == max(CPU_MIN_BATCH, min(CPU_BATCH, CPU_BLOCK_BYTES[channels_last] // largest))
    )


def test_cpu_passes_run_channels_last_and_give_the_plain_layouts_maps(lite_explainer, chelsea_tensor):
    engine = lite_explainer.engine
    engine.layers  # the probe decides the layout
    assert engine._nhwc  # EfficientNet-Lite0 accepts it on the CPU
    forward = engine.run(chelsea_tensor, ["features.8"])  # the folded twin
    assert forward.inputs.is_contiguous(memory_format=torch.channels_last)
    capture = lite_explainer.capture(chelsea_tensor)[1]  # the model itself, every layer recorded
    assert capture.forward.inputs.is_contiguous(memory_format=torch.channels_last)
    results = {}
    try:
        for layout in (True, False):
            engine._nhwc = layout
            engine.clear_cache()
            results[layout] = [
                lite_explainer.explain(chelsea_tensor, method, 285).heatmap
                for method in ("gradcam", "guided_backprop", "vanilla")
            ]
    finally:
        engine._nhwc = True
        engine.clear_cache()
    for nhwc, plain in zip(results[True], results[False]):
        assert np.corrcoef(nhwc.ravel(), plain.ravel())[0, 1] > 0.9999
    attribution = lite_explainer.explain(chelsea_tensor, "vanilla", 285).attribution
    assert attribution.flags["C_CONTIGUOUS"]  # users get a plain array, whatever the layout


class ViewsItsActivations(nn.Module):
    """Flattens a conv output with .view(), which a channels-last tensor cannot do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(y.view(y.shape[0], -1))


class _ViewGradient(torch.autograd.Function):
    """Identity whose backward .view()s the gradient: only the backward fails channels-last."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.view(grad.shape[0], -1).view(grad.shape)


class ViewsItsGradients(nn.Module):
    """Its forward works channels-last; its backward (through conv2's NHWC gradient) does not."""

    def __init__(self):
        super().__init__()
        self.conv, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = _ViewGradient.apply(torch.relu(self.conv(x)))
        return self.fc(self.conv2(y).mean((2, 3)))


@pytest.mark.parametrize("model", [ViewsItsActivations, ViewsItsGradients])
def test_a_model_that_cannot_take_channels_last_keeps_the_plain_layout(model):
    explainer = Explainer(model(), input_size=(6, 6), labels=["a", "b"], device="cpu")
    result = explainer.explain(torch.rand(3, 6, 6), "gradcam", 1, "conv")
    assert not explainer.engine._nhwc
    assert np.isfinite(result.heatmap).all()
    smooth = explainer.explain(torch.rand(3, 6, 6), "vanilla", 1, samples=4)
    assert np.isfinite(smooth.heatmap).all()


def test_channels_last_false_keeps_every_pass_in_the_plain_layout(chelsea_tensor):
    explainer = Explainer("efficientnet_lite0", device="cpu", channels_last=False)
    forward = explainer.engine.run(chelsea_tensor, [])  # the folded twin
    assert not explainer.engine._nhwc and not explainer.engine._twin.channels_last
    assert forward.inputs.is_contiguous()
    assert explainer.capture(chelsea_tensor)[1].forward.inputs.is_contiguous()


def test_channels_last_passes_leave_the_callers_weights_in_place():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    ).eval()
    before = {name: (p.data_ptr(), p.stride(), p.clone()) for name, p in net.state_dict().items()}
    explainer = Explainer(net, input_size=(16, 16), labels=["a", "b"], device="cpu")
    image = torch.rand(3, 16, 16)
    explainer.explain(image, "gradcam", 1, "3")
    explainer.explain(image, "vanilla", 1, samples=8)  # the folded twin, channels-last
    assert explainer.engine._nhwc and explainer.engine._twin is not None
    assert explainer.engine._twin.channels_last
    for name, tensor in net.state_dict().items():
        pointer, stride, value = before[name]
        assert tensor.data_ptr() == pointer and tensor.stride() == stride, name
        assert tensor.is_contiguous() and torch.equal(tensor, value), name


def test_cached_forwards_follow_the_weights(tiny_net, tiny_explainer):
    x = tiny_input()
    fresh = lambda layer=None: Explainer(  # noqa: E731
        tiny_net, input_size=(4, 4), labels=["a", "b", "c"], device="cpu"
    ).explain(x, "gradcam", 1, layer)
    before = tiny_explainer.explain(x, "gradcam", 1)
    optimizer = torch.optim.SGD(tiny_net.parameters(), lr=0.5)
    tiny_net(x)[0, 2].backward()
    optimizer.step()  # in place: the cached forward is stale
    after = tiny_explainer.explain(x, "gradcam", 1)
    assert after.probability != before.probability
    assert after.probability == pytest.approx(fresh().probability, abs=1e-7)
    np.testing.assert_allclose(after.raw, fresh().raw, atol=1e-6)

    def same_as_fresh(layer="conv"):
        ours, new = tiny_explainer.explain(x, "gradcam", 1, layer), fresh(layer)
        assert ours.probability == pytest.approx(new.probability, abs=1e-7)
        np.testing.assert_allclose(ours.raw, new.raw, atol=1e-6)

    torch.manual_seed(0)
    tiny_net.conv = torch.nn.Conv2d(3, 2, 1)  # a swapped module, the recorded layer itself
    same_as_fresh()
    tiny_net.fc.weight = torch.nn.Parameter(torch.randn(3, 2))  # a replaced parameter...
    same_as_fresh()
    with torch.no_grad():
        tiny_net.fc.weight.mul_(-1)  # ...then written in place: the new tensor is watched
    same_as_fresh()
    tiny_net.fc.weight.data = torch.randn(3, 2)  # re-pointed storage
    same_as_fresh()
    forwards = tiny_explainer.engine.forward_calls
    tiny_explainer.explain(x, "gradcam", 2)  # unchanged weights: still one forward
    assert tiny_explainer.engine.forward_calls == forwards


def test_explain_shares_one_explainer_per_model_and_reads_a_file_once(tiny_net, tmp_path, monkeypatch):
    import os

    from PIL import Image

    import cam_widgets.api as api
    import cam_widgets.explainer as explainer_module
    from cam_widgets.engine import choose_device

    assert api.get_explainer(device=None) is api.get_explainer(device=str(choose_device(None)))
    from cam_widgets.models import ModelSpec

    spec = ModelSpec(
        name="tiny", model=tiny_net, preprocess=lambda rgb: rgb, labels=["a", "b", "c"], input_size=(4, 4)
    )
    first = api.explain(tiny_input(), model=spec, target=1, device="cpu")
    shared = api._LAST_USER[2]
    api.explain(tiny_input(), model=spec, target=2, device="cpu")
    assert api._LAST_USER[2] is shared and shared.engine.forward_calls == 1
    assert first.class_id == 1

    reads = []
    for loader in ("load_image", "load_named"):  # (arrays, paths; names and paths as text)
        real = getattr(explainer_module, loader)
        monkeypatch.setattr(explainer_module, loader, lambda src, real=real: reads.append(src) or real(src))
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path)
    ex = api.get_explainer()
    red = ex.prepare(str(path))
    assert ex.prepare(path) is red and len(reads) == 1  # str and Path name one file
    Image.new("RGB", (40, 30), (10, 10, 200)).save(path)  # edited: read again
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    assert ex.prepare(str(path)).key != red.key and len(reads) == 2


def test_a_callers_model_spec_is_never_moved_in_place(tiny_net, monkeypatch):
    import cam_widgets.engine.engine as engine_module
    from cam_widgets.models import ModelSpec

    # were the spec "owned", the engine would move its model to the chosen device in place
    monkeypatch.setattr(engine_module, "choose_device", lambda device=None: torch.device("meta"))
    spec = ModelSpec(
        name="tiny", model=tiny_net, preprocess=lambda rgb: rgb, labels=["a", "b", "c"], input_size=(4, 4)
    )
    Explainer(spec)
    assert all(p.device.type == "cpu" for p in tiny_net.parameters())


def test_results_share_one_read_only_photo(lite_explainer):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from the preprocessing
        a = lite_explainer.explain("coffee", "gradcam")
        b = lite_explainer.explain("coffee", "gradcam++")
    assert a.image is b.image and not a.image.flags.writeable
    with pytest.raises(ValueError):
        a.image[:] = 0  # one result cannot blank the photo of the others


def test_slow_work_reports_its_start_and_smoothgrad_reports_within_slow_base_methods(tiny_explainer):
    """A progress bar shows at once (0/n), and SmoothGrad over Score-CAM reports within each
    noisy sample too (the same count again): a caller can stop between Score-CAM's batches."""
    from conftest import tiny_input

    seen = []
    tiny_explainer.explain(tiny_input(), "scorecam", 0, "relu", progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, seen[0][1]) and seen[-1][0] == seen[-1][1] > 0
    seen.clear()
    tiny_explainer.explain(
        tiny_input(), "integrated_gradients", 0, steps=4, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    seen.clear()
    tiny_explainer.explain(
        tiny_input(),
        "scorecam",
        0,
        "relu",
        noise=0.1,
        samples=3,
        batch_size=1,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    assert len(seen) > 4 and seen == sorted(seen)  # reports within samples, never backwards


def test_methods_are_found_by_name_or_title_in_any_spelling(tiny_explainer):
    from cam_widgets.errors import UnknownMethodError
    from cam_widgets.methods import get_method

    for spelling, name in [
        ("Grad-CAM++", "gradcam++"),
        ("grad-cam", "gradcam"),
        ("GradCAM", "gradcam"),
        ("Guided Backprop", "guided_backprop"),
        ("guided grad-cam++", "guided_gradcam++"),
        ("Eigen-CAM (any class)", "eigencam"),
        ("Vanilla gradient", "vanilla"),
        ("integrated gradients", "integrated_gradients"),
    ]:
        assert get_method(spelling).name == name
    assert tiny_explainer.explain(tiny_input(), "Grad-CAM++", 0).method == "gradcam++"
    with pytest.raises(
        UnknownMethodError, match=r"Unknown method: .*received 'gradcamm'.*Did you mean 'gradcam'"
    ):
        get_method("gradcamm")
    with pytest.raises(UnknownMethodError):
        get_method("grad")  # a prefix is not a method
