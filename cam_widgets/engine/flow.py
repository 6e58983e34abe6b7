"""What each axis of a model's tensors means, learnt from the torch calls of one forward.

The probe (``probe.py``) hands every torch call it sees to a :class:`AxisFlow`. The image
comes in as (N, C, H, W): its axes are known. Some calls say where the channels are: a
convolution, batch norm or 2-D pooling reads them on axis 1 (N, C, ...), a linear layer or a
layer norm over one dimension on the last axis (..., C). Every call also carries what is
known of its input's axes to its output's and back: elementwise ops, slicing, padding and
concatenation keep the axes; a convolution keeps all but the channels, a linear layer all but
the last; ``permute``/``transpose`` move them; ``reshape``/``view``/``flatten`` keep every
dimension they do not split or merge, and merging the height and width axes makes a token
axis of that grid ("HW"), splitting it back gives them again. Knowledge spreads along every
link, so a Swin block's output (N, H, W, C) is known channels-last with its height and width
from the layer norm that consumes it and the residual sums it is part of, and a ViT's tokens
(N, 1 + h*w, C) as tokens of the patch convolution's h x w grid.

Only tensors that derive from the image are followed (a bias or a position embedding added
to many tensors would otherwise carry what is known of one to all). A tensor that two calls
read differently gets both readings: the caller refuses to guess. Tensors are tracked by weak
reference: the probe holds no activation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from math import prod
from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

#: Calls whose input and output hold the channels on axis 1 (N, C, ...) and keep the others.
CHANNELS_FIRST = frozenset(
    {
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "batch_norm",
        "instance_norm",
        "group_norm",
        "local_response_norm",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "_max_pool1d",
        "_max_pool2d",
        "_max_pool3d",
        "max_pool1d_with_indices",
        "max_pool2d_with_indices",
        "max_pool3d_with_indices",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "adaptive_max_pool1d_with_indices",
        "adaptive_max_pool2d_with_indices",
        "lp_pool1d",
        "lp_pool2d",
        "interpolate",
        "upsample",
        "pixel_shuffle",
        "pixel_unshuffle",
    }
)
#: Calls whose input and output hold the channels on the last axis (..., C), keeping the
#: others; the norms only when they normalise over that one dimension.
CHANNELS_LAST = frozenset({"linear", "bilinear"})
LAST_DIM_NORMS = frozenset({"layer_norm", "rms_norm"})
#: Calls that move axes: handled one by one.
PERMUTES = frozenset({"permute", "transpose", "transpose_", "swapaxes", "swapdims", "movedim", "moveaxis"})
#: Calls that split or merge dimensions in row-major order.
RESHAPES = frozenset(
    {
        "reshape",
        "view",
        "flatten",
        "unflatten",
        "squeeze",
        "unsqueeze",
        "view_as",
        "reshape_as",
        "_unsafe_view",
    }
)
#: Calls whose outputs keep their inputs' axes while changing their sizes.
SAME_AXES = frozenset(
    {
        "__getitem__",
        "pad",
        "cat",
        "concat",
        "concatenate",
        "split",
        "chunk",
        "tensor_split",
        "narrow",
        "expand",
        "expand_as",
        "repeat",
        "index_select",
        "roll",
        "gather",
        "constant_pad_nd",
    }
)
#: Calls that mix axes (or may), or say nothing of them: nothing passes through them.
OPAQUE = frozenset(
    {
        "matmul",
        "__matmul__",
        "__rmatmul__",
        "bmm",
        "mm",
        "einsum",
        "baddbmm",
        "addbmm",
        "addmm",
        "tensordot",
        "rot90",
        "t",
        "t_",
        "diagonal",
        "as_strided",
        "unfold",
        "fold",
        "view_as_real",
        "view_as_complex",
        "__get__",
        "__set__",
        "__setitem__",
        "stack",
        "hstack",
        "vstack",
        "dstack",
        "kron",
        "outer",
        "multi_head_attention_forward",
        "scaled_dot_product_attention",
        "_native_multi_head_attention",
    }
)
#: Calls that return no tensor: not looked at.
UNTRACKED = frozenset(
    {
        "size",
        "dim",
        "numel",
        "_assert",
        "item",
        "__setitem__",
        "__set__",
        "__len__",
        "__bool__",
        "tolist",
        "is_floating_point",
        "__format__",
    }
)

#: What an axis may be known as: channels, the image's height or width, or (h, w): tokens of
#: an h x w grid, row by row.
CHANNELS, HEIGHT, WIDTH = "C", "H", "W"


class AxisFlow:
    """Tensors derived from the image in one forward (by number), what calls said of their
    axes, and how calls connect their axes."""

    def __init__(self) -> None:
        self._numbers = WeakIdKeyDictionary()  # tensor -> number
        self.shapes: list[tuple] = []
        self._said: dict[int, set] = defaultdict(set)  # number -> {(meaning, axis)}
        self._links: dict[int, list[tuple[int, dict]]] = defaultdict(list)
        #: (fine, k, coarse, j): axes k, k+1 of ``fine`` are axis j of ``coarse`` merged
        self._merges: dict[int, list[tuple]] = defaultdict(list)

    def image(self, tensor: torch.Tensor) -> None:
        """The model's input (N, C, H, W)."""
        if isinstance(tensor, torch.Tensor) and tensor.dim() == 4:
            number = self.number(tensor)
            self._said[number] |= {(CHANNELS, 1), (HEIGHT, 2), (WIDTH, 3)}

    def number(self, tensor: torch.Tensor) -> int:
        """The number of ``tensor`` (a new one the first time it is seen)."""
        found = self._numbers.get(tensor)
        if found is None:
            found = len(self.shapes)
            self.shapes.append(tuple(tensor.shape))
            self._numbers[tensor] = found
        return found

    def find(self, tensor: torch.Tensor) -> int | None:
        """The number of ``tensor`` if it derives from the image, else None."""
        return self._numbers.get(tensor)

    def see(self, func: Any, args: tuple, kwargs: dict | None, result: Any) -> None:
        """Learn from one torch call ``func(*args, **kwargs) -> result``."""
        name = getattr(func, "__name__", "")
        if name in UNTRACKED:
            return
        outs = _tensors(result if isinstance(result, (tuple, list)) else (result,))
        if not outs:
            return
        kwargs = kwargs or {}
        ins = [
            t for t in _tensors(list(_flat(args)) + list(_flat(kwargs.values()))) if t in self._numbers
        ]  # derived from the image
        if not ins:
            return
        for out in outs:  # derived from the image too
            self.number(out)
        if name in OPAQUE:
            return
        first, out = ins[0], outs[0]
        if name in CHANNELS_FIRST and first is _first_tensor(args, kwargs):
            self._channels(first, out, 1, 1)
        elif (
            name in CHANNELS_LAST or name in LAST_DIM_NORMS and _one_dim(args, kwargs)
        ) and first is _first_tensor(args, kwargs):
            self._channels(first, out, first.dim() - 1, out.dim() - 1)
        elif name in PERMUTES:
            order = permutation(name, first.dim(), args, kwargs)
            if order is not None:
                self._link(first, out, {old: new for new, old in enumerate(order)})
        elif name in RESHAPES:
            self._reshape(first, out)
        else:
            loose = name in SAME_AXES
            for out in outs:
                for tensor in ins:
                    if tensor.dim() == out.dim() and (loose or _broadcasts(tensor.shape, out.shape)):
                        self._link(tensor, out, {axis: axis for axis in range(out.dim())})

    def _channels(self, before: torch.Tensor, after: torch.Tensor, axis: int, out_axis: int) -> None:
        """A call reading channels on ``axis`` and writing them on ``out_axis``, keeping the
        other axes in order."""
        self._said[self.number(before)].add((CHANNELS, axis))
        self._said[self.number(after)].add((CHANNELS, out_axis))
        if before.dim() == after.dim():
            self._link(before, after, {a: a for a in range(before.dim()) if a != axis})

    def _link(self, a: torch.Tensor, b: torch.Tensor, axes: dict) -> None:
        one, two = self.number(a), self.number(b)
        if axes and one != two:
            self._links[one].append((two, axes))
            self._links[two].append((one, {new: old for old, new in axes.items()}))

    def _reshape(self, before: torch.Tensor, after: torch.Tensor) -> None:
        """Dimensions kept whole, and pairs of neighbours merged into one (or split back)."""
        shape_in, shape_out = tuple(before.shape), tuple(after.shape)
        if prod(shape_in) != prod(shape_out):
            return
        self._link(before, after, kept_dims(shape_in, shape_out))
        for fine, coarse, tensors in (
            (shape_in, shape_out, (before, after)),
            (shape_out, shape_in, (after, before)),
        ):
            starts = {(prod(coarse[:j]), coarse[j]): j for j in range(len(coarse))}
            for k in range(len(fine) - 1):
                j = starts.get((prod(fine[:k]), fine[k] * fine[k + 1]))
                if j is not None and fine[k] > 1 and fine[k + 1] > 1:
                    merge = (self.number(tensors[0]), k, self.number(tensors[1]), j)
                    self._merges[merge[0]].append(merge)
                    self._merges[merge[2]].append(merge)

    def axes(self) -> list[tuple[frozenset, ...]]:
        """For every tensor number, what each of its axes is known as: "C", "H", "W" or
        (h, w), spread along the links; an empty set where nothing is known."""
        known: list[set] = [set() for _ in self.shapes]
        stack = [(number, said) for number, labels in self._said.items() for said in labels]
        while stack:
            number, said = stack.pop()
            if said in known[number]:
                continue
            known[number].add(said)
            meaning, axis = said
            for other, mapping in self._links.get(number, ()):
                if axis in mapping:
                    stack.append((other, (meaning, mapping[axis])))
            for fine, k, coarse, j in self._merges.get(number, ()):
                h, w = self.shapes[fine][k : k + 2]
                if number == fine and {(HEIGHT, k), (WIDTH, k + 1)} <= known[fine]:
                    stack.append((coarse, ((h, w), j)))
                if number == coarse and said == ((h, w), j):
                    stack += [(fine, (HEIGHT, k)), (fine, (WIDTH, k + 1))]
        return [
            tuple(frozenset(m for m, a in labels if a == axis) for axis in range(len(shape)))
            for labels, shape in zip(known, self.shapes)
        ]


