"""What a method sees: lazy, cached access to one capture for K classes and one layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import Capture, Engine, LayerInfo
from ..errors import MethodNotApplicableError
from .registry import MethodOutput, get_method, list_methods

Progress = Callable[[int, int], None] | None


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., h, w) -> (..., H, W), bilinear with align_corners=False (as cv2.resize)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    up = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return up.reshape(*maps.shape[:-2], *size)


def upsampled(maps: torch.Tensor, size: tuple[int, int], clip_negative: bool) -> torch.Tensor:
    """Maps at ``size``; with ``clip_negative`` the ReLU comes first, as in the papers (and in
    pytorch-grad-cam, captum and torch-cam): after upsampling it would cut each zero crossing
    into a hard edge and change every value near one."""
    return upsample(maps.clamp(min=0) if clip_negative else maps, size)


class MethodContext:
    """Inputs of a method call: the engine, a capture of N images, K class ids, a layer.

    Everything is fetched lazily from the capture, whose gradients are cached, so methods
    that share needs (Grad-CAM, Grad-CAM++, XGrad-CAM, Layer-CAM) share one backward.
    """

    def __init__(
        self,
        engine: Engine,
        capture: Capture,
        class_ids: torch.Tensor,
        layer: str | None,
        params: dict | None = None,
        progress: Progress = None,
    ) -> None:
        self.engine = engine
        self.capture = capture
        self.class_ids = class_ids
        self.layer = layer
        self.params = dict(params or {})
        self.progress = progress

    @property
    def num_classes(self) -> int:
        return int(self.class_ids.numel())

    @property
    def input_size(self) -> tuple[int, int]:
        height, width = self.capture.inputs.shape[-2:]  # inputs are (N, 3, H, W)
        return height, width

    def activations(self) -> torch.Tensor:
        """(N, C, h, w) activations of the layer, whatever its layout (channels last, tokens:
        ``engine/layouts.py``)."""
        return self._grid().as_grid(self.capture.activations(self._layer()))

    def gradients(self) -> torch.Tensor:
        """(K, N, C, h, w) d logit / d activations of the layer, laid out as ``activations``."""
        grads = self.capture.gradients([self._layer()], self.class_ids)[0]
        info = self._grid()
        if info.layout == "NCHW":
            return grads
        return info.as_grid(grads.flatten(0, 1)).unflatten(0, tuple(grads.shape[:2]))

    def inputs(self) -> torch.Tensor:
        """(N, 3, H, W) model inputs."""
        return self.capture.inputs.detach()

    def input_gradients(self, guided: bool = False) -> torch.Tensor:
        """(K, N, 3, H, W) d logit / d input, plain or guided (guided backprop needs ReLU-like
        activations: a one-line error for a model without them)."""
        if guided and not self.engine.has_relu:
            guided_methods = ", ".join(repr(m.name) for m in list_methods() if m.needs_relu)
            raise MethodNotApplicableError(
                f"guided backprop ({guided_methods}) needs ReLU-like activations (nn.ReLU, "
                f"nn.ReLU6, nn.LeakyReLU, nn.PReLU, F.relu...) and this model has none (GELU, "
                f"SiLU... are not guided); use 'vanilla' or 'integrated_gradients', or 'gradcam' "
                f"for a layer map"
            )
        return self.capture.input_gradients(self.class_ids, guided=guided)

    def upsample(self, maps: torch.Tensor) -> torch.Tensor:
        """(K, N, h, w) -> (K, N, H, W), bilinear with align_corners=False (as cv2.resize)."""
        return upsample(maps, self.input_size)

    def head(self) -> torch.Tensor:
        """(K, C) weights of the classes in a GAP + linear head fed by the layer (for CAM).

        The head is found among the model's nn.Linear modules and then checked numerically:
        linear(mean over h, w of the activations) must reproduce the logits.
        """
        acts = self.activations()
        channels = acts.shape[1]
        logits = self.capture.logits
        for module in reversed(list(self.engine.model.modules())):
            if (
                isinstance(module, nn.Linear)
                and module.in_features == channels
                and module.out_features == logits.shape[1]
            ):
                pooled = acts.mean(dim=(2, 3))
                predicted = F.linear(pooled, module.weight.detach(), _bias(module))
                tolerance = 1e-3 * (1.0 + logits.abs().max())
                if (predicted - logits).abs().max() <= tolerance:
                    return module.weight.detach()[self.class_ids.to(acts.device)]
        raise MethodNotApplicableError(
            f"'cam' needs layer {self._layer()!r} to feed a global-average-pool + linear head "
            f"directly, and it does not in this model; use 'gradcam' (equal to CAM where CAM applies)"
        )

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def run(self, method: str) -> MethodOutput:
        """Another registered method on the same capture (compose, don't copy)."""
        return get_method(method).fn(self)

    def _layer(self) -> str:
        if self.layer is None:
            raise MethodNotApplicableError("this method needs a layer and none was given")
        return self.layer

    def _grid(self) -> LayerInfo:
        """The layer as listed: how its output reads as (N, C, h, w)."""
        return self.engine.check_layer(self._layer())


def _bias(module: nn.Linear) -> torch.Tensor | None:
    return None if module.bias is None else module.bias.detach()
