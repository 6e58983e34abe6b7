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
``weights_path=``, ``--weights PATH`` on the command line). Files are read with ``torch.load(..., weights_only=True)``, so no pickled
code is ever executed, and loaded strictly: a corrupt or mismatching file is refused.

This module resolves where the weights come from and builds the :class:`ModelSpec`; the model
names and weights enums are in :mod:`.torchvision_catalog`, the per-architecture details of the
build in :mod:`.torchvision_architectures`, and the file handling in :mod:`.weight_files`.
"""

from __future__ import annotations

import os
import pathlib
from urllib.parse import urlparse

import torch
import torchvision

from ..errors import WeightsUnavailableError
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from .torchvision_architectures import (
    after_load,
    arch_kwargs,
    fix_keys,
    load_into_new_model,
    preprocess_for,
)
from .torchvision_catalog import (  # public names re-exported: they were defined here before
    ARTICLE_LAYERS,
    ARTICLE_MODELS,
    available_models,
    canonical_name,
    weights_enum,
    weights_url,
)
from .weight_files import (  # looked up here, so tests can patch them on this module
    OFFLINE_ENV,  # noqa: F401 (the tests' name for the switch)
    download_file,
    download_refusal,
    host_reachable,
    hub_checkpoint_dir,
    load_state_dict_file,
    mismatch_detail,
    unavailable_message,
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

#: Seed of the random weights built with ``pretrained=False``.
RANDOM_SEED = 0


def expected_weights_file(name: str, weights_name: str | None = None) -> pathlib.Path:
    """Where torchvision (and this zoo) looks for the weights file of ``name``.

    ``<torch.hub.get_dir()>/checkpoints/<file name of the URL>``, e.g.
    ``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth``.
    """
    url = weights_url(name, weights_name)
    return hub_checkpoint_dir() / os.path.basename(urlparse(url).path)


def fetch_weights(
    name: str,
    dest_dir: os.PathLike | str | None = None,
    *,
    weights_name: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> pathlib.Path:
    """Download the weights of ``name`` (for ``cam-widgets fetch-weights``) and return their path.

    The file goes to the torch hub cache (where :func:`build_torchvision` and torchvision look)
    unless ``dest_dir`` is given. An already present file is kept unless ``force``. The SHA-256
    prefix in the file name is checked by ``torch.hub.download_url_to_file``.
    """
    key = canonical_name(name)
    url = weights_enum(key, weights_name).url
    file_name = os.path.basename(urlparse(url).path)
    directory = pathlib.Path(dest_dir) if dest_dir is not None else hub_checkpoint_dir()
    dest = directory / file_name
    if dest.is_file() and not force:
        return dest
    try:
        return download_file(url, dest, progress=progress)
    except Exception as exc:  # network errors, hash mismatch, disk full...
        raise WeightsUnavailableError(
            f"Download of {key} weights failed: expected {file_name} from {url} in {directory}, "
            f"received {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            f"hint: check the connection, or copy {file_name} there from a connected machine."
        ) from None


def build_torchvision(
    name: str,
    *,
    weights_path: os.PathLike | str | None = None,
    pretrained: bool = True,
    allow_download: bool | None = None,
    weights_name: str | None = None,
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
    key = canonical_name(name)
    weights = weights_enum(key, weights_name)
    url = weights.url
    kwargs = arch_kwargs(key, weights, pretrained)

    source: pathlib.Path | None = None
    if pretrained:
        if weights_path is not None:
            source = pathlib.Path(weights_path).expanduser()
        else:
            dest = expected_weights_file(key, weights.name)
            if dest.is_file():
                source = dest
            else:
                why = download_refusal(url, allow_download, host_reachable)
                if why:
                    raise WeightsUnavailableError(unavailable_message(key, dest, url, why))
                source = fetch_weights(key, weights_name=weights.name)
        state_dict = fix_keys(key, load_state_dict_file(source, key))
        try:
            model = load_into_new_model(key, kwargs, state_dict)
        except RuntimeError as exc:
            raise WeightsUnavailableError(
                f"Weights file does not match {key}: expected torchvision {key} {weights.name} "
                f"parameters (strict load), received {str(source)!r} with different keys or shapes "
                f"({mismatch_detail(exc)}); hint: pass the file made for {key}, or fetch it again "
                f"(cam-widgets fetch-weights {key})."
            ) from None
        after_load(key, model)
        description = f"torchvision {key}, {weights.name} weights ({source.name})"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = torchvision.models.get_model(key, weights=None, **kwargs)
        after_load(key, model)
        description = f"torchvision {key}, random weights (seed {int(seed)}, not pretrained)"

    model.eval()
    tkw = weights.transforms.keywords
    crop = tkw.get("crop_size", 224)
    crop = crop[0] if isinstance(crop, (list, tuple)) else int(crop)
    preprocess, input_range = preprocess_for(tkw.get("mean", IMAGENET_MEAN), tkw.get("std", IMAGENET_STD))
    labels = list(weights.meta["categories"])  # (public API: torchvision's own names)
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
