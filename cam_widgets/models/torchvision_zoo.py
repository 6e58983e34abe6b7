"""torchvision classifiers as :class:`ModelSpec`, with offline-safe weight loading.

The articles use ``vgg16``, ``alexnet`` and ``resnet50`` with torchvision's ``IMAGENET1K_V1``
weights; any other torchvision classifier (``torchvision.models.list_models(module=torchvision.models)``)
can be built by name with its ``DEFAULT`` weights.

Where the weights come from, in this order:

1. an explicit ``weights_path``;
2. the torch hub cache file where torchvision itself looks,
   ``<torch.hub.get_dir()>/checkpoints/<file name of the weights URL>`` (e.g. ``vgg16-397923af.pth``);
3. a download into that cache, only when the machine is online (a connect to the download host
   bounded by a few seconds; ``CAM_WIDGETS_OFFLINE=1`` or ``allow_download=False`` skips it).

Otherwise :class:`WeightsUnavailableError` is raised at once, naming the file expected, where to
put it and how to get it (``cam-widgets fetch-weights <name>`` on a connected machine, or
``weights_path=``). Files are read with ``torch.load(..., weights_only=True)``, so no pickled
code is ever executed, and loaded strictly: a corrupt or mismatching file is refused.
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Any, Callable, Optional, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from torch import nn

from ..errors import (
    InvalidParameterError,
    UnknownModelError,
    WeightsUnavailableError,
    close_matches,
    describe,
)
from .spec import (
    IMAGENET_INPUT_RANGE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelSpec,
    imagenet_preprocess,
)
from .weight_files import (  # looked up here, so tests can patch them on this module
    _CONNECT_TIMEOUT_S,
    OFFLINE_ENV,
    _download,
    _host_reachable,
    _hub_checkpoint_dir,
    _offline_by_env,
    load_state_dict_file,
)

__all__ = [
    "ARTICLE_MODELS",
    "ARTICLE_LAYERS",
    "available_models",
    "build_torchvision",
    "expected_weights_file",
    "fetch_weights",
    "weights_url",
    "load_state_dict_file",
]

#: The articles' models and the weights they use.
ARTICLE_MODELS = {"vgg16": "IMAGENET1K_V1", "alexnet": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V1"}

#: The articles' Grad-CAM layers, as torchvision module names.
#: vgg16: ``features.29`` is the ReLU after conv5_3 (``features.28``); torchvision's ReLU is
#: ``inplace=True`` so features.28's output tensor is overwritten by it: use features.29.
#: alexnet: ``features.11`` is the ReLU after conv5 (``features.10``).
#: resnet50: ``layer4`` is the output of the last bottleneck (res5c, after its final ReLU).
ARTICLE_LAYERS = {"vgg16": "features.29", "alexnet": "features.11", "resnet50": "layer4"}

#: Seed of the random weights built with ``pretrained=False``.
RANDOM_SEED = 0


# --------------------------------------------------------------------------- names / weights


def available_models() -> list[str]:
    """Every torchvision classifier name this zoo can build (sorted)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _canonical(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(
            f"Model name is not a non-empty string: expected a torchvision classifier name such as "
            f"'vgg16', received {describe(name)}."
        )
    key = name.strip().lower().replace("-", "_")
    models = available_models()
    if key not in models:
        hint = close_matches(key, models) or " See torchvision.models.list_models(module=torchvision.models)."
        raise UnknownModelError(
            f"Unknown model name: expected one of the {len(models)} torchvision classifiers "
            f"(e.g. 'vgg16', 'alexnet', 'resnet50'), received {name!r}.{hint}"
        )
    return key


def _weights_enum(name: str, weights_name: Optional[str] = None):
    """The torchvision WeightsEnum member used for ``name`` (article models: IMAGENET1K_V1)."""
    enum = torchvision.models.get_model_weights(name)
    if weights_name is None:
        weights_name = ARTICLE_MODELS.get(name)
    if weights_name is None:
        return enum.DEFAULT
    try:
        return enum[weights_name]
    except KeyError:
        choices = [m.name for m in enum]
        raise InvalidParameterError(
            f"Unknown weights for {name}: expected one of {choices}, received {weights_name!r}."
            f"{close_matches(weights_name, choices)}"
        ) from None


def weights_url(name: str, weights_name: Optional[str] = None) -> str:
    """Download URL of the weights ``build_torchvision(name)`` uses."""
    return _weights_enum(_canonical(name), weights_name).url


def expected_weights_file(name: str, weights_name: Optional[str] = None) -> pathlib.Path:
    """Where torchvision (and this zoo) looks for the weights file of ``name``.

    ``<torch.hub.get_dir()>/checkpoints/<file name of the URL>``, e.g.
    ``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth``.
    """
    url = weights_url(name, weights_name)
    return _hub_checkpoint_dir() / os.path.basename(urlparse(url).path)


def fetch_weights(
    name: str,
    dest_dir: Optional[os.PathLike | str] = None,
    *,
    weights_name: Optional[str] = None,
    progress: bool = True,
    force: bool = False,
) -> pathlib.Path:
    """Download the weights of ``name`` (for ``cam-widgets fetch-weights``) and return their path.

    The file goes to the torch hub cache (where :func:`build_torchvision` and torchvision look)
    unless ``dest_dir`` is given. An already present file is kept unless ``force``. The SHA-256
    prefix in the file name is checked by ``torch.hub.download_url_to_file``.
    """
    key = _canonical(name)
    url = _weights_enum(key, weights_name).url
    file_name = os.path.basename(urlparse(url).path)
    directory = pathlib.Path(dest_dir) if dest_dir is not None else _hub_checkpoint_dir()
    dest = directory / file_name
    if dest.is_file() and not force:
        return dest
    try:
        return _download(url, dest, progress=progress)
    except Exception as exc:  # network errors, hash mismatch, disk full...
        raise WeightsUnavailableError(
            f"Download of {key} weights failed: expected {file_name} from {url} in {directory}, "
            f"received {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            f"hint: check the connection, or copy {file_name} there from a connected machine."
        ) from None


def _fix_keys(name: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames torchvision applies to old checkpoints (densenet's 'norm.1' -> 'norm1')."""
    if not name.startswith("densenet"):
        return state_dict

    pattern = re.compile(
        r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
    )
    fixed = {}
    for key, value in state_dict.items():
        res = pattern.match(key)
        fixed[res.group(1) + res.group(2) if res else key] = value
    return fixed


def _arch_kwargs(name: str, weights, pretrained: bool) -> dict[str, Any]:
    """The constructor arguments torchvision's builder uses when it is given ``weights``."""
    kwargs: dict[str, Any] = {"num_classes": len(weights.meta["categories"])}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(transform_input=True, aux_logits=True, init_weights=not pretrained)
    elif name.startswith("vit_"):
        kwargs["image_size"] = weights.meta["min_size"][0]
    elif name == "maxvit_t":
        kwargs["input_size"] = weights.meta["min_size"]
    return kwargs


def _load_into_new_model(name: str, kwargs: dict, state_dict: dict) -> nn.Module:
    """Build ``name`` and load ``state_dict`` strictly (RuntimeError on mismatch).

    The model is built on the meta device and the loaded tensors are assigned to it, which
    skips the random initialisation (about 1.5 s for VGG16 on CPU); floating tensors are cast to
    the model's dtype. Falls back to a regular build when something stays on the meta device
    (a non-persistent buffer).
    """
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    expected = {k: v for k, v in model.state_dict().items()}
    state_dict = {
        k: (v.to(expected[k].dtype) if k in expected and v.is_floating_point()
            and expected[k].is_floating_point() and v.dtype != expected[k].dtype else v)
        for k, v in state_dict.items()
    }
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
        model.load_state_dict(state_dict, strict=True)
    return model


def _after_load(name: str, model: nn.Module) -> None:
    if name == "googlenet":  # as torchvision does by default: drop the untrained aux heads
        model.aux_logits = False
        model.aux1 = None
        model.aux2 = None


def _preprocess_for(mean: Sequence[float], std: Sequence[float]) -> tuple[Callable, tuple[float, float]]:
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if np.allclose(mean, IMAGENET_MEAN) and np.allclose(std, IMAGENET_STD):
        return imagenet_preprocess, IMAGENET_INPUT_RANGE

    def preprocess(rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)

    low = min((0.0 - m) / s for m, s in zip(mean, std))
    high = max((1.0 - m) / s for m, s in zip(mean, std))
    return preprocess, (low, high)


def _unavailable_message(key: str, dest: pathlib.Path, url: str, why: str) -> str:
    return (
        f"Pretrained weights for {key} are unavailable: expected the file {dest.name} at {dest}, "
        f"received no such file and {why}; hint: run `cam-widgets fetch-weights {key}` on a connected "
        f"machine and copy {dest.name} into {dest.parent} (or download {url}), pass weights_path=, "
        f"or use pretrained=False for random weights."
    )


def build_torchvision(
    name: str,
    *,
    weights_path: Optional[os.PathLike | str] = None,
    pretrained: bool = True,
    allow_download: Optional[bool] = None,
    weights_name: Optional[str] = None,
    seed: int = RANDOM_SEED,
) -> ModelSpec:
    """Build a torchvision ImageNet classifier as a :class:`ModelSpec` (model in eval mode, on CPU).

    Args:
        name: torchvision classifier name, case-insensitive (``"vgg16"``, ``"alexnet"``, ``"resnet50"``...).
        weights_path: explicit state-dict file; takes precedence over the hub cache.
        pretrained: ``False`` builds seeded random weights (tests, benchmarks); nothing is read.
        allow_download: ``None`` downloads when online (bounded check; ``CAM_WIDGETS_OFFLINE=1``
            disables), ``False`` never downloads, ``True`` downloads without the check.
        weights_name: another member of the weights enum (default: ``IMAGENET1K_V1`` for the
            article models, ``DEFAULT`` otherwise).
        seed: seed of the random weights when ``pretrained=False``.

    Raises:
        UnknownModelError: the name is not a torchvision classifier (with close matches).
        WeightsUnavailableError: no file and no way to download it, or an unreadable/mismatching file.
    """
    key = _canonical(name)
    weights = _weights_enum(key, weights_name)
    url = weights.url
    kwargs = _arch_kwargs(key, weights, pretrained)

    source: Optional[pathlib.Path] = None
    if pretrained:
        if weights_path is not None:
            source = pathlib.Path(weights_path).expanduser()
        else:
            dest = expected_weights_file(key, weights.name)
            if dest.is_file():
                source = dest
            else:
                if allow_download is False:
                    why = "downloads are disabled (allow_download=False)"
                elif allow_download is None and _offline_by_env():
                    why = f"downloads are disabled ({OFFLINE_ENV}=1)"
                elif allow_download is None and not _host_reachable(url):
                    host = urlparse(url).hostname
                    why = f"{host} is unreachable (offline, checked within {_CONNECT_TIMEOUT_S:g} s)"
                else:
                    why = ""
                if why:
                    raise WeightsUnavailableError(_unavailable_message(key, dest, url, why))
                source = fetch_weights(key, weights_name=weights.name)
        state_dict = _fix_keys(key, load_state_dict_file(source, key))
        try:
            model = _load_into_new_model(key, kwargs, state_dict)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            detail = "; ".join(lines[1:3]) if len(lines) > 1 else (lines[0] if lines else "")
            raise WeightsUnavailableError(
                f"Weights file does not match {key}: expected torchvision {key} {weights.name} "
                f"parameters (strict load), received {str(source)!r} with different keys or shapes "
                f"({detail[:200]}); hint: pass the file made for {key}, or fetch it again "
                f"(cam-widgets fetch-weights {key})."
            ) from None
        _after_load(key, model)
        description = f"torchvision {key}, {weights.name} weights ({source.name})"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = torchvision.models.get_model(key, weights=None, **kwargs)
        _after_load(key, model)
        description = f"torchvision {key}, random weights (seed {int(seed)}, not pretrained)"

    model.eval()
    tkw = weights.transforms.keywords
    crop = tkw.get("crop_size", 224)
    crop = crop[0] if isinstance(crop, (list, tuple)) else int(crop)
    preprocess, input_range = _preprocess_for(tkw.get("mean", IMAGENET_MEAN), tkw.get("std", IMAGENET_STD))
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    labels = list(_IMAGENET_CATEGORIES)
    if len(labels) != kwargs["num_classes"]:  # not an ImageNet-1k head
        labels = list(weights.meta["categories"])
    return ModelSpec(
        name=key,
        model=model,
        preprocess=preprocess,
        labels=labels,
        input_size=(int(crop), int(crop)),
        default_layer=ARTICLE_LAYERS.get(key),
        input_range=input_range,
        description=description,
        extra={
            "source": "torchvision",
            "weights": weights.name,
            "weights_url": url,
            "weights_file": str(source) if source is not None else None,
            "pretrained": bool(pretrained),
            "seed": None if pretrained else int(seed),
        },
    )
