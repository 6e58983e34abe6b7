"""The public Explainer: a zoo or user model, its engine, and method calls returning Explanations."""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import load_image, resize_for_model
from .data.named import bundled_name, load_named
from .engine import Engine, LayerInfo, ScoreCapture, gives_back_memory
from .engine.locking import FairLock
from .errors import InvalidImageError, InvalidParameterError, MethodNotApplicableError, Received, expected
from .methods import (
    PER_IMAGE_NEEDS,
    READS_INPUT,
    MethodContext,
    MethodOutput,
    Smoothing,
    batch_raw_maps,
    get_method,
    rooted_batch,
    smooth,
    upsampled,
)
from .models import ModelSpec, imagenet_labels, imagenet_preprocess, load_model, resolve_class
from .models.targets import Contrast, is_score_target, score_label
from .models.transforms import ImageTransform, adapt_preprocess, is_torchvision_transform, weights_metadata
from .render import normalize_map
from .result import Explanation

#: A class id, a class name, None (the top class), or a function of the (N, classes) logits
#: returning one score per image (``cw.contrast(a, b)``, ``lambda z: z[..., a] - z[..., b]``).
Target = int | str | None | Callable


@dataclass(frozen=True)
class Prediction:
    class_id: int
    label: str
    probability: float


@dataclass(frozen=True)
class PreparedImage:
    """An image as the model sees it: the resized RGB (None for raw tensors) and its tensor."""

    rgb: np.ndarray | None
    tensor: torch.Tensor
    key: str


#: Largest model input side: a larger probe input would exhaust memory before any error.
MAX_INPUT_SIDE = 4096


def checked_input_size(size) -> tuple[int, int]:
    """``size`` (one int or (height, width)) as two ints in 1..MAX_INPUT_SIDE, or a one-line error."""
    pair = (size, size) if isinstance(size, numbers.Integral) else size
    if not (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and 1 <= s <= MAX_INPUT_SIDE
            for s in pair
        )
    ):
        raise InvalidParameterError(
            expected("input_size", f"(height, width), two ints in 1..{MAX_INPUT_SIDE}, or one int", size)
        )
    return int(pair[0]), int(pair[1])


