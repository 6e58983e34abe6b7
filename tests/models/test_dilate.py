"""Tests of the dilated VGG16 and of the general ``dilate``."""

from __future__ import annotations

import os
import time
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn

from cam_widgets.errors import InvalidParameterError, UnknownLayerError
from cam_widgets.models import torchvision_zoo as zoo
from cam_widgets.models.dilate import (
    DILATED_VGG16_LAYER_NAMES,
    DILATED_VGG16_RATES,
    VGG16_LAYER_NAMES,
    DilatedVGG,
    build_dilated_vgg16,
    dilate,
    dilated_vgg16,
    output_stride,
    stride_report,
)

VGG16_PARAMS = 138_357_544


@pytest.fixture(scope="module")
def vgg():
    """A torchvision VGG16 with random weights (filled directly: faster than its init)."""
    with torch.device("meta"):
        model = torchvision.models.vgg16()
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.rand(v.shape, generator=gen) - 0.5) * 0.05 for k, v in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def dvgg(vgg):
    return dilated_vgg16(vgg).eval()


def _convs(features):
    return [m for m in features if isinstance(m, nn.Conv2d)]


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_same_parameters_and_weights(vgg, dvgg):
    assert _n_params(vgg) == VGG16_PARAMS
    assert _n_params(dvgg) == VGG16_PARAMS
    original, dilated = vgg.state_dict(), dvgg.state_dict()
    assert original.keys() == dilated.keys()  # same names: features.N, classifier.N
    for key, value in original.items():
        assert torch.equal(value, dilated[key]), key
        assert value.data_ptr() == dilated[key].data_ptr()  # shared: no second 528 MB


def test_weights_copied_when_asked(vgg):
    copied = dilated_vgg16(vgg, share_weights=False)
    for key, value in vgg.state_dict().items():
        assert (
            torch.equal(value, copied.state_dict()[key])
            and value.data_ptr() != copied.state_dict()[key].data_ptr()
        )


def test_original_untouched(vgg, dvgg):
    pools = [i for i, m in enumerate(vgg.features) if isinstance(m, nn.MaxPool2d)]
    assert pools == [4, 9, 16, 23, 30]
    assert all(c.dilation == (1, 1) and c.padding == (1, 1) for c in _convs(vgg.features))
    assert vgg.features[29].inplace is True


def test_dilated_structure(dvgg):
    assert isinstance(dvgg, DilatedVGG)
    convs = _convs(dvgg.features)
    assert len(convs) == 13
    assert tuple(c.dilation[0] for c in convs) == DILATED_VGG16_RATES
    assert DILATED_VGG16_RATES == (1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16)
    assert all(c.padding == c.dilation and c.stride == (1, 1) for c in convs)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in dvgg.features)
    assert isinstance(dvgg.pool, nn.MaxPool2d) and dvgg.pool.kernel_size == 32 and dvgg.pool.stride == 32
    assert dvgg.classifier[0].in_features == 7 * 7 * 512
    assert dvgg.classifier[6].out_features == 1000


def test_layer_name_mapping(vgg, dvgg):
    assert VGG16_LAYER_NAMES["conv5_3"] == "features.28"
    assert VGG16_LAYER_NAMES["relu5_3"] == "features.29"
    assert DILATED_VGG16_LAYER_NAMES["relu5_3"] == "features.29"
    assert DILATED_VGG16_LAYER_NAMES["pool1"] is None and DILATED_VGG16_LAYER_NAMES["pool5"] == "pool"
    assert DILATED_VGG16_LAYER_NAMES["fc8"] == "classifier.6"
    for caffe, name in DILATED_VGG16_LAYER_NAMES.items():
        if name is None:
            continue
        module = dvgg.get_submodule(name)
        if caffe.startswith("conv") or caffe.startswith("fc"):
            original = vgg.get_submodule(VGG16_LAYER_NAMES[caffe])
            assert torch.equal(module.weight, original.weight), caffe
        elif caffe.startswith("relu"):
            assert isinstance(module, nn.ReLU)
    assert dvgg.get_submodule("features.28").dilation == (16, 16)


