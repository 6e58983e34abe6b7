"""Copies of a model whose modules are their own and whose weights may be shared (the dilated
twins change module attributes, never weights)."""

from __future__ import annotations

import copy

from torch import nn


def copy_modules(model: nn.Module, share_weights: bool = True) -> nn.Module:
    """A deep copy of ``model``'s modules (their attributes can change freely); with
    ``share_weights``, its parameters and buffers are ``model``'s very tensors."""
    if not share_weights:
        return copy.deepcopy(model)
    shared = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo=shared)
