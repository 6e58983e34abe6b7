"""An image's cached forward keeps its graph only from the shallowest layer read so far:
same maps as a graph from the input, nothing recorded below the root, one more forward when
a call reads deeper, and branches, frozen weights and in-place activations handled."""

from __future__ import annotations

import weakref

import torch
import torchvision
from torch import nn

from cam_widgets import Explainer
from cam_widgets.engine import Engine, count_hooks

ALL_METHODS = ("gradcam", "gradcam++", "layercam", "hirescam", "eigencam")


def _same(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_layer_read_keeps_no_graph_below_it(lite_explainer, chelsea_tensor):
    engine = lite_explainer.engine
    engine.clear_cache()
    _, capture = lite_explainer.capture(chelsea_tensor, ["features.6"])
    layers = [layer.name for layer in engine.layers]
    assert capture.root in ("features.6", engine._aliases.get("features.6"))
    below = layers[: layers.index(capture.root)]
    assert len(below) > 20
    assert not set(below) & set(capture.forward.outputs) and not capture.inputs.requires_grad
    # the saved tensors of the kept graph start at the root: none is the input's size
    first = capture.forward.outputs["features.6"]
    assert first.is_leaf and first.requires_grad


def test_rooted_maps_equal_maps_from_a_graph_to_the_input(lite_explainer, chelsea_tensor):
    engine = lite_explainer.engine
    full = Engine(engine.model).capture(chelsea_tensor, "full", None)
    for layer in ("features.8", "features.5", "features.3"):
        engine.clear_cache()
        rooted = engine.capture(chelsea_tensor, "rooted", [layer])
        ids = torch.tensor([285, 281])
        _same(rooted.gradients([layer], ids)[0], full.gradients([layer], ids)[0])
        _same(rooted.activations(layer), full.activations(layer))
        _same(rooted.logits, full.logits)
    assert count_hooks(engine.model) == 0


def test_reading_deeper_runs_one_forward_and_keeps_gradients(lite_explainer, chelsea_tensor):
    engine = lite_explainer.engine
    engine.clear_cache()
    _, capture = lite_explainer.capture(chelsea_tensor)  # the default layer
    first = capture.gradients([lite_explainer.default_layer], torch.tensor([285]))[0]
    calls, backwards = engine.forward_calls, capture.backward_calls
    lite_explainer.explain(chelsea_tensor, "gradcam", 285, "features.4")
    assert engine.forward_calls == calls + 1 and capture.root is not None
    again = capture.gradients([lite_explainer.default_layer], torch.tensor([285]))[0]
    assert again is first or torch.equal(again, first)  # kept, not taken again
    assert capture.backward_calls == backwards + 1  # features.4's own
    lite_explainer.explain(chelsea_tensor, "vanilla", 285)
    assert engine.forward_calls == calls + 2 and capture.root is None
    lite_explainer.explain(chelsea_tensor, "gradcam", 285, "features.2")
    assert engine.forward_calls == calls + 2  # the input's graph covers every layer


class BranchyNet(nn.Module):
    """A residual block whose shortcut conv reads the block's input (not the root), then an
    in-place ReLU after a conv: a rooted graph must still reach both."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Conv2d(8, 8, 3, padding=1)
        self.shortcut = nn.Conv2d(8, 8, 1)
        self.head_conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head_relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem(x)
        x = self.body(x) + self.shortcut(x)
        x = self.head_relu(self.head_conv(x))
        return self.fc(x.mean((2, 3)))


def test_branches_frozen_weights_and_in_place_victims():
    model = BranchyNet().eval()
    for p in model.parameters():
        p.requires_grad_(False)  # a frozen model: the shortcut's output is in no graph
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    explainer = Explainer(model, labels=list("abcd"), input_size=(16, 16))
    full = Engine(model).capture(x, "full", None)
    for root in ("body", "head_conv"):
        explainer.engine.clear_cache()
        rooted = explainer.engine.capture(x, "r", [root])
        later = [layer.name for layer in explainer.engine.layers][
            [layer.name for layer in explainer.engine.layers].index(root) :
        ]
        assert "shortcut" in later or root == "head_conv"
        for layer in later:
            _same(
                rooted.gradients([layer], torch.tensor([2]))[0], full.gradients([layer], torch.tensor([2]))[0]
            )
    maps = {m: explainer.explain(x, m, 2, "head_conv").raw for m in ALL_METHODS}
    explainer.engine.clear_cache()
    explainer.explain(x, "vanilla", 2)  # from the input first: the same maps
    for method, raw in maps.items():
        assert (explainer.explain(x, method, 2, "head_conv").raw == raw).all(), method
    assert count_hooks(model) == 0 and not any(p.requires_grad for p in model.parameters())


def test_resnet_rooted_inside_a_block_matches():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    engine = Engine(model, input_size=(64, 64))
    full = Engine(model, input_size=(64, 64)).capture(x, "full", None)
    layers = ["layer3.0.conv2", "layer3.0.downsample.0", "layer3", "layer4"]
    rooted = engine.capture(x, "r", ["layer3.0.conv2"])
    for layer in layers:
        _same(
            rooted.gradients([layer], torch.tensor([3, 7]))[0],
            full.gradients([layer], torch.tensor([3, 7]))[0],
        )


class _Alive(nn.Module):
    """Notes, when called, whether the first conv's output is still alive."""

    def __init__(self, refs: list, seen: list) -> None:
        super().__init__()
        self.refs, self.seen = refs, seen

    def forward(self, x):
        self.seen.append([ref() is not None for ref in self.refs])
        return x


def test_the_probe_holds_no_activation():
    """The probe tracks outputs by weak reference (it held every one, and a graph: ~1.7 GB
    for the dilated VGG16 at 224x224), and still finds in-place victims and shared tensors."""
    refs, seen = [], []
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()),
        _Alive(refs, seen),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()
    hook = model[0].register_forward_hook(lambda m, i, out: refs.append(weakref.ref(out)))
    engine = Engine(model, input_size=(8, 8), channels_last=False)  # (the probe's forward only)
    engine.layers
    hook.remove()
    assert seen == [[False]]  # the first conv's output was freed while the forward went on
    assert engine._clone == {"2"}  # the conv whose output the in-place ReLU rewrote
    assert engine._aliases == {"4": "4.1", "5": "4.1"}  # a block, its last child, a pass-through
    assert engine._has_relu and not engine._relu_functions


