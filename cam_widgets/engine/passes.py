"""A forward pass whose autograd graph is kept, and gradients taken from it.

Gradients come from ``torch.autograd.grad`` on the recorded tensors: no parameter ``.grad``
is written, frozen models work, and ``torch.no_grad()`` around the caller does not matter.
Several classes are one batched backward (``is_grads_batched``): rows of one-hot grad outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import InvalidParameterError, MethodNotApplicableError, Received, expected
from .device import full_precision
from .hooks import guided_relu_gradients, record_outputs
from .locking import FairLock


class ForwardPass:
    """One forward over a batch of N inputs, with the tensors needed for gradients.

    Attributes:
        inputs: (N, 3, H, W) leaf tensor that requires grad.
        logits: (N, num_classes), attached to the graph.
        outputs: recorded module outputs by name, attached to the graph.
        relu_outputs: outputs of every ReLU-like module (or function) call, for guided backprop.
        mixed: whether the forward ran under autocast (then its backward may use TF32 too).
        lock: held around each backward; the engine gives its passes its own lock, so that
            no other pass on the model runs in between.
        root: the recorded layer where the graph starts (None: at ``inputs``); only layers
            from there on are in ``outputs``, and there are no input gradients.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        logits: torch.Tensor,
        outputs: dict[str, torch.Tensor],
        relu_outputs: list[object],
        mixed: bool = False,
        lock: FairLock | None = None,
        root: str | None = None,
    ) -> None:
        self.lock = FairLock() if lock is None else lock
        self.root = root
        self.inputs = inputs
        self.logits = logits
        self.outputs = outputs
        self.relu_outputs = relu_outputs
        self.mixed = mixed

    @property
    def batch_size(self) -> int:
        return int(self.inputs.shape[0])

    def activations(self, layer: str) -> torch.Tensor:
        """(N, C, h, w) output of ``layer``, detached."""
        return self.outputs[layer].detach()

    def gradients(
        self,
        class_ids: torch.Tensor,
        wrt: Sequence[torch.Tensor],
        guided: bool = False,
        keep_graph: bool = True,
    ) -> list[torch.Tensor]:
        """d logit[class] / d tensor for each tensor in ``wrt``: each (K, N, *tensor.shape[1:]).

        One backward for all K classes and all tensors. ``keep_graph`` keeps the graph for
        later calls; a pass that needs one backward only lets autograd free it on the way,
        which on the CPU makes a batched backward ~1.3x faster (memory is reused hot).
        """
        if guided and not self.relu_outputs:
            raise MethodNotApplicableError(
                "guided backprop needs ReLU-like activations (nn.ReLU, nn.ReLU6, F.relu, ...) "
                "and this model has none; use 'vanilla' or 'integrated_gradients' instead"
            )
        num_k = int(class_ids.numel())
        context = guided_relu_gradients(self.relu_outputs) if guided else _null_context()
        with self.lock, torch.enable_grad(), context, full_precision(self.logits.device, not self.mixed):
            if num_k == 1:  # rows are independent in eval mode: d sum_n logit[n, c] / d x_n
                score = self.logits[:, int(class_ids.reshape(-1)[0])].sum()
                plain = torch.autograd.grad(score, list(wrt), retain_graph=keep_graph, allow_unused=True)
                grads: list[torch.Tensor | None] = [None if g is None else g.unsqueeze(0) for g in plain]
            else:  # keeps the graph: the loop fallback needs it after a failed vmap
                one_hot = torch.zeros(
                    (num_k,) + tuple(self.logits.shape), dtype=self.logits.dtype, device=self.logits.device
                )
                one_hot[torch.arange(num_k), :, class_ids.to(self.logits.device)] = 1.0
                grads = _batched_grad(self.logits, list(wrt), one_hot)
        return [
            torch.zeros((num_k,) + tuple(t.shape), dtype=t.dtype, device=t.device) if g is None else g
            for g, t in zip(grads, wrt)
        ]

    def score_gradients(
        self, score: Callable[[torch.Tensor], torch.Tensor], wrt: Sequence[torch.Tensor], guided: bool = False
    ) -> list[torch.Tensor]:
        """d score(logits)[n] / d tensor[n] for each tensor in ``wrt``: each
        (1, N, *tensor.shape[1:]), one backward for the batch (rows are independent in eval
        mode). ``score`` maps the (N, classes) logits to one score per image: a class per
        image (``logits[rows, ids]``), a contrast, a probability... The graph is kept
        (methods of one batch share it)."""
        if guided and not self.relu_outputs:
            raise MethodNotApplicableError(
                "guided backprop needs ReLU-like activations (nn.ReLU, nn.ReLU6, F.relu, ...) "
                "and this model has none; use 'vanilla' or 'integrated_gradients' instead"
            )
        context = guided_relu_gradients(self.relu_outputs) if guided else _null_context()
        with self.lock, torch.enable_grad(), context, full_precision(self.logits.device, not self.mixed):
            try:
                scores = score(self.logits)
            except Exception as error:  # the caller's function: say it was it, in one line
                first = (str(error).strip().splitlines() or [""])[0][:160]
                raise InvalidParameterError(
                    f"the target function raised {type(error).__name__}: {first} (it is given "
                    f"the ({self.logits.shape[0]}, {self.logits.shape[1]}) logits and returns "
                    f"one score per image)"
                ) from error
            check_scores(scores, self.logits)
            grads = torch.autograd.grad(scores.sum(), list(wrt), retain_graph=True, allow_unused=True)
        return [torch.zeros_like(t)[None] if g is None else g[None] for g, t in zip(grads, wrt)]


