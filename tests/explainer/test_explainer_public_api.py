"""The Explainer's small public API for code outside the engine (metrics, widgets): the model
it runs, its lock, its cache, logits of a batch, batch sizes, layer facts and batched raw
maps, each equal to what the engine itself gives."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from cam_widgets import Explainer
from cam_widgets.errors import InvalidParameterError, UnknownLayerError
from cam_widgets.methods import get_method
from conftest import TinyNet, tiny_input


def test_model_is_the_module_it_runs(tiny_explainer, tiny_net):
    assert tiny_explainer.model is tiny_net  # same device: the caller's own module


def test_layer_info_names_a_layer_its_resolution_or_the_default(tiny_explainer):
    info = tiny_explainer.layer_info("conv")
    assert (info.name, info.resolution, info.channels) == ("conv", "4x4", 2)
    assert tiny_explainer.layer_info() == tiny_explainer.layer_info(tiny_explainer.default_layer)
    with pytest.raises(UnknownLayerError, match="conv"):
        tiny_explainer.layer_info("conv2")  # close matches named


def test_scores_are_the_models_logits_without_a_graph(tiny_explainer, tiny_net):
    batch = torch.cat([tiny_input(), -tiny_input()])
    logits = tiny_explainer.scores(batch)
    assert logits.shape == (2, 3) and not logits.requires_grad
    with torch.no_grad():
        expected = tiny_net(batch)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_batch_size_fits_the_budget_and_caps_a_request(tiny_explainer):
    fits = tiny_explainer.batch_size()
    assert isinstance(fits, int) and fits >= 1
    assert tiny_explainer.batch_size(3) == 3
    capped = tiny_explainer.batch_size(10**12)
    assert 1 <= capped < 10**12
    assert tiny_explainer.batch_size(10**12, per_image=2.0) <= capped  # twice the memory per image


def test_clear_cache_forgets_forwards_after_writes_through_data(tiny_explainer, tiny_net):
    image = tiny_input()
    assert tiny_explainer.predict(image, top=1)[0].class_id == 1
    tiny_net.fc.bias.data += torch.tensor([0.0, 0.0, 10.0])  # unseen by autograd's versions
    assert tiny_explainer.predict(image, top=1)[0].class_id == 1  # the cached forward
    tiny_explainer.clear_cache()
    assert tiny_explainer.predict(image, top=1)[0].class_id == 2


def test_exclusive_is_reentrant_and_holds_other_threads_passes(tiny_explainer):
    image = tiny_input()
    tiny_explainer.scores(image)  # (the probe runs before the lock is held)
    finished = threading.Event()

    def other():
        tiny_explainer.scores(image)
        finished.set()

    with tiny_explainer.exclusive():
        with tiny_explainer.exclusive():  # re-entrant
            tiny_explainer.scores(image)
        thread = threading.Thread(target=other)
        thread.start()
        assert not finished.wait(0.3)  # waits for the lock
    thread.join(10)
    assert finished.is_set()


@pytest.mark.parametrize("method", ["gradcam", "cam", "guided_backprop"])
def test_batch_raw_maps_equal_each_images_explain(method):
    explainer = Explainer(TinyNet(), input_size=(4, 4), labels=list("abc"), device="cpu")
    batch = torch.cat([tiny_input(), -tiny_input(), tiny_input().flip(-1)])
    outputs, probs, top1, ids = explainer.batch_raw_maps(batch, [0, 2, 1], [method], None)
    assert ids == [0, 2, 1] and probs.shape == (3, 3)
    assert top1 == [int(c) for c in explainer.scores(batch).argmax(dim=1)]
    maps = outputs[method].maps
    assert maps.shape[:2] == (1, 3)
    for n, class_id in enumerate(ids):
        alone = explainer.explain(batch[n : n + 1], method, class_id)
        np.testing.assert_allclose(maps[0, n].float().numpy(), alone.raw, atol=1e-5)


def test_batch_raw_maps_take_specs_and_each_images_top_class(tiny_explainer):
    batch = torch.cat([tiny_input(), -tiny_input()])
    outputs, _, top1, ids = tiny_explainer.batch_raw_maps(
        batch, None, [get_method("gradcam"), "vanilla"], "conv"
    )
    assert ids == top1 and set(outputs) == {"gradcam", "vanilla"}
    alone = tiny_explainer.explain(batch[1:], "gradcam", ids[1], "conv")
    np.testing.assert_allclose(outputs["gradcam"].maps[0, 1].numpy(), alone.raw, atol=1e-5)


def test_the_public_helpers_check_their_inputs_in_one_line(lite_explainer):
    with pytest.raises(
        InvalidParameterError, match=r"Invalid inputs: .*\(N, 3, H, W\).*received \(3, 224, 224\)"
    ):
        lite_explainer.scores(torch.zeros(3, 224, 224))
    for bad in (0, -4, "8", 2.0, True):
        with pytest.raises(InvalidParameterError, match="Invalid requested: expected an int >= 1 or None"):
            lite_explainer.batch_size(bad)
    with pytest.raises(
        InvalidParameterError, match=r"Invalid class_ids: expected one class id per image \(2\)"
    ):
        lite_explainer.batch_raw_maps(torch.zeros(2, 3, 224, 224), [1], ["gradcam"], None)
