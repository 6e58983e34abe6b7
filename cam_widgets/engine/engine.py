"""The explainer engine: one per model, caching one forward per image.

It turns (model, input tensor, layer(s), class ids) into captures (``capture.py``):
activations, gradients to layers and to the input (plain or guided), logits. Switching
class, method or layer on a cached image costs at most one backward, and one forward the
first time a call reads deeper than the image's graph reaches (an earlier layer, the input).
"""

from __future__ import annotations

import copy
import functools
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import (
    InvalidParameterError,
    MethodNotApplicableError,
    Received,
    UnknownLayerError,
    close_matches,
    expected,
)
from .capture import Capture
from .device import (
    CHANNELS_LAST_CHECK_BYTES,
    CPU_MEMORY_BUDGET,
    DeviceLike,
    accepts_channels_last,
    choose_device,
    cpu_batch_size,
    full_precision,
    limit_cpu_threads,
    module_device,
)
from .folding import Twin, WeightsWatch, build_twin
from .heap import return_freed_memory
from .hooks import RELU_LIKE, evaluation_mode
from .layers import LayerInfo, aliases, spatial_layers
from .layouts import checked_reshape
from .locking import FairLock, lock_for
from .passes import ForwardPass, RootNotReachedError, check_grad_mode, run_forward
from .probe import probing