def check_scores(scores: object, logits: torch.Tensor) -> None:
    """A target function's result: one score per image, on the logits' graph."""
    rows = logits.shape[0]
    if (
        not isinstance(scores, torch.Tensor)
        or scores.shape not in ((rows,), (rows, 1))
        or not scores.is_floating_point()
    ):
        got = (
            f"a tensor of shape {tuple(scores.shape)}"
            if isinstance(scores, torch.Tensor)
            else type(scores).__name__
        )
        raise InvalidParameterError(
            expected(
                "target function",
                f"one score per image, a float tensor of shape ({rows},) "
                f"from the ({rows}, {logits.shape[1]}) logits it is given",
                Received(got),
                "e.g. lambda logits: logits[..., 282] - logits[..., 285]",
            )
        )
    if not scores.requires_grad:
        raise InvalidParameterError(
            "a target function's scores must be computed from the logits it is given (they "
            "carry no gradient: was the result detached, or made with torch.no_grad?)"
        )


def _batched_grad(
    logits: torch.Tensor, wrt: list[torch.Tensor], one_hot: torch.Tensor
) -> list[torch.Tensor | None]:
    """K backwards in one vmapped call; falls back to a loop for ops vmap cannot batch."""
    try:
        return list(
            torch.autograd.grad(
                logits, wrt, one_hot, retain_graph=True, allow_unused=True, is_grads_batched=True
            )
        )
    except RuntimeError:
        rows = [
            torch.autograd.grad(logits, wrt, row, retain_graph=True, allow_unused=True) for row in one_hot
        ]
        return [None if rows[0][i] is None else torch.stack([r[i] for r in rows]) for i in range(len(wrt))]


class _null_context:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def check_grad_mode() -> None:
    """A one-line error inside ``torch.inference_mode()``, where no gradient can be had
    (checked before a cached forward is reused, and before a model's first call)."""
    if torch.is_inference_mode_enabled():
        raise MethodNotApplicableError(
            "gradients cannot be computed inside torch.inference_mode(); call cam_widgets "
            "outside it (torch.no_grad() is fine)"
        )


def run_forward(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: Sequence[str],
    clone: frozenset[str],
    record_relus: bool,
    modules: Sequence[tuple[str, nn.Module]] | None = None,
    autocast_dtype: torch.dtype | None = None,
    check_finite: bool = True,
    relu_functions: bool = False,
    root: str | None = None,
) -> ForwardPass:
    """Run ``model`` on ``inputs`` (N, 3, H, W) recording ``layers`` (and ReLU outputs).

    ``autocast_dtype`` (float16 / bfloat16) runs the forward under ``torch.autocast``; the
    input leaf stays float32, so input gradients come back in float32. ``check_finite``
    False skips the NaN check of the logits, which waits for the GPU: a batch pass checks
    its final map instead, and the backward is queued while the forward still runs.
    ``relu_functions``: see :func:`~.hooks.record_outputs` (a model that calls ``F.relu``
    itself). ``root``: the recorded layer where the graph starts (see
    :func:`~.hooks.record_outputs`); None: at the input, for input gradients.
    """
    check_grad_mode()
    leaf = inputs.detach().requires_grad_(root is None)
    autocast = torch.autocast(
        inputs.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
    )
    with (
        torch.set_grad_enabled(root is None),
        autocast,
        full_precision(inputs.device, autocast_dtype is None),
        record_outputs(model, layers, clone, record_relus, modules, relu_functions, root) as rec,
    ):
        logits = model(leaf)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise MethodNotApplicableError(
            expected(
                "model output",
                "logits of shape (N, num_classes)",
                Received(str(shape)),
                "wrap the model so forward returns one 2-D tensor",
            )
        )
    if check_finite and not torch.isfinite(logits).all():
        raise MethodNotApplicableError(
            "the model returned NaN or infinite logits for this image; nothing can be explained"
        )
    if root is not None and root not in rec.outputs:  # (a forward that skipped it)
        raise RootNotReachedError(f"layer {root!r} did not run in this forward")
    return ForwardPass(
        leaf, logits, dict(rec.outputs), list(rec.relu_outputs), mixed=autocast_dtype is not None, root=root
    )


class RootNotReachedError(RuntimeError):
    """A rooted forward never ran its root: the caller runs it again from the input."""
