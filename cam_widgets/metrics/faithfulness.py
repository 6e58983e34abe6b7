"""Faithfulness scores: does the model still believe its class on what the map keeps?

Both metrics run the explainer's model on perturbed copies of the preprocessed input, in
batched forwards without autograd on the explainer's device (``Explainer.scores``); only the
final class probabilities come back to the CPU.

- :func:`average_drop_increase`: Chattopadhay et al. 2018 (Grad-CAM++, sec. 6.1.1).
- :func:`deletion_insertion`: Petsiuk et al. 2018 (RISE, sec. 4.1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidImageError, InvalidParameterError, Received, expected
from .localization import as_maps

__all__ = ["average_drop_increase", "deletion_insertion", "blur_baseline", "trapezoid_auc", "BASELINES"]

BASELINES = ("blur", "zero")


# --------------------------------------------------------------------------- helpers
def _tensor_of(explainer, image: Any) -> torch.Tensor:
    """(1, 3, H, W) float tensor of a PreparedImage (or anything ``explainer.prepare`` takes)."""
    prepared = image if hasattr(image, "tensor") and hasattr(image, "key") else explainer.prepare(image)
    return prepared.tensor.float()


def _check_batch_size(batch_size: int | None, explainer) -> int:
    if batch_size is None:
        return explainer.batch_size()
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise InvalidParameterError(expected("batch_size", "an int >= 1", batch_size))
    return int(batch_size)


def _softmax(explainer, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N, classes) softmax of the model on ``inputs``, in chunks, on the explainer's device."""
    with torch.no_grad():
        return torch.cat(
            [
                torch.softmax(explainer.scores(inputs[s : s + batch_size]).float(), dim=1)
                for s in range(0, len(inputs), batch_size)
            ]
        )


def _probabilities(explainer, inputs: torch.Tensor, class_id: int, batch_size: int) -> torch.Tensor:
    """softmax(model(inputs))[:, class_id] in chunks of ``batch_size``, on the explainer's device."""
    with torch.no_grad():
        return torch.cat(
            [
                torch.softmax(explainer.scores(inputs[s : s + batch_size]).float(), dim=1)[:, class_id]
                for s in range(0, len(inputs), batch_size)
            ]
        )


