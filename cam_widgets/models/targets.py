"""Targets that are functions of the logits, as pytorch-grad-cam and captum users write them:
``lambda logits: logits[..., 282] - logits[..., 285]`` (one score per image from the
(N, classes) logits), and the contrast "A vs B" the widgets offer."""

from __future__ import annotations

import re
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


#: What separates the two classes of a contrast typed as text: "tiger cat vs Egyptian cat".
CONTRAST_SEPARATOR = re.compile(r"\s+vs\.?\s+", re.IGNORECASE)


def parse_target(text: Any):
    """A class typed as text (a widget's class box, ``Explorer(target=...)``): "282 tiger cat"
    -> 282 (the id the class menus put first), "tiger cat" -> "tiger cat", "282 vs 285" or
    "tiger cat vs Egyptian cat" -> a :class:`Contrast`, blank -> None (the top class). Names
    are resolved later, against the model's labels, which give the errors."""
    text = str(text).strip()
    if not text:
        return None
    sides = CONTRAST_SEPARATOR.split(text)
    if len(sides) == 2 and all(side.strip() for side in sides):
        return Contrast(_class_query(sides[0]), _class_query(sides[1]))
    return _class_query(text)


def _class_query(text: str) -> ClassQuery:
    text = text.strip()
    head = text.split()[0]
    return int(head) if head.isdigit() else text


def resolve_target(target: Any, labels: Sequence[str]) -> int | Contrast | None:
    """A widget's target as ids of ``labels``, resolved once: a class id or name to its id, a
    :class:`Contrast` (or its text, "A vs B") to two ids; None (the top class) stays None."""
    if isinstance(target, str):
        target = parse_target(target)
    if target is None:
        return None
    if isinstance(target, Contrast):
        return Contrast(resolve_class(target.a, labels), resolve_class(target.b, labels))
    return resolve_class(target, labels)


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
