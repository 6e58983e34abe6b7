"""One batch of :func:`~cam_widgets.metrics.evaluate.evaluate`: maps of every method in
batched passes, their metric values, and the records of the batch's readable images.

Maps are computed the way :meth:`Explainer.explain` computes them (same method functions,
same upsampling and normalisation), on the batched path the Explainer's ``explain_batch``
uses too (:meth:`Explainer.batch_raw_maps`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InvalidImageError, InvalidParameterError
from .faithfulness import deletion_insertion, drop_and_increase
from .localization import energy_pointing_game, iou_at_thresholds, pointing_game
from .plan import Plan
from .records import finite


def score_batch(explainer, plan: Plan, indices, ids, rows, batch, labels, boxes, done) -> dict:
    """Records {(row, method): record} of the readable ``rows`` of a batch, for the pairs not in ``done``."""
    size = tuple(explainer.spec.input_size)
    if tuple(batch.shape[1:]) != (3,) + size:
        raise InvalidImageError(
            f"image {ids[rows[0]]!r}: the dataset gave a tensor of shape {tuple(batch.shape[1:])}, "
            f"expected (3, {size[0]}, {size[1]}) (the model input size, preprocessed)"
        )
    inputs = batch.to(explainer.device, non_blocking=True)
    given = list(labels)
    if plan.target == "label":
        missing = [ids[r] for r, c in zip(rows, labels) if c is None]
        if missing:
            raise InvalidParameterError(
                f"target='label' but image {missing[0]!r} has no class label; give labels or use target='top1'"
            )
        labels = [explainer.resolve_class(int(c)) for c in labels]
    wanted = [s for s in plan.specs if any((ids[r], s.name) not in done for r in rows)]
    maps, probs, top1, class_ids = explain_batch(
        explainer, inputs, labels if plan.target == "label" else None, wanted, plan.layer, plan.method_params
    )
    out = {}
    for spec in wanted:
        values = _metrics(explainer, plan, inputs, maps[spec.name], class_ids, probs, boxes)
        for n, row in enumerate(rows):
            if (ids[row], spec.name) in done:
                continue
            label = given[n]
            record = dict(
                image=ids[row],
                index=indices[row],
                method=spec.name,
                layer=plan.layer if spec.needs_layer else None,
                target=plan.target,
                class_id=class_ids[n],
                label=explainer.labels[class_ids[n]],
                probability=finite(probs[n, class_ids[n]]),
                top1=top1[n],
                label_id=None if label is None else int(label),
                correct=None if label is None else bool(top1[n] == int(label)),
            )
            record.update({k: finite(v[n]) for k, v in values.items()})
            out[(row, spec.name)] = record
    return out


def explain_batch(
    explainer,
    inputs: torch.Tensor,
    class_ids: Sequence[int] | None,
    specs,
    layer: str | None,
    method_params: dict | None = None,
):
    """Display maps of several methods for a batch, as :meth:`Explainer.explain` makes them.

    Args:
        inputs: (N, 3, H, W) preprocessed images on the explainer's device.
        class_ids: one class per image, or None for each image's top-1 class.
        specs: MethodSpecs (``get_method(name)``).
        layer: the resolved layer for the methods that need one.

    Returns:
        (maps {name: (N, H, W) float32 in [0, 1]}, probabilities (N, classes) float32 numpy,
        top1 [int], class_ids [int]).
    """
    from ..explainer import maps_to_host
    from ..render import normalize_map

    # the batch's passes and backwards as one step under the model's lock: one graph alive
    outputs, probs, top1, ids = explainer.batch_raw_maps(inputs, class_ids, specs, layer, method_params)
    size = tuple(inputs.shape[-2:])
    heat = {}
    for spec in specs:
        _, full = maps_to_host(
            outputs[spec.name].maps[0], size, with_raw=False, clip_negative=spec.clip_negative
        )
        heat[spec.name] = normalize_map(full, clip_negative=spec.clip_negative)[0]
    return heat, probs.cpu().numpy(), top1, ids


def _metrics(
    explainer, plan: Plan, inputs: torch.Tensor, heat: np.ndarray, class_ids, probs, boxes
) -> dict[str, list]:
    """Per-image values of every metric of the plan for one method's (N, H, W) maps."""
    n = len(heat)
    values: dict[str, list] = {}
    with_box = [i for i in range(n) if boxes[i]]
    options = plan.metric_params
    for name in plan.metrics:
        if name in ("pointing_game", "energy", "iou"):
            column = [None] * n
            if with_box:
                maps, targets = heat[with_box], [list(boxes[i]) for i in with_box]
                if name == "pointing_game":
                    found = pointing_game(maps, targets, **options.get(name, {}))
                elif name == "energy":
                    found = energy_pointing_game(maps, targets)
                else:
                    opts = dict(options.get(name, {}))
                    delta = float(opts.pop("delta", 0.5))
                    found = iou_at_thresholds(maps, targets, deltas=(delta,), **opts)[delta]
                for i, v in zip(with_box, found):
                    column[i] = v
            values[name] = column
        elif name == "average_drop":
            maps = torch.from_numpy(heat).float().to(inputs.device)
            with torch.no_grad():
                masked = torch.softmax(explainer.scores(inputs * maps[:, None]).float(), dim=1)
            rows = torch.arange(n)
            targets = torch.tensor(class_ids, dtype=torch.long)
            y = torch.from_numpy(probs)[rows, targets].double()
            # the N probabilities read on the device: not the whole (N, classes) softmax copied
            o = masked[rows.to(masked.device), targets.to(masked.device)].double().cpu()
            drop, increase = drop_and_increase(y, o)
            values["average_drop"] = drop.tolist()
            values["increase_in_confidence"] = increase.tolist()
        elif name == "deletion_insertion":
            dels, ins = [], []
            for i in range(n):
                curve = deletion_insertion(
                    explainer,
                    inputs[i : i + 1],
                    heat[i],
                    class_ids[i],
                    batch_size=plan.batch_size * 4,
                    **options.get(name, {}),
                )
                dels.append(curve["deletion_auc"])
                ins.append(curve["insertion_auc"])
            values["deletion_auc"], values["insertion_auc"] = dels, ins
    return values