def test_shapes_at_64(dvgg):
    seen = {}
    handle = dvgg.features.register_forward_hook(lambda m, i, o: seen.update(f=o.shape))
    handle2 = dvgg.pool.register_forward_hook(lambda m, i, o: seen.update(p=o.shape))
    try:
        with torch.no_grad():
            out = dvgg(torch.randn(1, 3, 64, 64))
    finally:
        handle.remove()
        handle2.remove()
    assert seen["f"] == (1, 512, 64, 64)  # full resolution
    assert seen["p"] == (1, 512, 2, 2)  # MaxPool2d(32)
    assert out.shape == (1, 1000)


def test_224_arithmetic(dvgg):
    """At 224 every conv keeps 224 (H + 2p - d(k-1) = H), MaxPool2d(32) gives 7x7x512 = fc6 input."""
    size = 224
    for conv in _convs(dvgg.features):
        k, d, p = conv.kernel_size[0], conv.dilation[0], conv.padding[0]
        size = size + 2 * p - d * (k - 1)
        assert size == 224
    pooled = (size - dvgg.pool.kernel_size) // dvgg.pool.stride + 1
    assert pooled == 7 and 512 * pooled * pooled == dvgg.classifier[0].in_features


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CAM_WIDGETS_SLOW"), reason="~9 s on 2 CPU cores; set CAM_WIDGETS_SLOW=1"
)
def test_forward_at_224(dvgg):
    start = time.perf_counter()
    with torch.no_grad():
        features = dvgg.features(torch.randn(1, 3, 224, 224))
        out = dvgg.classifier(torch.flatten(dvgg.avgpool(dvgg.pool(features)), 1))
    assert features.shape == (1, 512, 224, 224)
    assert out.shape == (1, 1000)
    assert time.perf_counter() - start < 30


def _light_vgg(vgg):
    """VGG16's features with a small head (the generic dilate copies the whole model)."""
    return nn.Sequential(
        OrderedDict(
            features=vgg.features,
            avgpool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            classifier=nn.Linear(512, 10, device=vgg.features[0].weight.device),
        )
    ).eval()


def test_generic_dilate_matches_article_vgg(dvgg):
    with torch.device("meta"):  # shapes only: probe forwards on meta tensors are free
        vgg = torchvision.models.vgg16()
    light = _light_vgg(vgg)
    generic = dilate(light, after=None)
    assert [c.dilation for c in _convs(generic.features)] == [c.dilation for c in _convs(dvgg.features)]
    assert [c.padding for c in _convs(generic.features)] == [c.padding for c in _convs(dvgg.features)]
    assert [i for i, m in enumerate(generic.features) if isinstance(m, nn.Identity)] == [4, 9, 16, 23, 30]
    report = stride_report(light, generic, "features")
    assert report["before"] == 32 and report["after"] == 1
    meta_dilated = dilated_vgg16(vgg)
    assert output_stride(meta_dilated, "features.29") == 1
    assert output_stride(meta_dilated, "pool") == 32
    assert output_stride(vgg, "features.29") == 16
    # DeepLab-style: keep pool3 (features.16), output stride 8
    os8 = dilate(light, after=16)
    assert [c.dilation[0] for c in _convs(os8.features)] == [1] * 10 + [2] * 3
    assert output_stride(os8) == 8
    assert isinstance(vgg.features[30], nn.MaxPool2d)  # input never mutated


