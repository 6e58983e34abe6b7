"""A cached forward pass and its gradient caches, per (layer, class) and per class.

Switching class, method or layer on a cached image costs at most one backward: gradients
already taken are kept, bounded in bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .passes import ForwardPass

#: Bytes of gradients kept per capture (oldest dropped first, the newest always kept), so
#: memory stays bounded when classes keep changing. An engine keeps up to ``cache_size`` captures,
#: and a Binder kernel has 1 to 2 GB: at 512 MiB, five classes on the dilated VGG16's 224x224
#: conv5_3 (103 MB a gradient) kept half a gigabyte.
MAX_CACHED_GRADIENT_BYTES = 64 * 1024**2


class _GradientCache(dict):
    """Gradients by key, the oldest dropped first past :data:`MAX_CACHED_GRADIENT_BYTES`
    (a running total: a class switch does not sum over every gradient kept). The gradients
    of the latest backward are always kept, whatever their size: a sweep over every layer
    reads them all after its one backward."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def remember(self, fresh: dict) -> None:
        if not fresh:  # (a lookup that found everything drops nothing)
            return
        for key, value in fresh.items():
            if key in self:
                self.nbytes -= _nbytes(self.pop(key))
            self[key] = value
            self.nbytes += _nbytes(value)
        while self.nbytes > MAX_CACHED_GRADIENT_BYTES and len(self) > len(fresh):
            self.nbytes -= _nbytes(self.pop(next(iter(self))))


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


#: ``refetch(reads)``: the same forward again, recording the layers in ``reads`` and every
#: layer after the shallowest of them (None: from the input, with input gradients).
Refetch = Callable[[Sequence[str] | None], ForwardPass]


class Capture:
    """A forward over N images (N=1 when cached per image) with per-(layer, class) gradient caches.

    A cached image's forward keeps its graph only from the shallowest layer asked for so far
    (its ``root``): a graph down to the input held VGG16's every activation, 0.3 to 1.7 GB an
    image. A request for an earlier layer, or for input gradients, runs the forward again
    from there (``refetch``); gradients already taken are kept.
    """

    def __init__(
        self, key: str, forward: ForwardPass, single_backward: bool = False, refetch: Refetch | None = None
    ) -> None:
        """``single_backward``: the caller takes one gradient only (a batch of noisy or
        interpolated inputs), so the graph is freed during that backward."""
        self.key = key
        self.forward = forward
        self._refetch = refetch
        self._keep_graph = not single_backward
        self.inputs = forward.inputs
        self.logits = forward.logits.detach()
        self.probabilities = torch.softmax(self.logits.float(), dim=1)
        self._host_probabilities: torch.Tensor | None = None
        self._layer_grads = _GradientCache()  # (layer, class) -> gradient
        self._input_grads = _GradientCache()  # (guided, class) -> gradient
        self.backward_calls = 0

    @property
    def host_probabilities(self) -> torch.Tensor:
        """``probabilities`` on the CPU, copied once per capture."""
        if self._host_probabilities is None:
            self._host_probabilities = self.probabilities.cpu()
        return self._host_probabilities

    @property
    def relu_outputs(self):
        return self.forward.relu_outputs

    @property
    def root(self) -> str | None:
        """The layer where the kept graph starts (None: the input)."""
        return self.forward.root

    def reach(self, reads: Sequence[str] | None) -> None:
        """Make sure the layers in ``reads`` (None: the input too) are recorded and in the
        graph: runs the forward again from the shallowest one when they are not."""
        with self.forward.lock:
            self._reach(reads)

    def _reach(self, reads: Sequence[str] | None) -> None:
        if self.forward.root is None:
            return  # the whole graph
        if reads is not None and all(name in self.forward.outputs for name in reads):
            return
        if self._refetch is None:
            raise KeyError(f"this pass has no graph below layer {self.forward.root!r}")
        lock = self.forward.lock
        wanted = None if reads is None else [*reads, self.forward.root]
        self.forward = self._refetch(wanted)
        self.forward.lock = lock
        self.inputs = self.forward.inputs

    def activations(self, layer: str) -> torch.Tensor:
        with self.forward.lock:
            self._reach([layer])
            return self.forward.activations(layer)

    def gradients(self, layers: Sequence[str], class_ids: torch.Tensor) -> list[torch.Tensor]:
        """(K, N, C, h, w) gradients for each layer; missing ones computed in one backward."""
        with self.forward.lock:  # a cached capture is shared: one caller fills its cache at a time
            return self._gradients(layers, class_ids)

    def _gradients(self, layers: Sequence[str], class_ids: torch.Tensor) -> list[torch.Tensor]:
        ids = [int(c) for c in class_ids.tolist()]
        missing_ids = sorted({c for c in ids for layer in layers if (layer, c) not in self._layer_grads})
        missing_layers = [layer for layer in layers if any((layer, c) not in self._layer_grads for c in ids)]
        if missing_ids:
            self._reach(missing_layers)
            self.backward_calls += 1
            wrt = [self.forward.outputs[layer] for layer in missing_layers]
            grads = self.forward.gradients(torch.tensor(missing_ids), wrt, keep_graph=self._keep_graph)
            fresh = {
                (layer, cls): grad[row]
                for layer, grad in zip(missing_layers, grads)
                for row, cls in enumerate(missing_ids)
            }
        else:
            fresh = {}
        found = {
            key: fresh[key] if key in fresh else self._layer_grads[key]
            for key in ((layer, c) for layer in layers for c in ids)
        }
        self._layer_grads.remember(fresh)
        if len(ids) == 1:  # a view, not a copy (one kernel less on a GPU)
            return [found[(layer, ids[0])].unsqueeze(0) for layer in layers]
        return [torch.stack([found[(layer, c)] for c in ids]) for layer in layers]

    def input_gradients(self, class_ids: torch.Tensor, guided: bool = False) -> torch.Tensor:
        """(K, N, 3, H, W) input gradients, plain or guided, cached per class."""
        with self.forward.lock:
            return self._input_gradients(class_ids, guided)

    def _input_gradients(self, class_ids: torch.Tensor, guided: bool) -> torch.Tensor:
        ids = [int(c) for c in class_ids.tolist()]
        missing = sorted({c for c in ids if (guided, c) not in self._input_grads})
        if missing:
            self._reach(None)
            self.backward_calls += 1
            (grad,) = self.forward.gradients(
                torch.tensor(missing), [self.inputs], guided=guided, keep_graph=self._keep_graph
            )
            fresh = {(guided, cls): grad[row] for row, cls in enumerate(missing)}
        else:
            fresh = {}
        found = [fresh[(guided, c)] if (guided, c) in fresh else self._input_grads[(guided, c)] for c in ids]
        self._input_grads.remember(fresh)
        return torch.stack(found)


