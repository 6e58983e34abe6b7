"""Transformer layers (issue 18): token sequences (ViT) and channels-last grids (Swin) read as
(N, C, h, w), agreeing with pytorch-grad-cam given the matching ``reshape_transform``.

Random-weight torchvision models (seeded; nothing is downloaded), one of each per module:
ViT-B/16 takes ~0.5 s a forward on the CPU. pytorch-grad-cam runs end to end once per model
(Grad-CAM: its forward, backward, reshape_transform and ReLU) and its other methods on those
same activations and gradients, so each model costs it one forward and one backward.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from cam_widgets import Explainer
from cam_widgets.engine import count_hooks

pgc = pytest.importorskip("pytorch_grad_cam")

TARGET = 285
VIT_LAYER = "encoder.layers.encoder_layer_11.ln_1"  # pytorch-grad-cam's advice for ViT
SWIN_LAYER = "features.7"  # (N, 7, 7, 768): read as NCHW it gave r = 0.03


def corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def vit_reshape(tensor: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's ViT transform: class token dropped, 196 tokens on a 14x14 grid."""
    grid = tensor[:, 1:].reshape(tensor.size(0), 14, 14, tensor.size(2))
    return grid.transpose(2, 3).transpose(1, 2)


def swin_reshape(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.permute(0, 3, 1, 2)


def seeded(builder) -> nn.Module:
    """A torchvision model with seeded random weights and a random head (ViT's starts at
    zero: every gradient would be zero)."""
    torch.manual_seed(0)
    model = builder(weights=None).eval()
    head = model.heads.head if hasattr(model, "heads") else model.head
    with torch.no_grad():
        head.weight.normal_(0, 0.02)
        head.bias.normal_(0, 0.02)
    return model


class Case:
    """Our explainer on a model, pytorch-grad-cam on a copy, and the maps of both."""

    def __init__(self, builder, layer, transform) -> None:
        model = seeded(builder)
        self.peer = copy.deepcopy(model)  # its constructors call .eval() and hook the model
        self.explainer = Explainer(model, device="cpu", channels_last=False)
        self.image = self.explainer.prepare("chelsea").tensor
        self.layer, self.transform = layer, transform
        self.grid = self.explainer.engine.check_layer(layer).grid
        self._theirs = None

    def ours(self, method: str):
        return self.explainer.explain(self.image, method, TARGET, self.layer)

    def theirs(self):
        """({pytorch-grad-cam class: map at the layer's grid}, activations, gradients)."""
        if self._theirs is None:
            from pytorch_grad_cam.utils.image import scale_cam_image
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

            module = self.peer.get_submodule(self.layer)
            targets = [ClassifierOutputTarget(TARGET)]
            size = self.grid[::-1]  # (width, height), as cv2 takes it
            with pgc.GradCAM(
                model=self.peer, target_layers=[module], reshape_transform=self.transform
            ) as cam:
                cam.get_target_width_height = lambda _: size  # the map at the layer's grid
                maps = {pgc.GradCAM: cam(input_tensor=self.image, targets=targets)[0]}
                acts = cam.activations_and_grads.activations[0].numpy()
                grads = cam.activations_and_grads.gradients[0].numpy()
            for cls in (pgc.LayerCAM, pgc.XGradCAM, pgc.HiResCAM):
                with cls(
                    model=self.peer, target_layers=[module], reshape_transform=self.transform
                ) as cam:  # (BaseCAM's own steps)
                    raw = cam.get_cam_image(self.image, module, targets, acts, grads, False)
                    maps[cls] = scale_cam_image(np.maximum(raw, 0), size)[0]
            self._theirs = maps, acts, grads
            assert count_hooks(self.peer) == 0
        return self._theirs


@pytest.fixture(scope="module")
def vit():
    return Case(torchvision.models.vit_b_16, VIT_LAYER, vit_reshape)


@pytest.fixture(scope="module")
def swin():
    return Case(torchvision.models.swin_t, SWIN_LAYER, swin_reshape)


def test_vit_layers_are_listed_as_tokens_with_a_class_token_on_14x14(vit):
    layers = {info.name: info for info in vit.explainer.layers()}
    blocks = [f"encoder.layers.encoder_layer_{i}" for i in range(12)]
    for name in blocks + [VIT_LAYER, "encoder.ln"]:
        info = layers[name]
        assert (info.layout, info.grid, info.channels) == ("tokens+cls", (14, 14), 768), name
    assert layers["encoder.layers.encoder_layer_3.mlp.0"].channels == 3072
    assert (layers["conv_proj"].layout, layers["conv_proj"].grid) == ("NCHW", (14, 14))
    assert not any("self_attention" in name for name in layers)  # (it returns a tuple)


def test_vit_default_layer_is_the_norm_before_the_last_attention_and_its_map_is_not_empty(vit):
    assert vit.explainer.default_layer == "encoder.layers.encoder_layer_11.ln_1" == VIT_LAYER
    result = vit.explainer.explain("chelsea", "gradcam", 285)
    assert result.layer == VIT_LAYER and not result.flagged
    after = vit.explainer.explain("chelsea", "gradcam", 285, "encoder.ln")
    assert after.flagged  # only the class token reaches the head from there: why not the default


def test_swin_stages_are_listed_channels_last(swin):
    layers = {info.name: info for info in swin.explainer.layers()}
    for name, channels, side in (
        ("features.1", 96, 56),
        ("features.3", 192, 28),
        ("features.5", 384, 14),
        ("features.7", 768, 7),
        ("features.7.1.norm1", 768, 7),
        ("norm", 768, 7),
    ):
        info = layers[name]
        assert (info.layout, info.channels, info.grid) == ("NHWC", channels, (side, side)), name
    assert (layers["features.0.0"].layout, layers["features.0.0"].channels) == ("NCHW", 96)
    assert (layers["permute"].layout, layers["permute"].grid) == ("NCHW", (7, 7))


@pytest.mark.parametrize("case", ["vit", "swin"])
def test_cam_methods_agree_with_pytorch_grad_cam_given_its_reshape_transform(case, request):
    case = request.getfixturevalue(case)
    maps, acts, grads = case.theirs()
    for ours, theirs in (
        ("gradcam", pgc.GradCAM),
        ("layercam", pgc.LayerCAM),
        ("xgradcam", pgc.XGradCAM),
        ("hirescam", pgc.HiResCAM),
    ):
        got = case.ours(ours)
        assert got.raw.shape == maps[theirs].shape == case.grid, ours
        assert got.status.message is None, ours  # a real map, not a flat one
        assert corr(np.maximum(got.raw, 0), maps[theirs]) >= 0.99, ours
    # Grad-CAM++: pytorch-grad-cam adds 1e-7 to alpha's denominator, as large as these
    # random weights' squared gradients; ours is eq. 19 on the same tensors exactly
    g2 = grads[0] ** 2
    denominator = 2 * g2 + acts[0].sum(axis=(1, 2), keepdims=True) * g2 * grads[0]
    alpha = np.where(denominator != 0, g2 / np.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * np.maximum(grads[0], 0)).sum(axis=(1, 2))
    expected = np.einsum("c,chw->hw", weights, acts[0])
    assert corr(case.ours("gradcam++").raw, expected) >= 0.99
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    eigen = case.ours("eigencam").raw  # (either sign of the eigenvector: theirs keeps the SVD's)
    assert abs(corr(eigen, get_2d_projection(acts)[0])) >= 0.99
    assert count_hooks(case.explainer.engine.model) == 0


def test_swin_cam_at_its_last_norm_is_gradcam_times_positions(swin):
    """``norm`` (N, 7, 7, 768) feeds a global average pool and the linear head: CAM applies,
    and Grad-CAM's weights are the head's row over the 49 positions."""
    cam = swin.explainer.explain(swin.image, "cam", TARGET, "norm")
    gradcam = swin.explainer.explain(swin.image, "gradcam", TARGET, "norm")
    np.testing.assert_allclose(cam.raw, gradcam.raw * 49, rtol=1e-3, atol=1e-5 * abs(cam.raw).max())
    assert count_hooks(swin.explainer.engine.model) == 0


def test_guided_methods_on_a_model_without_relu_say_so_in_one_line(swin):
    from cam_widgets.errors import MethodNotApplicableError

    with pytest.raises(MethodNotApplicableError) as error:
        swin.explainer.explain(swin.image, "guided_gradcam", TARGET, SWIN_LAYER)
    message = str(error.value)
    assert "\n" not in message and "ReLU-like" in message and "'gradcam'" in message
    assert count_hooks(swin.explainer.engine.model) == 0


# ---------------------------------------------------------------- small models, every method
class Patches(nn.Module):
    """A 4x6 grid of 8 channels (32x48 input), laid out by ``layout``; a layer norm, a
    linear layer and a GELU on the channels; the mean over positions into a linear head.

    ``tokens``: (N, 24, 8), no class token (24 is no square: only the patch grid tells);
    ``nhwc``: (N, 4, 6, 8); ``nchw``: the grid as it comes from the convolution."""

    def __init__(self, layout: str) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.layout = layout
        self.patch = nn.Conv2d(3, 8, 8, 8)
        self.arranged = nn.Identity()
        self.norm = nn.LayerNorm(8)
        self.mlp = nn.Linear(8, 8)
        self.act = nn.GELU()
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        grid = self.patch(x)
        if self.layout == "tokens":
            arranged = self.arranged(grid.flatten(2).transpose(1, 2))
        elif self.layout == "nhwc":
            arranged = self.arranged(grid.permute(0, 2, 3, 1))
        else:
            arranged = self.arranged(grid).permute(0, 2, 3, 1)
        features = self.act(self.mlp(self.norm(arranged)))
        return self.head(features.flatten(1, -2).mean(1))


def small(model: nn.Module, **kwargs) -> Explainer:
    return Explainer(model, device="cpu", input_size=(32, 48), labels=["a", "b", "c"], **kwargs)


def small_image() -> torch.Tensor:
    return torch.randn((1, 3, 32, 48), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("layout, listed", [("tokens", "tokens"), ("nhwc", "NHWC")])
def test_every_cam_method_reads_a_rearranged_grid_as_the_grid_itself(layout, listed):
    """The same activations in another layout give the same map, for every CAM-family method
    of the registry (Score-CAM's masked forwards too): ``arranged`` against the convolution's
    grid as it is (NCHW); ``act``, which feeds the pool and the head (CAM applies), against the
    NHWC reading. 24 tokens make no square: the grid comes from the convolution's 4x6."""
    from cam_widgets import list_methods
    from cam_widgets.errors import CamWidgetsError

    arranged, plain = small(Patches(layout)), small(Patches("nchw"))
    image = small_image()
    layers = {info.name: info for info in arranged.layers()}
    assert {
        name: (info.layout, info.grid, info.channels) for name, info in layers.items() if name != "patch"
    } == {name: (listed, (4, 6), 8) for name in ("arranged", "norm", "mlp", "act")}
    methods = [m.name for m in list_methods("cam")]
    assert {"gradcam", "gradcam++", "layercam", "xgradcam", "eigencam", "scorecam", "cam"} <= set(methods)
    for layer, refused in (("arranged", ["cam"]), ("act", [])):  # (act feeds the pool + head)
        failed = []
        for method in methods:
            try:
                expected = plain.explain(image, method, 1, layer).raw
            except CamWidgetsError as error:  # CAM: no GAP + linear head after this layer
                with pytest.raises(type(error)):
                    arranged.explain(image, method, 1, layer)
                failed.append(method)
                continue
            got = arranged.explain(image, method, 1, layer).raw
            np.testing.assert_allclose(
                got, expected, rtol=1e-4, atol=1e-6 * abs(expected).max(), err_msg=method
            )
            assert np.ptp(got) > 0, method
        assert failed == refused, layer
    assert count_hooks(arranged.engine.model) == 0


def test_tokens_agree_with_pytorch_grad_cam_at_every_listed_token_layer():
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = Patches("tokens")
    explainer, peer, image = small(model), copy.deepcopy(model), small_image()

    def grid(tensor):
        return tensor.reshape(tensor.size(0), 4, 6, tensor.size(2)).permute(0, 3, 1, 2)

    for layer in ("norm", "mlp", "act"):
        with pgc.GradCAM(
            model=peer, target_layers=[peer.get_submodule(layer)], reshape_transform=grid
        ) as cam:
            cam.get_target_width_height = lambda _: (6, 4)
            expected = cam(input_tensor=image, targets=[ClassifierOutputTarget(2)])[0]
        got = explainer.explain(image, "gradcam", 2, layer).raw
        assert corr(np.maximum(got, 0), expected) >= 0.999, layer


class Tangled(nn.Module):
    """Outputs whose layout cannot be told: ``tokens`` (N, 12, 8) from a linear layer over the
    flattened image (neither 12 nor 11 tokens make a grid, and no convolution gives one);
    ``square`` (N, 6, 6, 8) viewed from a linear layer (6x6 positions of 8 channels, or 6
    channels of 6x8? nothing says); ``both`` (N, 8, 4, 4) of a convolution normalised over its
    last axis as well (channels first for the one, last for the other)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.embed = nn.Linear(3 * 16 * 16, 96)
        self.tokens = nn.LayerNorm(8)
        self.grid = nn.Linear(3 * 16 * 16, 6 * 6 * 8)
        self.square = nn.Identity()
        self.conv = nn.Conv2d(3, 8, 4, 4)
        self.both = nn.Identity()
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        flat = x.flatten(1)
        tokens = self.tokens(self.embed(flat).view(-1, 12, 8)).mean(1)
        square = self.square(self.grid(flat).view(-1, 6, 6, 8)).mean((1, 2))
        both = self.both(self.conv(x))
        return self.head(tokens + square + self.norm(both).mean((2, 3)))


@pytest.mark.parametrize(
    "layer, shape, why",
    [
        ("tokens", "(N, 12, 8)", "neither 12 nor 11 tokens make a known grid"),
        ("square", "(N, 6, 6, 8)", "no call tells whether its channels come first or last"),
        ("both", "(N, 8, 4, 4)", "the model reads its channels on more than one axis"),
    ],
)
def test_a_layer_whose_layout_cannot_be_told_is_refused_in_one_line(layer, shape, why):
    from cam_widgets.errors import UnknownLayerError

    explainer = Explainer(Tangled(), device="cpu", input_size=(16, 16), labels=["a", "b", "c"])
    assert layer not in {info.name for info in explainer.layers()}
    with pytest.raises(UnknownLayerError) as error:
        explainer.explain(torch.zeros(1, 3, 16, 16), "gradcam", 0, layer)
    message = str(error.value)
    assert "\n" not in message
    assert f"layer {layer!r} outputs {shape}" in message and why in message
    assert f"reshape={{{layer!r}: fn}}" in message
    assert count_hooks(explainer.engine.model) == 0


class Sequence1d(nn.Module):
    """A (N, C, L) layer: 8 channels of the 4x6 patch grid flattened, mixed by a 1-D
    convolution (channels first: not read on its own)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.patch = nn.Conv2d(3, 8, 8, 8)
        self.mix = nn.Conv1d(8, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.mix(self.patch(x).flatten(2))).mean(2))


def test_reshape_reads_an_odd_layout_as_the_caller_says():
    from cam_widgets.errors import InvalidParameterError, UnknownLayerError

    def grid(tensor):
        return tensor.reshape(tensor.size(0), tensor.size(1), 4, 6)

    model, image = Sequence1d(), small_image()
    with pytest.raises(UnknownLayerError, match=r"\(N, C, L\) is not read on its own"):
        small(model).explain(image, "gradcam", 0, "mix")
    explainer = small(model, reshape={"mix": grid})
    info = explainer.engine.check_layer("mix")
    assert (info.layout, info.channels, info.grid) == ("custom", 8, (4, 6))
    # the oracle: Grad-CAM by hand on the layer's output and its gradient, reshaped
    store = {}
    handle = model.mix.register_forward_hook(lambda m, i, out: store.update(out=out))
    try:
        logits = model(image)
    finally:
        handle.remove()
    acts = grid(store["out"])
    grads = grid(torch.autograd.grad(logits[0, 2], store["out"])[0])
    expected = (grads.mean(dim=(2, 3))[:, :, None, None] * acts).sum(1)[0].detach().numpy()
    for method in ("gradcam", "layercam"):
        got = explainer.explain(image, method, 2, "mix").raw
        assert got.shape == (4, 6)
        if method == "gradcam":
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert count_hooks(model) == 0
    with pytest.raises(InvalidParameterError, match="not in this model. Did you mean 'mix'"):
        small(model, reshape={"mixx": grid})
    bad = small(model, reshape={"mix": lambda t: t.flatten(1)})
    with pytest.raises(InvalidParameterError) as error:
        bad.layers()
    assert "\n" not in str(error.value) and "(N, C, h, w)" in str(error.value)
    assert count_hooks(model) == 0


def test_reshape_reads_a_square_the_model_does_not_tell():
    """``square`` (N, 6, 6, 8): the caller says channels last."""
    model = Tangled()
    explainer = Explainer(
        model,
        device="cpu",
        input_size=(16, 16),
        labels=["a", "b", "c"],
        reshape={"square": lambda t: t.permute(0, 3, 1, 2)},
    )
    info = explainer.engine.check_layer("square")
    assert (info.channels, info.grid) == (8, (6, 6))
    got = explainer.explain(torch.randn(1, 3, 16, 16), "gradcam", 1, "square")
    assert got.raw.shape == (6, 6) and np.ptp(got.raw) > 0
    assert count_hooks(model) == 0
