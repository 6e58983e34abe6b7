"""How a layer's output is read as a grid of channels (N, C, h, w), which every CAM method reads.

Layouts:

- ``"NCHW"``: PyTorch's convolution layout (CNNs), read as is.
- ``"NHWC"``: channels last (Swin, ConvNeXt's inner blocks): permuted.
- ``"tokens+cls"``: a token sequence (N, 1 + h*w, C) with a class token first (ViT, DeiT):
  the class token dropped, the others laid out on their h x w grid, row by row.
- ``"tokens"``: the same without a class token (N, h*w, C).
- ``"custom"``: the caller's own ``reshape`` function (``Explainer(..., reshape={layer: fn})``).

Where the channels are comes from the model's own calls (``flow.py``): a convolution reads
axis 1, a layer norm or a linear layer the last one. A layer the calls read both ways, or
whose layout its shape cannot tell (a token count that is no grid, or that is one grid with
and another without a class token) is refused, never read wrong: the error names the
``reshape`` way out. pytorch-grad-cam's ``reshape_transform`` functions are the same idea.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import isqrt

import torch
from torch import nn

from ..errors import InvalidParameterError, MethodNotApplicableError, Received, close_matches, expected
from .flow import CHANNELS, HEIGHT, WIDTH

#: A caller's layout reader: (N, ...) layer output -> (N, C, h, w).
Reshape = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Reading:
    """How one layer's output is read: its layout and its (C, h, w) grid."""

    layout: str
    channels: int
    height: int
    width: int


def way_out(name: str) -> str:
    """The hint of every refusal: the ``reshape`` argument."""
    return f"give it as Explainer(model, reshape={{{name!r}: fn}}), fn turning it into (N, C, h, w)"


def read_layout(name: str, shape: tuple, axes: tuple, grids: set) -> Reading | str | None:
    """How to read the output ``shape`` (N, ...) of module ``name``: a Reading, a one-line
    refusal (its layout cannot be told), or None (not a spatial output, as (N, C) logits).

    ``axes``: what each axis is known as (``flow.py``: "C", "H", "W", (h, w) tokens; empty
    sets, or no tuple at all, where nothing is known); ``grids``: the (h, w) of the model's
    other spatial layers (a token count may be one of them).
    """
    axes = tuple(axes) or (frozenset(),) * len(shape)
    if len(shape) == 4:
        found = _grid_reading(shape, axes)
    elif len(shape) == 3 and shape[1] > 2:  # (one or two tokens: no grid either way)
        found = _token_reading(shape, axes, grids)
    else:
        return None
    if isinstance(found, str):
        shown = "(N, " + ", ".join(map(str, shape[1:])) + ")"
        return f"layer {name!r} outputs {shown}, a layout that cannot be told ({found}); " + way_out(name)
    return found if found is None or found.height * found.width > 1 else None


def _grid_reading(shape: tuple, axes: tuple) -> Reading | str | None:
    """(N, C, H, W) or (N, H, W, C), or why neither."""
    _, a, b, d = shape
    channels = [axis for axis in range(4) if CHANNELS in axes[axis]]
    if channels == [1] and axes[2] <= {HEIGHT} and axes[3] <= {WIDTH}:
        return Reading("NCHW", a, b, d)
    if channels == [3] and axes[1] == {HEIGHT} and axes[2] == {WIDTH}:
        return Reading("NHWC", d, a, b)
    if not channels and axes[2] <= {HEIGHT} and axes[3] <= {WIDTH} and a != b:
        return Reading("NCHW", a, b, d)  # nothing says otherwise (as ever)
    if b * d <= 1 and a * b <= 1:
        return None
    if len(channels) > 1:
        return "the model reads its channels on more than one axis"
    if channels == [1]:
        return "channels first, but its last two axes are not the image's height and width"
    if channels == [3]:
        return "channels last, but its middle axes are not the image's height and width (windows?)"
    if channels:
        return f"channels on axis {channels[0]}"
    return "no call tells whether its channels come first or last"


