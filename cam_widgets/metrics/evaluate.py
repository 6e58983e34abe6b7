"""Batch evaluation of explanation methods over an image folder or a torch ``Dataset``.

:func:`evaluate` streams the dataset through a :class:`torch.utils.data.DataLoader`
(workers, pinned memory, batches moved to the explainer's device), computes the maps of
every method for a whole batch in batched passes, scores them with the metrics of this
package, and appends one JSON line per (image, method) to ``out``, flushed and fsynced
after every batch: an interruption loses at most the batch in flight. Run it again with
``resume=True`` (the default) and the (image, method) pairs already in ``out`` are skipped.
:func:`summarize` turns the JSONL file into means per method.

This module checks the arguments, finds the pairs left to do and drives the DataLoader;
:mod:`.batch` computes each batch (how the maps are batched is explained there),
:mod:`.folder` holds the datasets and :mod:`.records` the results file.
:mod:`.distributed` runs the same evaluation sharded over ``torch.distributed`` processes.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Sequence
from numbers import Integral

from torch.utils.data import DataLoader

from ..data.files import check_output, open_append
from ..errors import CamWidgetsError, InvalidParameterError, close_matches, expected, one_line

# the per-batch computation, dataset and records parts live in their own modules; their
# public names stay importable here
from .batch import explain_batch, score_batch
from .folder import IMAGE_EXTENSIONS, ImageFolderDataset, IndexedDataset, collate
from .plan import Plan
from .records import METRICS, read_records, summarize, write_records

__all__ = [
    "ImageFolderDataset",
    "evaluate",
    "explain_batch",
    "summarize",
    "read_records",
    "METRICS",
    "TARGETS",
    "IMAGE_EXTENSIONS",
]

#: How the explained class is chosen: the dataset's label, or the model's top-1 class.
TARGETS = ("label", "top1")
_METRIC_OPTIONS = {
    "pointing_game": {"tolerance"},
    "iou": {"delta", "region"},
    "deletion_insertion": {"steps", "baseline"},
}


# =========================================================================== evaluate
def evaluate(
    explainer,
    dataset,
    *,
    methods: Sequence[str] = ("gradcam",),
    layer: str | None = None,
    target: str = "label",
    metrics: Sequence[str] = ("pointing_game", "energy", "average_drop"),
    out="results.jsonl",
    batch_size: int = 16,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    resume: bool = True,
    progress: Callable[[int, int], None] | None = None,
    method_params: dict | None = None,
    metric_params: dict | None = None,
    on_error: str = "raise",
) -> dict:
    """Explain and score every image of ``dataset`` with every method; one JSON line per pair.

    Args:
        explainer: an :class:`~cam_widgets.Explainer`.
        dataset: an :class:`ImageFolderDataset` or any map-style ``Dataset`` whose items are
            preprocessed (3, H, W) tensors at the model input size, alone or as
            ``(tensor, label[, box])`` or a dict (see ``folder._parse_item``).
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
    plan = make_plan(
        explainer,
        dataset,
        methods,
        layer,
        target,
        metrics,
        batch_size,
        num_workers,
        on_error,
        method_params,
        metric_params,
    )
    # a folder, /dev/full, a FIFO or a read-only place: one line, before anything is read as
    # if to resume or removed (an unlink of /dev/full, run as root, deleted the device)
    out = check_output(out, "pick another output file ('out'; CLI: --out)")
    if not resume:
        out.unlink(missing_ok=True)
    done = done_pairs(read_records(out, repair=True), plan)
    pending = pending_indices(dataset, plan, done)
    started = time.perf_counter()
    computed = run_plan(explainer, dataset, plan, pending, out, done, pin_memory, progress)
    seconds = time.perf_counter() - started
    summary = summarize(out)
    return dict(
        summary,
        out=str(out),
        computed=computed,
        skipped=len(done),
        seconds=seconds,
        images_per_second=len(pending) / seconds if pending and seconds > 0 else None,
    )


