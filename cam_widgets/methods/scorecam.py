"""Score-CAM: channel weights from the class score of the input masked by each channel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .context import MethodContext
from .registry import MethodOutput, register


@register(
    "scorecam",
    family="cam",
    needs={"layer", "extra_forwards"},
    clip_negative=True,
    title="Score-CAM",
    defaults={"batch_size": None},
    progress_unit="masked copies",
    reference="Wang et al. 2020, Score-CAM (CVPR workshops)",
)
def scorecam(ctx: MethodContext) -> MethodOutput:
    """alpha_k^c = softmax_k(y^c(X * s(Up(A^k)))), s = min-max to [0, 1] (eq. 6-8);
    L^c = ReLU(sum_k alpha_k^c A^k). The masked inputs run in batches under the memory budget.

    A constant channel (a dead ReLU's zeros) has no min-max normalisation: its mask is zero,
    and every such channel masks the image to the same blank input, scored by one forward
    (751 of 1280 channels at EfficientNet-Lite0's last layer on ``chelsea``: 2.4x fewer).
    """
    acts, inputs = ctx.activations(), ctx.inputs()
    n, channels = acts.shape[:2]
    # decided on A itself: upsampling a constant map can leave float noise for min-max to blow up
    live = acts.amax(dim=(2, 3)) > acts.amin(dim=(2, 3))  # (n, channels)
    masks = F.interpolate(acts, size=ctx.input_size, mode="bilinear", align_corners=False)
    lo = masks.amin(dim=(2, 3), keepdim=True)
    span = masks.amax(dim=(2, 3), keepdim=True) - lo
    masks = (masks - lo) / torch.where(span > 0, span, torch.ones_like(span))
    batch = ctx.engine.batch_size_for(per_sample_factor=1.0, requested=ctx.param("batch_size"))
    class_ids = ctx.class_ids.to(acts.device)
    scores = torch.empty((ctx.num_classes, n, channels), device=acts.device)
    live_channels = [live[image].nonzero().flatten() for image in range(n)]
    any_constant = not bool(live.all())  # one wait for the device, not two
    total, done = sum(int(c.numel()) for c in live_channels) + any_constant, 0
    if ctx.progress is not None:
        ctx.progress(0, total)  # started: a progress bar at once, not after the first batch
    if any_constant:
        blank = ctx.engine.scores(torch.zeros_like(inputs[:1]))[0, class_ids].float()
        scores[:] = blank[:, None, None]
        done += 1
        if ctx.progress is not None:
            ctx.progress(done, total)
    for image, kept in enumerate(live_channels):
        for start in range(0, kept.numel(), batch):
            chosen = kept[start : start + batch]
            chunk = masks[image, chosen, None] * inputs[image][None]
            logits = ctx.engine.scores(chunk)
            scores[:, image, chosen] = logits[:, class_ids].T.float()
            done += chunk.shape[0]
            if ctx.progress is not None:
                ctx.progress(done, total)
    weights = torch.softmax(scores, dim=-1)
    return MethodOutput(torch.einsum("knc,nchw->knhw", weights, acts))
