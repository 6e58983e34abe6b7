"""Every hook the package registers lives here, scoped to one ``with`` block.

House rule 1: hooks exist only inside one call and are removed in ``finally``, even when
the call raises. Tensor hooks for guided backprop are put on the cached pass's ReLU
outputs for one backward and removed right after, so the cached graph serves plain and
guided gradients alike without a second forward.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import nn

#: Module types whose backward guided backprop rewrites (Springenberg et al. 2015).
RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU)


@dataclass
class Recording:
    """What one forward recorded: outputs per module name, call counts, versions."""

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    relu_outputs: list[torch.Tensor] = field(default_factory=list)
    relu_versions: list[int] = field(default_factory=list)

    def modified_in_place(self) -> set[str]:
        """Names whose recorded output was later changed in place (e.g. by ReLU(inplace=True))."""
        return {n for n, t in self.outputs.items() if t._version != self.versions[n]}

    def relus_modified_in_place(self) -> bool:
        return any(t._version != v for t, v in zip(self.relu_outputs, self.relu_versions))


@contextmanager
def record_outputs(
    model: nn.Module,
    names: Sequence[str] | None,
    clone: frozenset[str] = frozenset(),
    record_relus: bool = False,
    modules: Sequence[tuple[str, nn.Module]] | None = None,
) -> Iterator[Recording]:
    """Record module outputs during the forwards run inside the block.

    Args:
        names: modules to record (None: every submodule, used to probe the layer list).
        clone: modules whose output is recorded and a clone passed on, because a later
            in-place op would otherwise overwrite the recorded tensor.
        record_relus: also record the output of every ReLU-like module (for guided backprop).
        modules: ``model.named_modules()`` listed once by the caller (walking it costs ms).
    """
    recording = Recording()
    wanted = None if names is None else set(names)
    handles = []

    def make_hook(name: str, is_relu: bool):
        def hook(module, inputs, output):
            if is_relu and isinstance(output, torch.Tensor):
                recording.relu_outputs.append(output)
                recording.relu_versions.append(output._version)
            if wanted is not None and name not in wanted:
                return None
            recording.calls[name] = recording.calls.get(name, 0) + 1
            recording.order.append(name)
            if not isinstance(output, torch.Tensor):
                return None
            recording.outputs[name] = output
            recording.versions[name] = output._version
            return output.clone() if name in clone else None

        return hook

    def make_lean_hook(name: str, is_relu: bool, is_wanted: bool):
        """The hook of a known layer list: only what gradients need (it runs ~140 times a
        forward, so it does no bookkeeping beyond that)."""
        outputs, relus, do_clone = recording.outputs, recording.relu_outputs, name in clone

        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                return None
            if is_relu:
                relus.append(output)
                recording.relu_versions.append(output._version)
            if is_wanted:
                outputs[name] = output
                return output.clone() if do_clone else None
            return None

        return hook

    try:
        for name, module in modules if modules is not None else model.named_modules():
            if not name:
                continue
            is_relu = record_relus and isinstance(module, RELU_LIKE)
            if wanted is None:
                handles.append(module.register_forward_hook(make_hook(name, is_relu)))
            elif is_relu or name in wanted:
                handles.append(module.register_forward_hook(
                    make_lean_hook(name, is_relu, name in wanted)))
        yield recording
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def guided_relu_gradients(relu_outputs: Sequence[torch.Tensor]) -> Iterator[None]:
    """Clamp the gradient reaching each ReLU output to >= 0 for backwards inside the block.

    The ReLU's own backward then masks by its input sign, which is exactly guided
    backpropagation: R_in = 1[x > 0] * max(R_out, 0) (Springenberg et al. 2015, eq. 4).
    """
    handles = []
    try:
        for tensor in relu_outputs:
            if tensor.requires_grad:
                handles.append(tensor.register_hook(lambda grad: grad.clamp(min=0)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Put the model in eval mode for the block and restore every module's flag after."""
    if not model.training and not any(m.training for m in model.modules()):
        yield  # already in eval mode: nothing to change or restore (the common case)
        return
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


def count_hooks(model: nn.Module) -> int:
    """Number of hooks registered on the model's modules (a test helper for leaks)."""
    total = 0
    for module in model.modules():
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
        ):
            total += len(getattr(module, attr, {}))
    return total
