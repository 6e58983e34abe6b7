"""An inference twin of the model: each BatchNorm folded into the convolution before it.

In eval mode a BatchNorm is a per-channel affine map, so conv -> BN is one convolution with
scaled weights and a shifted bias: the same function up to float rounding, with one pass over
each activation less in the forward and in the backward. Batched passes that record no
convolution's own output (SmoothGrad's noisy copies, integrated gradients' path, Score-CAM's
masked forwards) run on the twin: SmoothGrad n=100 on an H100 in fp16 went from 34.7 to 20.6 ms
on ResNet50 (benchmarks/RESULTS.md). The cached forward of an image records every layer, so it
runs on the model itself. The caller's model is never touched; the twin is a private copy,
rebuilt when the model changes (parameters, submodules, hooks).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .device import full_precision, same_logits
from .inplace import inplace_relus, run_in_place


@dataclass(frozen=True)
class Twin:
    """The folded copy and what it can stand in for."""

    model: nn.Module
    modules: list
    folded_convs: frozenset[str]  # their output now includes their BatchNorm
    channels_last: bool
    #: modules returning a tensor that an in-place ReLU of the twin overwrites
    #: (``engine/inplace.py``): a pass recording one passes a copy on
    feeds_inplace: frozenset[str] = frozenset()


class WeightsWatch:
    """A cheap stamp of the weights, in two parts: their versions, which change when a
    parameter or buffer is written in place (an optimizer step, ``load_state_dict``), and
    their identity, which changes when one is replaced, re-pointed (``.data = ...``, ``.to()``,
    ``.half()``) or a submodule is swapped: then the model must be probed again.

    ~0.1 ms on EfficientNet-Lite0 (2-core CPU), where walking the modules' own dicts took
    ~1.7 ms: it is read on every explain call, to drop cached forwards made with older
    weights, and with :meth:`hooks` it says when the folded twin must be built again. Writes
    through ``.data`` in place are invisible to autograd's version counter: call
    ``explainer.engine.clear_cache()`` after those.
    """

    def __init__(self, modules: Sequence[tuple[str, nn.Module]]) -> None:
        dicts = [(m._parameters, m._buffers) for _, m in modules]
        self._tensors = [t for pair in dicts for d in pair for t in d.values() if t is not None]
        self._dicts = [d for _, m in modules for d in (m._parameters, m._buffers, m._modules)]
        # registering or removing a hook changes these dicts in place
        self._hook_dicts = [
            getattr(m, name) for _, m in modules for name in _HOOK_DICTS if getattr(m, name, None) is not None
        ]

    def stamp(self) -> tuple[tuple, tuple]:
        """(versions, identity)."""
        return (
            tuple([t._version for t in self._tensors]),
            tuple([id(v) for d in self._dicts for v in d.values()])
            + tuple([t.data_ptr() for t in self._tensors]),
        )

    def hooks(self) -> tuple:
        """How many hooks each module has, and how many are registered for every module."""
        return tuple([len(d) for d in self._hook_dicts]) + (_global_hooks(),)


def _hook_count(module: nn.Module) -> int:
    return sum(len(getattr(module, name, ())) for name in _HOOK_DICTS)


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _global_hooks() -> int:
    """Hooks registered for every module (``nn.modules.module.register_module_*_hook``)."""
    from torch.nn.modules import module as module_module

    return sum(
        len(getattr(module_module, name, ()))
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
        )
    )


def conv_bn_pairs(
    model: nn.Module, modules: Sequence[tuple[str, nn.Module]], example: torch.Tensor
) -> list[tuple[str, str]]:
    """(conv, batchnorm) names where the BatchNorm's only call reads the conv's only output,
    unchanged since the conv returned it, and no other BatchNorm reads it.

    Conv outputs are tracked by weak reference (a BatchNorm reads a live tensor): holding
    them all made the search on the dilated EfficientNet-Lite0 hold ~0.5 GB at once."""
    outputs: dict[str, tuple[weakref.ref, int]] = {}
    read: dict[str, tuple[str, int] | None] = {}  # bn -> (conv it read, version)
    calls: dict[str, int] = {}

    def conv_hook(name):
        def record(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                outputs[name] = (weakref.ref(output), output._version)

        return record

    def bn_hook(name):
        def record(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            tensor = args[0] if args else None
            found: tuple[str, int] | None = None
            if tensor is not None:
                found = next(
                    ((conv, version) for conv, (ref, version) in outputs.items() if ref() is tensor),
                    None,
                )
                if found is not None and found[1] != tensor._version:
                    found = None  # changed in place since the conv returned it
            read[name] = found

        return record

    handles = []
    try:
        for name, module in modules:
            if (
                type(module) is nn.BatchNorm2d
                and module.track_running_stats
                and module.running_mean is not None
            ):
                handles.append(module.register_forward_hook(bn_hook(name)))
            elif isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_hook(conv_hook(name)))
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    pairs = [
        (found[0], bn)
        for bn, found in read.items()
        if found is not None and calls[bn] == 1 and calls[found[0]] == 1
    ]
    convs = [conv for conv, _ in pairs]
    return [(conv, bn) for conv, bn in pairs if convs.count(conv) == 1]


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rewrite ``conv`` (a private copy) so that it computes bn(conv(x))."""
    # conv_bn_pairs pairs only BatchNorms that track running stats
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        shift = -bn.running_mean.double() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.double()
        if conv.bias is not None:
            shift = shift + conv.bias.double() * scale
        weight = conv.weight.double() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
        conv.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=False)
        conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)


