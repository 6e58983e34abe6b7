"""The checked arguments of an evaluation, shared by the loop (``evaluate``) and the batch
scoring (``batch``)."""

from __future__ import annotations


class Plan:
    """Checked arguments of an evaluation."""

    def __init__(self, **kwargs) -> None:
        self.__dict__.update(kwargs)
