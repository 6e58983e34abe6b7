"""Every hook the package registers lives here, scoped to one ``with`` block.

House rule 1: hooks exist only inside one call and are removed in ``finally``, even when
the call raises. Tensor hooks for guided backprop are put on the cached pass's ReLU
outputs for one backward and removed right after, so the cached graph serves plain and
guided gradients alike without a second forward.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

#: Module types whose backward guided backprop rewrites (Springenberg et al. 2015).
RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU)

#: The same activations called as functions (``F.relu(x)``, ``x.relu()``): what the modules
#: above call inside, and what a model may call directly in its own ``forward``.
RELU_FUNCTIONS = frozenset(
    {
        F.relu,
        F.relu_,
        torch.relu,
        torch.relu_,
        torch.Tensor.relu,
        torch.Tensor.relu_,
        F.relu6,
        F.leaky_relu,
        F.leaky_relu_,
        F.prelu,
        F.rrelu,
        F.rrelu_,
    }
)


@dataclass
class Recording:
    """What one forward recorded: outputs per module name (the probe's own record of a
    model is ``engine/probe.py``)."""

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    #: what guided backprop guides: ReLU module outputs (tensors), or the autograd nodes of
    #: ReLU function calls (a later in-place op cannot move those)
    relu_outputs: list = field(default_factory=list)


@contextmanager
def record_outputs(
    model: nn.Module,
    names: Sequence[str],
    clone: frozenset[str] = frozenset(),
    record_relus: bool = False,
    modules: Sequence[tuple[str, nn.Module]] | None = None,
    relu_functions: bool = False,
    root: str | None = None,
) -> Iterator[Recording]:
    """Record module outputs during the forwards run inside the block.

    Args:
        names: modules to record.
        clone: modules whose output is recorded and a clone passed on, because a later
            in-place op would otherwise overwrite the recorded tensor.
        record_relus: also record the output of every ReLU-like module (for guided backprop).
        modules: ``model.named_modules()`` listed once by the caller (walking it costs ms).
        relu_functions: with ``record_relus``, record every ReLU-like *function* call
            instead (:data:`RELU_FUNCTIONS`: the modules' calls and a model's own
            ``F.relu``).
        root: one of ``names`` where the autograd graph starts: the forward runs without
            gradients up to it (the caller disables them), its output becomes a leaf and
            gradients are enabled for the rest of the forward. Every recorded output from
            there on that is not in the graph (a branch fed from before the root, frozen
            weights) becomes a leaf too, so that gradients can be taken to it.
    """
    recording = Recording()
    functional = record_relus and relu_functions
    record_relus = record_relus and not functional  # each activation recorded once
    wanted = set(names) | ({root} - {None})
    rooted = root is not None
    handles = []

    def record(name: str, is_relu: bool, is_wanted: bool, output: object) -> object:
        """What gradients need of one module call, and the value passed on."""
        if not isinstance(output, torch.Tensor):
            return output
        if name == root:
            torch.set_grad_enabled(True)  # (the caller's grad mode block restores it)
        if is_relu:
            recording.relu_outputs.append(output)
        if is_wanted:
            if rooted and not output.requires_grad and output.is_floating_point() and torch.is_grad_enabled():
                output = output.detach().requires_grad_(True)
            recording.outputs[name] = output
            if name in clone:
                return output.clone()
        return output

    wrapped: list[tuple[nn.Module, object]] = []
    mode = _ReluFunctions(recording) if functional else None
    try:
        for name, module in modules if modules is not None else model.named_modules():
            if not name:
                continue
            is_relu = record_relus and isinstance(module, RELU_LIKE)
            if is_relu or name in wanted:
                if not _wrap_forward(module, name, is_relu, name in wanted, record, wrapped):
                    handles.append(
                        module.register_forward_hook(
                            lambda m, i, out, n=name, r=is_relu, w=name in wanted: record(n, r, w, out)
                        )
                    )
        if mode is None:
            yield recording
        else:
            with mode:
                yield recording
    finally:
        for handle in handles:
            handle.remove()
        for module, previous in reversed(wrapped):
            if previous is None:
                object.__delattr__(module, "forward")
            else:
                object.__setattr__(module, "forward", previous)


class _ReluFunctions(TorchFunctionMode):
    """Records every ReLU-like function call in the block (guided backprop then guides a
    model's own ``F.relu`` too, which module hooks never see): the call's autograd node, which
    stays the ReLU's whatever in-place op later rewrites its output (nothing is copied: the
    model computes exactly what it computes without us)."""

    def __init__(self, recording: Recording) -> None:
        super().__init__()
        self.recording = recording

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        output = func(*args, **(kwargs or {}))
        if (
            func in RELU_FUNCTIONS or func in (F.hardtanh, F.hardtanh_) and clips_at_zero(args, kwargs)
        ) and isinstance(output, torch.Tensor):
            if output.grad_fn is not None:
                self.recording.relu_outputs.append(output.grad_fn)
        return output


def clips_at_zero(args: Sequence[Any], kwargs: dict[str, Any] | None) -> bool:
    """Whether an ``F.hardtanh`` call is a ReLU6-like clip at 0 (``nn.ReLU6`` calls it so)."""
    low = args[1] if len(args) > 1 else (kwargs or {}).get("min_val", -1.0)
    return low == 0


#: Marks the forward wrappers of :func:`record_outputs` (``count_hooks`` counts them).
WRAPPER_FLAG = "_cam_widgets_recorder"


def _wrap_forward(
    module: nn.Module,
    name: str,
    is_relu: bool,
    is_wanted: bool,
    record: Callable[[str, bool, bool, object], object],
    wrapped: list[tuple[nn.Module, object]],
) -> bool:
    """Record ``module``'s output by wrapping its ``forward`` for the block.

    A forward hook costs ~10 us a module call (handle objects, the slow call path); a
    wrapper ~1 us, which is ~1.5 ms of every fresh image on EfficientNet-Lite0. Modules with
    forward hooks of their own (they may change the output) or a forward that cannot be
    replaced (TorchScript) keep the plain hook: returns False.
    """
    if module._forward_hooks or module._forward_pre_hooks or isinstance(module, torch.jit.ScriptModule):
        return False
    previous = module.__dict__.get("forward")
    inner = module.forward

    def forward(*args, **kwargs):
        return record(name, is_relu, is_wanted, inner(*args, **kwargs))

    setattr(forward, WRAPPER_FLAG, True)
    # a plain instance attribute: nn.Module.__setattr__'s checks (parameters, submodules)
    # cannot apply to a function and cost ~4 us a module
    object.__setattr__(module, "forward", forward)
    wrapped.append((module, previous))
    return True


@contextmanager
def guided_relu_gradients(relu_outputs: Sequence) -> Iterator[None]:
    """Clamp the gradient reaching each ReLU output (a tensor, or a ReLU call's autograd
    node) to >= 0 for backwards inside the block.

    The ReLU's own backward then masks by its input sign, which is exactly guided
    backpropagation: R_in = 1[x > 0] * max(R_out, 0) (Springenberg et al. 2015, eq. 4).
    """
    handles = []
    try:
        for point in relu_outputs:
            if isinstance(point, torch.Tensor):
                if point.requires_grad:
                    handles.append(point.register_hook(lambda grad: grad.clamp(min=0)))
            else:  # the autograd node of a ReLU function call: clamp what flows into it
                handles.append(
                    point.register_prehook(
                        lambda grads: tuple(None if g is None else g.clamp(min=0) for g in grads)
                    )
                )
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluation_mode(
    model: nn.Module, modules: Sequence[tuple[str, nn.Module]] | None = None
) -> Iterator[None]:
    """Put the model in eval mode for the block and restore every module's flag after.

    ``modules``: ``model.named_modules()`` listed once by the caller (walking the tree
    costs ~0.4 ms on EfficientNet-Lite0, on every call).
    """
    listed = [m for _, m in modules] if modules is not None else list(model.modules())
    if not any(m.training for m in listed):
        yield  # already in eval mode: nothing to change or restore (the common case)
        return
    flags = [(m, m.training) for m in listed]
    try:
        model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


def count_hooks(model: nn.Module) -> int:
    """Number of hooks registered on the model's modules, and of forward wrappers left by
    :func:`record_outputs` (a test helper for leaks)."""
    total = 0
    for module in model.modules():
        total += bool(getattr(module.__dict__.get("forward"), WRAPPER_FLAG, False))
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
        ):
            total += len(getattr(module, attr, {}))
    return total