def build_twin(
    model: nn.Module,
    modules: Sequence[tuple[str, nn.Module]],
    example: torch.Tensor,
    channels_last: bool = False,
) -> Twin | None:
    """The folded twin of ``model`` (in eval mode), or None when there is nothing to fold, the
    model has hooks (they may depend on the modules folding removes), it cannot be copied, or
    the twin's logits on ``example`` differ from the model's (a conv output read elsewhere
    too, a custom conv that ignores its bias): then the model itself serves every pass."""
    if _global_hooks() or any(_hook_count(m) for _, m in modules):
        return None
    if not any(type(m) is nn.BatchNorm2d for _, m in modules):
        return None  # nothing to fold: no trial forward (the dilated VGG16's took 26 s, 1.8 GB)
    # the twin's weights must be ordinary tensors in full precision, whatever the caller's mode
    with torch.inference_mode(False), torch.autocast(example.device.type, enabled=False):
        try:
            return _build(model, modules, example, channels_last)
        except Exception:  # an uncopyable attribute, a forward that is not plain logits ...
            return None


def _build(
    model: nn.Module, modules: Sequence[tuple[str, nn.Module]], example: torch.Tensor, channels_last: bool
) -> Twin | None:
    pairs = conv_bn_pairs(model, modules, example)
    if not pairs:
        return None
    twin = copy.deepcopy(model).eval()
    named = dict(twin.named_modules())
    for conv, bn in pairs:
        _fold(named[conv], named[bn])
        parent, _, child = bn.rpartition(".")
        setattr(named[parent] if parent else twin, child, nn.Identity())
    for parameter in twin.parameters():
        parameter.requires_grad_(False)
    if channels_last:
        twin = twin.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    twin_modules = list(twin.named_modules())
    folded = frozenset(c for c, _ in pairs)
    relus, feeding = inplace_relus(twin, twin_modules, folded, example[:1])
    named = dict(twin_modules)
    undo = [run_in_place(named[name]) for name in relus]
    with torch.no_grad(), full_precision(example.device):
        expected, got = model(example), twin(example)
    if relus and not same_logits(expected, got):  # (the trial forward missed a reader)
        for step in undo:
            step()
        relus, feeding = frozenset(), frozenset()
        with torch.no_grad(), full_precision(example.device):
            got = twin(example)
    if not same_logits(expected, got):
        return None
    return Twin(twin, twin_modules, folded, channels_last, feeding)