def _flat(values: Iterable) -> Iterable:
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from value
        else:
            yield value


def _tensors(values: Iterable) -> list[torch.Tensor]:
    return [v for v in values if isinstance(v, torch.Tensor)]


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The data argument of a layer call (``input``, its first argument)."""
    found = args[0] if args else kwargs.get("input")
    return found if isinstance(found, torch.Tensor) else None


def _one_dim(args: tuple, kwargs: dict) -> bool:
    """Whether a norm's ``normalized_shape`` is a single dimension."""
    shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
    if isinstance(shape, int):
        return True
    return isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 1


def permutation(name: str, ndim: int, args: tuple, kwargs: dict) -> list[int] | None:
    """``order``: output axis i is input axis order[i]; None when the call cannot be read."""
    rest: list[Any] = list(args[1:])
    order: list[Any]
    try:
        if name == "permute":
            dims = kwargs.get("dims", rest[0] if len(rest) == 1 else rest)
            order = [int(d) % ndim for d in dims]
        elif name in ("movedim", "moveaxis"):
            source: Any = kwargs.get("source", rest[0] if rest else None)
            target: Any = kwargs.get("destination", rest[1] if len(rest) > 1 else None)
            source = [source] if isinstance(source, int) else list(source)
            target = [target] if isinstance(target, int) else list(target)
            order = [None] * ndim
            for s, t in zip(source, target):
                order[int(t) % ndim] = int(s) % ndim
            others = iter(a for a in range(ndim) if a not in order)
            order = [next(others) if a is None else a for a in order]
        else:
            first: Any = kwargs.get("dim0", rest[0] if rest else None)
            second: Any = kwargs.get("dim1", rest[1] if len(rest) > 1 else None)
            order = list(range(ndim))
            i, j = int(first) % ndim, int(second) % ndim
            order[i], order[j] = order[j], order[i]
    except (TypeError, ValueError, IndexError, StopIteration, ZeroDivisionError):
        return None
    return order if sorted(order) == list(range(ndim)) else None


def kept_dims(before: tuple, after: tuple) -> dict:
    """{axis before: axis after} for the dimensions a row-major reshape keeps whole: the same
    size, starting at the same flat offset."""
    starts: dict[tuple[int, int], int] = {}
    for axis in range(len(after)):
        starts.setdefault((prod(after[:axis]), after[axis]), axis)
    kept = {}
    for axis in range(len(before)):
        found = starts.get((prod(before[:axis]), before[axis]))
        if found is not None and before[axis] > 1:
            kept[axis] = found
    return kept


def _broadcasts(shape: tuple, into: tuple) -> bool:
    """Whether ``shape`` broadcasts into ``into`` axis by axis (same number of dimensions)."""
    return all(s == t or s == 1 for s, t in zip(shape, into))