def _small_strided_net():
    """EfficientNet/MobileNet-like: stages of strided 3x3 (depthwise) convs and 1x1 convs."""

    def block(cin, cout, stride):
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()),  # /2
        block(8, 16, 2),  # /4
        block(16, 16, 1),
        block(16, 24, 2),  # /8
        block(24, 32, 2),  # /16
        nn.Sequential(nn.Conv2d(32, 32, 5, 1, 2), nn.ReLU()),
    )
    model = nn.Sequential()
    model.features = features
    model.pool = nn.AdaptiveAvgPool2d(1)
    model.flatten = nn.Flatten()
    model.fc = nn.Linear(32, 10)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_dilate_strided_conv_net():
    model = _small_strided_net()
    before = [(m.stride, m.dilation, m.padding) for m in model.modules() if isinstance(m, nn.Conv2d)]
    dilated = dilate(model, "features.1")
    assert [(m.stride, m.dilation, m.padding) for m in model.modules() if isinstance(m, nn.Conv2d)] == before
    assert output_stride(model, "features") == 16
    assert output_stride(dilated, "features") == 4
    assert stride_report(model, dilated, "features.5") == {
        "layer": "features.5",
        "before": 16,
        "after": 4,
        "probe_size": 64,
    }
    convs = dict((n, m) for n, m in dilated.named_modules() if isinstance(m, nn.Conv2d))
    assert convs["features.3.0"].stride == (1, 1) and convs["features.3.0"].dilation == (1, 1)
    assert convs["features.4.0"].dilation == (2, 2) and convs["features.4.0"].padding == (2, 2)
    assert convs["features.4.3"].dilation == (1, 1)  # 1x1 convs need no dilation
    assert convs["features.5.0"].dilation == (4, 4) and convs["features.5.0"].padding == (8, 8)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f0, f1 = model.features(x), dilated.features(x)
        assert f0.shape == (2, 32, 4, 4) and f1.shape == (2, 32, 16, 16)
        # a trous: the dilated maps sampled every 4 pixels are the original maps
        torch.testing.assert_close(f1[..., ::4, ::4], f0, rtol=1e-4, atol=1e-5)
        assert dilated(x).shape == (2, 10)
    shared = {t.data_ptr() for t in (*model.parameters(), *model.buffers())}
    assert shared == {t.data_ptr() for t in (*dilated.parameters(), *dilated.buffers())}
    copied = dilate(model, "features.1", share_weights=False)
    assert not shared & {t.data_ptr() for t in (*copied.parameters(), *copied.buffers())}


def test_dilate_resnet_matches_torchvision_dilation():
    with torch.device("meta"):  # shapes only: dilate's probe forward also runs on meta tensors
        resnet50 = torchvision.models.resnet50()
        reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    dilated = dilate(resnet50, "layer2")
    ours = [(m.stride, m.dilation, m.padding) for m in dilated.modules() if isinstance(m, nn.Conv2d)]
    theirs = [(m.stride, m.dilation, m.padding) for m in reference.modules() if isinstance(m, nn.Conv2d)]
    assert ours == theirs
    assert stride_report(resnet50, dilated, "layer4") == {
        "layer": "layer4",
        "before": 32,
        "after": 8,
        "probe_size": 64,
    }
    assert stride_report(resnet50, dilate(resnet50, "layer3"), "layer4")["after"] == 16


def test_dilate_resnet_a_trous_values():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().eval()  # torchvision itself cannot dilate BasicBlocks
    dilated = dilate(resnet, "layer2")
    x = torch.randn(1, 3, 64, 64)
    grab = {}
    h0 = resnet.layer4.register_forward_hook(lambda m, i, o: grab.update(a=o))
    h1 = dilated.layer4.register_forward_hook(lambda m, i, o: grab.update(b=o))
    try:
        with torch.no_grad():
            resnet(x), dilated(x)
    finally:
        h0.remove(), h1.remove()
    assert grab["a"].shape[-2:] == (2, 2) and grab["b"].shape[-2:] == (8, 8)
    torch.testing.assert_close(grab["b"][..., ::4, ::4], grab["a"], rtol=1e-4, atol=1e-4)


