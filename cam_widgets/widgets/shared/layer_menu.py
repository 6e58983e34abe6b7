"""What a layer menu lists: a model's blocks (or every layer) as an outline, each block
before its parts, and the stage layers a sweep or comparison shows; shared by the widgets
that let a person pick layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...explainer import Explainer


def layer_menu(layers: Sequence, default: str, current: str | None, everything: bool) -> list:
    """The layers a menu lists, each block before its parts: every one, or the model's
    blocks: layers nested at most one level deeper than the default layer (``features.8``:
    ``features.N`` and ``features.N.M``, not ``features.1.0.block.0.1``), and the current
    layer wherever it is."""
    layers = tree_order(layers)
    if everything:
        return layers
    depth = default.count(".") + 1
    return [layer for layer in layers if layer.name.count(".") <= depth or layer.name in (current, default)]


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
    return [(f"{layer.name}  {layer.resolution}", layer.name) for layer in layers]


def stage_layers(explainer: Explainer, layer: str | None = None, max_panels: int = 8) -> list[str]:
    """Up to ``max_panels`` layers from shallow to deep, ending at ``layer`` (default layer):
    the last layer of each resolution among the siblings of ``layer`` (each stage's output),
    evenly thinned when there are too many."""
    layers = explainer.layers()
    last = explainer.resolve_layer(layer)
    names = [layer.name for layer in layers]
    upto = layers[: names.index(last) + 1]
    parent = last.rpartition(".")[0]
    siblings = [layer for layer in upto if layer.name.rpartition(".")[0] == parent]
    stages = [
        layer
        for k, layer in enumerate(siblings)
        if k == len(siblings) - 1 or siblings[k + 1].height != layer.height
    ]
    chosen = stages if len(stages) >= 2 else siblings
    count = max(1, int(max_panels))
    if len(chosen) > count:
        picks = sorted({int(round(i * (len(chosen) - 1) / max(count - 1, 1))) for i in range(count)})
        chosen = [chosen[i] for i in picks]
    names = [layer.name for layer in chosen]
    return names if names[-1] == last else (names + [last])[-count:]
