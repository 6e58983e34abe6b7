"""The spatial layers a probe forward finds: what the user may pick, and their memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from .layouts import Reading, Reshape, custom_reading, read_layout, to_grid
from .probe import Probe


@dataclass(frozen=True)
class LayerInfo:
    """A layer with a spatial output, as listed to the user.

    ``layout`` says how its output is read as (N, C, h, w) (``engine/layouts.py``):
    ``"NCHW"``, ``"NHWC"``, ``"tokens+cls"``, ``"tokens"`` or ``"custom"`` (the caller's
    ``reshape`` function, kept in ``reshape``); ``channels``, ``height`` and ``width`` are
    that grid's.
    """

    name: str
    kind: str
    channels: int
    height: int
    width: int
    layout: str = "NCHW"
    reshape: Reshape | None = field(default=None, repr=False, compare=False)

    @property
    def resolution(self) -> str:
        return f"{self.height}x{self.width}"

    @property
    def grid(self) -> tuple[int, int]:
        return self.height, self.width

    def as_grid(self, tensor: torch.Tensor) -> torch.Tensor:
        """This layer's output, or gradients of its shape, (N, ...) as (N, C, h, w)."""
        return to_grid(tensor, self.layout, self.grid, self.reshape, self.name)


def aliases(layers: Iterable[LayerInfo], tensor_ids: dict[str, int], victims: set) -> dict[str, str]:
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


def spatial_layers(
    probe: Probe, modules: dict[str, nn.Module], reshape: dict | None = None
) -> tuple[list[LayerInfo], int, int, dict[str, str]]:
    """(every module called once whose output reads as a grid (N, C, h, w) larger than 1x1,
    in forward order; the bytes of all leaf modules' outputs; the largest leaf output's bytes;
    {module: why its output's layout cannot be told}) of a probe. ``reshape``: the caller's
    readers by layer name, which come before any layout found."""
    reshape = reshape or {}
    layers, total, largest, refused = [], 0, 0, {}
    order = list(dict.fromkeys(probe.order))
    for name in order:
        if name in probe.shapes and not any(True for _ in modules[name].children()):
            total += probe.nbytes[name]
            largest = max(largest, probe.nbytes[name])
    readings: dict[str, Reading] = {}
    for rank in (4, 3):  # grids first: a token count may be one of them
        grids = {(r.height, r.width) for r in readings.values() if r.layout in ("NCHW", "NHWC")}
        for name in order:
            shape = probe.shapes.get(name)
            if shape is None or len(shape) != rank or probe.calls[name] != 1 or name in reshape:
                continue
            found = read_layout(name, shape, probe.axes.get(name, ()), grids)
            if isinstance(found, str):
                refused[name] = found
            elif found is not None:
                readings[name] = found
    for name, fn in reshape.items():
        problem = _unreadable(name, probe)
        if problem:
            refused[name] = problem
        else:
            readings[name] = custom_reading(name, probe.shapes[name], fn)
    for name in order:
        found = readings.get(name)
        if found is not None and found.height * found.width > 1:
            layers.append(
                LayerInfo(
                    name,
                    type(modules[name]).__name__,
                    found.channels,
                    found.height,
                    found.width,
                    found.layout,
                    reshape.get(name),
                )
            )
    return layers, total, largest, refused


def _unreadable(name: str, probe: Probe) -> str:
    """Why a layer given a ``reshape`` cannot be read ("" when it can)."""
    if name not in probe.calls:
        return f"layer {name!r} did not run in the model's forward, so it has no output to reshape"
    if name not in probe.shapes:
        return (
            f"layer {name!r} returns no tensor (a tuple?), so there is nothing to reshape; "
            f"pick one of its submodules"
        )
    if probe.calls[name] != 1:
        return f"layer {name!r} runs {probe.calls[name]} times in one forward, so its output is not one map"
    return ""
