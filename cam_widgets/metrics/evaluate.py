"""Batch evaluation of explanation methods over an image folder or a torch ``Dataset``.

:func:`evaluate` streams the dataset through a :class:`torch.utils.data.DataLoader`
(workers, pinned memory, batches moved to the explainer's device), computes the maps of
every method for a whole batch in batched passes, scores them with the metrics of this
package, and appends one JSON line per (image, method) to ``out``, flushed and fsynced
after every batch: an interruption loses at most the batch in flight. Run it again with
``resume=True`` (the default) and the (image, method) pairs already in ``out`` are skipped.
:func:`summarize` turns the JSONL file into means per method.

Maps are computed the way :meth:`Explainer.explain` computes them (same method functions,
same upsampling and normalisation), batched:

- gradient methods (``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam``, ``vanilla``,
  ``guided_backprop``, ``guided_gradcam``...): one forward and one backward for the whole
  batch, each image's gradient taken for its own target class (images of a batch are
  independent in eval mode, so d(sum_n logit[n, c_n]) / d x_n = d logit[n, c_n] / d x_n);
- the others (``cam``, ``scorecam``, ``integrated_gradients``...): one forward per distinct
  target class of the batch, over the images having that class.

:mod:`.distributed` runs the same evaluation sharded over ``torch.distributed`` processes.
"""
from __future__ import annotations

import pathlib
import time
from numbers import Integral
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..engine import Capture
from ..errors import InvalidImageError, InvalidParameterError, MethodNotApplicableError, close_matches, describe
# the dataset and records halves live in their own modules; their public names stay importable here
from .folder import IMAGE_EXTENSIONS, ImageFolderDataset, _collate, _Indexed
from .records import METRICS, _finite, _write, read_records, summarize

__all__ = ["ImageFolderDataset", "evaluate", "summarize", "read_records", "METRICS", "TARGETS",
           "IMAGE_EXTENSIONS"]

#: How the explained class is chosen: the dataset's label, or the model's top-1 class.
TARGETS = ("label", "top1")
#: Methods whose class enters only through gradients: batched with one class per image.
_PER_IMAGE_NEEDS = frozenset({"layer", "gradients", "input_gradients", "guided"})
_METRIC_OPTIONS = {"pointing_game": {"tolerance"}, "iou": {"delta", "region"},
                   "deletion_insertion": {"steps", "baseline"}}


# =========================================================================== evaluate
def evaluate(explainer, dataset, *, methods: Sequence[str] = ("gradcam",), layer: Optional[str] = None,
             target: str = "label", metrics: Sequence[str] = ("pointing_game", "energy", "average_drop"),
             out="results.jsonl", batch_size: int = 16, num_workers: int = 0,
             pin_memory: Optional[bool] = None, resume: bool = True,
             progress: Optional[Callable[[int, int], None]] = None,
             method_params: Optional[dict] = None, metric_params: Optional[dict] = None,
             on_error: str = "raise") -> dict:
    """Explain and score every image of ``dataset`` with every method; one JSON line per pair.

    Args:
        explainer: an :class:`~cam_widgets.Explainer`.
        dataset: an :class:`ImageFolderDataset` or any map-style ``Dataset`` whose items are
            preprocessed (3, H, W) tensors at the model input size, alone or as
            ``(tensor, label[, box])`` or a dict (see ``_parse_item``).
        methods: registered method names.
        layer: the layer of CAM methods (None: the explainer's default layer).
        target: ``"label"`` explains the dataset's class (every image needs one) and
            ``"top1"`` the model's top class.
        metrics: any of :data:`METRICS`. Localization metrics need boxes and are ``null``
            for images without; ``average_drop`` is in the preprocessed space (as
            :func:`~cam_widgets.metrics.average_drop_increase` with ``space="tensor"``).
        out: the JSONL file; records are appended, flushed and fsynced after every batch.
        batch_size, num_workers, pin_memory: DataLoader settings (pin_memory None: True
            when the explainer runs on CUDA); batches go to the explainer's device.
        resume: skip (image, method) pairs already in ``out`` (False starts a new file).
        progress: ``progress(done, total)`` in images of this run, after each written batch.
        method_params: ``{method: {param: value}}`` passed to the methods.
        metric_params: ``{"pointing_game": {"tolerance": 15}, "iou": {"delta": 0.5,
            "region": "mask"}, "deletion_insertion": {"steps": 50, "baseline": "blur"}}``.
        on_error: ``"raise"`` (default) stops on an unreadable image; ``"record"`` writes an
            ``error`` record for each of its pairs and goes on.

    Returns:
        :func:`summarize` of the whole ``out`` file, plus ``out``, ``computed`` (pairs
        written by this call), ``skipped`` (pairs found done), ``seconds`` and
        ``images_per_second`` of this call.
    """
    plan = _plan(explainer, dataset, methods, layer, target, metrics, batch_size, num_workers,
                 on_error, method_params, metric_params)
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not resume and out.exists():
        out.unlink()
    done = _done_pairs(read_records(out, repair=True), plan)
    pending = _pending_indices(dataset, plan, done)
    started = time.perf_counter()
    computed = _run(explainer, dataset, plan, pending, out, done, pin_memory, progress)
    seconds = time.perf_counter() - started
    summary = summarize(out)
    return dict(summary, out=str(out), computed=computed, skipped=len(done), seconds=seconds,
                images_per_second=len(pending) / seconds if pending and seconds > 0 else None)


