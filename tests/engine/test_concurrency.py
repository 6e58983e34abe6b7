"""Many callers on one engine: every result equals the same call made alone, nothing is left
on the model, and the engine stays whole (a class of widgets and notebook cells at once)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from cam_widgets import Explainer
from cam_widgets.engine import count_hooks
from cam_widgets.engine.locking import FairLock, lock_for

# (method, params): cached-capture methods, a guided one, and batched fresh passes
CALLS = [
    ("gradcam", {}),
    ("gradcam++", {}),
    ("guided_backprop", {}),
    ("vanilla", {}),
    ("gradcam", {"samples": 6, "noise": 0.15, "batch_size": 3}),
    ("integrated_gradients", {"steps": 4, "batch_size": 2}),
]


def _images(count: int, seed: int) -> list[torch.Tensor]:
    """Preprocessed (1, 3, 224, 224) images no engine has seen."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn((1, 3, 224, 224), generator=generator) for _ in range(count)]


def _run_at_once(jobs, threads: int = 6) -> list:
    """Each job in a thread, all released together; results in job order (errors raised)."""
    start = threading.Barrier(min(threads, len(jobs)))
    results, errors = [None] * len(jobs), []

    def worker(indices):
        try:
            start.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        for i in indices:
            try:
                results[i] = jobs[i]()
            except Exception as error:  # noqa: BLE001 - reported below, with its job
                errors.append((i, error))

    workers = [
        threading.Thread(target=worker, args=(list(range(k, len(jobs), threads)),))
        for k in range(min(threads, len(jobs)))
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)
    assert not any(w.is_alive() for w in workers), "a caller hung"
    if errors:
        raise errors[0][1]
    return results


def _jobs(explainer, images, targets=(242, 282)):
    jobs, keys = [], []
    for n, image in enumerate(images):
        method, params = CALLS[n % len(CALLS)]
        target = targets[n % len(targets)]
        jobs.append(
            lambda image=image, method=method, params=params, target=target: explainer.explain(
                image, method, target, **params
            )
        )
        keys.append((n, method, target))
    return jobs, keys


def _check_same(together, alone, keys):
    for got, want, key in zip(together, alone, keys):
        assert got.class_id == want.class_id, key
        np.testing.assert_allclose(got.raw, want.raw, rtol=1e-4, atol=1e-6, err_msg=str(key))
        np.testing.assert_allclose(got.heatmap, want.heatmap, atol=1e-4, err_msg=str(key))
        assert got.probability == pytest.approx(want.probability, rel=1e-5)


def test_a_cold_explainer_called_by_many_threads_gives_each_the_map_it_gives_alone():
    explainer = Explainer("efficientnet_lite0", device="cpu")  # no probe yet
    images = _images(12, seed=1)
    jobs, keys = _jobs(explainer, images)
    together = _run_at_once(jobs)
    layers = len(explainer.layers())
    assert layers > 200 and explainer.resolve_layer(None) == explainer.default_layer
    assert count_hooks(explainer.engine.model) == 0
    alone_explainer = Explainer("efficientnet_lite0", device="cpu")
    alone = [job() for job in _jobs(alone_explainer, images)[0]]
    _check_same(together, alone, keys)
    assert len(explainer.layers()) == layers == len(alone_explainer.layers())


def test_a_warm_explainer_under_many_threads_with_new_images(lite_explainer):
    lite_explainer.explain("chelsea")  # warm: probed, one image cached
    images = _images(18, seed=2)  # more images than its cache keeps (evictions meanwhile)
    jobs, keys = _jobs(lite_explainer, images)
    together = _run_at_once(jobs)
    assert count_hooks(lite_explainer.engine.model) == 0
    lite_explainer.engine.clear_cache()
    alone = [job() for job in jobs]
    _check_same(together, alone, keys)
    assert not lite_explainer.engine.model.training


