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

import csv
import json
import math
import os
import pathlib
import time
from numbers import Integral
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data import load_image, resize_for_model
from ..engine import Capture
from ..errors import (CamWidgetsError, InvalidImageError, InvalidParameterError,
                      MethodNotApplicableError, close_matches, describe)

__all__ = ["ImageFolderDataset", "evaluate", "summarize", "read_records", "METRICS", "TARGETS",
           "IMAGE_EXTENSIONS"]

#: Metric names accepted by :func:`evaluate`, and the record keys each one writes.
METRICS = {
    "pointing_game": ("pointing_game",),
    "energy": ("energy",),
    "iou": ("iou",),
    "average_drop": ("average_drop", "increase_in_confidence"),
    "deletion_insertion": ("deletion_auc", "insertion_auc"),
}
#: How the explained class is chosen: the dataset's label, or the model's top-1 class.
TARGETS = ("label", "top1")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Methods whose class enters only through gradients: batched with one class per image.
_PER_IMAGE_NEEDS = frozenset({"layer", "gradients", "input_gradients", "guided"})
_METRIC_OPTIONS = {"pointing_game": {"tolerance"}, "iou": {"delta", "region"},
                   "deletion_insertion": {"steps", "baseline"}}


# =========================================================================== datasets
class ImageFolderDataset(Dataset):
    """Images of a folder as the explainer's model sees them.

    Every file under ``root`` (recursively) with an image extension, sorted by relative path,
    or, with ``labels``, the images that the CSV lists. Each item is ``(tensor, index, path)``:
    the (3, H, W) float tensor from ``load_image`` + ``resize_for_model`` + the explainer's
    preprocess (exactly what :meth:`Explainer.prepare` gives), the item's index and its path
    relative to ``root`` (its id in the results).

    Args:
        root: the folder.
        explainer: gives the input size, the preprocess and the class names; the dataset
            keeps only those (it stays small and picklable for DataLoader workers, provided
            the preprocess is a module-level function, as the zoo's are).
        labels: optional CSV with rows ``path,class_id[,x0,y0,x1,y1]`` (a header row is
            allowed): ``path`` relative to ``root``, ``class_id`` an int or a class name, and a
            box in pixels of the original image (``x1``/``y1`` exclusive), scaled here to the
            model input size. Several rows for one path give several boxes (every instance
            of the class); their class ids must agree.
    """

    def __init__(self, root, explainer, labels=None) -> None:
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise InvalidParameterError(f"'root' must be an existing folder (got {describe(str(root))})")
        self.input_size = tuple(explainer.spec.input_size)
        self.preprocess = explainer.spec.preprocess
        self._annotations: dict[str, dict] = {}
        if labels is None:
            self.paths = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            self._annotations = _read_labels(pathlib.Path(labels), self.root, explainer)
            self.paths = sorted(self._annotations)
        if not self.paths:
            raise InvalidParameterError(
                f"no image found in {str(self.root)!r} (extensions {', '.join(IMAGE_EXTENSIONS)})"
                + ("" if labels is None else f" listed by {str(labels)!r}"))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        rgb = resize_for_model(load_image(self.root / path), self.input_size)
        return self.preprocess(rgb).float(), index, path

    def image_id(self, index: int) -> str:
        """The id written in the results: the path relative to ``root``."""
        return self.paths[index]

    @property
    def has_labels(self) -> bool:
        return bool(self._annotations)

    def annotation(self, index: int) -> dict:
        """``dict(class_id, boxes)`` with boxes scaled to the model input size (or Nones)."""
        found = self._annotations.get(self.paths[index])
        if found is None:
            return dict(class_id=None, boxes=None)
        boxes = found["boxes"]
        if boxes:
            width, height = _image_size(self.root / self.paths[index])
            for x0, y0, x1, y1 in boxes:
                if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                    raise InvalidParameterError(
                        f"the box {(x0, y0, x1, y1)} of {self.paths[index]!r} lies outside the "
                        f"{width}x{height} image; boxes are x0,y0,x1,y1 in pixels of the image file")
            sy, sx = self.input_size[0] / height, self.input_size[1] / width
            boxes = [(x0 * sx, y0 * sy, x1 * sx, y1 * sy) for x0, y0, x1, y1 in boxes]
        return dict(class_id=found["class_id"], boxes=boxes or None)