class _Plan:
    """Checked arguments of an evaluation."""

    def __init__(self, **kwargs) -> None:
        self.__dict__.update(kwargs)


def _plan(explainer, dataset, methods, layer, target, metrics, batch_size, num_workers, on_error,
          method_params, metric_params) -> _Plan:
    from ..explainer import _check_params
    from ..methods import get_method

    if isinstance(methods, str):
        methods = [methods]
    specs = [get_method(m) for m in methods]
    if not specs or len({s.name for s in specs}) != len(specs):
        raise InvalidParameterError(f"'methods' must list distinct method names (got {describe(methods)})")
    if target not in TARGETS:
        raise InvalidParameterError(f"'target' must be 'label' or 'top1' (got {describe(target)})")
    if isinstance(metrics, str):
        metrics = [metrics]
    for name in metrics:
        if name not in METRICS:
            raise InvalidParameterError(
                f"unknown metric {name!r}; expected some of {', '.join(METRICS)}." + close_matches(name, METRICS))
    for name, value in (("batch_size", batch_size), ("num_workers", num_workers)):
        low = 1 if name == "batch_size" else 0
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise InvalidParameterError(f"{name!r} must be an int >= {low} (got {describe(value)})")
    if on_error not in ("raise", "record"):
        raise InvalidParameterError(f"'on_error' must be 'raise' or 'record' (got {describe(on_error)})")
    method_params = dict(method_params or {})
    for name, params in method_params.items():
        if name not in {s.name for s in specs}:
            raise InvalidParameterError(f"method_params names {name!r}, which is not in 'methods'")
        _check_params(get_method(name), dict(params))
    metric_params = {k: dict(v) for k, v in (metric_params or {}).items()}
    for name, params in metric_params.items():
        allowed = _METRIC_OPTIONS.get(name, set())
        for key in params:
            if key not in allowed:
                raise InvalidParameterError(
                    f"metric {name!r} takes no option {key!r}"
                    + (f"; it takes {', '.join(sorted(allowed))}" if allowed else ""))
    if target == "label" and getattr(dataset, "has_labels", True) is False:
        raise InvalidParameterError(
            "target='label' needs class labels and this ImageFolderDataset has none; pass "
            "labels='labels.csv' (rows path,class_id[,x0,y0,x1,y1]) or target='top1'")
    chosen = explainer.resolve_layer(layer) if any(s.needs_layer for s in specs) else None
    return _Plan(specs=specs, names=[s.name for s in specs], layer=chosen, target=target,
                 metrics=list(dict.fromkeys(metrics)), batch_size=int(batch_size),
                 num_workers=int(num_workers), on_error=on_error, method_params=method_params,
                 metric_params=metric_params)


