"""Targets that are functions of the logits, as pytorch-grad-cam and captum users write them:
``lambda logits: logits[..., 282] - logits[..., 285]`` (one score per image from the
(N, classes) logits), and the contrast "A vs B" the widgets offer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .labels import resolve_class

ClassQuery = int | str


@dataclass(frozen=True)
class Contrast:
    """Class ``a`` against class ``b``: the score ``logit[a] - logit[b]`` (what makes the
    model say A rather than B). ``a`` and ``b`` are ids or names."""

    a: ClassQuery
    b: ClassQuery

    def resolved(self, labels: Sequence[str]) -> ResolvedContrast:
        return ResolvedContrast(resolve_class(self.a, labels), resolve_class(self.b, labels), labels)


class ResolvedContrast:
    """A :class:`Contrast` whose classes are ids of one model's labels."""

    def __init__(self, a: int, b: int, labels: Sequence[str]) -> None:
        self.class_id, self.other = a, b
        self.label = f"{labels[a]} vs {labels[b]}"

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[..., self.class_id] - logits[..., self.other]


def contrast(a: ClassQuery, b: ClassQuery) -> Contrast:
    """The target "a rather than b": ``logit[a] - logit[b]`` (ids or names)."""
    return Contrast(a, b)


def is_score_target(target: Any) -> bool:
    """A function of the logits (or a Contrast), as opposed to a class id, a name or None."""
    return isinstance(target, Contrast) or (callable(target) and not isinstance(target, (str, type)))


def score_label(score: Callable) -> str:
    """How an Explanation names a function target: its ``label``, else its name."""
    label = getattr(score, "label", None)
    if isinstance(label, str) and label:
        return label
    name = getattr(score, "__name__", type(score).__name__)
    return "score function" if name == "<lambda>" else f"score {name}"
