"""How layer outputs are read as grids (engine/flow.py, engine/layouts.py): what each axis
is learnt to be, which layouts are read and which refused, and CNN listings left as they were."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cam_widgets.engine import Engine, count_hooks
from cam_widgets.engine.flow import AxisFlow, kept_dims, permutation
from cam_widgets.engine.layouts import Reading, read_layout, to_grid, token_grid

C, H, W = frozenset("C"), frozenset("H"), frozenset("W")
NONE = frozenset()


def four_d_outputs(model: nn.Module, size: tuple[int, int]) -> list[tuple]:
    """What layers() listed before layouts: every module called once with a (N, C, h, w)
    output larger than 1x1, in the order their calls returned (found here with plain hooks)."""
    calls, shapes, order = {}, {}, []

    def seen(name):
        def record(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            order.append(name)
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape)

        return record

    handles = [m.register_forward_hook(seen(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, *size))
    finally:
        for handle in handles:
            handle.remove()
    return [
        (n, *shapes[n][1:])
        for n in dict.fromkeys(order)
        if calls[n] == 1 and len(shapes.get(n, ())) == 4 and shapes[n][2] * shapes[n][3] > 1
    ]


@pytest.mark.parametrize("builder", ["resnet18", "vgg11", "mobilenet_v3_small"])
def test_cnn_layers_are_listed_as_before_all_channels_first(builder):
    torch.manual_seed(0)
    model = getattr(torchvision.models, builder)(weights=None).eval()
    engine = Engine(model, input_size=(64, 64), device="cpu", channels_last=False)
    listed = [(info.name, info.channels, info.height, info.width) for info in engine.layers]
    assert listed == four_d_outputs(model, (64, 64)) and len(listed) > 20
    assert {info.layout for info in engine.layers} == {"NCHW"}
    assert count_hooks(model) == 0


def test_efficientnet_lite0_layers_are_listed_as_before(lite_explainer):
    model = lite_explainer.engine.model
    listed = [(info.name, info.channels, info.height, info.width) for info in lite_explainer.layers()]
    assert listed == four_d_outputs(model, (224, 224)) and len(listed) == 220
    assert {info.layout for info in lite_explainer.layers()} == {"NCHW"}


def test_convnext_blocks_read_channels_last_inside_and_first_outside():
    """ConvNeXt permutes to (N, H, W, C) for its layer norm and linear layers, and back: those
    were listed as (N, C, H, W) with H channels."""
    torch.manual_seed(0)
    model = torchvision.models.convnext_tiny(weights=None).eval()
    layers = {
        info.name: info
        for info in Engine(model, input_size=(64, 64), device="cpu", channels_last=False).layers
    }
    for name, layout, channels in (
        ("features.1.0.block.0", "NCHW", 96),
        ("features.1.0.block.2", "NHWC", 96),
        ("features.1.0.block.3", "NHWC", 384),
        ("features.1.0.block.6", "NCHW", 96),
        ("features.1.0", "NCHW", 96),
    ):
        assert (layers[name].layout, layers[name].channels, layers[name].grid) == (
            layout,
            channels,
            (16, 16),
        ), name


class Windows(nn.Module):
    """(N, C, 8, 8) cut into four 4x4 windows: (N, 4 windows, 16 pixels, C), channels last
    but no height and width."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.windows = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = self.conv(x)
        n, c = y.shape[:2]
        cut = y.reshape(n, c, 2, 4, 2, 4).permute(0, 2, 4, 3, 5, 1).reshape(n, 4, 16, c)
        return self.head(self.windows(cut).mean((1, 2)))


def test_windows_are_refused_not_read_as_a_grid():
    from cam_widgets.errors import UnknownLayerError

    engine = Engine(Windows(), input_size=(8, 8), device="cpu")
    assert [info.name for info in engine.layers] == ["conv"]
    with pytest.raises(UnknownLayerError, match=r"\(N, 4, 16, 8\).*not the image's height and width"):
        engine.check_layer("windows")


