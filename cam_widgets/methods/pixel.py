"""Pixel-family methods: maps at input resolution from input gradients.

Each returns ``maps`` (K, N, H, W) and the per-channel ``attribution`` (K, N, 3, H, W).
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import Capture
from ..errors import InvalidParameterError, Received, expected
from .context import MethodContext, upsampled
from .registry import MethodOutput, register


@register(
    "vanilla",
    family="pixel",
    needs={"input_gradients"},
    clip_negative=False,
    title="Vanilla gradient",
    reference="Simonyan et al. 2014, Deep Inside Convolutional Networks",
)
def vanilla(ctx: MethodContext) -> MethodOutput:
    """M_ij = max_c |dS_c/dx_cij| (Simonyan et al. eq. 3; the SmoothGrad article's map)."""
    magnitude = ctx.input_gradients().abs()
    return MethodOutput(magnitude.amax(dim=2), magnitude)


@register(
    "guided_backprop",
    family="pixel",
    needs={"input_gradients", "guided"},
    clip_negative=False,
    title="Guided Backprop",
    reference="Springenberg et al. 2015, Striving for Simplicity (guided backpropagation)",
)
def guided_backprop(ctx: MethodContext) -> MethodOutput:
    """R^l = 1[f^l > 0] * max(R^{l+1}, 0) at every ReLU (eq. 4); map = max_c |R^0|."""
    guided = ctx.input_gradients(guided=True)
    return MethodOutput(guided.abs().amax(dim=2), guided)


def _guided_product(ctx: MethodContext, cam_method: str) -> MethodOutput:
    """Guided backprop times the upsampled, rectified CAM map (Selvaraju et al. sec. 3.1)."""
    cam_maps = upsampled(ctx.run(cam_method).maps, ctx.input_size, clip_negative=True)
    guided = ctx.run("guided_backprop").attribution
    assert guided is not None  # guided_backprop always returns its attribution
    attribution = guided * cam_maps[:, :, None]
    return MethodOutput(attribution.abs().amax(dim=2), attribution)


@register(
    "guided_gradcam",
    family="pixel",
    needs={"layer", "gradients", "input_gradients", "guided"},
    clip_negative=False,
    title="Guided Grad-CAM",
    reference="Selvaraju et al. 2017, Grad-CAM",
)
def guided_gradcam(ctx: MethodContext) -> MethodOutput:
    """Guided Backprop (x) Grad-CAM, elementwise."""
    return _guided_product(ctx, "gradcam")


@register(
    "guided_gradcam++",
    family="pixel",
    needs={"layer", "gradients", "input_gradients", "guided"},
    clip_negative=False,
    title="Guided Grad-CAM++",
    reference="Chattopadhay et al. 2018, Grad-CAM++",
)
def guided_gradcam_plus_plus(ctx: MethodContext) -> MethodOutput:
    """Guided Backprop (x) Grad-CAM++, elementwise."""
    return _guided_product(ctx, "gradcam++")


#: Bounds of integrated gradients' parameters: beyond them a call runs out of memory or
#: overflows float32 rather than explaining anything.
MAX_IG_STEPS, MAX_IG_BASELINE = 2000, 1e6


@register(
    "integrated_gradients",
    family="pixel",
    needs={"input_gradients", "extra_forwards"},
    clip_negative=False,
    title="Integrated Gradients",
    defaults={"steps": 50, "baseline": 0.0},
    progress_unit="steps",
    reference="Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks",
)
def integrated_gradients(ctx: MethodContext) -> MethodOutput:
    """IG_i = (x_i - x'_i) * int_0^1 dF(x' + a (x - x'))/dx_i da (eq. 1), Gauss-Legendre
    quadrature (as captum's default); map = sum_c |IG_c|. Interpolations run batched.
    """
    steps = int(ctx.param("steps", 50))  # an int >= 1: MethodSpec.check_params
    if steps > MAX_IG_STEPS:  # (captum's default is 50; the quadrature table grows as steps^2)
        raise InvalidParameterError(
            expected(
                "integrated_gradients parameter 'steps'", f"at most {MAX_IG_STEPS}", Received(str(steps))
            )
        )
    baseline_value = float(ctx.param("baseline", 0.0))
    if abs(baseline_value) > MAX_IG_BASELINE:
        raise InvalidParameterError(
            expected(
                "integrated_gradients parameter 'baseline'",
                f"a value of the model's input scale, within +-{MAX_IG_BASELINE:g}",
                Received(f"{baseline_value:g}"),
            )
        )
    inputs = ctx.inputs()
    baseline = torch.full_like(inputs, baseline_value)
    nodes, node_weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=inputs.dtype, device=inputs.device)
    weights = torch.tensor(node_weights / 2, dtype=inputs.dtype, device=inputs.device)
    batch = ctx.engine.batch_size_for(requested=ctx.param("batch_size"))
    total = torch.zeros((ctx.num_classes,) + tuple(inputs.shape), dtype=inputs.dtype, device=inputs.device)
    if ctx.progress is not None:
        ctx.progress(0, inputs.shape[0] * steps)  # started: a progress bar at once
    for image in range(inputs.shape[0]):
        delta = inputs[image] - baseline[image]
        for start in range(0, steps, batch):
            a = alphas[start : start + batch]
            path = baseline[image][None] + a[:, None, None, None] * delta[None]
            with ctx.engine.exclusive():  # the step's forward and backward: one graph alive
                grads = Capture("", ctx.engine.run(path, []), single_backward=True).input_gradients(
                    ctx.class_ids
                )
            total[:, image] += (grads * weights[start : start + batch, None, None, None]).sum(dim=1)
            if ctx.progress is not None:
                ctx.progress(image * steps + start + a.numel(), inputs.shape[0] * steps)
    attribution = (inputs - baseline)[None] * total
    return MethodOutput(attribution.abs().sum(dim=2), attribution)