class _TrainModeNet(nn.Module):
    """A user's model left in train mode: BatchNorm would use the batch's statistics if a
    pass ran while another thread's pass had put the mode back."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
        )
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def test_threads_on_a_user_model_in_train_mode_leave_it_as_it_was():
    model = _TrainModeNet().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    labels = ["a", "b", "c", "d"]
    # two Explainers of one module (two widgets given the same model) share its lock
    first = Explainer(model, input_size=(16, 16), labels=labels, device="cpu")
    second = Explainer(model, input_size=(16, 16), labels=labels, device="cpu")
    assert first.engine.exclusive() is second.engine.exclusive() is lock_for(model)
    first.layers(), second.layers()  # probed: what the threads share is the mode switch
    generator = torch.Generator().manual_seed(3)
    images = [torch.randn((1, 3, 16, 16), generator=generator) for _ in range(16)]
    methods = ["gradcam", "guided_backprop", "layercam", "vanilla"]
    jobs = [
        lambda n=n, image=image: (first if n % 2 else second).explain(image, methods[n % 4], n % 4, "body.3")
        for n, image in enumerate(images)
    ]
    together = _run_at_once(jobs, threads=8)
    assert model.training and count_hooks(model) == 0
    for key, value in model.state_dict().items():  # running statistics untouched
        assert torch.equal(value, state[key]), key
    alone = Explainer(model, input_size=(16, 16), labels=labels, device="cpu")
    for n, (image, got) in enumerate(zip(images, together)):
        want = alone.explain(image, methods[n % 4], n % 4, "body.3")
        np.testing.assert_allclose(got.raw, want.raw, rtol=1e-5, atol=1e-7)


def test_the_shared_explain_call_from_threads_builds_one_explainer():
    import cam_widgets.api as api

    saved = dict(api._SHARED)
    api._SHARED.clear()
    try:
        images = _images(4, seed=4)
        results = _run_at_once(
            [lambda image=image: api.explain(image, device="cpu") for image in images], threads=4
        )
        assert len(api._SHARED) == 1
        explainer = next(iter(api._SHARED.values()))
        for image, got in zip(images, results):
            np.testing.assert_allclose(got.raw, explainer.explain(image).raw, rtol=1e-5)
    finally:
        api._SHARED.clear()
        api._SHARED.update(saved)


def test_the_engine_lock_serves_waiters_in_arrival_order_and_is_reentrant():
    lock = FairLock()
    order = []
    lock.acquire()
    with lock:  # re-entrant
        assert lock.held()
    assert lock.held()

    def waiter(name):
        with lock:
            order.append(name)

    threads = []
    for name in "abc":
        thread = threading.Thread(target=waiter, args=(name,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while len(lock._waiting) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.005)  # queued before the next one arrives
    # the holder releases and asks again at once: it goes behind the waiters
    lock.release()
    with lock:
        order.append("holder")
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["a", "b", "c", "holder"]
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()


def test_widgets_on_one_engine_driven_at_once_keep_their_own_results():
    """An Explorer, a Compare and a running SmoothGradStudy of one notebook, on the shared
    engine, each changed in the browser while the others work: each shows its own maps."""
    from cam_widgets.api import get_explainer
    from cam_widgets.widgets import Compare, Explorer, SmoothGradStudy
    from loop_helpers import run_loop

    explorer = Explorer(image="chelsea", background=True)
    compare = Compare(image="coffee", by="class", values=(285, 282), background=True)
    study = SmoothGradStudy(image="astronaut", samples=6, snapshots=(1, 6), background=True)
    shared = get_explainer("efficientnet_lite0")
    assert explorer.explainer is shared

    async def scenario():
        study._controls["noise"].value = 0.25  # SmoothGrad runs in its thread...
        compare._controls["by"].value = "method"  # ...while Compare's panels compute...
        compare._controls["values"].value = "Grad-CAM, Layer-CAM"
        explorer._controls["layer"].value = "features.5"  # ...and the Explorer's map
        explorer._controls["method"].value = "gradcam++"
        for widget in (study, compare, explorer):
            await widget._requests.queue.idle(timeout=300)

    run_loop(scenario)
    assert count_hooks(shared.engine.model) == 0
    got = explorer.result
    assert (got.method, got.layer) == ("gradcam++", "features.5")
    want = shared.explain("chelsea", "gradcam++", got.class_id, "features.5")
    np.testing.assert_allclose(got.heatmap, want.heatmap, atol=1e-4)
    assert [r.method for r in compare.results] == ["gradcam", "layercam"]
    for result in compare.results:
        want = shared.explain("coffee", result.method, result.class_id, result.layer)
        np.testing.assert_allclose(result.heatmap, want.heatmap, atol=1e-4)
    smooth = study.result
    assert smooth.params["noise"] == 0.25
    want = shared.explain(
        "astronaut",
        smooth.method,
        smooth.class_id,
        smooth.layer,
        **{k: smooth.params[k] for k in ("noise", "samples", "seed")},
    )
    np.testing.assert_allclose(smooth.heatmap, want.heatmap, atol=1e-4)
