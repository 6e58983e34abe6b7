"""Results files of :func:`~cam_widgets.metrics.evaluate.evaluate`: JSON lines, read back
(tolerating a last line cut by an interruption), written with a flush and fsync, summarised."""
from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Iterable, Optional

import numpy as np

from ..errors import InvalidParameterError

#: Metric names accepted by :func:`evaluate`, and the record keys each one writes.
METRICS = {
    "pointing_game": ("pointing_game",),
    "energy": ("energy",),
    "iou": ("iou",),
    "average_drop": ("average_drop", "increase_in_confidence"),
    "deletion_insertion": ("deletion_auc", "insertion_auc"),
}


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
                f"{str(path)!r} line {number + 1} is not a JSON record; remove it or pass resume=False (CLI: --no-resume)") from None
        records.append(record)
        good += len(line) + 1
    if repair and good < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good)
    return records


def write_records(handle, records: Iterable[dict]) -> None:
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


def finite(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    value = float(value)
    return value if math.isfinite(value) else None