def _one_pass_at_a_time(method):
    """Runs ``method`` under the engine's lock (see :meth:`Engine.exclusive`)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class Engine:
    """Hooks, autograd, device and cache for one classifier.

    Args:
        model: the classifier; ``owned=True`` when the zoo built it (then it is moved to the
            engine's device), otherwise it is never moved: an explicit other device works on
            a deep copy.
        device: None picks CUDA when available for owned models, the model's own device for
            a caller's model.
        cache_size: how many images keep their forward pass (LRU).
        memory_budget: bytes a batched pass (SmoothGrad, Score-CAM) may use (None: 1/2 of free
            GPU memory on CUDA, ``CPU_MEMORY_BUDGET`` on the CPU).
        fold_batch_norm: run passes that record no pre-BatchNorm conv output on a private
            copy with each BatchNorm folded into its convolution (``engine/folding.py``).
        channels_last: let passes run channels-last: on the CPU when the model gives the same
            logits and gradients that way (checked once), on CUDA the folded copy only.
            False: every pass in PyTorch's plain layout.
        reshape: {layer name: fn} for layers whose output layout is not found on its own
            (``engine/layouts.py``): fn turns the output (N, ...) into (N, C, h, w).

    Any number of threads may use one engine: each pass (a forward, a backward, a probe)
    runs under :meth:`exclusive`, one at a time, in arrival order (``engine/locking.py``
    says why); a caller that runs a fresh pass and its backward as one step holds it around
    both, so at most one such graph is alive at a time.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_size: tuple[int, int] = (224, 224),
        device: DeviceLike = None,
        owned: bool = False,
        cache_size: int = 4,
        memory_budget: int | None = None,
        fold_batch_norm: bool = True,
        channels_last: bool = True,
        reshape: dict | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidParameterError(expected("model", "a torch.nn.Module", model))
        current = module_device(model) or torch.device("cpu")
        if owned:
            self.device = choose_device(device)
            model = model.to(self.device)
        elif device is None or device == "auto":
            self.device = current
        else:
            self.device = choose_device(device)
            if self.device != current:
                model = copy.deepcopy(model).to(self.device)
        if self.device.type == "cpu":
            limit_cpu_threads()  # a class shares its cores (device.cpu_threads says how)
        self.model = model
        self.input_size = tuple(input_size)
        self.cache_size = max(1, int(cache_size))
        self.memory_budget = memory_budget
        self.fold_batch_norm = bool(fold_batch_norm)
        self.channels_last = bool(channels_last)
        self._reshape = checked_reshape(reshape, model)
        self._refused: dict[str, str] = {}  # layers whose layout cannot be told: why
        self._twin: Twin | None = None
        self._twin_key: tuple | None = None
        self._captures: OrderedDict[str, Capture] = OrderedDict()
        self._versions: tuple | None = None  # the weights of the cached forwards
        self._identity: tuple | None = None  # the tensors and modules the probe saw
        self._layers: list[LayerInfo] | None = None
        self._clone: frozenset[str] = frozenset()
        self._aliases: dict[str, str] = {}
        self._has_relu = any(isinstance(m, RELU_LIKE) for m in model.modules())
        self._nhwc = False  # the model's own passes: set by the probe (CPU, layout accepted)
        self._bytes_per_sample = 0
        self._largest_activation = 0
        self.forward_calls = 0
        self._lock: FairLock = lock_for(model)

    def exclusive(self) -> FairLock:
        """The engine's lock (re-entrant): ``with engine.exclusive(): ...`` runs a pass and
        its backward with no other thread's pass in between."""
        return self._lock

    # ----------------------------------------------------------------- layers
    @property
    @_one_pass_at_a_time
    def layers(self) -> list[LayerInfo]:
        """Every module whose output reads as a grid (C, h, w) larger than 1x1 (channels
        first or last, or tokens: ``LayerInfo.layout``), in forward order."""
        if self._layers is None:
            self._probe()
        assert self._layers is not None  # _probe sets them (or raises)
        return list(self._layers)

    def _probe(self) -> None:
        """One forward on a fixed random input (``engine/probe.py``): output shapes, in-place
        victims, memory per sample, and whether the model takes channels-last inputs."""
        check_grad_mode()  # (the model would fail on inference tensors, confusingly)
        example = self._example(1)
        version = example._version
        with evaluation_mode(self.model), torch.no_grad(), probing(self.model) as probe:
            try:
                logits = self.model(example)
            except Exception as error:  # the user's model: say what it was given
                message = (str(error).strip().splitlines() or [""])[0][:200]
                dtypes = {t.dtype for t in self.model.parameters()} - {torch.float32}
                if dtypes:  # a .half() / .double() model: the size is not the problem
                    raise MethodNotApplicableError(
                        f"the model's weights are {', '.join(sorted(map(str, dtypes)))}; "
                        f"explanations run a float32 model: pass model.float()"
                    ) from error
                raise MethodNotApplicableError(
                    f"the model failed on an input of shape {tuple(example.shape)} "
                    f"({type(error).__name__}: {message}); if it expects another size, "
                    f"give it as input_size=(H, W)"
                ) from error
        if example._version != version:  # (a forward graph from the input would refuse it too)
            raise MethodNotApplicableError(
                "the model changes its input in place (e.g. x.mul_(...) in forward); "
                "explanations need the input unchanged: write x = x * ... instead"
            )
        names = {name: module for name, module in self.model.named_modules() if name}
        layers, total, largest, self._refused = spatial_layers(probe, names, self._reshape)
        victims = set(probe.modified_in_place)
        if probe.relus_modified_in_place:
            victims |= {n for n, m in names.items() if isinstance(m, RELU_LIKE)}
        self._clone = frozenset(victims)
        self._modules = list(self.model.named_modules())
        self._weights = WeightsWatch(self._modules)
        self._versions, self._identity = self._weights.stamp()
        self._relu_names = {n for n, m in self._modules if isinstance(m, RELU_LIKE)}
        # a model calling F.relu itself (not through a module): its passes record ReLU-like
        # function calls, which costs ~us per op, so only then
        module_calls = sum(probe.calls.get(n, 0) for n in self._relu_names)
        self._relu_functions = probe.relu_function_calls > module_calls
        self._has_relu = bool(self._relu_names) or self._relu_functions
        self._conv_names = frozenset(n for n, m in self._modules if isinstance(m, nn.Conv2d))
        self._layers = layers
        self._layer_by_name = {info.name: info for info in layers}
        self._layer_index = {info.name: i for i, info in enumerate(layers)}
        self._bytes_per_sample = total
        self._largest_activation = largest
        ids = probe.tensor_ids
        self._final_aliases = (
            [] if not layers else [layer.name for layer in layers if ids[layer.name] == ids[layers[-1].name]]
        )
        self._aliases = aliases(layers, ids, victims)
        # on CUDA only the twin goes channels-last: the model's layout there is unmeasured.
        # The check runs a backward, holding every activation: not for a model whose
        # activations pass CHANNELS_LAST_CHECK_BYTES (the dilated VGG16's: 1.7 GB, 15 s)
        self._nhwc = False
        with evaluation_mode(self.model, self._modules):
            self._nhwc = (
                self.channels_last
                and self.device.type == "cpu"
                and isinstance(logits, torch.Tensor)
                and total <= CHANNELS_LAST_CHECK_BYTES
                and accepts_channels_last(self.model, example, logits)
            )
        return_freed_memory()  # the check's backward held every activation

    def _reprobe(self) -> None:
        """The model changed under the engine (a swapped module, replaced or moved tensors):
        forget what was derived from it, follow its device, and probe it again."""
        self.device = module_device(self.model) or self.device
        self._captures.clear()
        self._twin = self._twin_key = None
        self._probe()

    @property
    @_one_pass_at_a_time
    def default_layer(self) -> str:
        """The last spatial layer; among modules returning that very tensor (``layer4`` and
        ``layer4.2``, ``features`` and ``features.8``), the deepest block. A vision
        transformer's: the norm before its last attention (see _before_last_attention)."""
        layers = self.layers
        if not layers:
            raise UnknownLayerError("this model has no layer with a spatial output larger than 1x1")
        modules = dict(self.model.named_modules())
        if layers[-1].layout == "tokens+cls":  # (ViT, DeiT: see _before_last_attention)
            before = self._before_last_attention(layers, modules)
            if before is not None:
                return before
        blocks = [n for n in self._final_aliases if any(True for _ in modules[n].children())]
        return max(blocks, key=lambda n: n.count(".")) if blocks else self._final_aliases[-1]

    @staticmethod
    def _before_last_attention(layers: list[LayerInfo], modules: dict) -> str | None:
        """The first token layer of the block holding the last attention (its norm before
        attention: torchvision's ``ln_1``, timm's ``norm1``, where pytorch-grad-cam's ViT
        example reads). After the last attention only the class token reaches the head, so
        the patch tokens of the last layers get no gradient and every map there is empty."""
        attention = [
            name
            for name, module in modules.items()
            if isinstance(module, nn.MultiheadAttention)
            or type(module).__name__.lower().endswith("attention")
        ]
        if not attention:
            return None
        block = attention[-1].rpartition(".")[0]
        inside = [
            info.name for info in layers if info.name.startswith(block + ".") and info.layout == "tokens+cls"
        ]
        return inside[0] if inside else None

    @_one_pass_at_a_time
    def check_layer(self, layer: str) -> LayerInfo:
        """The LayerInfo for ``layer`` or a clear error with close matches."""
        if self._layers is None:
            self._probe()
        if not isinstance(layer, str):
            named = [n for n, m in self.model.named_modules() if m is layer and n]
            raise UnknownLayerError(
                expected(
                    "layer",
                    f"a layer given by its name, a str such as {self.default_layer!r}",
                    Received(f"the module itself, here {named[0]!r}") if named else layer,
                )
            )
        by_name = self._layer_by_name
        if layer in by_name:
            return by_name[layer]
        if layer in self._refused:
            raise UnknownLayerError(self._refused[layer])
        modules = dict(self.model.named_modules())
        if layer in modules and layer:
            raise UnknownLayerError(
                f"layer {layer!r} has no spatial output (it is 1x1, no grid or tokens, or "
                f"called more than once), so there is no map to show; spatial layers end with "
                f"{', '.join(repr(info.name) + ' (' + info.resolution + ')' for info in self.layers[-3:])}"
            )
        raise UnknownLayerError(
            expected(
                "layer",
                f"one of the {len(by_name)} spatial layers listed by layers()",
                Received(f"{layer!r}, which is not in this model"),
                close_matches(layer, by_name),
                problem="Unknown layer",
            )
        )

    # ---------------------------------------------------------------- forward
    @_one_pass_at_a_time
    def capture(self, inputs: torch.Tensor, key: str, reads: Sequence[str] | None = None) -> Capture:
        """The cached forward of one preprocessed image (1, 3, H, W).

        ``reads``: the layers the caller will read (activations or gradients; empty: the
        default layer); the graph is kept from the shallowest of them on, the layers after
        it recorded. None: from the input, with input gradients. A cached forward without
        them runs again from there (see :class:`~.capture.Capture`).
        """
        check_grad_mode()  # a cached forward's graph cannot be used in inference mode either
        if self._layers is None:
            self._probe()
        versions, identity = self._weights.stamp()
        if identity != self._identity:  # modules or tensors replaced, moved: probe anew
            self._reprobe()
        elif versions != self._versions:  # weights written in place (optimizer step, load)
            self._captures.clear()
            self._versions = versions
        if key in self._captures:
            self._captures.move_to_end(key)
            capture = self._captures[key]
            capture.reach(reads)
            return capture
        engine = weakref.ref(self)  # (a capture kept by the engine does not keep it alive)
        inputs = inputs.detach().clone()  # a forward run again reads these pixels, not the caller's

        def refetch(wanted: Sequence[str] | None) -> ForwardPass:
            owner = engine()
            if owner is None:
                raise MethodNotApplicableError(
                    "this capture's engine is gone, and its graph does not reach that layer; "
                    "keep the Engine (or Explainer) while using its captures"
                )
            return owner._image_forward(inputs, wanted)

        capture = Capture(key, self._image_forward(inputs, reads), refetch=refetch)
        self._captures[key] = capture
        while len(self._captures) > self.cache_size:
            self._captures.popitem(last=False)
        return capture

    @_one_pass_at_a_time
    def _image_forward(self, inputs: torch.Tensor, reads: Sequence[str] | None) -> ForwardPass:
        """An image's forward rooted at the shallowest layer of ``reads``, recording it and every
        layer after it (None: from the input, with ReLU outputs for guided backprop). On the
        model itself, never the folded twin (a copy, which would also miss changes to plain
        attributes its forward reads, a temperature...)."""
        layers = self._layers
        assert layers is not None  # capture() probes the model before any image forward
        root = self._root(reads)
        start = 0 if root is None else self._layer_index[root]
        # a layer whose tensor an earlier layer returned (its alias owner) is not in this graph
        names = [
            layer.name
            for layer in layers[start:]
            if self._layer_index[self._aliases.get(layer.name, layer.name)] >= start
        ]
        try:
            return self.run(
                inputs, names, record_relus=self._has_relu and root is None, root=root, folded=False
            )
        except RootNotReachedError:  # a forward that skips layers: keep all of it
            return self.run(
                inputs, [layer.name for layer in layers], record_relus=self._has_relu, folded=False
            )

    def _root(self, reads: Sequence[str] | None) -> str | None:
        """The shallowest layer of ``reads`` (the default layer when empty; None: None), as
        the first layer returning its tensor."""
        if reads is None:
            return None
        names = [self.check_layer(name).name for name in reads] or [self.default_layer]
        owners = [self._aliases.get(name, name) for name in names]
        return min(owners, key=self._layer_index.__getitem__)

    @_one_pass_at_a_time
    def run(
        self,
        inputs: torch.Tensor,
        layers: Sequence[str],
        record_relus: bool = False,
        autocast_dtype: torch.dtype | None = None,
        check_finite: bool = True,
        root: str | None = None,
        folded: bool = True,
    ) -> ForwardPass:
        """A fresh (uncached) forward over a batch, keeping the graph for gradients.

        ``autocast_dtype``: mixed precision for this pass (SmoothGrad's noisy batches);
        ``check_finite`` False: no NaN check of the logits (it would wait for the GPU).
        ``root``: a layer where the graph starts (recorded too); None: at the input.
        ``folded`` False: on the model itself, never its BatchNorm-folded twin.
        """
        if self._layers is None:
            self._probe()
        self.forward_calls += 1
        root = None if root is None else self._aliases.get(root, root)
        recorded = list(
            dict.fromkeys([self._aliases.get(name, name) for name in layers] + ([root] if root else []))
        )
        model, modules, inputs, clone = self._runner(recorded, inputs, folded)
        with evaluation_mode(self.model, self._modules):
            forward = run_forward(
                model,
                inputs,
                recorded,
                clone & (set(recorded) | self._relu_names),
                record_relus,
                modules,
                autocast_dtype,
                check_finite,
                self._relu_functions,
                root,
            )
        for name in layers:  # an alias's output is the very tensor its first module returned
            if name in self._aliases:
                forward.outputs[name] = forward.outputs[self._aliases[name]]
        forward.lock = self._lock  # its backwards too run one at a time with other passes
        return forward

    def _example(self, batch: int) -> torch.Tensor:
        """A fixed random input batch on the engine's device (probe, twin validation)."""
        return torch.randn((batch, 3) + self.input_size, generator=torch.Generator().manual_seed(0)).to(
            self.device
        )

    def _runner(
        self, recorded: Sequence[str], inputs: torch.Tensor, folded: bool = True
    ) -> tuple[nn.Module, list, torch.Tensor, frozenset[str]]:
        """(the model, or with ``folded`` its BatchNorm-folded twin when no recorded layer is a
        convolution, whose own pre-BatchNorm output the twin lacks; its named modules;
        ``inputs`` on the device in its layout; the modules whose recorded output a later
        in-place op would overwrite: a pass records those and passes a copy on)."""
        twin = self._folded_twin() if folded and self._conv_names.isdisjoint(recorded) else None
        if twin is None:
            model, modules, channels_last, clone = self.model, self._modules, self._nhwc, self._clone
        else:
            model, modules, channels_last = twin.model, twin.modules, twin.channels_last
            clone = self._clone | twin.feeds_inplace
        inputs = inputs.to(self.device)
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return model, modules, inputs, clone

    def _folded_twin(self) -> Twin | None:
        """The BatchNorm-folded twin of the model as it is now (rebuilt after a change to its
        weights, modules or hooks), or None: folding is off, or the model has nothing to fold
        or cannot be folded safely."""
        if not self.fold_batch_norm:
            return None
        key = self._weights.stamp() + (self._weights.hooks(),)
        if key != self._twin_key:
            self._twin = None  # the old copy goes before the new one is made
            example = self._example(2)
            with evaluation_mode(self.model, self._modules):
                # channels-last: 1.4x faster folded depthwise convs on an H100 (fp16), and
                # faster oneDNN convolutions on the CPU when the model accepts that layout
                self._twin = build_twin(
                    self.model,
                    self._modules,
                    example,
                    channels_last=(self._nhwc or self.channels_last and self.device.type == "cuda"),
                )
            self._twin_key = key
        return self._twin

    @_one_pass_at_a_time
    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits for a batch without a graph (Score-CAM's masked inputs)."""
        if self._layers is None:
            self._probe()
        model, _, inputs, _ = self._runner((), inputs)
        with evaluation_mode(self.model, self._modules), torch.no_grad(), full_precision(self.device):
            return model(inputs)

    @property
    @_one_pass_at_a_time
    def has_relu(self) -> bool:
        """Whether the model has ReLU-like activations (modules, or functions it calls)."""
        if self._layers is None:
            self._probe()
        return self._has_relu

    @_one_pass_at_a_time
    def batch_size_for(self, per_sample_factor: float = 2.0, requested: int | None = None) -> int:
        """How many samples fit the memory budget in one batched pass with its backward (on
        the CPU, also what runs fastest). ``requested``: the caller's own batch size, capped
        at what the budget holds (a batch of thousands would exhaust the machine)."""
        fits = self._fits_budget(per_sample_factor)
        if requested is not None:
            return max(1, min(int(requested), fits))
        if self.device.type == "cuda":
            return fits
        return cpu_batch_size(fits, self._largest_activation, self._nhwc)

    def _fits_budget(self, per_sample_factor: float) -> int:
        if self._layers is None:
            self._probe()
        budget = self.memory_budget
        if budget is None:
            if self.device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(self.device)
                budget = free // 2
            else:
                budget = CPU_MEMORY_BUDGET
        per_sample = max(1, int(self._bytes_per_sample * per_sample_factor))
        return max(1, int(budget // per_sample))

    @_one_pass_at_a_time
    def clear_cache(self) -> None:
        """Forget the cached forwards and the folded twin: call it after writing weights in
        place through ``.data``, which autograd's version counters do not see."""
        self._captures.clear()
        self._twin = self._twin_key = None