def make_plan(
    explainer,
    dataset,
    methods,
    layer,
    target,
    metrics,
    batch_size,
    num_workers,
    on_error,
    method_params,
    metric_params,
) -> Plan:
    from ..methods import get_method

    if isinstance(methods, str):
        methods = [methods]
    specs = [get_method(m) for m in methods]
    if not specs or len({s.name for s in specs}) != len(specs):
        raise InvalidParameterError(expected("methods", "distinct method names", methods))
    if target not in TARGETS:
        raise InvalidParameterError(expected("target", "'label' or 'top1'", target))
    if isinstance(metrics, str):
        metrics = [metrics]
    for name in metrics:
        if name not in METRICS:
            raise InvalidParameterError(
                expected(
                    "metric",
                    f"some of {', '.join(METRICS)}",
                    name,
                    close_matches(name, METRICS),
                    problem="Unknown metric",
                )
            )
    for name, value in (("batch_size", batch_size), ("num_workers", num_workers)):
        low = 1 if name == "batch_size" else 0
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise InvalidParameterError(expected(name, f"an int >= {low}", value))
    if on_error not in ("raise", "record"):
        raise InvalidParameterError(expected("on_error", "'raise' or 'record'", on_error))
    method_params = dict(method_params or {})
    for name, params in method_params.items():
        if name not in {s.name for s in specs}:
            raise InvalidParameterError(f"method_params names {name!r}, which is not in 'methods'")
        get_method(name).check_params(dict(params))
    metric_params = {k: dict(v) for k, v in (metric_params or {}).items()}
    for name, params in metric_params.items():
        allowed = _METRIC_OPTIONS.get(name, set())
        for key in params:
            if key not in allowed:
                raise InvalidParameterError(
                    f"metric {name!r} takes no option {key!r}"
                    + (f"; it takes {', '.join(sorted(allowed))}" if allowed else "")
                )
    if target == "label" and getattr(dataset, "has_labels", True) is False:
        raise InvalidParameterError(
            "target='label' needs class labels and this ImageFolderDataset has none; pass "
            "labels='labels.csv' (rows path,class_id[,x0,y0,x1,y1]) or target='top1'"
        )
    chosen = explainer.resolve_layer(layer) if any(s.needs_layer for s in specs) else None
    return Plan(
        specs=specs,
        names=[s.name for s in specs],
        layer=chosen,
        target=target,
        metrics=list(dict.fromkeys(metrics)),
        batch_size=int(batch_size),
        num_workers=int(num_workers),
        on_error=on_error,
        method_params=method_params,
        metric_params=metric_params,
    )


def _image_id(dataset, index: int) -> str:
    name = getattr(dataset, "image_id", None)
    return str(name(index)) if callable(name) else str(index)


def done_pairs(records: list[dict], plan: Plan) -> set[tuple[str, str]]:
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
                    + "; pass resume=False (CLI: --no-resume) to start over, or another 'out'"
                )
        done.add((str(record["image"]), method))
    return done


def _spec(name: str):
    from ..methods import get_method

    return get_method(name)


def pending_indices(dataset, plan: Plan, done: set) -> list[int]:
    return [i for i in range(len(dataset)) if any((_image_id(dataset, i), m) not in done for m in plan.names)]


def run_plan(
    explainer,
    dataset,
    plan: Plan,
    indices: list[int],
    out: pathlib.Path,
    done: set,
    pin_memory: bool | None,
    progress,
) -> int:
    """Evaluate ``indices`` of ``dataset``, appending to ``out``; returns the pairs written."""
    if not indices:
        return 0
    device = explainer.device
    pin = device.type == "cuda" if pin_memory is None else bool(pin_memory)
    loader = DataLoader(
        IndexedDataset(dataset, plan.on_error == "record"),
        batch_size=plan.batch_size,
        sampler=indices,
        num_workers=plan.num_workers,
        collate_fn=collate,
        pin_memory=pin and device.type == "cuda",
    )
    written, seen = 0, 0
    with open_append(out) as handle:
        try:
            for index_list, batch, class_ids, boxes, errors in loader:
                records = _evaluate_batch(
                    explainer, dataset, plan, index_list, batch, class_ids, boxes, errors, done
                )
                write_records(handle, records)
                written += len(records)
                seen += len(index_list)
                if progress is not None:
                    progress(seen, len(indices))
        except CamWidgetsError as error:  # from a DataLoader worker: its traceback in the text
            raise type(error)(one_line(error)) from None
    return written


def _evaluate_batch(
    explainer, dataset, plan: Plan, indices, batch, class_ids, boxes, errors, done: set
) -> list[dict]:
    ids = [_image_id(dataset, i) for i in indices]
    records: dict[tuple[int, str], dict] = {}
    rows = [row for row, error in enumerate(errors) if error is None]
    for row, error in enumerate(errors):
        if error is not None:
            for name in plan.names:
                if (ids[row], name) not in done:
                    records[(row, name)] = dict(image=ids[row], index=indices[row], method=name, error=error)
    if rows:
        records.update(
            score_batch(
                explainer,
                plan,
                indices,
                ids,
                rows,
                batch,
                [class_ids[r] for r in rows],
                [boxes[r] for r in rows],
                done,
            )
        )
    return [records[key] for key in sorted(records, key=lambda k: (k[0], plan.names.index(k[1])))]
