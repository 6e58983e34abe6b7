"""Classroom exercises: a student's answer checked with feedback, in a notebook cell.

from cam_widgets.exercises import check
check("which class does the map show?", answer, expected=282, hint="look at the title")
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .app_mode import in_voila

Expected = Any | Callable[[Any], bool]


def check(
    question: str, answer: Any, expected: Expected, *, tolerance: float | None = None, hint: str = ""
) -> bool:
    """Print whether ``answer`` is right and return True/False.

    Args:
        expected: the right value, or a predicate ``expected(answer) -> bool``.
        tolerance: for numbers, the largest accepted absolute difference.
        hint: shown when the answer is wrong.
    """
    if answer is ...:
        if in_voila():  # an app page: the cell cannot be edited there
            print(f"[ ] {question}: to answer, open this notebook in JupyterLab or Jupyter Notebook.")
        else:
            print(f"[ ] {question}: replace ... with your answer.")
        return False
    if callable(expected):
        right = bool(expected(answer))
    elif tolerance is not None and isinstance(answer, (int, float)):
        right = math.isfinite(answer) and abs(answer - expected) <= tolerance
    elif isinstance(expected, str) and isinstance(answer, str):
        right = answer.strip().lower() == expected.strip().lower()
    else:
        right = answer == expected
    if right:
        print(f"[x] {question}: correct.")
    else:
        print(f"[ ] {question}: not yet ({answer!r}).{' Hint: ' + hint if hint else ''}")
    return right
