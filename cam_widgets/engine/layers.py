"""The spatial layers a probe forward finds: what the user may pick, and their memory."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """A layer with a spatial output, as listed to the user."""

    name: str
    kind: str
    channels: int
    height: int
    width: int

    @property
    def resolution(self) -> str:
        return f"{self.height}x{self.width}"


def aliases(layers, tensor_ids: dict[str, int], victims: set) -> dict[str, str]:
    """{layer: the first layer returning the very same tensor} (``features.0`` and its last
    child ``features.0.2``): one hook records both. Outputs changed in place are left out."""
    first: dict[int, str] = {}
    aliases = {}
    for info in layers:
        if info.name in victims:
            continue
        owner = first.setdefault(tensor_ids[info.name], info.name)
        if owner != info.name:
            aliases[info.name] = owner
    return aliases


def spatial_layers(probe, modules: dict[str, nn.Module]) -> tuple[list[LayerInfo], int, int]:
    """(every module called once with a (N, C, h, w) output larger than 1x1, in forward order;
    the bytes of all leaf modules' outputs; the largest leaf output's bytes) of a probe."""
    layers, total, largest = [], 0, 0
    for name in dict.fromkeys(probe.order):
        shape = probe.shapes.get(name)
        if shape is None:
            continue
        if not any(True for _ in modules[name].children()):
            total += probe.nbytes[name]
            largest = max(largest, probe.nbytes[name])
        if probe.calls[name] == 1 and len(shape) == 4 and shape[2] * shape[3] > 1:
            layers.append(LayerInfo(name, type(modules[name]).__name__, *map(int, shape[1:])))
    return layers, total, largest