def test_dilate_errors(vgg, dvgg):
    with pytest.raises(UnknownLayerError, match="Did you mean 'features.6'"):
        dilate(vgg, after="features.61")
    with pytest.raises(InvalidParameterError, match="index"):
        dilate(_small_strided_net().features[0], after=0)  # no .features
    with pytest.raises(InvalidParameterError, match="features has 31"):
        dilate(vgg, after=31)
    with pytest.raises(InvalidParameterError, match="Nothing to dilate"):
        dilate(_small_strided_net(), after="features.4")
    with pytest.raises(InvalidParameterError, match="Module"):
        dilate("vgg16")
    patchify = nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1))
    with pytest.raises(InvalidParameterError, match="not 'same'-padded"):
        dilate(patchify)

    class FunctionalPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, 2, 1)
            self.b = nn.Conv2d(4, 4, 3, 1, 1)

        def forward(self, x):
            return self.b(torch.nn.functional.max_pool2d(self.a(x), 2))

    with pytest.raises(InvalidParameterError, match="forward code"):
        dilate(FunctionalPool())
    with pytest.raises(InvalidParameterError, match="Not a torchvision VGG16"):
        with torch.device("meta"):
            dilated_vgg16(torchvision.models.alexnet())
    with pytest.raises(InvalidParameterError, match="Not a torchvision VGG16"):
        dilated_vgg16(dvgg)


def test_build_dilated_vgg16(tmp_path, monkeypatch, vgg):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv(zoo.OFFLINE_ENV, "1")
    path = tmp_path / "vgg16.pth"
    path.write_bytes(b"stand-in")  # the file read itself is covered by test_torchvision_zoo
    read = []

    def fake_read(p, name=None):
        read.append(p)
        return dict(vgg.state_dict())  # shared tensors: the zoo assigns, dilated_vgg16 copies

    monkeypatch.setattr(zoo, "load_state_dict_file", fake_read)
    spec = build_dilated_vgg16(weights_path=path)
    assert read == [path]
    assert spec.name == "dilated_vgg16" and spec.default_layer == "features.29"
    assert isinstance(spec.model, DilatedVGG) and not spec.model.training
    assert torch.equal(spec.model.features[28].weight, vgg.features[28].weight)
    assert spec.model.features[28].dilation == (16, 16)
    assert spec.input_size == (224, 224) and len(spec.labels) == 1000
    assert spec.extra["layer_names"]["relu5_3"] == "features.29"
    with pytest.raises(zoo.WeightsUnavailableError, match="vgg16-397923af.pth"):
        build_dilated_vgg16()


def test_shared_dilated_vgg16_runs_on_the_shared_vgg16s_weights(tmp_path, monkeypatch, vgg):
    """get_explainer('dilated_vgg16') (DilationStudy's twin) reuses the shared VGG16's
    weights: one 528 MB copy in the session, not two."""
    from cam_widgets import api

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv(zoo.OFFLINE_ENV, "1")
    path = tmp_path / "vgg16.pth"
    path.write_bytes(b"stand-in")
    reads = []
    monkeypatch.setattr(
        zoo, "load_state_dict_file", lambda p, name=None: reads.append(p) or dict(vgg.state_dict())
    )
    monkeypatch.setattr(api, "_SHARED", {})
    twin = api.get_explainer("dilated_vgg16", device="cpu", weights_path=path)
    base = api.get_explainer("vgg16", device="cpu", weights_path=path)
    assert len(reads) == 1 and twin.spec.name == "dilated_vgg16"
    assert twin.spec.model.features[28].weight.data_ptr() == base.spec.model.features[28].weight.data_ptr()
    assert twin.spec.model.features[28].dilation == (16, 16) and base.spec.model.features[28].dilation == (
        1,
        1,
    )
    assert api.get_explainer("dilated_vgg16", device="cpu", weights_path=path) is twin
