"""The probe: one forward on a fixed input that learns what the engine needs of a model,
holding none of its activations.

It finds each module's output shape and call count, which modules return the very same
tensor (``features.8`` and its last child), which outputs a later in-place op changes (they
must be cloned when recorded), and whether the model calls ReLU-like functions itself. It
runs without a graph and tracks outputs by weak reference, checking their version counters
after every torch call: holding every output (and a graph) made the probe of the dilated
VGG16 at 224x224 hold ~1.7 GB at once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .flow import AxisFlow
from .hooks import RELU_FUNCTIONS, RELU_LIKE, clips_at_zero


@dataclass
class Probe:
    """What one probe forward saw."""

    order: list[str] = field(default_factory=list)  # module names as their calls returned
    calls: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)  # tensor outputs only
    nbytes: dict[str, int] = field(default_factory=dict)
    #: outputs with one number are the very same tensor object
    tensor_ids: dict[str, int] = field(default_factory=dict)
    #: modules whose output was changed in place after they returned it
    modified_in_place: set[str] = field(default_factory=set)
    #: whether a ReLU-like module's or function's output was changed in place later
    relus_modified_in_place: bool = False
    relu_function_calls: int = 0
    logits: torch.Tensor | None = None
    #: per module, what each axis of its output is known as (``flow.py``): "C" (channels),
    #: "H", "W" (the image's height, width), (h, w) (tokens of that grid); an empty set
    #: where nothing is known, several where the model's calls read it differently
    axes: dict[str, tuple[frozenset, ...]] = field(default_factory=dict)


class _Outputs:
    """Outputs tracked while they live: a version change is an in-place write."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.alive: dict[int, tuple[weakref.ref, int, list]] = {}  # id -> (ref, number, records)
        self.count = 0

    def see(self, tensor: torch.Tensor, name: str | None, is_relu: bool) -> int:
        """Track ``tensor`` as returned by ``name`` (None: a ReLU function call); its number."""
        key = id(tensor)
        entry = self.alive.get(key)
        if entry is None or entry[0]() is not tensor:  # (a dead tensor's id, reused)
            self.count += 1
            entry = (weakref.ref(tensor), self.count, [])
            self.alive[key] = entry
        entry[2].append((name, is_relu, tensor._version))
        return entry[1]

    def check(self) -> None:
        """Note every live output written since it was returned; forget dead ones."""
        for key, (ref, _, records) in list(self.alive.items()):
            tensor = ref()
            if tensor is None:
                del self.alive[key]
                continue
            version = tensor._version
            for name, is_relu, seen in records:
                if version != seen:
                    if name is not None:
                        self.probe.modified_in_place.add(name)
                    if is_relu:
                        self.probe.relus_modified_in_place = True


class _EveryCall(TorchFunctionMode):
    """After every torch call: check the live outputs, count ReLU-like function calls
    (a model's own ``F.relu`` as well as the modules' calls), and learn where the channels
    and the other axes of its tensors are (``flow.py``)."""

    def __init__(self, outputs: _Outputs, flow: AxisFlow) -> None:
        super().__init__()
        self.outputs = outputs
        self.flow = flow

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        self.flow.see(func, args, kwargs, result)
        if (
            func in RELU_FUNCTIONS
            or func in (torch.nn.functional.hardtanh, torch.nn.functional.hardtanh_)
            and clips_at_zero(args, kwargs)
        ) and isinstance(result, torch.Tensor):
            self.outputs.probe.relu_function_calls += 1
            self.outputs.see(result, None, True)
        self.outputs.check()
        return result


@contextmanager
def probing(model: nn.Module) -> Iterator[Probe]:
    """Track the outputs of every submodule during the forward run inside the block (which
    the caller runs under ``torch.no_grad()``); the probe is complete when the block ends."""
    probe = Probe()
    outputs = _Outputs(probe)
    flow = AxisFlow()
    numbers: dict[str, int | None] = {}  # module -> its output's number in the flow
    first = [True]

    def image(module: nn.Module, args: tuple) -> None:
        if first[0] and args:  # (the model calling itself again sees no new image)
            first[0] = False
            flow.image(args[0])

    def hook(name: str, is_relu: bool) -> Callable[[nn.Module, object, object], None]:
        def record(module: nn.Module, inputs: object, output: object) -> None:
            probe.calls[name] = probe.calls.get(name, 0) + 1
            probe.order.append(name)
            if isinstance(output, torch.Tensor):
                probe.shapes[name] = tuple(output.shape)
                probe.nbytes[name] = output.numel() * output.element_size()
                probe.tensor_ids[name] = outputs.see(output, name, is_relu)
                numbers[name] = flow.find(output)

        return record

    handles = []
    try:
        handles.append(model.register_forward_pre_hook(image))
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(hook(name, isinstance(module, RELU_LIKE))))
        with _EveryCall(outputs, flow):
            yield probe
        outputs.check()
        axes = flow.axes()
        probe.axes = {name: axes[number] for name, number in numbers.items() if number is not None}
    finally:
        for handle in handles:
            handle.remove()
