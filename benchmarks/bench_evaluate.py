"""Batch evaluation at scale: images per second of ``evaluate`` on each device, same records.

Builds an image folder from the package's offline scenes (each scene flipped and shifted into
``--copies`` variants, boxes moved with it) and a ``labels.csv``, then runs
:func:`cam_widgets.metrics.evaluate` over it on every device asked for (a DataLoader with
workers; pinned memory on CUDA), checks the devices agree record by record, runs the
interrupted-then-resumed path, and the torch.distributed path on this machine
(``run_distributed``: gloo on CPU, NCCL with one process per GPU).

Usage::

    python benchmarks/bench_evaluate.py --devices cpu,cuda --copies 16 --out r.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from cam_widgets import Explainer, get_scene, list_scenes
from cam_widgets.metrics.distributed import run_distributed
from cam_widgets.metrics.evaluate import ImageFolderDataset, evaluate, read_records

METRICS = ("pointing_game", "energy", "iou", "average_drop")


def write_folder(root: pathlib.Path, copies: int) -> int:
    """Scenes x copies (shifted, every other one mirrored) as PNGs with a labels.csv.

    Each image is labelled with its scene's first class and every box of that class.
    """
    rows = ["path,class_id,x0,y0,x1,y1"]
    count = 0
    for name in list_scenes():
        scene = get_scene(name)
        h, w = scene.image.shape[:2]
        for k in range(copies):
            shift = (k * 7) % max(1, w // 8)
            image = np.roll(scene.image, shift, axis=1)
            flip = k % 2 == 1
            if flip:
                image = image[:, ::-1]
            path = f"{name}_{k}.png"
            Image.fromarray(np.ascontiguousarray(image)).save(root / path)
            for box in scene.boxes_for(scene.class_ids[0]):  # one class per image
                x0, x1 = (box.x0 + shift) % w, (box.x1 + shift) % w
                if x1 <= x0:  # wrapped around the edge: skip the box
                    continue
                if flip:
                    x0, x1 = w - x1, w - x0
                rows.append(f"{path},{box.class_id},{x0},{box.y0},{x1},{box.y1}")
            count += 1
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return count


def dataset_for(root: str, explainer) -> ImageFolderDataset:
    root = pathlib.Path(root)
    return ImageFolderDataset(root, explainer, labels=root / "labels.csv")


def explainer_on(device):
    return Explainer("efficientnet_lite0", device=device)


def records_by_pair(path) -> dict:
    return {(r["image"], r["method"]): r for r in read_records(path)}


def max_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for key, left in a.items():
        right = b[key]
        for name, value in left.items():
            if isinstance(value, float) and isinstance(right.get(name), float):
                worst = max(worst, abs(value - right[name]))
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--copies", type=int, default=16, help="variants per scene")
    p.add_argument("--methods", default="gradcam,gradcam++")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    methods = tuple(args.methods.split(","))
    lines = [
        "# Batch evaluation benchmark",
        "",
        f"- date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}",
        f"- methods {', '.join(methods)}; metrics {', '.join(METRICS)}; batch {args.batch_size}, "
        f"{args.num_workers} DataLoader workers",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        root = tmp / "images"
        root.mkdir()
        images = write_folder(root, args.copies)
        lines += [
            f"- {images} images ({len(list_scenes())} scenes x {args.copies} variants)",
            "",
            "| run | device | seconds | images/s | pairs |",
            "|---|---|---:|---:|---:|",
        ]
        outputs = {}
        for device in args.devices.split(","):
            ex = explainer_on(device)
            name = torch.cuda.get_device_name() if ex.device.type == "cuda" else "cpu"
            dataset = dataset_for(str(root), ex)
            evaluate(
                ex,
                dataset,
                methods=methods,
                metrics=METRICS,
                out=tmp / "warm.jsonl",
                batch_size=args.batch_size,
                resume=False,
            )  # warm-up (allocator, kernels)
            out = tmp / f"{device}.jsonl"
            summary = evaluate(
                ex,
                dataset,
                methods=methods,
                metrics=METRICS,
                out=out,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                resume=False,
            )
            outputs[device] = records_by_pair(out)
            lines.append(
                f"| evaluate | {name} | {summary['seconds']:.2f} | "
                f"{summary['images_per_second']:.1f} | {summary['computed']} |"
            )

            # interrupted after the first batch, then resumed: the same records
            resumed = tmp / f"{device}_resumed.jsonl"

            def stop(done, total):
                raise KeyboardInterrupt

            try:
                evaluate(
                    ex,
                    dataset,
                    methods=methods,
                    metrics=METRICS,
                    out=resumed,
                    batch_size=args.batch_size,
                    progress=stop,
                    resume=False,
                )
            except KeyboardInterrupt:
                pass
            kept = len(read_records(resumed))
            again = evaluate(
                ex, dataset, methods=methods, metrics=METRICS, out=resumed, batch_size=args.batch_size
            )
            same = max_difference(records_by_pair(resumed), outputs[device])
            lines.append(
                f"| interrupted ({kept} pairs kept), resumed | {name} | "
                f"{again['seconds']:.2f} | - | {again['computed']} (max diff {same:.1e}) |"
            )

            started = time.perf_counter()
            dist_out = tmp / f"{device}_dist.jsonl"
            backend = "nccl" if ex.device.type == "cuda" else "gloo"  # the default picks by GPU
            run_distributed(
                1,
                functools.partial(explainer_on, device),
                functools.partial(dataset_for, str(root)),
                out=str(dist_out),
                backend=backend,
                methods=methods,
                metrics=METRICS,
                batch_size=args.batch_size,
            )
            seconds = time.perf_counter() - started
            same = max_difference(records_by_pair(dist_out), outputs[device])
            lines.append(
                f"| run_distributed, 1 process ({backend}; incl. start) | {name} | "
                f"{seconds:.2f} | {images / seconds:.1f} | max diff {same:.1e} |"
            )
        if len(outputs) > 1:
            first, *rest = outputs
            for other in rest:
                lines += [
                    "",
                    f"- largest metric difference {first} vs {other}: "
                    f"{max_difference(outputs[first], outputs[other]):.2e}",
                ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
