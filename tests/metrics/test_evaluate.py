"""Batch evaluation: equality with explain(), resume, DataLoader workers, torch.distributed."""

from __future__ import annotations

import functools
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from cam_widgets import Explainer
from cam_widgets.errors import InvalidParameterError
from cam_widgets.methods import get_method
from cam_widgets.metrics import average_drop_increase, energy_pointing_game, pointing_game
from cam_widgets.metrics.evaluate import ImageFolderDataset, evaluate, explain_batch, read_records, summarize
from conftest import TinyNet

SIZE = (8, 8)
METHODS = ("gradcam", "gradcam++", "cam", "vanilla", "guided_backprop", "scorecam")
METRICS = ("pointing_game", "energy", "average_drop")


def make_explainer() -> Explainer:
    """Module-level (picklable) factory for the spawned ranks."""
    return Explainer(TinyNet(), input_size=SIZE, labels=["a", "b", "c"], device="cpu")


def make_dataset(root, explainer) -> ImageFolderDataset:
    return ImageFolderDataset(root, explainer, labels=root / "labels.csv")


@pytest.fixture
def folder(tmp_path):
    """7 random 16x12 images, every class, one image without a box, one with two."""
    rng = np.random.default_rng(0)
    rows = ["path,class_id,x0,y0,x1,y1"]
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
        if i == 3:
            rows.append(f"img{i}.png,{i % 3}")
        else:
            rows.append(f"img{i}.png,{'abc'[i % 3]},{i % 4},2,{8 + i % 4},10")
        if i == 5:
            rows.append(f"img{i}.png,2,0,0,4,4")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_records_equal_a_loop_over_explain(folder):
    explainer = make_explainer()
    dataset = make_dataset(folder, explainer)
    summary = evaluate(
        explainer, dataset, methods=METHODS, metrics=METRICS, out=folder / "r.jsonl", batch_size=3
    )
    records = read_records(folder / "r.jsonl")
    assert len(records) == 7 * len(METHODS) and summary["records"] == len(records)
    assert [(r["index"], r["method"]) for r in records] == [(i, m) for i in range(7) for m in METHODS]
    for record in records:
        index = record["index"]
        path = folder / f"img{index}.png"
        annotation = dataset.annotation(index)
        assert record["class_id"] == annotation["class_id"] == index % 3
        prepared = explainer.prepare(str(path))
        e = explainer.explain(prepared, record["method"], record["class_id"])
        assert record["probability"] == pytest.approx(e.probability, rel=1e-5)
        boxes = annotation["boxes"]
        if boxes is None:
            assert record["pointing_game"] is None and record["energy"] is None
        else:
            assert record["pointing_game"] == pointing_game(e.heatmap, boxes)
            assert record["energy"] == pytest.approx(energy_pointing_game(e.heatmap, boxes), abs=1e-5)
        drop = average_drop_increase(explainer, prepared, e.heatmap[None], record["class_id"])
        assert record["average_drop"] == pytest.approx(drop["average_drop"], abs=1e-4)
        assert record["increase_in_confidence"] == drop["increase_in_confidence"]
    means = summary["methods"]["gradcam"]["means"]
    gradcam = [r for r in records if r["method"] == "gradcam"]
    assert means["energy"] == pytest.approx(
        np.mean([r["energy"] for r in gradcam if r["energy"] is not None])
    )
    assert summary["methods"]["gradcam"]["counts"]["energy"] == 6


def test_batched_maps_equal_explain(folder):
    explainer = make_explainer()
    dataset = make_dataset(folder, explainer)
    inputs = torch.stack([dataset[i][0] for i in range(len(dataset))])
    classes = [2, 0, 1, 1, 2, 0, 0]
    specs = [get_method(m) for m in METHODS]
    maps, probs, top1, ids = explain_batch(explainer, inputs, classes, specs, explainer.default_layer)
    assert ids == classes
    for n in range(len(dataset)):
        assert dataset.annotation(n)["class_id"] == n % 3
        for spec in specs:
            e = explainer.explain(inputs[n], spec.name, classes[n])
            np.testing.assert_allclose(maps[spec.name][n], e.heatmap, atol=1e-5)
    maps, _, top1, ids = explain_batch(explainer, inputs, None, specs[:1], explainer.default_layer)
    assert ids == top1 == [explainer.predict(inputs[n], 1)[0].class_id for n in range(len(dataset))]


class Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted(folder):
    explainer = make_explainer()
    dataset = make_dataset(folder, explainer)
    kwargs = dict(methods=("gradcam", "cam"), metrics=METRICS, batch_size=2)
    evaluate(explainer, dataset, out=folder / "full.jsonl", **kwargs)

    def stop(done, total):
        raise Interrupt

    with pytest.raises(Interrupt):
        evaluate(explainer, dataset, out=folder / "part.jsonl", progress=stop, **kwargs)
    assert len(read_records(folder / "part.jsonl")) == 2 * 2  # the first batch was kept
    with open(folder / "part.jsonl", "a") as handle:  # and a line cut by a kill mid-write
        handle.write('{"image": "img2.png", "meth')
    calls = []
    summary = evaluate(
        explainer, dataset, out=folder / "part.jsonl", progress=lambda d, t: calls.append((d, t)), **kwargs
    )
    assert summary["skipped"] == 4 and summary["computed"] == 10 and calls[-1] == (5, 5)
    assert (folder / "part.jsonl").read_text() == (folder / "full.jsonl").read_text()
    again = evaluate(explainer, dataset, out=folder / "part.jsonl", **kwargs)
    assert again["computed"] == 0 and again["records"] == 14
    with pytest.raises(InvalidParameterError, match="resume=False"):
        evaluate(explainer, dataset, out=folder / "part.jsonl", methods=("gradcam",), layer="conv")
    fresh = evaluate(
        explainer,
        dataset,
        out=folder / "part.jsonl",
        resume=False,
        methods=("gradcam",),
        layer="conv",
        metrics=("energy",),
    )
    assert fresh["records"] == 7


def test_dataloader_workers_and_top1(folder):
    explainer = make_explainer()
    dataset = make_dataset(folder, explainer)
    pickle.loads(pickle.dumps(dataset))
    one = evaluate(
        explainer, dataset, out=folder / "w0.jsonl", target="top1", batch_size=4, methods=("gradcam", "cam")
    )
    two = evaluate(
        explainer,
        dataset,
        out=folder / "w2.jsonl",
        target="top1",
        batch_size=4,
        methods=("gradcam", "cam"),
        num_workers=2,
    )
    assert two["computed"] == one["computed"] == 14
    assert (folder / "w0.jsonl").read_text() == (folder / "w2.jsonl").read_text()
    assert all(r["class_id"] == r["top1"] for r in read_records(folder / "w2.jsonl"))


def test_plain_dataset_and_errors(folder):
    explainer = make_explainer()
    unlabeled = ImageFolderDataset(folder, explainer)
    assert unlabeled.paths == [f"img{i}.png" for i in range(7)]
    with pytest.raises(InvalidParameterError, match="target='top1'"):
        evaluate(explainer, unlabeled, out=folder / "x.jsonl")
    with pytest.raises(InvalidParameterError, match="Did you mean 'energy'"):
        evaluate(explainer, unlabeled, out=folder / "x.jsonl", metrics=("enrgy",))
    tensors = [(unlabeled[i][0], i % 3) for i in range(4)]  # a plain list of (tensor, label)
    summary = evaluate(explainer, tensors, out=folder / "t.jsonl", metrics=("average_drop",))
    assert summary["records"] == 4 and summary["methods"]["gradcam"]["counts"]["average_drop"] == 4
    (folder / "broken.png").write_bytes(b"not an image")
    broken = ImageFolderDataset(folder, explainer)
    summary = evaluate(explainer, broken, out=folder / "b.jsonl", target="top1", on_error="record")
    assert summary["errors"] == 1 and summary["records"] == 8


def test_distributed_two_ranks_equal_single_process(folder, tmp_path):
    from cam_widgets.metrics.distributed import rank_path, run_distributed

    explainer = make_explainer()
    kwargs = dict(methods=("gradcam", "scorecam"), metrics=METRICS, batch_size=2)
    evaluate(explainer, make_dataset(folder, explainer), out=folder / "single.jsonl", **kwargs)
    # an interrupted earlier distributed run left a rank file behind: it is resumed from
    first = [r for r in read_records(folder / "single.jsonl") if r["index"] == 6]
    rank_path(folder / "dist.jsonl", 1).write_text("".join(json.dumps(r) + "\n" for r in first))
    summary = run_distributed(
        2,
        make_explainer,
        functools.partial(make_dataset, folder),
        out=folder / "dist.jsonl",
        backend="gloo",
        **kwargs,
    )
    assert summary["records"] == 14 and summary["world_size"] == 2
    assert summary["skipped"] == 2 and summary["computed"] == 12
    # same records in the same order; floats to 1e-6 (ranks run with fewer torch threads,
    # which on many-core machines changes the order of float reductions)
    merged, single = read_records(folder / "dist.jsonl"), read_records(folder / "single.jsonl")
    assert [sorted(r) for r in merged] == [sorted(r) for r in single]
    assert merged == [
        {k: pytest.approx(v, rel=1e-6, abs=1e-9) if isinstance(v, float) else v for k, v in r.items()}
        for r in single
    ]
    assert not list(folder.glob("dist.rank*.jsonl"))
    together, alone = summarize(folder / "dist.jsonl"), summarize(folder / "single.jsonl")
    assert {k: together[k] for k in ("images", "records", "errors")} == {
        k: alone[k] for k in ("images", "records", "errors")
    }
    for method, entry in alone["methods"].items():
        assert together["methods"][method]["counts"] == entry["counts"]
        assert together["methods"][method]["means"] == pytest.approx(entry["means"], rel=1e-6)