class Explainer:
    """Explain one classifier: layers, predictions and every registered method.

    Args:
        model: a zoo name (``"efficientnet_lite0"``, ``"vgg16"`` ...), a ModelSpec, or any
            ``nn.Module`` classifier returning logits (never mutated; see Engine).
        device: None for CUDA when available (zoo names) or the model's own device (a
            caller's nn.Module or ModelSpec, which is never moved in place: an explicit other
            device runs on a copy).
        weights_path: a weight file for a zoo name (see :func:`~cam_widgets.models.load_model`).
        preprocess, labels, input_size, default_layer, input_range: for a plain nn.Module
            (defaults: ImageNet normalisation and labels, 224x224, the last spatial layer).
            ``preprocess`` takes an RGB uint8 array resized to ``input_size``, or is a
            torchvision transform (v1, v2, ``Weights.transforms()``) or any callable taking a
            PIL image: then it gets the whole photo, its own resize and crop set the input
            size, and maps are drawn over the image the model saw.
        weights: a torchvision weights member (``ResNet18_Weights.IMAGENET1K_V1``) whose
            ``transforms()`` and ``meta["categories"]`` give ``preprocess`` and ``labels``
            (the model's own weights are the caller's to load).
        fold_batch_norm: batched passes run on a private copy with BatchNorms folded into
            their convolutions (see ``engine/folding.py``); False runs everything on the model.
        channels_last: False keeps every pass in PyTorch's plain layout (see Engine).
        reshape: {layer name: fn}, fn turning that layer's output into (N, C, h, w), for a
            layout ``layers()`` does not read on its own (see ``engine/layouts.py``).
    """

    def __init__(
        self,
        model: str | ModelSpec | nn.Module = "efficientnet_lite0",
        *,
        device=None,
        preprocess: Callable | None = None,
        labels: Sequence[str] | None = None,
        input_size=(224, 224),
        default_layer: str | None = None,
        input_range=None,
        memory_budget: int | None = None,
        fold_batch_norm: bool = True,
        channels_last: bool = True,
        weights_path=None,
        weights=None,
        reshape: dict | None = None,
    ) -> None:
        owned = isinstance(model, str)  # a caller's module or ModelSpec is never moved in place
        if weights is not None:
            if not isinstance(model, nn.Module):
                raise InvalidParameterError(
                    expected(
                        "model",
                        "an nn.Module",
                        model,
                        problem="'weights' describes a torchvision model given as an nn.Module",
                    )
                )
            from_weights, from_meta = weights_metadata(weights)
            preprocess = preprocess if preprocess is not None else from_weights
            labels = labels if labels is not None else from_meta
        if isinstance(model, str):
            model = load_model(model, weights_path=weights_path)
        elif weights_path is not None:
            raise InvalidParameterError(
                expected(
                    "weights_path",
                    "a model given as a zoo name such as 'vgg16'",
                    Received(f"a {type(model).__name__}"),
                    "load the weights into it yourself",
                    problem="'weights_path' goes with a zoo name",
                )
            )
        if isinstance(model, nn.Module):
            size = checked_input_size(input_size)
            chosen = imagenet_preprocess if preprocess is None else adapt_preprocess(preprocess, size)
            if isinstance(chosen, ImageTransform):  # its own resize and crop decide, if any
                size = chosen.input_size if chosen.sizes_itself else size
                input_range = input_range or chosen.input_range
            model = ModelSpec(
                name=type(model).__name__,
                model=model,
                preprocess=chosen,
                labels=list(labels) if labels is not None else imagenet_labels(),
                input_size=size,
                default_layer=default_layer,
                input_range=tuple(input_range) if input_range else (-2.1179, 2.64),
            )
        elif (
            isinstance(model, ModelSpec)
            and not isinstance(model.preprocess, ImageTransform)
            and is_torchvision_transform(model.preprocess)
        ):
            transform = ImageTransform(model.preprocess)
            size = transform.input_size if transform.sizes_itself else model.input_size
            model = dataclasses.replace(model, preprocess=transform, input_size=size)
        elif not isinstance(model, ModelSpec):
            raise InvalidParameterError(expected("model", "a zoo name, a ModelSpec or an nn.Module", model))
        checked_input_size(model.input_size)  # (a user's ModelSpec too)
        if isinstance(model.model, torch.jit.ScriptModule):  # hooks never run on scripted code
            raise MethodNotApplicableError(
                f"'model' is a TorchScript module ({type(model.model).__name__}): its compiled "
                f"forward runs no Python hooks, so no layer can be read; pass the nn.Module "
                f"it was scripted from (torch.jit.script/trace keep the original as your code)"
            )
        self.spec = model
        self.engine = Engine(
            model.model,
            input_size=model.input_size,
            device=device,
            owned=owned,
            memory_budget=memory_budget,
            fold_batch_norm=fold_batch_norm,
            channels_last=channels_last,
            reshape=reshape,
        )
        self._tensor_memo = None  # (weakref to the last tensor, (version, bytes), key)
        self._source_memo: OrderedDict[tuple, PreparedImage] = OrderedDict()
        self._memo_lock = threading.Lock()  # threads share the memo (decoding runs outside it)

    # ------------------------------------------------------------- metadata
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> Sequence[str]:
        return self.spec.labels

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def layers(self) -> list[LayerInfo]:
        """Spatial layers in forward order, with their output resolution."""
        return self.engine.layers

    @property
    def default_layer(self) -> str:
        return self.spec.default_layer or self.engine.default_layer

    def resolve_layer(self, layer: str | None) -> str:
        name = self.default_layer if layer is None else layer
        return self.engine.check_layer(name).name

    def resolve_class(self, target: Target, capture=None) -> int:
        if target is None:
            return int(capture.logits[0].argmax()) if capture is not None else 0
        return resolve_class(target, self.labels)

    def layer_info(self, layer: str | None = None) -> LayerInfo:
        """What ``layer`` is (None: the default layer): its name, kind, channels, layout and
        output ``resolution`` ("14x14"); an UnknownLayerError naming close matches otherwise."""
        return self.engine.check_layer(self.default_layer if layer is None else layer)

    # ----------------------------------------------------------------- model
    @property
    def model(self) -> nn.Module:
        """The ``nn.Module`` this Explainer runs: the one it was given, or its copy on
        ``device`` when another device was asked for (see the class's ``device``)."""
        return self.engine.model

    def exclusive(self) -> FairLock:
        """The model's lock (re-entrant, shared by every Explainer of this model):
        ``with explainer.exclusive(): ...`` runs while no other thread runs a pass on the
        model (to copy or change it while widgets share it)."""
        return self.engine.exclusive()

    def clear_cache(self) -> None:
        """Forget the cached forward passes (and the BatchNorm-folded copy of the model):
        call it after writing the model's weights in place through ``.data``, which the
        cache cannot see (a plain in-place write, an optimizer step, is seen)."""
        self.engine.clear_cache()

    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """The logits (N, classes) of a batch of preprocessed inputs (N, 3, H, W), on the
        explainer's device: one forward without an autograd graph, in full precision, not
        cached, with no other thread's pass in between (perturbed or masked copies of an
        image: faithfulness metrics, timings)."""
        _check_batch(inputs)
        return self.engine.scores(inputs)

    def batch_size(self, requested: int | None = None, *, per_image: float = 1.0) -> int:
        """How many images one batched pass should take: what fits the memory budget (on
        the CPU, also what runs fastest), or ``requested`` capped at that. ``per_image``:
        what one image holds, in copies of its forward's activations (1.0: a pass without a
        backward, as :meth:`scores`; 2.0: a forward with its backward)."""
        if requested is not None and (
            isinstance(requested, bool) or not isinstance(requested, int) or requested < 1
        ):
            raise InvalidParameterError(expected("requested", "an int >= 1 or None", requested))
        return self.engine.batch_size_for(per_image, requested=requested)

    def batch_raw_maps(
        self,
        inputs: torch.Tensor,
        class_ids: Sequence[int] | None,
        methods: Sequence[Any],
        layer: str | None,
        method_params: dict | None = None,
    ) -> tuple[dict[str, MethodOutput], torch.Tensor, list[int], list[int]]:
        """Raw maps of several methods for one batch of preprocessed inputs (N, 3, H, W), on
        the batched path :meth:`explain_batch` takes (``methods/batch.py``), its passes and
        backwards as one step under the model's lock.

        Args:
            class_ids: one class id per image, or None for each image's top class.
            methods: method names or MethodSpecs (``get_method(name)``).
            layer: the layer of the methods that read one (None: the default layer).
            method_params: {method name: its parameters}.

        Returns:
            (outputs {name: MethodOutput, maps (1, N, h, w): row n for image n's class, on the
            device}, probabilities (N, classes) on the device, top1 [int], class ids [int]).
        """
        _check_batch(inputs)
        if class_ids is not None and len(class_ids) != inputs.shape[0]:
            raise InvalidParameterError(
                expected("class_ids", f"one class id per image ({inputs.shape[0]}) or None", class_ids)
            )
        specs = [get_method(m) if isinstance(m, str) else m for m in methods]
        chosen_layer = self.resolve_layer(layer) if any(s.needs_layer for s in specs) else None
        with self.engine.exclusive():
            return batch_raw_maps(self.engine, inputs, class_ids, specs, chosen_layer, method_params)

    # ---------------------------------------------------------------- images
    def prepare(self, image: Any) -> PreparedImage:
        """Load, resize and preprocess an image once (a sample name, path, URL, array, PIL
        image, or an already preprocessed tensor of shape (3, H, W) or (1, 3, H, W))."""
        if isinstance(image, torch.Tensor):
            if image.dtype == torch.uint8:  # torchvision.io.read_image's: a 0..255 RGB image
                return self.prepare(_uint8_tensor_to_rgb(image))
            return self._prepare_tensor(image)
        source = _source_key(image)
        with self._memo_lock:
            if source is not None and source in self._source_memo:
                self._source_memo.move_to_end(source)
                return self._source_memo[source]
        rgb = load_named(image) if isinstance(image, str) else load_image(image)
        transform = self.spec.preprocess
        if isinstance(transform, ImageTransform) and transform.sizes_itself:  # resizes, crops
            key = _image_key(rgb)
            tensor = transform(rgb).unsqueeze(0)
            if tuple(tensor.shape[-2:]) != tuple(self.spec.input_size):
                raise InvalidImageError(
                    f"'preprocess' made a {tuple(tensor.shape[-2:])} input of this "
                    f"{rgb.shape[1]}x{rgb.shape[0]} photo, not the {tuple(self.spec.input_size)} "
                    f"it made when the Explainer was built: end it with a fixed size "
                    f"(Resize then CenterCrop, as Weights.transforms() does)"
                )
            rgb = transform.seen_image(tensor)  # maps are drawn over what it saw
        else:
            rgb = resize_for_model(rgb, self.spec.input_size)
            key = _image_key(rgb)
            tensor = self.spec.preprocess(rgb).unsqueeze(0)
        rgb.setflags(write=False)  # shared by every result of this image (and the memo)
        prepared = PreparedImage(rgb, tensor, key)
        if source is not None:  # a file, URL or sample named again is not decoded again
            with self._memo_lock:
                self._source_memo[source] = prepared
                while len(self._source_memo) > self.engine.cache_size:
                    self._source_memo.popitem(last=False)
        return prepared

    def _prepare_tensor(self, image: torch.Tensor) -> PreparedImage:
        if image.layout != torch.strided or image.device.type == "meta":
            raise InvalidImageError(
                expected(
                    "tensor image",
                    "a dense tensor with values",
                    Received(f"a {image.layout} tensor on {image.device.type}"),
                )
            )
        if not image.is_floating_point():  # (an int64 0..255 image explained as normalised)
            raise InvalidImageError(
                expected(
                    "tensor image",
                    "float (preprocessed, shape (1, 3, H, W)) or uint8 "
                    "(a 0..255 RGB image, as torchvision.io.read_image gives)",
                    Received(f"dtype {image.dtype}"),
                    "for another kind, pass a numpy (H, W, 3) array",
                )
            )
        tensor = image.detach()
        if tensor.dim() == 3:
            tensor = tensor.unsqueeze(0)
        shape = (1, 3) + tuple(self.spec.input_size)
        if tuple(tensor.shape) != shape:
            raise InvalidImageError(
                expected(
                    "tensor image",
                    f"a preprocessed tensor of shape {shape}",
                    Received(f"shape {tuple(image.shape)}"),
                )
            )
        tensor = tensor.float()
        values = np.ascontiguousarray(tensor.cpu().numpy())
        # The same tensor object passed again (the usual loop over classes or methods) is
        # recognised by identity, autograd version and its bytes (a copy compared: 25 us for
        # 224x224, where a CRC took 145 us; edits through a numpy view bump no version), so
        # the strong hash (~0.3 ms) and the finiteness check run once per tensor.
        try:
            stamp = (image._version, values.tobytes())
        except RuntimeError:  # inference-mode tensors have no version counter
            stamp = None
        memo = self._tensor_memo
        if stamp is not None and memo is not None and memo[0]() is image and memo[1] == stamp:
            return PreparedImage(None, tensor, memo[2])
        if not np.isfinite(values).all():  # numpy: ~10x faster than torch on a small CPU tensor
            raise InvalidImageError(
                expected("image tensor", "finite values", Received("NaN or infinite values"))
            )
        key = "t" + hashlib.sha1(values.data).hexdigest()
        self._tensor_memo = None if stamp is None else (weakref.ref(image), stamp, key)
        return PreparedImage(None, tensor, key)

    def capture(self, image: Any, reads: Sequence[str] | None = ()):
        """The engine's cached forward for ``image`` (a PreparedImage or anything prepare takes)
        with a graph for the layers in ``reads`` (empty: the default layer; None: the input
        too, see :meth:`Engine.capture`)."""
        prepared = image if isinstance(image, PreparedImage) else self.prepare(image)
        if reads is not None and not reads:  # (a model without spatial layers: all of it)
            reads = [self.resolve_layer(None)] if self.layers() else None
        capture = self.engine.capture(prepared.tensor, prepared.key, reads)
        classes = capture.logits.shape[-1]
        if classes != len(self.labels):  # else: wrong names, or an IndexError further on
            raise InvalidParameterError(
                expected(
                    "labels",
                    f"one label per class score: the model gives {classes}",
                    Received(f"{len(self.labels)} labels"),
                    f"build it as Explainer(model, labels=[...]) with {classes} names",
                )
            )
        return prepared, capture

    @gives_back_memory
    def predict(self, image: Any, top: int = 5) -> list[Prediction]:
        """Top-``top`` classes with probabilities (from the cached forward)."""
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise InvalidParameterError(expected("top", "an int >= 1", top))
        _, capture = self.capture(image)
        probs = capture.probabilities[0]
        values, ids = probs.topk(min(int(top), probs.numel()))
        return [
            Prediction(int(i), self.labels[int(i)], float(v)) for v, i in zip(values.tolist(), ids.tolist())
        ]

    # --------------------------------------------------------------- explain
    @gives_back_memory
    def explain(
        self, image: Any, method: str = "gradcam", target: Target = None, layer: str | None = None, **params
    ) -> Explanation | list[Explanation]:
        """One map; ``target`` None is the top class. See :meth:`explain_classes` for params.

        A batch (a list or tuple of images, or an (N, 3, H, W) tensor with N > 1) gives a list
        of N Explanations, as :meth:`explain_batch` makes them (``target``: one per image, or
        one for all)."""
        if is_batch(image):
            return self.explain_batch(image, method, target, layer, **params)
        return self.explain_classes(image, [target], method, layer, **params)[0]

    @gives_back_memory
    def explain_batch(
        self, images: Any, method: str = "gradcam", targets: Any = None, layer: str | None = None, **params
    ) -> list[Explanation]:
        """One map per image of a batch: a list or tuple of images (anything :meth:`prepare`
        takes) or an (N, 3, H, W) preprocessed tensor; ``targets`` one per image (a list or
        tuple of N), or one for all (None: each image's top class).

        Gradient methods take one forward and one backward per batch, each image's gradient
        for its own class; the others one forward per distinct class (see
        ``methods/batch.py``). Batches larger than the memory budget run in slices. SmoothGrad
        (``noise`` / ``samples``) runs image by image. Each Explanation equals the one
        :meth:`explain` gives for its image alone (``seconds``: its share of the batch).
        """
        started = time.perf_counter()
        prepared = self._prepare_batch(images)
        count = len(prepared)
        progress = params.pop("progress", None)
        if isinstance(targets, (torch.Tensor, np.ndarray)) and targets.ndim == 1:
            targets = targets.tolist()  # a DataLoader's labels: one class per image
        if isinstance(targets, (list, tuple)):
            if len(targets) != count:
                raise InvalidParameterError(
                    expected(
                        "targets",
                        f"one target per image ({count}) or one for all",
                        Received(f"{len(targets)} targets"),
                    )
                )
            wanted = list(targets)
        else:
            wanted = [targets] * count
        spec = get_method(method)
        if {"noise", "samples", "smoothing"} & set(params) or any(map(is_score_target, wanted)):
            # SmoothGrad's own batches are its samples; a function target has its backward
            results = []
            for done, (image, target) in enumerate(zip(prepared, wanted)):
                results += self.explain_classes(image, [target], method, layer, **params)
                if progress is not None:
                    progress(done + 1, count)
            return results
        spec.check_params(params)
        chosen_layer = self.resolve_layer(layer) if spec.needs_layer else None
        ids = [None if t is None else self.resolve_class(t) for t in wanted]
        # a pass keeps one sample's activations (half of them with no graph below the layer)
        slice_size = self.engine.batch_size_for(
            0.5 if rooted_batch([spec]) else 1.0, requested=params.get("batch_size")
        )
        results: list[Explanation] = []
        for first in range(0, count, slice_size):
            rows = prepared[first : first + slice_size]
            inputs = torch.cat([p.tensor for p in rows]).to(self.device)
            with self.engine.exclusive():  # the slice's passes and backward as one step
                row_ids = ids[first : first + slice_size]
                if all(c is None for c in row_ids):  # each image's top class, from the pass itself
                    row_ids = None
                elif any(c is None for c in row_ids):  # some given: the others' top class first
                    top = self.engine.scores(inputs).argmax(dim=1).tolist()
                    row_ids = [int(t) if c is None else c for c, t in zip(row_ids, top)]
                outputs, probs, _, row_ids = batch_raw_maps(
                    self.engine, inputs, row_ids, [spec], chosen_layer, {spec.name: params}
                )
            for k, (image, class_id) in enumerate(zip(rows, row_ids)):
                output = outputs[spec.name]
                single = MethodOutput(
                    output.maps[:, k : k + 1],
                    None if output.attribution is None else output.attribution[:, k : k + 1],
                )
                results += self._results(
                    image, probs[k : k + 1].cpu(), spec, single, [class_id], chosen_layer, params, {}, 0.0
                )
            if progress is not None:
                progress(len(results), count)
        seconds = (time.perf_counter() - started) / count
        return [dataclasses.replace(result, seconds=seconds) for result in results]

    def _explain_score(self, prepared, capture, spec, target, layer, params, started, reused) -> Explanation:
        """One map for a function target: the gradient of its score, on the image's cached
        forward (its graph is kept, so switching back to a class costs no forward)."""
        if not spec.needs <= PER_IMAGE_NEEDS:
            raise MethodNotApplicableError(
                f"{spec.title} reads a class's own weights or scores, not a gradient, so it "
                f"takes a class id or name, not a function; with a function use a gradient "
                f"method such as 'gradcam', 'layercam' or 'vanilla'"
            )
        score = target.resolved(self.labels) if isinstance(target, Contrast) else target
        with self.engine.exclusive():  # (the forward replaced by no other thread meanwhile)
            reads = None if spec.needs & READS_INPUT else [layer] if layer else ()
            capture.reach(reads if reads is None or reads else [self.resolve_layer(None)])
            scored = ScoreCapture(capture.forward, score)
            output = spec.fn(MethodContext(self.engine, scored, torch.tensor([0]), layer, params))
        class_id = getattr(score, "class_id", -1)
        result = self._results(
            prepared,
            capture.host_probabilities,
            spec,
            output,
            [max(class_id, 0)],
            layer,
            params,
            {},
            time.perf_counter() - started,
            reused,
        )[0]
        probability = result.probability if class_id >= 0 else float("nan")
        return dataclasses.replace(
            result, class_id=class_id, label=score_label(score), probability=probability
        )

    def _prepare_batch(self, images: Any) -> list[PreparedImage]:
        if isinstance(images, torch.Tensor):
            if images.dim() != 4:
                raise InvalidImageError(
                    expected("batch tensor", "shape (N, 3, H, W)", Received(f"shape {tuple(images.shape)}"))
                )
            if images.dtype == torch.uint8:  # 0..255 RGB images (torchvision.io's layout)
                return [self.prepare(images[n]) for n in range(images.shape[0])]
            return [self._prepare_tensor(images[n : n + 1]) for n in range(images.shape[0])]
        if not isinstance(images, (list, tuple)) or not images:
            raise InvalidImageError(
                expected("batch", "a non-empty list or tuple of images or an (N, 3, H, W) tensor", images)
            )
        return [image if isinstance(image, PreparedImage) else self.prepare(image) for image in images]

    @gives_back_memory
    def explain_classes(
        self,
        image: Any,
        targets: Sequence[Target],
        method: str = "gradcam",
        layer: str | None = None,
        *,
        noise: float | None = None,
        samples: int | None = None,
        seed: int = 0,
        snapshots: Sequence[int] = (),
        progress=None,
        noise_samples: torch.Tensor | None = None,
        precision: str = "fp32",
        on_snapshot: Callable[[int, list], None] | None = None,
        smoothing: Smoothing | None = None,
        **params,
    ) -> list[Explanation]:
        """Maps for several classes of one image in one batched backward.

        Args:
            smoothing: SmoothGrad's settings as one value (:class:`~cam_widgets.methods.Smoothing`),
                or, loose, as below.
            noise, samples: SmoothGrad over ``method`` when either is given (noise as a
                fraction of the input range, default 0.2; samples default 100, as in the
                SmoothGrad article); ``snapshots`` lists sample counts
                whose running mean is kept (e.g. 1, 2, 3, 10, ..., 100; counts above
                ``samples`` are skipped, so one list serves any sample count); ``precision``
                'fp16' (CUDA) or 'bf16' runs the noisy batches in mixed precision.
            progress: ``progress(done, total)`` for long work (SmoothGrad, Score-CAM, IG).
            on_snapshot: ``on_snapshot(count, heatmaps)`` as SmoothGrad reaches each count
                of ``snapshots``: the running-mean heatmaps then, one a target, as
                ``Explanation.snapshots`` will hold them (a display that fills in as it goes).
            params: the method's own parameters (see ``get_method(name).defaults``) and
                ``batch_size``.
        """
        started = time.perf_counter()
        try:
            listed = None if isinstance(targets, (str, int)) else list(targets)
        except TypeError:  # None, a number of another kind
            listed = None
        if not listed:
            raise InvalidParameterError(
                expected("targets", "a non-empty list of class ids or names", targets)
            )
        targets = listed
        if progress is not None and not callable(progress):
            raise InvalidParameterError(
                expected("progress", "a function progress(done, total) or None", progress)
            )
        spec = get_method(method)
        spec.check_params(params)
        prepared = image if isinstance(image, PreparedImage) else self.prepare(image)
        chosen_layer = self.resolve_layer(layer) if spec.needs_layer else None
        settings = smoothing_settings(
            smoothing, noise, samples, seed, precision, snapshots, params.get("batch_size")
        )
        smoothing = settings is not None
        # what this call reads of the image's own forward (SmoothGrad: its class scores only)
        reads = (
            ()
            if smoothing
            else None
            if "input_gradients" in spec.needs
            else [chosen_layer]
            if chosen_layer is not None
            else ()
        )
        with self.engine.exclusive():  # (no other thread's forward counted in between)
            forwards = self.engine.forward_calls
            prepared, capture = self.capture(prepared, reads)
            reused = self.engine.forward_calls == forwards  # the image's forward pass was cached
        if any(is_score_target(t) for t in targets):  # each on its own backward
            if settings is not None or on_snapshot is not None:
                raise InvalidParameterError(
                    "a function target runs without SmoothGrad; give a class id or name to smooth"
                )
            return [
                self._explain_score(prepared, capture, spec, t, chosen_layer, params, started, reused)
                if is_score_target(t)
                else self.explain_classes(prepared, [t], method, layer, progress=progress, **params)[0]
                for t in targets
            ]
        ids = [self.resolve_class(t, capture) for t in targets]
        class_ids = torch.tensor(ids, dtype=torch.long)
        snaps: dict[int, torch.Tensor] = {}
        if settings is not None:
            smoothed = smooth(
                self.engine,
                spec,
                capture.inputs.detach(),
                class_ids,
                chosen_layer,
                params,
                noise=settings.noise,
                samples=settings.samples,
                input_range=self.spec.input_range,
                batch_size=settings.batch_size,
                seed=settings.seed,
                snapshots=settings.snapshots,
                noise_samples=noise_samples,
                progress=progress,
                precision=settings.precision,
                on_snapshot=None
                if on_snapshot is None
                else lambda count, maps: on_snapshot(
                    count, snapshot_heatmaps(maps, tuple(capture.inputs.shape[-2:]), spec.clip_negative)
                ),
            )
            output, snaps = smoothed.output, smoothed.snapshots
            params = dict(params, **settings.params())
        else:
            for name, given in (
                ("precision", precision != "fp32"),
                ("snapshots", bool(snapshots)),
                ("on_snapshot", on_snapshot is not None),
            ):
                if given:  # (not silently dropped)
                    raise InvalidParameterError(
                        f"{name!r} applies to SmoothGrad only; pass 'samples' (and 'noise') too"
                    )
            context = MethodContext(self.engine, capture, class_ids, chosen_layer, params, progress)
            output = spec.fn(context)
        return self._results(
            prepared,
            capture.host_probabilities,
            spec,
            output,
            ids,
            chosen_layer,
            params,
            snaps,
            time.perf_counter() - started,
            reused,
            smoothing=settings,
        )

    @gives_back_memory
    def explain_layers(
        self,
        image: Any,
        target: Target = None,
        method: str = "gradcam",
        layers: Sequence[str] | None = None,
        **params,
    ) -> list[Explanation]:
        """One class through several layers (default: every spatial layer) from one backward.

        ``progress(done, total)`` (in ``params``) counts layers done, and is called again
        within a slow layer (Score-CAM's masked batches), where a caller may stop the work.
        """
        progress = params.pop("progress", None)
        spec = get_method(method)
        if not spec.needs_layer:  # every "layer" would give the same map
            raise MethodNotApplicableError(
                f"{spec.title} reads no layer (it explains the input pixels): "
                f"explain_layers needs a method that reads one, e.g. 'gradcam'"
            )
        if is_score_target(target):
            raise MethodNotApplicableError(
                "explain_layers follows one class through the layers in one backward, so it "
                "takes a class id or name, not a function or a contrast 'A vs B'; explain each "
                "layer with explain(image, method, target, layer) instead"
            )
        if isinstance(layers, str):
            layers = [layers]  # one layer by name, not its characters
        names = (
            [layer.name for layer in self.layers()]
            if layers is None
            else [self.resolve_layer(layer) for layer in layers]
        )
        prepared, capture = self.capture(image, names)
        class_id = self.resolve_class(target, capture)
        if "gradients" in spec.needs:
            capture.gradients(names, torch.tensor([class_id]))  # one backward for all layers
        results = []
        for k, name in enumerate(names):
            within = None if progress is None else (lambda *_, k=k: progress(k, len(names)))
            if within is not None:
                within()  # this layer starts (and again within it, from the method)
            results.append(self.explain(prepared, method, class_id, name, progress=within, **params))
        if progress is not None:
            progress(len(names), len(names))
        return results

    def _results(
        self,
        prepared,
        host_probabilities: torch.Tensor,
        spec,
        output: MethodOutput,
        ids,
        layer,
        params,
        snaps,
        seconds,
        forward_reused: bool = False,
        smoothing: Smoothing | None = None,
    ) -> list[Explanation]:
        """An Explanation for each class of ``ids`` of one image (``host_probabilities``:
        its (1, classes) probabilities on the CPU)."""
        size = tuple(prepared.tensor.shape[-2:])
        clip = spec.clip_negative
        raw_np, full_np = maps_to_host(output.maps[:, 0], size, clip_negative=clip)
        attribution = (
            None
            if output.attribution is None
            else np.ascontiguousarray(output.attribution[:, 0].float().cpu().numpy())
        )  # NHWC on CPU
        snap_maps = {n: snapshot_heatmaps(s, size, clip) for n, s in snaps.items()}
        probs = host_probabilities[0]
        results = []
        for row, class_id in enumerate(ids):
            heatmap, status = normalize_map(full_np[row], clip_negative=clip)
            if clip:  # the upsampled map was clipped already: flags (negative-only...) from the map
                status = normalize_map(raw_np[row], clip_negative=clip)[1]
            results.append(
                Explanation(  # raw maps too are never NaN (status says if they were)
                    heatmap=heatmap,
                    raw=_finite(raw_np[row]),
                    method=spec.name,
                    layer=layer,
                    class_id=class_id,
                    label=self.labels[class_id],
                    probability=float(probs[class_id]),
                    status=status,
                    params=dict(params),
                    device=str(self.engine.device),
                    seconds=seconds,
                    forward_reused=forward_reused,
                    attribution=None if attribution is None else _finite(attribution[row]),
                    snapshots={n: heatmaps[row] for n, heatmaps in snap_maps.items()},
                    image=prepared.rgb,
                    smoothing=smoothing,
                )
            )
        return results