def _read_labels(path: pathlib.Path, root: pathlib.Path, explainer) -> dict[str, dict]:
    if not path.is_file():
        raise InvalidParameterError(f"the labels CSV {str(path)!r} does not exist")
    found: dict[str, dict] = {}
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            row = [c.strip() for c in row]
            if not row or not row[0] or row[0].startswith("#"):
                continue
            if number == 1 and len(row) >= 2 and row[0].lower() in ("path", "file", "image"):
                continue  # header
            where = f"{path.name} line {number}"
            if len(row) not in (2, 6):
                raise InvalidParameterError(
                    f"{where}: expected 'path,class_id' or 'path,class_id,x0,y0,x1,y1' (got {len(row)} fields)")
            rel = pathlib.Path(row[0])
            rel = rel.relative_to(root) if rel.is_absolute() and root in rel.parents else rel
            if not (root / rel).is_file():
                raise InvalidParameterError(f"{where}: image {row[0]!r} not found under {str(root)!r}")
            try:
                class_id = explainer.resolve_class(int(row[1]) if row[1].lstrip("-").isdigit() else row[1])
            except CamWidgetsError as exc:
                raise InvalidParameterError(f"{where}: {exc}") from None
            entry = found.setdefault(rel.as_posix(), dict(class_id=class_id, boxes=[]))
            if entry["class_id"] != class_id:
                raise InvalidParameterError(
                    f"{where}: {row[0]!r} already has class {entry['class_id']} (got {class_id})")
            if len(row) == 6:
                try:
                    box = tuple(float(v) for v in row[2:])
                except ValueError:
                    raise InvalidParameterError(f"{where}: box values must be numbers (got {row[2:]})") from None
                if not (box[2] > box[0] and box[3] > box[1]):
                    raise InvalidParameterError(f"{where}: a box needs x1 > x0 and y1 > y0 (got {box})")
                entry["boxes"].append(box)
    return found


def _image_size(path) -> tuple[int, int]:
    """(width, height) of an image file after its EXIF orientation (header only)."""
    from PIL import Image

    with Image.open(path) as img:
        width, height = img.size
        if img.getexif().get(0x0112) in (5, 6, 7, 8):
            width, height = height, width
    return width, height


class _Indexed(Dataset):
    """(index, image, class id, boxes, error) for each index of a dataset (runs in the workers)."""

    def __init__(self, dataset, record_errors: bool) -> None:
        self.dataset = dataset
        self.record_errors = record_errors

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            item = self.dataset[index]
        except CamWidgetsError as exc:
            if not self.record_errors:
                raise
            return index, None, None, None, f"{type(exc).__name__}: {exc}"
        annotate = getattr(self.dataset, "annotation", None)
        image, class_id, boxes = _parse_item(item, annotate(index) if callable(annotate) else None)
        return index, image, class_id, boxes, None


def _collate(rows):
    """Picklable collate (runs in the workers): [indices, (M, 3, H, W) batch of the M readable
    images or None, class ids, boxes, errors], so that pin_memory pins the whole batch."""
    indices, images, class_ids, boxes, errors = (list(c) for c in zip(*rows))
    good = [im for im in images if im is not None]
    shapes = {tuple(im.shape) for im in good}
    if len(shapes) > 1:
        raise InvalidImageError(
            f"the dataset gave images of different shapes {sorted(shapes)} in one batch; every "
            "image must be preprocessed to the model input size (3, H, W)")
    batch = torch.stack(good).float() if good else None
    return [indices, batch, class_ids, boxes, errors]