def _image_id(dataset, index: int) -> str:
    name = getattr(dataset, "image_id", None)
    return str(name(index)) if callable(name) else str(index)


def _done_pairs(records: list[dict], plan: _Plan) -> set[tuple[str, str]]:
    """(image, method) pairs already written, checking they were made the same way."""
    done = set()
    wanted = {k for m in plan.metrics for k in METRICS[m]}
    for record in records:
        method = record.get("method")
        if method not in plan.names:
            continue
        if not record.get("error"):
            layer = plan.layer if _spec(method).needs_layer else None
            missing = wanted - set(record)
            if record.get("layer") != layer or record.get("target") != plan.target or missing:
                raise InvalidParameterError(
                    f"the results file already holds {method!r} records made with layer "
                    f"{record.get('layer')!r}, target {record.get('target')!r}"
                    + (f" and without {', '.join(sorted(missing))}" if missing else "")
                    + "; pass resume=False to start over, or another 'out'")
        done.add((str(record["image"]), method))
    return done


def _spec(name: str):
    from ..methods import get_method

    return get_method(name)


def _pending_indices(dataset, plan: _Plan, done: set) -> list[int]:
    return [i for i in range(len(dataset))
            if any((_image_id(dataset, i), m) not in done for m in plan.names)]


def _run(explainer, dataset, plan: _Plan, indices: list[int], out: pathlib.Path, done: set,
         pin_memory: Optional[bool], progress) -> int:
    """Evaluate ``indices`` of ``dataset``, appending to ``out``; returns the pairs written."""
    if not indices:
        return 0
    device = explainer.device
    pin = device.type == "cuda" if pin_memory is None else bool(pin_memory)
    loader = DataLoader(_Indexed(dataset, plan.on_error == "record"), batch_size=plan.batch_size,
                        sampler=indices, num_workers=plan.num_workers, collate_fn=_collate,
                        pin_memory=pin and device.type == "cuda")
    written, seen = 0, 0
    with open(out, "a") as handle:
        for index_list, batch, class_ids, boxes, errors in loader:
            records = _evaluate_batch(explainer, dataset, plan, index_list, batch, class_ids, boxes,
                                      errors, done)
            _write(handle, records)
            written += len(records)
            seen += len(index_list)
            if progress is not None:
                progress(seen, len(indices))
    return written


def _evaluate_batch(explainer, dataset, plan: _Plan, indices, batch, class_ids, boxes, errors,
                    done: set) -> list[dict]:
    ids = [_image_id(dataset, i) for i in indices]
    records: dict[tuple[int, str], dict] = {}
    rows = [row for row, error in enumerate(errors) if error is None]
    for row, error in enumerate(errors):
        if error is not None:
            for name in plan.names:
                if (ids[row], name) not in done:
                    records[(row, name)] = dict(image=ids[row], index=indices[row], method=name, error=error)
    if rows:
        records.update(_score(explainer, plan, indices, ids, rows, batch,
                              [class_ids[r] for r in rows], [boxes[r] for r in rows], done))
    return [records[key] for key in sorted(records, key=lambda k: (k[0], plan.names.index(k[1])))]


def _score(explainer, plan: _Plan, indices, ids, rows, batch, labels, boxes, done) -> dict:
    size = tuple(explainer.spec.input_size)
    if tuple(batch.shape[1:]) != (3,) + size:
        raise InvalidImageError(
            f"image {ids[rows[0]]!r}: the dataset gave a tensor of shape {tuple(batch.shape[1:])}, "
            f"expected (3, {size[0]}, {size[1]}) (the model input size, preprocessed)")
    inputs = batch.to(explainer.device, non_blocking=True)
    given = list(labels)
    if plan.target == "label":
        missing = [ids[r] for r, c in zip(rows, labels) if c is None]
        if missing:
            raise InvalidParameterError(
                f"target='label' but image {missing[0]!r} has no class label; give labels or use target='top1'")
        labels = [explainer.resolve_class(int(c)) for c in labels]
    wanted = [s for s in plan.specs if any((ids[r], s.name) not in done for r in rows)]
    maps, probs, top1, class_ids = explain_batch(explainer, inputs, labels if plan.target == "label" else None,
                                                 wanted, plan.layer, plan.method_params)
    out = {}
    for spec in wanted:
        values = _metrics(explainer, plan, inputs, maps[spec.name], class_ids, probs, boxes)
        for n, row in enumerate(rows):
            if (ids[row], spec.name) in done:
                continue
            label = given[n]
            record = dict(image=ids[row], index=indices[row], method=spec.name,
                          layer=plan.layer if spec.needs_layer else None, target=plan.target,
                          class_id=class_ids[n], label=explainer.labels[class_ids[n]],
                          probability=_finite(probs[n, class_ids[n]]), top1=top1[n],
                          label_id=None if label is None else int(label),
                          correct=None if label is None else bool(top1[n] == int(label)))
            record.update({k: _finite(v[n]) for k, v in values.items()})
            out[(row, spec.name)] = record
    return out


