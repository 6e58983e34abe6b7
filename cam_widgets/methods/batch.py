"""Raw maps of several methods for a batch of images, one target class per image.

The batched path that :meth:`Explainer.explain_batch` and the metrics share:

- gradient methods (``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam``, ``hirescam``,
  ``vanilla``, ``guided_backprop``, ``guided_gradcam``...) and ``eigencam`` (no class at
  all): one forward and one backward for the whole batch, each image's gradient taken for
  its own class (:class:`~cam_widgets.engine.capture.PerImageCapture`);
- the others (``cam``, ``scorecam``, ``integrated_gradients``...): one forward per distinct
  class of the batch, over the images having that class.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..engine import Capture, Engine, PerImageCapture
from .context import MethodContext
from .registry import MethodSpec

#: Needs through which a class enters only via gradients: batched with one class per image.
PER_IMAGE_NEEDS = frozenset({"layer", "gradients", "input_gradients", "guided"})


def batch_raw_maps(engine: Engine, inputs: torch.Tensor, class_ids: Optional[Sequence[int]],
                   specs: Sequence[MethodSpec], layer: Optional[str],
                   method_params: Optional[dict] = None):
    """(raw maps {name: (N, h, w)}, probabilities (N, classes), top1 [int], class ids [int])
    of one batch. ``class_ids``: one per image, or None for each image's top class;
    ``method_params``: {method name: its parameters}. Run it under ``engine.exclusive()``
    so that the batch's passes and backwards are one step."""
    method_params = method_params or {}
    per_image = [s for s in specs if s.needs <= PER_IMAGE_NEEDS]
    grouped = [s for s in specs if s not in per_image]
    forward = None
    if per_image:
        layers = [layer] if any(s.needs_layer for s in per_image) else []
        guided = any("guided" in s.needs for s in per_image)
        forward = engine.run(inputs, layers, record_relus=guided and engine.has_relu)
        logits = forward.logits.detach()
    else:
        logits = engine.scores(inputs)
    probs = torch.softmax(logits.float(), dim=1)
    top1 = [int(c) for c in probs.argmax(dim=1).tolist()]
    ids = list(top1) if class_ids is None else [int(c) for c in class_ids]
    ids_t = torch.tensor(ids, dtype=torch.long)
    raw: dict[str, torch.Tensor] = {}
    if per_image:
        capture = PerImageCapture(forward, ids_t)
        for spec in per_image:
            context = MethodContext(engine, capture, ids_t[:1], layer if spec.needs_layer else None,
                                    method_params.get(spec.name))
            raw[spec.name] = spec.fn(context).maps[0]
    if grouped:
        result: dict[str, list] = {s.name: [None] * len(ids) for s in grouped}
        layers = [layer] if layer is not None and any(s.needs_layer for s in grouped) else []
        for cls in sorted(set(ids)):
            rows = [n for n, c in enumerate(ids) if c == cls]
            capture = Capture("", engine.run(inputs[rows], layers, record_relus=engine.has_relu))
            for spec in grouped:
                context = MethodContext(engine, capture, torch.tensor([cls]),
                                        layer if spec.needs_layer else None,
                                        method_params.get(spec.name))
                maps = spec.fn(context).maps[0]
                for k, n in enumerate(rows):
                    result[spec.name][n] = maps[k]
        raw.update({name: torch.stack(v) for name, v in result.items()})
    return raw, probs, top1, ids