def _maps_for(heatmaps: Any, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    maps, _ = as_maps(heatmaps)
    if maps.shape[1:] != tuple(size):
        raise InvalidParameterError(
            expected(
                "heatmaps",
                f"the model input size {tuple(size)}",
                Received(f"size {maps.shape[1:]}"),
                "use Explanation.heatmap, which is already upsampled",
            )
        )
    return torch.from_numpy(maps).float().to(device)


def blur_baseline(tensor: torch.Tensor, kernel: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """RISE's insertion canvas: a Gaussian blur (kernel 11, sigma 5) of the input, per channel
    (edges replicated, so tiny inputs work and borders do not darken)."""
    radius = kernel // 2
    x = torch.arange(kernel, dtype=tensor.dtype, device=tensor.device) - radius
    g = torch.exp(-x.pow(2) / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, 1, kernel).repeat(tensor.shape[1], 1, 1, 1)
    padded = F.pad(tensor, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, g, groups=tensor.shape[1])
    return F.conv2d(rows, g.transpose(2, 3), groups=tensor.shape[1])


# --------------------------------------------------------------------------- Average Drop
def average_drop_increase(
    explainer,
    images: Any | Sequence[Any],
    heatmaps: Any,
    class_ids: int | Sequence[int],
    batch_size: int | None = None,
    space: str = "tensor",
) -> dict:
    """Average Drop % and Increase in Confidence % (Grad-CAM++, eq. 21-22).

    E_c = I * L_c (the image times its [0, 1] map); Y_c and O_c are the softmax scores of class
    c on I and on E_c. Average Drop = 100/N sum_i max(0, Y_c - O_c) / Y_c; Increase in
    Confidence = 100/N sum_i 1[Y_c < O_c]. The product is taken in the preprocessed input
    (``space="tensor"``: masked pixels become the dataset mean, as pytorch-grad-cam's
    ``CamMultImageConfidenceChange`` does) or on the RGB image before preprocessing
    (``space="pixel"``: masked pixels become black; needs images prepared from pixels).

    Args:
        images: one or a list of PreparedImage (or anything ``explainer.prepare`` takes).
        heatmaps: (N, H, W) maps at the input size (or Explanations), one per image.
        class_ids: one class id per image (or one int for all).

    Returns:
        dict(average_drop, increase_in_confidence, per_image=[dict(class_id, full, masked,
        drop, increase)]) with percentages and probabilities as floats.
    """
    if space not in ("tensor", "pixel"):
        raise InvalidParameterError(expected("space", "'tensor' or 'pixel'", space))
    prepared, ids = _images_and_classes(explainer, images, class_ids)
    device, size = explainer.device, _check_batch_size(batch_size, explainer)
    unique = {p.key: p for p in prepared}  # repeated images (several maps of one image) run once
    row = {key: i for i, key in enumerate(unique)}
    full = torch.cat([p.tensor.float() for p in unique.values()]).to(device)
    full_probs = _softmax(explainer, full, size)[[row[p.key] for p in prepared]]
    maps = _maps_for(heatmaps, full.shape[-2:], device)
    if len(maps) != len(prepared):
        raise InvalidParameterError(
            expected(
                "heatmaps", f"one heatmap per image ({len(prepared)} images)", Received(f"{len(maps)} maps")
            )
        )
    if space == "pixel":
        masked = _masked_inputs(explainer, prepared, maps)
    else:
        masked = full[[row[p.key] for p in prepared]] * maps[:, None]
    targets = torch.tensor(ids, dtype=torch.long, device=full_probs.device)
    y = full_probs.gather(1, targets[:, None])[:, 0].double().cpu()
    o = _softmax(explainer, masked, size).gather(1, targets[:, None])[:, 0].double().cpu()
    drop, increase = drop_and_increase(y, o)
    per_image = [
        dict(class_id=c, full=float(a), masked=float(b), drop=float(d), increase=bool(i))
        for c, a, b, d, i in zip(ids, y, o, drop, increase)
    ]
    return dict(
        average_drop=float(drop.mean()), increase_in_confidence=float(increase.mean()), per_image=per_image
    )


def drop_and_increase(full: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, in percent: the drop max(0, y - o) / y and whether confidence increased (y < o),
    from the class probabilities on the full (y) and the masked (o) image (float64)."""
    drop = (full - masked).clamp(min=0) / full.clamp(min=torch.finfo(torch.float64).tiny) * 100.0
    return drop, (full < masked).double() * 100.0


def _images_and_classes(explainer, images, class_ids) -> tuple[list, list[int]]:
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    prepared = [i if hasattr(i, "tensor") and hasattr(i, "key") else explainer.prepare(i) for i in items]
    ids = [class_ids] * len(prepared) if isinstance(class_ids, Integral) else list(class_ids)
    if len(ids) != len(prepared):
        raise InvalidParameterError(
            expected(
                "class_ids",
                f"one class id per image ({len(prepared)} images)",
                Received(f"{len(ids)} class ids"),
            )
        )
    return prepared, [explainer.resolve_class(int(c)) for c in ids]


def _masked_inputs(explainer, prepared, maps: torch.Tensor) -> torch.Tensor:
    out = []
    for p, m in zip(prepared, maps.cpu().numpy()):
        if p.rgb is None:
            raise InvalidImageError(
                expected(
                    "image",
                    "with space='pixel', images prepared from pixels",
                    Received("a raw tensor"),
                    "use space='tensor'",
                )
            )
        rgb = np.clip(np.rint(p.rgb.astype(np.float64) * m[..., None]), 0, 255).astype(np.uint8)
        out.append(explainer.spec.preprocess(rgb).float())
    return torch.stack(out).to(maps.device)


# --------------------------------------------------------------------------- deletion / insertion
def deletion_insertion(
    explainer,
    image: Any,
    heatmap: Any,
    class_id: int,
    steps: int = 50,
    baseline: str | tuple[str, str] = "blur",
    batch_size: int | None = None,
) -> dict:
    """RISE deletion and insertion curves with their AUC (Petsiuk et al. 2018, sec. 4.1).

    Pixels are ranked by saliency (highest first, ties by raster order); at step k of
    ``steps`` the first min(k * ceil(HW / steps), HW) of them are removed (deletion: replaced
    by the baseline) or inserted (insertion: copied from the image onto the baseline), and
    the softmax probability of ``class_id`` is recorded, k = 0..steps. ``baseline`` is
    ``"blur"`` (Gaussian, kernel 11, sigma 5: RISE's insertion canvas), ``"zero"`` (zeros of
    the preprocessed input: RISE's deletion canvas), or a (deletion, insertion) pair such as
    ``("zero", "blur")`` for the paper's setup. AUC is the trapezoid over the fraction axis.

    Returns:
        dict(fractions, deletion_curve, insertion_curve (numpy float64 arrays of steps + 1),
        deletion_auc, insertion_auc (floats)).
    """
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
        raise InvalidParameterError(expected("steps", "an int >= 1", steps))
    kinds = (baseline, baseline) if isinstance(baseline, str) else tuple(baseline)
    if len(kinds) != 2 or any(k not in BASELINES for k in kinds):
        raise InvalidParameterError(
            expected("baseline", "'blur', 'zero' or a (deletion, insertion) pair of them", baseline)
        )
    device = explainer.device
    x = _tensor_of(explainer, image).to(device)
    saliency = _maps_for(heatmap, x.shape[-2:], device)
    if len(saliency) != 1:
        raise InvalidParameterError(
            expected("heatmap", "one (H, W) heatmap", Received(f"{len(saliency)} maps"))
        )
    class_id = explainer.resolve_class(int(class_id))
    pixels = x.shape[-1] * x.shape[-2]
    per_step = math.ceil(pixels / steps)
    counts = torch.clamp(torch.arange(steps + 1, device=device) * per_step, max=pixels)
    order = torch.argsort(saliency.flatten(), descending=True, stable=True)
    rank = torch.empty(pixels, dtype=torch.long, device=device)
    rank[order] = torch.arange(pixels, device=device)
    rank = rank.view(1, 1, *x.shape[-2:])
    size = _check_batch_size(batch_size, explainer)
    bases = {k: (blur_baseline(x) if k == "blur" else torch.zeros_like(x)) for k in set(kinds)}
    deletion = _curve(explainer, x, bases[kinds[0]], rank, counts, class_id, size)
    insertion = _curve(explainer, bases[kinds[1]], x, rank, counts, class_id, size)
    fractions = (counts.double() / pixels).cpu().numpy()
    return dict(
        fractions=fractions,
        deletion_curve=deletion,
        insertion_curve=insertion,
        deletion_auc=trapezoid_auc(deletion, fractions),
        insertion_auc=trapezoid_auc(insertion, fractions),
    )


def trapezoid_auc(values: np.ndarray, fractions: np.ndarray) -> float:
    """Area under ``values`` over ``fractions`` by the trapezoid rule."""
    return float(np.sum((values[1:] + values[:-1]) * np.diff(fractions)) / 2.0)


def _curve(
    explainer,
    start: torch.Tensor,
    end: torch.Tensor,
    rank: torch.Tensor,
    counts: torch.Tensor,
    class_id: int,
    batch_size: int,
) -> np.ndarray:
    """Probabilities along start -> end, switching the top-ranked counts[k] pixels at step k.

    Deletion goes image -> baseline, insertion baseline -> image; each chunk of steps is
    built on the device and run as one batched forward.
    """
    out = []
    with torch.no_grad():
        for lo in range(0, len(counts), batch_size):
            switched = rank < counts[lo : lo + batch_size].view(-1, 1, 1, 1)  # (k, 1, H, W)
            out.append(_probabilities(explainer, torch.where(switched, end, start), class_id, batch_size))
    return torch.cat(out).double().cpu().numpy()