class ScoreCapture(Capture):
    """A forward whose gradients are those of one score per image, all in one backward:
    methods see (1, N, ...) gradients whose row n is d score(logits)[n] / d (.)[n]. The
    class ids a method passes are ignored: ``score`` holds (a function target)."""

    def __init__(self, forward: ForwardPass, score: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__("", forward)
        self.score = score

    def _gradients(self, layers: Sequence[str], class_ids: torch.Tensor) -> list[torch.Tensor]:
        missing = [layer for layer in layers if (layer, -1) not in self._layer_grads]
        fresh = {}
        if missing:
            grads = self._score_grads([self.forward.outputs[layer] for layer in missing])
            fresh = {(layer, -1): g for layer, g in zip(missing, grads)}
        # read before remembering: the cache may drop older entries to make room
        found = [
            fresh[(layer, -1)] if (layer, -1) in fresh else self._layer_grads[(layer, -1)] for layer in layers
        ]
        self._layer_grads.remember(fresh)
        return found

    def _input_gradients(self, class_ids: torch.Tensor, guided: bool) -> torch.Tensor:
        if (guided, -1) not in self._input_grads:
            self._reach(None)
            (grad,) = self._score_grads([self.inputs], guided)
            self._input_grads.remember({(guided, -1): grad})
        return self._input_grads[(guided, -1)]

    def _score_grads(self, wrt: Sequence[torch.Tensor], guided: bool = False) -> list[torch.Tensor]:
        self.backward_calls += 1
        return self.forward.score_gradients(self.score, wrt, guided=guided)


class PerImageCapture(ScoreCapture):
    """A forward over a batch whose gradients are taken for one class per image, in one
    backward (images of a batch are independent in eval mode, so d sum_n logit[n, c_n] / d x_n
    is d logit[n, c_n] / d x_n)."""

    def __init__(self, forward: ForwardPass, class_ids: torch.Tensor) -> None:
        rows = torch.arange(len(class_ids), device=forward.logits.device)
        ids = class_ids.to(forward.logits.device)
        super().__init__(forward, lambda logits: logits[rows, ids])
        self.per_image = class_ids
