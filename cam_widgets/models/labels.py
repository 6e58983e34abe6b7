"""Class labels: the 1,000 ImageNet names (offline) and class look-up by id or name.

The look-up functions are generic over any label list, so models with their own labels
(a user's fine-tuned classifier) use the same code paths as the ImageNet zoo models.

>>> labels = imagenet_labels()
>>> resolve_class("tiger cat", labels), resolve_class("242", labels)
(282, 242)
"""

from __future__ import annotations

import difflib
import functools
import operator
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cam_widgets.errors import InvalidParameterError, Received, UnknownClassError, expected

__all__ = ["imagenet_labels", "resolve_class", "search_classes", "NUM_IMAGENET_CLASSES"]

NUM_IMAGENET_CLASSES = 1000
_MAX_LISTED = 5
_NUMERIC = re.compile(r"^[+-]?\d+$")
#: Errors are read in the widgets' status line too: plain words, one line.
_EXPECTED = "a class id such as 282 or a class name such as 'tiger cat'"
_SEARCH_HINT = " Hint: type part of a name, e.g. 'cat', and pick from the matches."


#: The names torchvision's weights report in ``meta["categories"]`` (its public API), one per
#: line in class-id order; shipped with the package so that an offline model imports no
#: torchvision (1.5 s and ~160 MB a kernel, on every student's first page).
_IMAGENET_FILE = Path(__file__).with_name("imagenet_classes.txt")


