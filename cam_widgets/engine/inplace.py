"""In-place ReLUs for the folded twin: where a ReLU reads a folded convolution's output that
nothing else reads, it may overwrite it.

A conv -> BN -> ReLU6 unit of the twin (BN folded away) otherwise allocates two activations
where one does: the conv's output and the ReLU's. On a 2-core CPU a batch of 8 at 224x224 on
EfficientNet-Lite0 spent about half its forward faulting in fresh pages for those blocks
(glibc serves blocks past its mmap threshold, up to 32 MiB, as new mappings every time):
in place, the forward ran ~1.8x faster (``benchmarks/RESULTS.md``, session 13). Autograd
allows it: a convolution's backward reads its input and weight, never its output, and a
ReLU's backward reads its own result; with a graph (SmoothGrad's noisy copies) a sample
then keeps one tensor where it kept two.

Only the twin (a private copy) is changed, never the caller's model. What the trial forward
must show, for each ReLU or ReLU6 module made in place: one call, its input the output of a
folded convolution, and no other torch call reading that tensor. Modules returning that
tensor (the convolution, the Identity left of its BatchNorm, a container ending there) are
listed, so that a pass recording one of them passes a copy on (``record_outputs``' clone).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

#: Exact module types made in place (a subclass may compute something else in ``forward``).
INPLACE_TYPES = (nn.ReLU, nn.ReLU6)


class ReLU6InPlaceWithoutGraph(nn.ReLU6):
    """The twin's ReLU6: in place where no graph records it. With a graph, autograd saves a
    copy of the input of an in-place ``hardtanh_`` for its backward (its formula reads the
    input, not the result), a copy as large as the output it spares: out of place there."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        inplace = not (input.requires_grad and torch.is_grad_enabled())
        return F.hardtanh(input, self.min_val, self.max_val, inplace)


def run_in_place(module: nn.Module) -> Callable[[], None]:
    """Make a ReLU (``relu_`` saves its result: in place with a graph too) or ReLU6 of the
    twin run in place; returns what undoes it."""
    if type(module) is nn.ReLU6:
        module.__class__ = ReLU6InPlaceWithoutGraph
        return lambda: setattr(module, "__class__", nn.ReLU6)
    assert isinstance(module, nn.ReLU)  # (INPLACE_TYPES)
    module.inplace = True
    return lambda: setattr(module, "inplace", False)


class _Reads(TorchFunctionMode):
    """Counts the torch calls that read each watched tensor (weakly keyed: holds none)."""

    def __init__(self, watched: WeakIdKeyDictionary) -> None:
        super().__init__()
        self.watched = watched

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        for value in _flat(list(args) + list((kwargs or {}).values())):
            if isinstance(value, torch.Tensor):
                counter = self.watched.get(value)
                if counter is not None:
                    counter.append(getattr(func, "__name__", "?"))
        return func(*args, **(kwargs or {}))


def _flat(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, (list, tuple)):
            out += _flat(value)
        else:
            out.append(value)
    return out


def inplace_relus(
    twin: nn.Module,
    modules: Sequence[tuple[str, nn.Module]],
    folded_convs: Collection[str],
    example: torch.Tensor,
) -> tuple[frozenset[str], frozenset[str]]:
    """(ReLU modules of ``twin`` that may run in place, modules returning a tensor that one
    of them would overwrite), from one forward on ``example`` without gradients. Nothing is
    changed here: the caller runs them in place (:func:`run_in_place`) and checks the logits."""
    reads = WeakIdKeyDictionary()  # folded conv output -> names of the calls reading it
    returned_by = WeakIdKeyDictionary()  # tensor -> module names that returned it
    inputs: dict[str, list] = {}  # relu -> [(reads of its input, modules returning it)]

    def after(name: str, is_conv: bool) -> Callable:
        def hook(module, args, output):
            if isinstance(output, torch.Tensor):
                if is_conv and output not in reads:
                    reads[output] = []
                names = returned_by.get(output)
                if names is None:
                    returned_by[output] = names = []
                names.append(name)

        return hook

    def before(name: str) -> Callable:
        def hook(module, args):
            tensor = args[0] if args else None
            found = isinstance(tensor, torch.Tensor) and tensor in reads
            inputs.setdefault(name, []).append(
                (reads[tensor], returned_by.get(tensor, [])) if found else (None, [])
            )

        return hook

    candidates = {
        name for name, m in modules if name and type(m) in INPLACE_TYPES and not getattr(m, "inplace", True)
    }
    if not candidates:
        return frozenset(), frozenset()
    handles = []
    try:
        for name, module in modules:
            if not name:
                continue
            handles.append(module.register_forward_hook(after(name, name in folded_convs)))
            if name in candidates:
                handles.append(module.register_forward_pre_hook(before(name)))
        with torch.no_grad(), _Reads(reads):
            twin(example)
    finally:
        for handle in handles:
            handle.remove()
    chosen, feeding = set(), set()
    for name, calls in inputs.items():
        if len(calls) != 1:
            continue
        ((counter, producers),) = calls
        if counter is not None and len(counter) == 1 and any(p in folded_convs for p in producers):
            chosen.add(name)
            feeding.update(producers)
    return frozenset(chosen), frozenset(feeding)
