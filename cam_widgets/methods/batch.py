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

from collections.abc import Sequence

import torch

from ..engine import Capture, Engine, PerImageCapture
from ..engine.passes import ForwardPass, RootNotReachedError
from .context import MethodContext
from .registry import MethodOutput, MethodSpec

#: Needs through which a class enters only via gradients: batched with one class per image.
PER_IMAGE_NEEDS = frozenset({"layer", "gradients", "input_gradients", "guided"})
#: Needs that read the input's gradients: such a batch keeps its graph from the input.
READS_INPUT = frozenset({"input_gradients", "guided"})


def batch_raw_maps(
    engine: Engine,
    inputs: torch.Tensor,
    class_ids: Sequence[int] | None,
    specs: Sequence[MethodSpec],
    layer: str | None,
    method_params: dict | None = None,
) -> tuple[dict[str, MethodOutput], torch.Tensor, list[int], list[int]]:
    """(outputs {name: MethodOutput with K=1, row n for image n's class}, probabilities
    (N, classes), top1 [int], class ids [int]) of one batch. ``class_ids``: one per image, or None for each image's top class;
    ``method_params``: {method name: its parameters}. Run it under ``engine.exclusive()``
    so that the batch's passes and backwards are one step."""
    method_params = method_params or {}
    per_image = [s for s in specs if s.needs <= PER_IMAGE_NEEDS]
    grouped = [s for s in specs if s not in per_image]
    forward = None
    if per_image:
        layers = [layer] if any(s.needs_layer for s in per_image) else []
        guided = any("guided" in s.needs for s in per_image)
        forward = _forward(
            engine,
            inputs,
            layers,
            guided,
            rooted=bool(layers) and not any(s.needs & READS_INPUT for s in per_image),
        )
        logits = forward.logits.detach()
    else:
        logits = engine.scores(inputs)
    probs = torch.softmax(logits.float(), dim=1)
    top1 = [int(c) for c in probs.argmax(dim=1).tolist()]
    ids = list(top1) if class_ids is None else [int(c) for c in class_ids]
    ids_t = torch.tensor(ids, dtype=torch.long)
    outputs: dict[str, MethodOutput] = {}
    if forward is not None:  # (the per-image methods' forward)
        per_image_capture = PerImageCapture(forward, ids_t)
        for spec in per_image:
            context = MethodContext(
                engine,
                per_image_capture,
                ids_t[:1],
                layer if spec.needs_layer else None,
                method_params.get(spec.name),
            )
            outputs[spec.name] = spec.fn(context)
    if grouped:
        rows_of: dict[str, list] = {s.name: [None] * len(ids) for s in grouped}
        layers = [layer] if layer is not None and any(s.needs_layer for s in grouped) else []
        for cls in sorted(set(ids)):
            rows = [n for n, c in enumerate(ids) if c == cls]
            capture = Capture("", engine.run(inputs[rows], layers, record_relus=engine.has_relu))
            for spec in grouped:
                context = MethodContext(
                    engine,
                    capture,
                    torch.tensor([cls]),
                    layer if spec.needs_layer else None,
                    method_params.get(spec.name),
                )
                output = spec.fn(context)
                for k, n in enumerate(rows):
                    rows_of[spec.name][n] = (
                        output.maps[:, k],
                        None if output.attribution is None else output.attribution[:, k],
                    )
        for name, rows_out in rows_of.items():
            attributions = [a for _, a in rows_out]
            outputs[name] = MethodOutput(
                torch.stack([m for m, _ in rows_out], dim=1),
                None if attributions[0] is None else torch.stack(attributions, dim=1),
            )
    return outputs, probs, top1, ids


def rooted_batch(specs: Sequence[MethodSpec]) -> bool:
    """Whether a batch of these methods keeps no graph below their layer (none reads input
    gradients): about half the memory a sample of a graph from the input takes."""
    return all(s.needs_layer and not s.needs & READS_INPUT for s in specs)


def _forward(engine: Engine, inputs: torch.Tensor, layers: list, guided: bool, rooted: bool) -> ForwardPass:
    """The batch's forward, its graph from ``layers[0]`` when ``rooted`` (nothing below it is
    read), else from the input; a model whose forward skips that layer gets the whole graph."""
    if rooted:
        try:
            return engine.run(inputs, layers, root=layers[0])
        except RootNotReachedError:
            pass
    return engine.run(inputs, layers, record_relus=guided and engine.has_relu)