@functools.lru_cache(maxsize=1)
def _imagenet_names() -> tuple[str, ...]:
    names = tuple(_IMAGENET_FILE.read_text(encoding="utf-8").splitlines())
    if len(names) != NUM_IMAGENET_CLASSES:  # (a packaging mistake, not a user's)
        raise RuntimeError(f"{_IMAGENET_FILE} lists {len(names)} classes, not {NUM_IMAGENET_CLASSES}")
    return names


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names in class-id order (a fresh list; no download): the
    names torchvision's weights report (242 is ``"boxer"``, 282 ``"tiger cat"``, 285
    ``"Egyptian cat"``)."""
    return list(_imagenet_names())


def _check_labels(labels: Sequence[str]) -> Sequence[str]:
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise InvalidParameterError(
            expected("labels", "a sequence of class names", labels, "pass spec.labels or imagenet_labels()")
        )
    if len(labels) == 0:
        raise InvalidParameterError(
            expected(
                "labels",
                "at least one class name",
                Received("an empty sequence"),
                "pass spec.labels or imagenet_labels()",
            )
        )
    return labels


def _fmt(ids: Sequence[int], labels: Sequence[str]) -> str:
    shown = ", ".join(f"{labels[i]!r} ({i})" for i in ids[:_MAX_LISTED])
    if len(ids) > _MAX_LISTED:
        shown += f" and {len(ids) - _MAX_LISTED} more"
    return shown


def _check_id(idx: int, labels: Sequence[str]) -> int:
    n = len(labels)
    if not 0 <= idx < n:
        raise UnknownClassError(
            f"Class {idx} is out of range: expected a class id in 0..{n - 1} ({n} classes)." + _SEARCH_HINT
        )
    return idx


def resolve_class(query: object, labels: Sequence[str]) -> int:
    """Turn a class id or a class name into a class id.

    Args:
        query: an ``int`` (or numpy integer) id, a numeric string such as ``"242"``, or a
            name. Names match case-insensitively: an exact match wins, otherwise the query
            must be a substring of exactly one label (``"egyptian"`` -> 285).
        labels: one name per class, in class-id order.

    Raises:
        UnknownClassError: the id is out of range, or the name matches no label or
            several labels (the message lists close matches or the candidates).
        InvalidParameterError: the query is a bool, a float or another type.
    """
    labels = _check_labels(labels)
    if isinstance(query, (bool, np.bool_)) or isinstance(query, (float, np.floating, complex)):
        raise InvalidParameterError(expected("class", _EXPECTED, query))
    if isinstance(query, str):
        text = query.strip()
        if not text:
            raise InvalidParameterError(
                expected("class", _EXPECTED, query, problem="No class given (an empty name)")
            )
        if _NUMERIC.match(text):
            return _check_id(int(text), labels)
        return _resolve_name(text, labels)
    try:
        idx = operator.index(query)  # int, numpy integers, 0-d integer tensors
    except TypeError:
        raise InvalidParameterError(expected("class", _EXPECTED, query)) from None
    return _check_id(int(idx), labels)


def _resolve_name(text: str, labels: Sequence[str]) -> int:
    low = text.lower()
    lowered = [str(label).lower() for label in labels]
    exact = [i for i, name in enumerate(lowered) if name == low]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise UnknownClassError(
            f"Ambiguous class name {text!r}: it names {len(exact)} classes, {_fmt(exact, labels)};"
            f" expected one. Hint: type the class id instead, e.g. {exact[0]}."
        )
    partial = [i for i, name in enumerate(lowered) if low in name]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise UnknownClassError(
            f"Ambiguous class name {text!r}: it matches {len(partial)} classes,"
            f" {_fmt(partial, labels)}; expected one. Hint: type more of the name, or the class id."
        )
    close = _fuzzy_ids(low, lowered, _MAX_LISTED)
    hint = f" Did you mean {_fmt(close, labels)}?" if close else _SEARCH_HINT
    raise UnknownClassError(
        f"Unknown class name {text!r}: expected one of the {len(labels)} class names"
        f" or a class id in 0..{len(labels) - 1}.{hint}"
    )


def search_classes(query: object, labels: Sequence[str], limit: int = 10) -> list[tuple[int, str]]:
    """Class ids and names for a search box, best first.

    Order: a numeric query's own id (if in range), exact name, names containing the
    query as whole word(s), names starting with the query, names with a word starting
    with the query, other substring matches (ties in class-id order), then
    fuzzy matches for typos, word by word (``"catt"`` finds the cat classes). An empty
    query gives ``[]``.
    """
    labels = _check_labels(labels)
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise InvalidParameterError(expected("limit", "a positive int", limit, "pass e.g. limit=10"))
    if isinstance(query, (int, np.integer)) and not isinstance(query, (bool, np.bool_)):
        query = str(int(query))
    if not isinstance(query, str):
        raise InvalidParameterError(
            expected("search query", "a string", query, "pass part of a class name such as 'cat'")
        )
    low = query.strip().lower()
    if not low:
        return []
    names = [str(label) for label in labels]
    lowered = [name.lower() for name in names]
    ranked: list[tuple[int, int]] = []  # (rank, id)
    if _NUMERIC.match(low) and 0 <= int(low) < len(names):
        ranked.append((0, int(low)))
    for i, name in enumerate(lowered):
        if low not in name:
            continue
        if name == low:
            rank = 1
        elif re.search(r"(^|\W)" + re.escape(low) + r"($|\W)", name):
            rank = 2  # whole word(s): "cat" -> "tiger cat"
        elif name.startswith(low):
            rank = 3
        elif re.search(r"(^|\W)" + re.escape(low), name):
            rank = 4
        else:
            rank = 5
        ranked.append((rank, i))
    ranked.sort()
    out: list[int] = []
    for _, i in ranked:
        if i not in out:
            out.append(i)
    if len(out) < limit:
        out += [i for i in _fuzzy_ids(low, lowered, int(limit) * 2) if i not in out]
    return [(i, names[i]) for i in out[: int(limit)]]


def _fuzzy_ids(low: str, lowered: Sequence[str], n: int, cutoff: float = 0.6) -> list[int]:
    """Ids of the labels closest to ``low`` (a typo), best first, at most ``n``.

    A label scores the best difflib ratio of ``low`` against the whole name and against each
    run of as many of its words as the query has, so a typo in one word of a longer name
    counts ("catt" -> "tiger cat", "Persian cat"...; whole-name difflib would find "crate").
    Ties go to the closer whole name, then to the lower id.
    """
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(low)
    width = max(1, len(low.split()))

    def ratio(candidate: str) -> float:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < cutoff or matcher.quick_ratio() < cutoff:
            return 0.0
        return matcher.ratio()

    scored = []
    for i, name in enumerate(lowered):
        whole = ratio(name)
        words = [w for w in re.split(r"[\s,]+", name) if w]
        parts = [" ".join(words[j : j + width]) for j in range(len(words) - width + 1)]
        best = max([whole] + [ratio(part) for part in parts if part != name])
        if best >= cutoff:
            scored.append((-best, -whole, i))
    scored.sort()
    return [i for _, _, i in scored[:n]]