def _parse_item(item, annotation: Optional[dict]) -> tuple[torch.Tensor, Optional[int], Optional[list]]:
    """(image tensor, class id or None, boxes or None) from one dataset item.

    Items may be ``(tensor, index, path)`` (ImageFolderDataset), ``(tensor, label)``,
    ``(tensor, label, box)``, a tensor, or a dict with ``image`` and optional ``class_id``
    (or ``label``) and ``box``/``boxes``; a dataset's ``annotation(index)`` wins.
    """
    class_id, boxes = None, None
    if isinstance(item, dict):
        image = item.get("image")
        class_id = item.get("class_id", item.get("label"))
        boxes = item.get("boxes", item.get("box"))
    elif isinstance(item, (tuple, list)) and item:
        image = item[0]
        if len(item) >= 2 and not (len(item) == 3 and isinstance(item[2], str)):
            class_id = item[1]
            boxes = item[2] if len(item) >= 3 else None
    else:
        image = item
    if annotation is not None:
        class_id, boxes = annotation.get("class_id"), annotation.get("boxes")
    if isinstance(class_id, torch.Tensor):
        class_id = int(class_id.item()) if class_id.numel() == 1 else None
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.tolist()
    if boxes is not None and len(boxes) == 4 and all(isinstance(v, (int, float)) for v in boxes):
        boxes = [tuple(boxes)]
    if not isinstance(image, torch.Tensor):
        raise InvalidImageError(
            f"dataset items must hold a preprocessed (3, H, W) tensor first (got {describe(image)}); "
            "use ImageFolderDataset or apply the explainer's preprocess in the dataset")
    return image, None if class_id is None else int(class_id), boxes or None


# =========================================================================== records
def read_records(path, repair: bool = False) -> list[dict]:
    """The JSON records of a results file ([] when it does not exist).

    A last line cut short by an interruption is ignored (and, with ``repair``, cut from the
    file so that appending continues on a clean line); a bad line elsewhere is an error.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, good = [], 0
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        if not line.strip():
            good += len(line) + (0 if last else 1)
            continue
        try:
            record = json.loads(line)
            if last:  # no trailing newline: the write was interrupted
                raise ValueError("unterminated")
        except ValueError:
            if last or all(not rest.strip() for rest in lines[number + 1:]):
                break
            raise InvalidParameterError(
                f"{str(path)!r} line {number + 1} is not a JSON record; remove it or pass resume=False") from None
        records.append(record)
        good += len(line) + 1
    if repair and good < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good)
    return records


def _write(handle, records: Iterable[dict]) -> None:
    for record in records:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _mean(values: list) -> Optional[float]:
    values = [float(v) for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(records_or_path) -> dict:
    """Means per method of every numeric field of the records (a path or a list of dicts).

    Returns ``dict(images, records, errors, methods={method: dict(records, means, counts)})``;
    ``counts`` says how many records had the field (boxes may be missing for some images).
    """
    records = read_records(records_or_path) if isinstance(records_or_path, (str, os.PathLike)) \
        else list(records_or_path)
    methods: dict[str, dict] = {}
    errors = 0
    for record in records:
        if record.get("error"):
            errors += 1
            continue
        entry = methods.setdefault(record["method"], dict(records=0, values={}))
        entry["records"] += 1
        for key in _metric_keys():
            if key in record:
                entry["values"].setdefault(key, []).append(record[key])
    out = {}
    for name, entry in methods.items():
        means = {k: _mean(v) for k, v in entry["values"].items()}
        out[name] = dict(records=entry["records"], means=means,
                         counts={k: sum(x is not None for x in v) for k, v in entry["values"].items()})
    return dict(images=len({r["image"] for r in records}), records=len(records), errors=errors,
                methods=out)


def _metric_keys() -> list[str]:
    return ["probability", "correct"] + [k for keys in METRICS.values() for k in keys]


def _finite(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    value = float(value)
    return value if math.isfinite(value) else None


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