def test_a_model_without_spatial_layers_still_predicts_and_smooths():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    explainer = Explainer(model, labels=list("abc"), input_size=(8, 8))
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    assert len(explainer.predict(x, top=3)) == 3
    assert explainer.explain(x, "vanilla", 1, samples=4).heatmap.shape == (8, 8)


def test_a_forward_run_again_reads_the_pixels_it_cached_not_the_callers():
    model = BranchyNet().eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    original = x.clone()
    explainer = Explainer(model, labels=list("abcd"), input_size=(16, 16))
    explainer.explain(x, "gradcam", 2, "head_conv")  # cached, rooted at head_conv
    x.zero_()  # the caller reuses its tensor
    again = explainer.explain(original, "vanilla", 2)  # the same image: runs again from the input
    clean = Explainer(BranchyNet().eval(), labels=list("abcd"), input_size=(16, 16))
    assert (again.heatmap == clean.explain(original, "vanilla", 2).heatmap).all()


def test_a_model_that_writes_its_input_in_place_is_refused_clearly():
    class Doubles(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            x.mul_(2.0)
            return self.fc(self.conv(x).mean((2, 3)))

    import pytest

    from cam_widgets.errors import MethodNotApplicableError

    x = torch.randn(1, 3, 8, 8)
    before = x.clone()
    with pytest.raises(MethodNotApplicableError, match="changes its input in place"):
        Explainer(Doubles().eval(), labels=["a", "b"], input_size=(8, 8)).explain(x, "gradcam", 0)
    assert torch.equal(x, before)


class _SideBlock(nn.Module):
    """Returns its conv's tensor (an alias of ``conv``) after a side conv read it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.side = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        y = self.conv(x)
        self.extra = self.side(y)
        return y


class _SideNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = _SideBlock()
        self.head = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.fc(self.head(x).mean((2, 3)) + self.block.extra.mean((2, 3)))


def test_an_alias_whose_tensor_came_before_the_root_is_read_from_a_deeper_graph():
    model = _SideNet().eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    full = Engine(model, input_size=(16, 16)).capture(x, "f", None)
    engine = Engine(model, input_size=(16, 16))
    rooted = engine.capture(x, "r", ["block.side"])
    assert engine._aliases == {"block": "block.conv"}  # block.conv returns before the root
    _same(rooted.gradients(["block"], torch.tensor([1]))[0], full.gradients(["block"], torch.tensor([1]))[0])
