"""Sanity check by model-parameter randomization (Adebayo et al. 2018, "Sanity Checks for
Saliency Maps", sec. 3.1: cascading randomization from the top layer down).

The explainer's model is never touched: a deep copy is randomized one step at a time, from
the output backwards, and after each step the same method recomputes the map for the same
class and layer. A map that stays similar to the original while the weights it should depend
on are destroyed fails the check.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidParameterError, close_matches, expected
from ..explainer import Explainer

__all__ = ["randomization_sanity", "spearman", "pearson", "randomization_steps"]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (NaN when either is constant)."""
    x, y = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation: Pearson of the ranks, ties given their average rank."""
    from scipy.stats import rankdata

    return pearson(rankdata(np.ravel(a)), rankdata(np.ravel(b)))


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two [0, 1] maps (window 7, smaller on maps under 7 px; NaN under 3 px)."""
    from skimage.metrics import structural_similarity

    side = min(a.shape)
    if side < 3:
        return float("nan")
    window = min(7, side if side % 2 else side - 1)
    return float(
        structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=1.0, win_size=window)
    )


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def randomization_steps(model: nn.Module, cascade: None | str | Sequence[str] = None) -> list[str]:
    """Names randomized step by step, output first (the model's definition order, reversed).

    ``None``: every module holding parameters of its own, one per step. ``"blocks"``: the
    top-level children, with Sequential/ModuleList children expanded one level (for
    EfficientNet-Lite0: classifier.1, features.8, ..., features.0). A list of names: those
    modules, in the order given (each randomizes every parameter under it).
    """
    modules = dict(model.named_modules())
    if cascade is None:
        return [n for n, m in reversed(list(modules.items())) if n and _has_params(m)]
    if cascade == "blocks":
        names = []
        for name, child in model.named_children():
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                names += [
                    f"{name}.{n}" for n, c in child.named_children() if any(True for _ in c.parameters())
                ]
            elif any(True for _ in child.parameters()):
                names.append(name)
        return names[::-1]
    if isinstance(cascade, str) or not isinstance(cascade, Sequence) or not cascade:
        raise InvalidParameterError(expected("cascade", "None, 'blocks' or a list of module names", cascade))
    for name in cascade:
        if name not in modules or not any(True for _ in modules[name].parameters()):
            raise InvalidParameterError(
                expected(
                    "cascade",
                    "names of modules with parameters",
                    name,
                    close_matches(str(name), [n for n, m in modules.items() if n and _has_params(m)]),
                    problem=f"Cannot randomize {name!r}",
                )
            )
    return list(cascade)


def _randomize(module: nn.Module, seed: int) -> None:
    """Re-initialize every parameter under ``module`` (``reset_parameters`` where a module has
    it, which also resets BatchNorm statistics; a N(0, 0.02) draw otherwise), seeded and without
    touching the global random state."""
    devices = [p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for sub in module.modules():
            if not _has_params(sub):
                continue
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
            else:
                for p in sub.parameters(recurse=False):
                    p.normal_(0.0, 0.02)


def randomization_sanity(
    explainer,
    image: Any,
    method: str = "gradcam",
    class_id=None,
    layer: str | None = None,
    cascade: None | str | Sequence[str] = None,
    *,
    independent: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
    **params,
) -> list[dict]:
    """Cascading model-parameter randomization: similarity to the original map per step.

    Args:
        explainer: the Explainer whose model is checked (never modified: a deep copy is
            randomized and wrapped as ``Explainer(copy, preprocess=..., labels=...,
            input_size=...)`` from the original's spec, on the same device).
        image: a PreparedImage or anything ``explainer.prepare`` takes.
        method, class_id, layer, params: as for ``explain``; the class (default: the top class
            of the original model) and layer stay fixed for every step.
        cascade: which modules each step randomizes (see :func:`randomization_steps`).
        independent: randomize only the step's module on a fresh copy (Adebayo's
            "independent" variant) instead of accumulating from the top.
        seed: step k uses seed ``seed + k``.
        max_steps: stop after this many steps.

    Returns:
        One dict per step, starting with step 0 (the original model): step, randomized (names
        randomized so far, or at this step when independent), spearman, pearson, ssim (of the
        [0, 1] maps), flat (the map came out flat) and heatmap.
    """
    prepared = image if hasattr(image, "tensor") and hasattr(image, "key") else explainer.prepare(image)
    original = explainer.explain(prepared, method, class_id, layer, **params)
    spec = explainer.spec
    names = randomization_steps(explainer.model, cascade)[:max_steps]
    results = [_row(0, [], original, original)]
    copy_model = None
    done: list[str] = []
    for step, name in enumerate(names, start=1):
        if copy_model is None or independent:
            with explainer.exclusive():  # (no other thread's pass hooking the modules copied)
                copy_model = copy.deepcopy(explainer.model)
            other = Explainer(
                copy_model,
                preprocess=spec.preprocess,
                labels=spec.labels,
                input_size=spec.input_size,
                default_layer=spec.default_layer,
                input_range=spec.input_range,
                device=explainer.device,
            )
        _randomize(dict(copy_model.named_modules())[name], seed + step)
        other.clear_cache()
        done = [name] if independent else done + [name]
        result = other.explain(prepared, method, original.class_id, original.layer, **params)
        results.append(_row(step, done, original, result))
    return results


def _row(step: int, randomized: list[str], original, result) -> dict:
    a, b = original.heatmap, result.heatmap
    return dict(
        step=step,
        randomized=list(randomized),
        spearman=spearman(a, b),
        pearson=pearson(a, b),
        ssim=_ssim(a, b),
        flat=bool(result.status.flat),
        heatmap=b,
    )