def test_the_flow_follows_axes_through_permutes_reshapes_and_residual_sums():
    flow = AxisFlow()
    image = torch.zeros(1, 3, 8, 8)
    flow.image(image)
    conv = torch.nn.functional.conv2d(image, torch.zeros(4, 3, 2, 2), stride=2)  # (1, 4, 4, 4)
    flow.see(torch.nn.functional.conv2d, (image, torch.zeros(4, 3, 2, 2)), {"stride": 2}, conv)
    tokens = conv.flatten(2)
    flow.see(torch.Tensor.flatten, (conv, 2), {}, tokens)
    moved = tokens.transpose(1, 2)  # (1, 16, 4): tokens of the 4x4 grid, channels last
    flow.see(torch.Tensor.transpose, (tokens, 1, 2), {}, moved)
    other = torch.ones(1, 16, 4)  # not from the image: says nothing, learns nothing
    total = moved + other
    flow.see(torch.Tensor.add, (moved, other), {}, total)
    back = total.reshape(1, 4, 4, 4)
    flow.see(torch.Tensor.reshape, (total, 1, 4, 4, 4), {}, back)
    axes = flow.axes()
    assert axes[flow.find(conv)] == (NONE, C, H, W)
    assert axes[flow.find(total)] == (NONE, frozenset({(4, 4)}), C)
    assert axes[flow.find(back)] == (NONE, H, W, C)
    assert flow.find(other) is None


def test_axis_helpers():
    assert permutation("permute", 4, (None, 0, 2, 3, 1), {}) == [0, 2, 3, 1]
    assert permutation("permute", 3, (None, [0, -1, 1]), {}) == [0, 2, 1]
    assert permutation("transpose", 4, (None, 1, -1), {}) == [0, 3, 2, 1]
    assert permutation("movedim", 4, (None, 1, -1), {}) == [0, 2, 3, 1]
    assert permutation("permute", 3, (None, 0, 0, 1), {}) is None
    assert kept_dims((2, 8, 3, 5), (2, 8, 15)) == {0: 0, 1: 1}
    assert kept_dims((2, 15, 8), (2, 3, 5, 8)) == {0: 0, 2: 3}
    assert token_grid(196, set()) == (14, 14) and token_grid(24, {(4, 6)}) == (4, 6)
    assert token_grid(24, set()) is None and token_grid(16, {(2, 8)}) is None  # 4x4 or 2x8
    assert token_grid(1, set()) is None


@pytest.mark.parametrize(
    "shape, axes, expected",
    [
        ((1, 8, 4, 6), (NONE, C, H, W), Reading("NCHW", 8, 4, 6)),
        ((1, 8, 4, 6), (), Reading("NCHW", 8, 4, 6)),  # nothing known: as ever
        ((1, 4, 6, 8), (NONE, H, W, C), Reading("NHWC", 8, 4, 6)),
        ((1, 4, 4, 8), (), "no call tells"),
        ((1, 4, 6, 8), (NONE, W, H, C), "middle axes are not"),
        ((1, 8, 4, 6), (NONE, C, W, H), "last two axes are not"),
        ((1, 8, 4, 8), (NONE, C, H, C), "more than one axis"),
        ((1, 197, 768), (NONE, NONE, C), Reading("tokens+cls", 768, 14, 14)),
        ((1, 196, 768), (NONE, NONE, C), Reading("tokens", 768, 14, 14)),
        ((1, 25, 8), (NONE, frozenset({(4, 6)}), C), Reading("tokens+cls", 8, 4, 6)),
        ((1, 26, 8), (NONE, frozenset({(4, 6)}), C), "26 tokens on a 4x6 grid"),
        ((1, 12, 8), (NONE, NONE, C), "neither 12 nor 11"),
        ((1, 8, 196), (NONE, C, frozenset({(14, 14)})), "(N, C, L)"),
        ((1, 12, 8), (), None),  # no grid, nothing says tokens
        ((1, 1000), (NONE, C), None),
        ((1, 8, 1, 1), (NONE, C, H, W), None),
    ],
)
def test_read_layout(shape, axes, expected):
    found = read_layout("x", shape, axes, set())
    if isinstance(expected, str):
        assert isinstance(found, str) and expected in found and "reshape={'x': fn}" in found
    else:
        assert found == expected


def test_to_grid_lays_tokens_out_row_by_row():
    grid = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # (N, C, h, w)
    tokens = grid.flatten(2).transpose(1, 2)  # (N, 20, C)
    with_cls = torch.cat([torch.full((2, 1, 3), -1.0), tokens], dim=1)
    assert torch.equal(to_grid(tokens, "tokens", (4, 5)), grid)
    assert torch.equal(to_grid(with_cls, "tokens+cls", (4, 5)), grid)
    assert torch.equal(to_grid(grid.permute(0, 2, 3, 1), "NHWC", (4, 5)), grid)