def explain_batch(explainer, inputs: torch.Tensor, class_ids: Optional[Sequence[int]], specs,
                  layer: Optional[str], method_params: Optional[dict] = None):
    """Display maps of several methods for a batch, as :meth:`Explainer.explain` makes them.

    Args:
        inputs: (N, 3, H, W) preprocessed images on the explainer's device.
        class_ids: one class per image, or None for each image's top-1 class.
        specs: MethodSpecs (``get_method(name)``).
        layer: the resolved layer for the methods that need one.

    Returns:
        (maps {name: (N, H, W) float32 in [0, 1]}, probabilities (N, classes) float32 numpy,
        top1 [int], class_ids [int]).
    """
    from ..methods import MethodContext
    from ..render import normalize_map

    engine = explainer.engine
    method_params = method_params or {}
    per_image = [s for s in specs if s.needs <= _PER_IMAGE_NEEDS]
    grouped = [s for s in specs if s not in per_image]
    forward = None
    if per_image:
        layers = [layer] if any(s.needs_layer for s in per_image) else []
        guided = any("guided" in s.needs for s in per_image)
        forward = engine.run(inputs, layers, record_relus=guided and engine.has_relu)
        logits = forward.logits.detach()
    else:
        logits = engine.scores(inputs)
    probs = torch.softmax(logits.float(), dim=1)
    top1 = [int(c) for c in probs.argmax(dim=1).tolist()]
    ids = list(top1) if class_ids is None else [int(c) for c in class_ids]
    ids_t = torch.tensor(ids, dtype=torch.long)
    raw: dict[str, torch.Tensor] = {}
    if per_image:
        capture = _PerImageCapture(forward, ids_t)
        for spec in per_image:
            context = MethodContext(engine, capture, ids_t[:1], layer if spec.needs_layer else None,
                                    method_params.get(spec.name))
            raw[spec.name] = spec.fn(context).maps[0]
    if grouped:
        result = {s.name: [None] * len(ids) for s in grouped}
        layers = [layer] if layer is not None and any(s.needs_layer for s in grouped) else []
        for cls in sorted(set(ids)):
            rows = [n for n, c in enumerate(ids) if c == cls]
            capture = Capture("", engine.run(inputs[rows], layers, record_relus=engine.has_relu))
            for spec in grouped:
                context = MethodContext(engine, capture, torch.tensor([cls]),
                                        layer if spec.needs_layer else None, method_params.get(spec.name))
                maps = spec.fn(context).maps[0]
                for k, n in enumerate(rows):
                    result[spec.name][n] = maps[k]
        raw.update({name: torch.stack(v) for name, v in result.items()})
    size = tuple(inputs.shape[-2:])
    heat = {}
    for spec in specs:
        maps = raw[spec.name][:, None].float()
        if tuple(maps.shape[-2:]) != size:
            maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
        full = maps[:, 0].cpu().numpy()
        heat[spec.name] = np.stack([normalize_map(m, clip_negative=spec.clip_negative)[0] for m in full])
    return heat, probs.cpu().numpy(), top1, ids


