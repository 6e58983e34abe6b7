"""Results files of :func:`~cam_widgets.metrics.evaluate.evaluate`: JSON lines, read back
(tolerating a last line cut by an interruption), written with a flush and fsync, summarised."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import stat
from collections.abc import Iterable

import numpy as np

from ..data.files import check_output, file_kind, open_regular, output_error
from ..errors import InvalidParameterError

_OUT_HINT = "pick another output file ('out'; CLI: --out)"

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
    ``repair`` means the caller appends next: the file must then be a regular file (or none
    yet) in a folder that takes a new file, checked before anything is read; a path that
    is not a regular file (a folder, a FIFO, ``/dev/zero``) is never read either way.
    """
    path = pathlib.Path(path)
    if repair:
        check_output(path, _OUT_HINT)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise output_error(path, "the path cannot be looked at", exc, _OUT_HINT) from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidParameterError(
            f"the results file {str(path)!r} is {file_kind(info.st_mode)}: expected a JSON-lines "
            f"file (or none yet); hint: {_OUT_HINT}"
        )
    with open_regular(path, "the results file") as handle:
        data = handle.read()
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
            if last or all(not rest.strip() for rest in lines[number + 1 :]):
                break
            raise InvalidParameterError(
                f"{str(path)!r} line {number + 1} is not a JSON record; remove it or pass resume=False (CLI: --no-resume)"
            ) from None
        records.append(record)
        good += len(line) + 1
    if repair and good < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good)
    return records


def write_records(handle, records: Iterable[dict]) -> None:
    """Append ``records`` (one JSON line each) to the open results file, then fsync.

    The rule for the appended results file (resume relies on its appends): every record of
    the call is serialised first, then written in one go at the end of the file; if the
    write fails (disk full, I/O error, interruption) the file is cut back to its length
    before the call, so what was there stays byte-identical and no partial line is left;
    the error is one line. (A crash of the machine mid-write can still leave a cut last
    line: :func:`read_records` ignores it and ``repair`` cuts it.)
    """
    data = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    try:
        fd = handle.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a StringIO...): plain write
        handle.write(data)
        handle.flush()
        return
    handle.flush()  # anything the caller wrote itself goes first
    size = os.fstat(fd).st_size
    try:
        payload, done = data.encode("utf-8"), 0
        while done < len(payload):  # os.write: no buffer left to retry the write at close()
            done += os.write(fd, payload[done:])
        os.fsync(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        if isinstance(exc, OSError):
            name = getattr(handle, "name", "the results file")
            raise output_error(
                name, "the records could not be appended (the file is as it was before them)", exc, _OUT_HINT
            ) from None
        raise


def _mean(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(records_or_path) -> dict:
    """Means per method of every numeric field of the records (a path or a list of dicts).

    Returns ``dict(images, records, errors, methods={method: dict(records, means, counts)})``;
    ``counts`` says how many records had the field (boxes may be missing for some images).
    """
    records = (
        read_records(records_or_path)
        if isinstance(records_or_path, (str, os.PathLike))
        else list(records_or_path)
    )
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
        out[name] = dict(
            records=entry["records"],
            means=means,
            counts={k: sum(x is not None for x in v) for k, v in entry["values"].items()},
        )
    return dict(images=len({r["image"] for r in records}), records=len(records), errors=errors, methods=out)


def _metric_keys() -> list[str]:
    return ["probability", "correct"] + [k for keys in METRICS.values() for k in keys]


def finite(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    value = float(value)
    return value if math.isfinite(value) else None
