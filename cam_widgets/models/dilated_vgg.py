"""The article's dilated VGG16 ("Grad-CAM and dilated convolution"): same 13 convs and
weights, no pooling in the body, dilations 1,1 | 2,2 | 4,4,4 | 8,8,8 | 16,16,16, and one
``MaxPool2d(32)`` before the unchanged classifier. Layer names stay torchvision's.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import InvalidParameterError, describe
from .copying import copy_modules
from .spec import ModelSpec
from .strides import pair

_BLOCKS = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]


def _vgg16_names() -> dict[str, str]:
    names: dict[str, str] = {}
    index = 0
    for block, convs in _BLOCKS:
        for i in range(1, convs + 1):
            names[f"conv{block}_{i}"] = f"features.{index}"
            names[f"relu{block}_{i}"] = f"features.{index + 1}"
            index += 2
        names[f"pool{block}"] = f"features.{index}"
        index += 1
    names.update(
        {
            "fc6": "classifier.0",
            "relu6": "classifier.1",
            "drop6": "classifier.2",
            "fc7": "classifier.3",
            "relu7": "classifier.4",
            "drop7": "classifier.5",
            "fc8": "classifier.6",
        }
    )
    return names


#: Caffe-style VGG16 layer names -> torchvision ``vgg16`` module names.
VGG16_LAYER_NAMES: dict[str, str] = _vgg16_names()

#: Caffe-style VGG16 layer names -> module names in :func:`dilated_vgg16`'s model.
#: Convs, ReLUs and the classifier keep their torchvision names (``relu5_3`` is ``features.29``);
#: pool1..pool4 are removed (``None``: an ``nn.Identity`` stands at their old index), and pool5's
#: role is taken by the new ``MaxPool2d(32)`` named ``pool``.
DILATED_VGG16_LAYER_NAMES: dict[str, str | None] = {
    k: (None if k.startswith("pool") else v) for k, v in VGG16_LAYER_NAMES.items()
}
DILATED_VGG16_LAYER_NAMES["pool5"] = "pool"

#: Dilation of the 13 convs of the dilated VGG16, in order.
DILATED_VGG16_RATES = (1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16)


class DilatedVGG(nn.Module):
    """VGG with a dilated, pool-free body and one max-pool before the classifier.

    ``features`` (full resolution) -> ``pool`` (``MaxPool2d(32)``) -> ``avgpool`` (torchvision's
    ``AdaptiveAvgPool2d((7, 7))``, an identity at 224x224) -> flatten -> ``classifier``.
    """

    def __init__(
        self, features: nn.Sequential, avgpool: nn.Module, classifier: nn.Sequential, pool_size: int = 32
    ):
        super().__init__()
        self.features = features
        self.pool = nn.MaxPool2d(kernel_size=pool_size, stride=pool_size)
        self.avgpool = avgpool
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(_layout_for(x))
        x = self.pool(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _layout_for(x: torch.Tensor) -> torch.Tensor:
    """``x`` channels-last on the CPU. There oneDNN runs a dilated conv on plain (NCHW) maps
    through a GEMM with a scratch buffer and a copy of its output: at 224x224x512 that is
    ~90 MB more at every conv of blocks 4-5 and 1.3x the time of its direct channels-last
    kernel (2-core CPU, 2026-12-07: forward peak 310 -> 239 MiB over the weights, 29 -> 22 s).
    Logits differ by float rounding only (3e-7 of 0.15)."""
    if x.device.type == "cpu" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _check_vgg16(vgg: object) -> None:
    features = getattr(vgg, "features", None)
    ok = (
        isinstance(vgg, nn.Module)
        and isinstance(features, nn.Sequential)
        and isinstance(getattr(vgg, "classifier", None), nn.Module)
        and isinstance(getattr(vgg, "avgpool", None), nn.Module)
    )
    if ok:
        convs = [m for m in features if isinstance(m, nn.Conv2d)]
        pools = [m for m in features if isinstance(m, nn.MaxPool2d)]
        layout = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
        ok = (
            len(features) == 31
            and len(convs) == 13
            and len(pools) == 5
            and layout == [4, 9, 16, 23, 30]
            and all(pair(c.kernel_size) == (3, 3) and pair(c.dilation) == (1, 1) for c in convs)
        )
    if not ok:
        raise InvalidParameterError(
            f"Not a torchvision VGG16: expected torchvision.models.vgg16() (13 3x3 convs, 5 max-pools "
            f"at features.4/9/16/23/30, undilated), received {describe(vgg)}; hint: use "
            f"dilate(model, after=...) for other networks."
        )


def dilated_vgg16(vgg: nn.Module, share_weights: bool = True) -> DilatedVGG:
    """The article's dilated VGG16, built from a torchvision ``vgg16`` (not modified).

    Same 13 convs with the same weights (``share_weights``: the very tensors of ``vgg``, no
    second 528 MB; False: copies), same parameter count (138,357,544), the five
    max-pools of ``features`` replaced by ``nn.Identity`` (indices, hence names, unchanged),
    dilation 1,1 | 2,2 | 4,4,4 | 8,8,8 | 16,16,16 with padding = dilation (224 stays 224), then
    ``pool = MaxPool2d(32)`` (224 -> 7x7x512) before the unchanged ``avgpool`` and ``classifier``.
    Names: :data:`DILATED_VGG16_LAYER_NAMES` (conv5_3's ReLU is ``features.29`` as in VGG16).
    """
    _check_vgg16(vgg)
    features = copy_modules(vgg.features, share_weights)
    index = 0
    for i, module in enumerate(features):
        if isinstance(module, nn.MaxPool2d):
            features[i] = nn.Identity()
        elif isinstance(module, nn.Conv2d):
            rate = DILATED_VGG16_RATES[index]
            module.dilation = (rate, rate)
            module.padding = (rate, rate)
            module.stride = (1, 1)
            index += 1
    model = DilatedVGG(
        features, copy_modules(vgg.avgpool, share_weights), copy_modules(vgg.classifier, share_weights)
    )
    model.train(vgg.training)
    return model


def build_dilated_vgg16(
    weights_path: str | os.PathLike | None = None,
    pretrained: bool = True,
    *,
    allow_download: bool | None = None,
    seed: int = 0,
) -> ModelSpec:
    """The dilated VGG16 as a :class:`ModelSpec` (weights loaded like ``build_torchvision("vgg16")``).

    ``default_layer`` is ``features.29`` (conv5_3's ReLU, at full 224x224 resolution).
    """
    from .torchvision_zoo import build_torchvision

    base = build_torchvision(
        "vgg16",
        weights_path=weights_path,
        pretrained=pretrained,
        allow_download=allow_download,
        seed=seed,
    )
    return dilated_vgg16_spec(base)


def dilated_vgg16_spec(base: ModelSpec) -> ModelSpec:
    """The dilated twin of a VGG16 ``ModelSpec`` (its weights shared, its modules its own), with
    VGG16's preprocessing and labels; ``default_layer`` is ``features.29``."""
    model = dilated_vgg16(base.model)
    model.eval()
    extra = dict(base.extra)
    extra.update(
        dilated=True,
        dilation_rates=DILATED_VGG16_RATES,
        layer_names=dict(DILATED_VGG16_LAYER_NAMES),
        base_model="vgg16",
    )
    return ModelSpec(
        name="dilated_vgg16",
        model=model,
        preprocess=base.preprocess,
        labels=base.labels,
        input_size=base.input_size,
        default_layer="features.29",
        input_range=base.input_range,
        description="dilated VGG16 (no pooling in the body, dilation 1-16, MaxPool2d(32) head); "
        + base.description,
        extra=extra,
    )