def _token_reading(shape: tuple, axes: tuple, grids: set) -> Reading | str | None:
    """(N, L, C) tokens, with or without a class token first, or why not."""
    _, length, channels = shape
    where = [axis for axis in range(3) if CHANNELS in axes[axis]]
    tokens = {m for m in axes[1] if isinstance(m, tuple)}
    if where == [2] and len(tokens) == 1 and axes[1] == tokens:
        ((h, w),) = tokens
        if length in (h * w, h * w + 1):
            return Reading("tokens" if length == h * w else "tokens+cls", channels, h, w)
        return f"{length} tokens on a {h}x{w} grid"
    with_cls, plain = token_grid(length - 1, grids), token_grid(length, grids)
    grid = with_cls if plain is None else plain if with_cls is None else None  # one, not both
    if where == [2] and not axes[1] and grid is not None:
        return Reading("tokens+cls" if with_cls is not None else "tokens", channels, *grid)
    if not where and not any(axes) and with_cls is None and plain is None:
        return None  # (N, L, C) of no grid, with nothing to say it is a sequence of tokens
    if where == [1]:
        return "channels first: (N, C, L) is not read on its own"
    if len(where) > 1 or axes[1] - tokens:
        return "the model reads its axes more than one way"
    if len(tokens) > 1:
        return "its tokens come from more than one grid"
    if with_cls is not None and plain is not None:
        return f"{length} tokens are a grid both with and without a class token"
    if where == [2]:
        return f"neither {length} nor {length - 1} tokens make a known grid"
    return "no call tells where its channels are"


def token_grid(count: int, grids: set) -> tuple[int, int] | None:
    """The grid of ``count`` tokens: a square, or one of the model's other grids of that
    many positions; None when there is none or more than one, or one position only."""
    found = {g for g in grids if g[0] * g[1] == count}
    root = isqrt(max(count, 0))
    if root * root == count:
        found.add((root, root))
    return found.pop() if len(found) == 1 and count > 1 else None


def to_grid(
    tensor: torch.Tensor, layout: str, grid: tuple[int, int], reshape: Reshape | None = None, layer: str = ""
) -> torch.Tensor:
    """A layer output (N, ...) (or gradients of that shape) as (N, C, h, w), a view where
    the layout allows."""
    n = tensor.shape[0]
    if layout == "NCHW":
        return tensor
    if layout == "NHWC":
        return tensor.permute(0, 3, 1, 2)
    if layout in ("tokens+cls", "tokens"):
        tokens = tensor[:, 1:] if layout == "tokens+cls" else tensor
        return tokens.reshape(n, *grid, tokens.shape[-1]).permute(0, 3, 1, 2)
    if reshape is None:
        raise MethodNotApplicableError(f"layer {layer!r}: unknown layout {layout!r}")
    out = reshape(tensor)
    if (
        not isinstance(out, torch.Tensor)
        or out.dim() != 4
        or out.shape[0] != n
        or tuple(out.shape[2:]) != tuple(grid)
    ):
        raise MethodNotApplicableError(
            expected(
                f"reshape for layer {layer!r}",
                f"(N, C, h, w) = ({n}, C, {grid[0]}, {grid[1]}) from {tuple(tensor.shape)}",
                Received(f"shape {tuple(out.shape)}") if isinstance(out, torch.Tensor) else out,
            )
        )
    return out


def checked_reshape(reshape: object, model: nn.Module) -> dict[str, Reshape]:
    """``reshape`` ({layer name: fn}) checked against the model's module names: a dict, or
    a one-line error."""
    if reshape is None:
        return {}
    if not isinstance(reshape, dict) or not all(
        isinstance(k, str) and callable(v) for k, v in reshape.items()
    ):
        raise InvalidParameterError(
            expected(
                "reshape",
                "a dict {layer name: fn}, fn turning that layer's output into (N, C, h, w)",
                reshape,
            )
        )
    names = {name for name, _ in model.named_modules() if name}
    for name in reshape:
        if name not in names:
            raise InvalidParameterError(
                expected(
                    "reshape",
                    "layer names of this model",
                    Received(f"layer {name!r}, which is not in this model"),
                    close_matches(name, names),
                )
            )
    return dict(reshape)


def custom_reading(name: str, shape: tuple, fn: Reshape) -> Reading:
    """The grid a caller's ``reshape`` gives for an output of ``shape`` (tried on zeros),
    or a one-line error."""
    try:
        out = fn(torch.zeros(shape))
    except Exception as error:  # the caller's function: say what it was given
        message = (str(error).strip().splitlines() or [""])[0][:160]
        raise InvalidParameterError(
            f"reshape for layer {name!r} failed on an output of shape {shape} "
            f"({type(error).__name__}: {message})"
        ) from error
    if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != shape[0]:
        got = Received(f"shape {tuple(out.shape)}") if isinstance(out, torch.Tensor) else out
        raise InvalidParameterError(
            expected(
                f"reshape for layer {name!r}",
                f"its output {shape} turned into (N, C, h, w) with the same N",
                got,
            )
        )
    return Reading("custom", *map(int, out.shape[1:]))