class _PerImageCapture(Capture):
    """A batch capture whose gradients are taken for one class per image in one backward.

    Gradient methods see (1, N, ...) gradients whose row n is d logit[n, c_n] / d (.)[n].
    """

    def __init__(self, forward, class_ids: torch.Tensor) -> None:
        super().__init__("", forward)
        self.per_image = class_ids

    def _grads(self, wrt, guided: bool = False):
        from ..engine.hooks import guided_relu_gradients

        if guided and not self.forward.relu_outputs:
            raise MethodNotApplicableError(
                "guided backprop needs ReLU-like modules (nn.ReLU, nn.ReLU6, ...) and this "
                "model has none; use 'vanilla' or 'integrated_gradients' instead")
        logits = self.forward.logits
        one_hot = torch.zeros_like(logits)
        one_hot[torch.arange(len(self.per_image)), self.per_image.to(logits.device)] = 1.0
        self.backward_calls += 1
        with torch.enable_grad():
            if guided:
                with guided_relu_gradients(self.forward.relu_outputs):
                    grads = torch.autograd.grad(logits, list(wrt), one_hot, retain_graph=True, allow_unused=True)
            else:
                grads = torch.autograd.grad(logits, list(wrt), one_hot, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(t)[None] if g is None else g[None] for g, t in zip(grads, wrt)]

    def gradients(self, layers, class_ids):
        missing = [l for l in layers if (l, -1) not in self._layer_grads]
        if missing:
            grads = self._grads([self.forward.outputs[l] for l in missing])
            self._layer_grads.update({(l, -1): g for l, g in zip(missing, grads)})
        return [self._layer_grads[(l, -1)] for l in layers]

    def input_gradients(self, class_ids, guided: bool = False):
        if (guided, -1) not in self._input_grads:
            (self._input_grads[(guided, -1)],) = self._grads([self.inputs], guided)
        return self._input_grads[(guided, -1)]


def _metrics(explainer, plan: _Plan, inputs: torch.Tensor, heat: np.ndarray, class_ids, probs,
             boxes) -> dict[str, list]:
    """Per-image values of every metric of the plan for one method's (N, H, W) maps."""
    from .faithfulness import deletion_insertion
    from .localization import energy_pointing_game, iou_at_thresholds, pointing_game

    n = len(heat)
    values: dict[str, list] = {}
    with_box = [i for i in range(n) if boxes[i]]
    options = plan.metric_params
    for name in plan.metrics:
        if name in ("pointing_game", "energy", "iou"):
            column = [None] * n
            if with_box:
                maps, targets = heat[with_box], [list(boxes[i]) for i in with_box]
                if name == "pointing_game":
                    found = pointing_game(maps, targets, **options.get(name, {}))
                elif name == "energy":
                    found = energy_pointing_game(maps, targets)
                else:
                    opts = dict(options.get(name, {}))
                    delta = float(opts.pop("delta", 0.5))
                    found = iou_at_thresholds(maps, targets, deltas=(delta,), **opts)[delta]
                for i, v in zip(with_box, found):
                    column[i] = v
            values[name] = column
        elif name == "average_drop":
            maps = torch.from_numpy(heat).float().to(inputs.device)
            with torch.no_grad():
                masked = torch.softmax(explainer.engine.scores(inputs * maps[:, None]).float(), dim=1)
            rows = torch.arange(n)
            targets = torch.tensor(class_ids, dtype=torch.long)
            y = torch.from_numpy(probs)[rows, targets].double()
            o = masked.cpu()[rows, targets].double()
            drop = (y - o).clamp(min=0) / y.clamp(min=torch.finfo(torch.float64).tiny) * 100.0
            values["average_drop"] = drop.tolist()
            values["increase_in_confidence"] = ((y < o).double() * 100.0).tolist()
        elif name == "deletion_insertion":
            dels, ins = [], []
            for i in range(n):
                curve = deletion_insertion(explainer, inputs[i:i + 1], heat[i], class_ids[i],
                                           batch_size=plan.batch_size * 4, **options.get(name, {}))
                dels.append(curve["deletion_auc"])
                ins.append(curve["insertion_auc"])
            values["deletion_auc"], values["insertion_auc"] = dels, ins
    return values
