"""What a layer menu lists: a model's blocks (or every layer) as an outline, each block
before its parts; shared by the widgets that let a person pick a layer."""
from __future__ import annotations

from typing import Optional, Sequence


def layer_menu(layers: Sequence, default: str, current: Optional[str], everything: bool) -> list:
    """The layers a menu lists, each block before its parts: every one, or the model's
    blocks: layers nested at most one level deeper than the default layer (``features.8``:
    ``features.N`` and ``features.N.M``, not ``features.1.0.block.0.1``), and the current
    layer wherever it is."""
    layers = tree_order(layers)
    if everything:
        return layers
    depth = default.count(".") + 1
    return [l for l in layers if l.name.count(".") <= depth or l.name in (current, default)]


def tree_order(layers: Sequence) -> list:
    """``layers`` (in the order their outputs are computed: a block after its parts) with
    each block moved just before its first part, as a model's outline reads."""
    first = {}
    for index, layer in enumerate(layers):
        parts = layer.name.split(".")
        for depth in range(1, len(parts) + 1):
            first.setdefault(".".join(parts[:depth]), index)

    def path(layer) -> tuple:
        parts = layer.name.split(".")
        return tuple(first[".".join(parts[:depth])] for depth in range(1, len(parts) + 1))
    return sorted(layers, key=path)


def layer_options(layers: Sequence) -> list[tuple[str, str]]:
    """Dropdown options of ``layers``: the name and the output resolution, by name."""
    return [(f"{l.name}  {l.resolution}", l.name) for l in layers]
