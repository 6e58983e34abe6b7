"""CAM-family methods: a weighted sum of a layer's activation maps.

Each returns signed (K, N, h, w) maps at layer resolution; the registry's
``clip_negative`` applies the final ReLU of the papers when the map is displayed.
"""

from __future__ import annotations

import torch

from .context import MethodContext
from .registry import MethodOutput, register


def _weighted_sum(weights: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """sum_c weights[k, n, c] * acts[n, c, h, w] -> (K, N, h, w)."""
    return torch.einsum("knc,nchw->knhw", weights, acts)


@register(
    "cam",
    family="cam",
    needs={"layer", "head"},
    clip_negative=True,
    title="CAM",
    reference="Zhou et al. 2016, Learning Deep Features for Discriminative Localization",
)
def cam(ctx: MethodContext) -> MethodOutput:
    """M_c(x, y) = sum_k w_k^c f_k(x, y), w^c the linear head's row for class c (eq. 2)."""
    acts = ctx.activations()
    weights = ctx.head()  # (K, C)
    return MethodOutput(torch.einsum("kc,nchw->knhw", weights, acts))


@register(
    "gradcam",
    family="cam",
    needs={"layer", "gradients"},
    clip_negative=True,
    title="Grad-CAM",
    reference="Selvaraju et al. 2017, Grad-CAM (arXiv 1610.02391)",
)
def gradcam(ctx: MethodContext) -> MethodOutput:
    """alpha_k^c = 1/Z sum_ij dy^c/dA^k_ij (eq. 1); L^c = ReLU(sum_k alpha_k^c A^k) (eq. 2)."""
    grads = ctx.gradients()
    return MethodOutput(_weighted_sum(grads.mean(dim=(3, 4)), ctx.activations()))


@register(
    "gradcam++",
    family="cam",
    needs={"layer", "gradients"},
    clip_negative=True,
    title="Grad-CAM++",
    defaults={"alpha": "paper", "positive_gradients": True},
    choices={"alpha": ("paper", "uniform")},
    reference="Chattopadhay et al. 2018, Grad-CAM++ (WACV)",
)
def gradcam_plus_plus(ctx: MethodContext) -> MethodOutput:
    """w_k^c = sum_ij alpha_ij^kc ReLU(dY^c/dA^k_ij) (eq. 7) with, for an exponential score,
    alpha = g^2 / (2 g^2 + sum_ab A_ab g^3) (eq. 19). ``alpha="uniform"`` sets alpha = 1/Z;
    with ``positive_gradients=False`` as well, Grad-CAM++ is exactly Grad-CAM.
    """
    grads, acts = ctx.gradients(), ctx.activations()
    if ctx.param("alpha", "paper") == "uniform":
        alpha = torch.full_like(grads, 1.0 / (grads.shape[-1] * grads.shape[-2]))
    else:
        g2 = grads.pow(2)
        denominator = 2 * g2 + acts.sum(dim=(2, 3))[None, :, :, None, None] * g2 * grads
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alpha = torch.where(denominator != 0, g2 / safe, torch.zeros_like(g2))
    kept = grads.clamp(min=0) if ctx.param("positive_gradients", True) else grads
    return MethodOutput(_weighted_sum((alpha * kept).sum(dim=(3, 4)), acts))


@register(
    "xgradcam",
    family="cam",
    needs={"layer", "gradients"},
    clip_negative=True,
    title="XGrad-CAM",
    reference="Fu et al. 2020, Axiom-based Grad-CAM (BMVC)",
)
def xgradcam(ctx: MethodContext) -> MethodOutput:
    """alpha_k^c = sum_ij (A^k_ij / sum_ab A^k_ab) dy^c/dA^k_ij (eq. 13); zero-sum maps weigh 0."""
    grads, acts = ctx.gradients(), ctx.activations()
    totals = acts.sum(dim=(2, 3), keepdim=True)
    share = torch.where(
        totals != 0, acts / torch.where(totals != 0, totals, torch.ones_like(totals)), torch.zeros_like(acts)
    )
    return MethodOutput(_weighted_sum((share[None] * grads).sum(dim=(3, 4)), acts))


@register(
    "layercam",
    family="cam",
    needs={"layer", "gradients"},
    clip_negative=True,
    title="Layer-CAM",
    reference="Jiang et al. 2021, LayerCAM (IEEE TIP)",
)
def layercam(ctx: MethodContext) -> MethodOutput:
    """M^c = ReLU(sum_k ReLU(g^kc_ij) * A^k_ij): per-position weights (eq. 5-6)."""
    grads, acts = ctx.gradients(), ctx.activations()
    return MethodOutput((grads.clamp(min=0) * acts[None]).sum(dim=2))


@register(
    "hirescam",
    family="cam",
    needs={"layer", "gradients"},
    clip_negative=True,
    title="HiResCAM",
    reference="Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM "
    "for faithful explanations (arXiv 2011.08891)",
)
def hirescam(ctx: MethodContext) -> MethodOutput:
    """M^c = ReLU(sum_k dy^c/dA^k_ij * A^k_ij) (eq. 6): Grad-CAM without averaging the
    gradients over space, so each position keeps its own evidence."""
    return MethodOutput((ctx.gradients() * ctx.activations()[None]).sum(dim=2))


@register(
    "eigencam",
    family="cam",
    needs={"layer"},
    clip_negative=True,
    title="Eigen-CAM (any class)",
    reference="Muhammad & Yeasin 2020, Eigen-CAM (IJCNN, arXiv 2008.00299)",
)
def eigencam(ctx: MethodContext) -> MethodOutput:
    """The activations (positions x channels) projected on their first principal direction
    (eq. 5-6), centred over positions first as pytorch-grad-cam does (uncentred, the first
    component is mostly the mean level). No gradients: the map is the same for every class.

    An eigenvector's sign is arbitrary (pytorch-grad-cam keeps whatever the SVD gives, so its
    map may be the complement); here it is the one whose map agrees with the positive part of
    the activations (not their plain mean: before a ReLU, negative channels would flip it).
    Activations that hardly vary over positions give an all-zero map (flagged flat), not their
    rounding noise stretched to full contrast.
    """
    acts = ctx.activations().float()  # (N, C, h, w); SVD needs fp32
    n, c, h, w = acts.shape
    positions = acts.reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
    centred = positions - positions.mean(dim=1, keepdim=True)
    # a sample with NaN activations (a noisy copy the model fails on) gets a NaN map, which
    # the caller reports as such, not an SVD error
    finite = torch.isfinite(centred).flatten(1).all(dim=1)
    centred = torch.where(finite[:, None, None], centred, torch.zeros((), device=centred.device))
    svd = torch.linalg.svd(centred, full_matrices=False)
    projection = torch.einsum("npc,nc->np", centred, svd.Vh[:, 0, :])
    active = positions.clamp(min=0).mean(dim=2)
    agreement = (
        (projection - projection.mean(1, keepdim=True)) * (active - active.mean(1, keepdim=True))
    ).sum(dim=1)
    sign = torch.where(agreement < 0, -1.0, 1.0)
    varies = svd.S[:, 0] > 1e-5 * positions.flatten(1).norm(dim=1)  # more than rounding noise
    keep = torch.where(finite, sign * varies, torch.full_like(sign, float("nan")))
    maps = (projection * keep[:, None]).reshape(n, h, w)
    return MethodOutput(maps[None].expand(len(ctx.class_ids), n, h, w))