def _uint8_tensor_to_rgb(image: torch.Tensor) -> np.ndarray:
    """A uint8 (3, H, W) or (1, 3, H, W) tensor (torchvision's image layout) as (H, W, 3)."""
    pixels = image.detach()
    if pixels.dim() == 4 and pixels.shape[0] == 1:
        pixels = pixels[0]
    if pixels.dim() != 3 or pixels.shape[0] not in (1, 3):
        raise InvalidImageError(
            expected(
                "uint8 tensor image",
                "shape (3, H, W) or (1, 3, H, W), channels first as torchvision.io.read_image gives",
                Received(f"shape {tuple(image.shape)}"),
            )
        )
    return np.ascontiguousarray(pixels.expand(3, -1, -1).permute(1, 2, 0).cpu().numpy())


def smoothing_settings(
    smoothing: Smoothing | None, noise, samples, seed, precision, snapshots, batch_size
) -> Smoothing | None:
    """SmoothGrad's settings of a call, as one checked value (None: no smoothing): the
    ``smoothing`` given, or the loose arguments (``noise`` or ``samples`` given; the others at
    Smoothing's defaults)."""
    if smoothing is not None:
        if not isinstance(smoothing, Smoothing):
            raise InvalidParameterError(expected("smoothing", "a cam_widgets.methods.Smoothing", smoothing))
        loose = noise is not None or samples is not None or seed != 0 or precision != "fp32"
        if loose or tuple(snapshots) or batch_size is not None:
            raise InvalidParameterError(
                "give SmoothGrad's settings once: 'smoothing', or the loose ones (noise, samples, "
                "seed, precision, snapshots, batch_size)"
            )
        return smoothing
    if noise is None and samples is None:
        return None
    default = Smoothing()
    return Smoothing(
        noise=default.noise if noise is None else noise,
        samples=default.samples if samples is None else samples,
        seed=seed,
        precision=precision,
        batch_size=batch_size,
        snapshots=snapshots,
    )


