"""Score-CAM: channel weights from the class score of the input masked by each channel."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .context import MethodContext
from .registry import MethodOutput, register


@register("scorecam", family="cam", needs={"layer", "extra_forwards"}, clip_negative=True,
          title="Score-CAM", defaults={"batch_size": None},
          reference="Wang et al. 2020, Score-CAM (CVPR workshops)")
def scorecam(ctx: MethodContext) -> MethodOutput:
    """alpha_k^c = softmax_k(y^c(X * s(Up(A^k)))), s = min-max to [0, 1] (eq. 6-8);
    L^c = ReLU(sum_k alpha_k^c A^k). The masked inputs run in batches under the memory budget.
    """
    acts, inputs = ctx.activations(), ctx.inputs()
    n, channels = acts.shape[:2]
    masks = F.interpolate(acts, size=ctx.input_size, mode="bilinear", align_corners=False)
    lo = masks.amin(dim=(2, 3), keepdim=True)
    span = masks.amax(dim=(2, 3), keepdim=True) - lo
    masks = torch.where(span > 0, (masks - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                        torch.zeros_like(masks))
    batch = int(ctx.param("batch_size") or ctx.engine.batch_size_for(per_sample_factor=1.0))
    class_ids = ctx.class_ids.to(acts.device)
    scores = torch.empty((ctx.num_classes, n, channels), device=acts.device)
    total, done = n * channels, 0
    for image in range(n):
        for start in range(0, channels, batch):
            chunk = masks[image, start:start + batch, None] * inputs[image][None]
            logits = ctx.engine.scores(chunk)
            scores[:, image, start:start + chunk.shape[0]] = logits[:, class_ids].T.float()
            done += chunk.shape[0]
            if ctx.progress is not None:
                ctx.progress(done, total)
    weights = torch.softmax(scores, dim=-1)
    return MethodOutput(torch.einsum("knc,nchw->knhw", weights, acts))
