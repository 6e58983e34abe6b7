"""Localization and faithfulness of every CAM method on the offline scenes (EfficientNet-Lite0).

For each scene (``two_class``: cat 285 and espresso 967; ``multi_instance_2`` and
``multi_instance_3``: cat 285) and each (method, layer), the map of the class is scored
against the union of that class's boxes:

- PG@15: pointing game with a 15 px tolerance (Zhang et al.), hits / cases;
- energy: energy pointing game, the fraction of map energy inside the boxes (Score-CAM);
- IoU@.25, IoU@.5: IoU of the map thresholded at delta * max with the boxes (Grad-CAM++ Loc);
- inst: instances covered, boxes whose in-box maximum reaches half the map's maximum;
- AD / IC: Average Drop % and Increase in Confidence % (Grad-CAM++), E_c = input * map.

All maps of one scene come from ``explain_classes`` (one backward per layer, one Score-CAM
pass for both classes); AD/IC run as one batched forward per scene. Then the article's claim
(Grad-CAM++ covers multiple instances better than Grad-CAM) is checked on the multi-instance
scenes, layer by layer.

Usage::

    python benchmarks/bench_localization.py                  # every method x layer (a few minutes)
    python benchmarks/bench_localization.py --scorecam-layers features.5   # skip the costly Score-CAM layers
    python benchmarks/bench_localization.py --quick          # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from cam_widgets import Explainer, get_scene
from cam_widgets.errors import MethodNotApplicableError
from cam_widgets.metrics import average_drop_increase, energy_pointing_game, iou_at_thresholds, pointing_game

SCENE_CLASSES = {"two_class": (285, 967), "multi_instance_2": (285,), "multi_instance_3": (285,)}
METHODS = ("cam", "gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam")
LAYERS = ("features.8", "features.7", "features.6", "features.5")
MULTI = ("multi_instance_2", "multi_instance_3")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", default=",".join(SCENE_CLASSES))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--layers", default=",".join(LAYERS))
    p.add_argument(
        "--scorecam-layers",
        default=",".join(LAYERS),
        help="Score-CAM costs one forward per channel (features.8 has 1,280)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--tolerance", type=float, default=15.0)
    p.add_argument("--quick", action="store_true", help="multi_instance_2, Grad-CAM(++), features.8")
    p.add_argument("--out", default=None, help="also write the markdown here")
    args = p.parse_args(argv)
    if args.quick:
        args.scenes, args.methods, args.layers, args.scorecam_layers = (
            "multi_instance_2",
            "gradcam,gradcam++",
            "features.8",
            "",
        )
    return args


def score_scene(ex: Explainer, name: str, methods, layers, scorecam_layers, tolerance) -> list[dict]:
    """One row per (method, layer, class) of the scene, with every metric."""
    scene = get_scene(name)
    prepared = ex.prepare(scene.image)
    classes = SCENE_CLASSES[name]
    rows, maps = [], []
    for method in methods:
        for layer in layers:
            if method == "scorecam" and layer not in scorecam_layers:
                continue
            try:
                results = ex.explain_classes(prepared, list(classes), method, layer)
            except MethodNotApplicableError:
                continue
            for class_id, res in zip(classes, results):
                boxes = scene.boxes_for(class_id)
                ious = iou_at_thresholds(res.heatmap, boxes, deltas=(0.25, 0.5))
                covered = sum(
                    res.heatmap[b.y0 : b.y1, b.x0 : b.x1].max() >= 0.5 * res.heatmap.max() > 0 for b in boxes
                )
                rows.append(
                    dict(
                        scene=name,
                        method=method,
                        layer=layer,
                        class_id=class_id,
                        pg=bool(pointing_game(res.heatmap, boxes, tolerance)),
                        energy=energy_pointing_game(res.heatmap, boxes),
                        iou25=ious[0.25],
                        iou50=ious[0.5],
                        covered=int(covered),
                        instances=len(boxes),
                        flat=res.status.flat,
                    )
                )
                maps.append(res.heatmap)
    faith = average_drop_increase(ex, [prepared] * len(maps), np.stack(maps), [r["class_id"] for r in rows])
    for row, item in zip(rows, faith["per_image"]):
        row["ad"], row["ic"] = item["drop"], 100.0 * item["increase"]
    return rows


def summary_table(rows: list[dict]) -> str:
    groups = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["layer"])].append(r)
    lines = [
        "| method | layer | cases | PG@15 | energy | IoU@.25 | IoU@.5 | inst covered | AD % | IC % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (method, layer), rs in groups.items():
        lines.append(
            f"| {method} | {layer} | {len(rs)} | {sum(r['pg'] for r in rs)}/{len(rs)} "
            f"| {np.mean([r['energy'] for r in rs]):.3f} | {np.mean([r['iou25'] for r in rs]):.3f} "
            f"| {np.mean([r['iou50'] for r in rs]):.3f} | {sum(r['covered'] for r in rs)}/"
            f"{sum(r['instances'] for r in rs)} | {np.mean([r['ad'] for r in rs]):.1f} "
            f"| {np.mean([r['ic'] for r in rs]):.0f} |"
        )
    return "\n".join(lines)


def claim_table(rows: list[dict]) -> tuple[str, str]:
    """Grad-CAM vs Grad-CAM++ on the multi-instance scenes, per layer, and a verdict."""
    pick = {(r["scene"], r["method"], r["layer"]): r for r in rows if r["scene"] in MULTI}
    lines = [
        "| scene | layer | energy G / G++ | IoU@.25 G / G++ | IoU@.5 G / G++ | inst covered G / G++ |",
        "|---|---|---|---|---|---|",
    ]
    tally = defaultdict(lambda: [0, 0, 0])  # layer -> [G++ better, Grad-CAM better, tie]
    for (scene, method, layer), g in pick.items():
        if method != "gradcam" or (scene, "gradcam++", layer) not in pick:
            continue
        p = pick[(scene, "gradcam++", layer)]
        lines.append(
            f"| {scene} | {layer} | {g['energy']:.3f} / {p['energy']:.3f} "
            f"| {g['iou25']:.3f} / {p['iou25']:.3f} | {g['iou50']:.3f} / {p['iou50']:.3f} "
            f"| {g['covered']}/{g['instances']} / {p['covered']}/{p['instances']} |"
        )
        for key in ("energy", "iou25", "iou50", "covered"):
            tally[layer][0 if p[key] > g[key] else 1 if p[key] < g[key] else 2] += 1
    if not tally:
        return "\n".join(
            lines
        ), "Claim not checked: Grad-CAM and Grad-CAM++ on a multi-instance scene are needed."
    wins, losses, ties = (sum(t[i] for t in tally.values()) for i in range(3))
    per_layer = "; ".join(f"{layer}: {t[0]} better, {t[1]} worse, {t[2]} tied" for layer, t in tally.items())
    verdict = "holds" if wins > losses else "does not hold" if wins < losses else "is undecided"
    return "\n".join(lines), (
        f"Claim 'Grad-CAM++ covers multiple instances better than Grad-CAM' **{verdict}** here: over "
        f"(scene, layer, metric) comparisons on the multi-instance scenes (energy in boxes, IoU@.25, "
        f"IoU@.5, instances covered) Grad-CAM++ is better in {wins}, worse in {losses}, tied in {ties} "
        f"({per_layer})."
    )


def main(argv=None) -> int:
    args = parse(argv)
    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    ex = Explainer("efficientnet_lite0", device=args.device)
    rows, started = [], time.perf_counter()
    for name in split(args.scenes):
        t = time.perf_counter()
        rows += score_scene(
            ex,
            name,
            split(args.methods),
            split(args.layers),
            set(split(args.scorecam_layers)),
            args.tolerance,
        )
        print(f"[{name}: {time.perf_counter() - t:.0f} s]", file=sys.stderr, flush=True)
    claim, verdict = claim_table(rows)
    text = "\n".join(
        [
            f"EfficientNet-Lite0 on {', '.join(split(args.scenes))} ({args.device}, "
            f"{time.perf_counter() - started:.0f} s); PG tolerance {args.tolerance:g} px; "
            f"Score-CAM layers: {args.scorecam_layers or 'none'}; 'cam' applies only at features.8.",
            "",
            summary_table(rows),
            "",
            "Grad-CAM (G) vs Grad-CAM++ (G++) on the multi-instance scenes:",
            "",
            claim,
            "",
            verdict,
        ]
    )
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