def _image_key(rgb: np.ndarray) -> str:
    return hashlib.blake2b(rgb.tobytes(), digest_size=16).hexdigest() + str(rgb.shape)


def is_batch(image: Any) -> bool:
    """A list or tuple of images, or a 4-D tensor of more than one image."""
    return isinstance(image, (list, tuple)) or (
        isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[0] > 1
    )


def snapshot_heatmaps(maps: torch.Tensor, size: tuple[int, int], clip: bool) -> list:
    """SmoothGrad's running mean (K, 1, h, w) as the heatmaps an Explanation's ``snapshots``
    hold, one a class: upsampled to ``size``, normalised."""
    host = upsampled(maps.float(), size, clip)[:, 0].cpu().numpy()
    return [normalize_map(m, clip_negative=clip)[0] for m in host]


def _finite(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(values.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)


def _source_key(image: Any) -> tuple | None:
    """What identifies an image named by a string: a sample or URL by its name, a file by
    its path, size and modification time (an edited file is read again); None otherwise."""
    if isinstance(image, (str, os.PathLike)):
        text = os.fspath(image)
        if not isinstance(text, str):
            return None
        name = bundled_name(text)
        if name is not None or text.startswith(("http://", "https://")):
            return ("name", name or text)
        try:
            stat = os.stat(text)
        except (OSError, ValueError):
            return None  # load_image says what is wrong with it
        return ("file", os.path.abspath(text), stat.st_size, stat.st_mtime_ns)
    return None


def maps_to_host(
    maps: torch.Tensor, size: tuple[int, int], with_raw: bool = True, clip_negative: bool = False
) -> tuple[np.ndarray | None, np.ndarray]:
    """(N, h, w) raw maps -> float32 numpy (raw or None, upsampled to ``size``): what every
    display map is made from (then :func:`normalize_map`), in one device-to-host copy (each
    copy waits for the GPU). ``clip_negative``: the ReLU of the CAM papers, at the layer's
    resolution (see :func:`upsampled`)."""
    maps = maps.float()
    full = upsampled(maps, size, clip_negative)
    if not with_raw:
        return None, full.cpu().numpy()
    both = torch.cat([maps.flatten(1), full.flatten(1)], dim=1).cpu().numpy()
    return both[:, : maps[0].numel()].reshape(maps.shape), both[:, maps[0].numel() :].reshape(full.shape)


def _check_batch(inputs: Any) -> None:
    """A one-line error unless ``inputs`` is a batch of preprocessed images (N, 3, H, W)."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else inputs
        raise InvalidParameterError(
            expected("inputs", "a batch of preprocessed images, a tensor (N, 3, H, W)", Received(str(shape)))
        )
