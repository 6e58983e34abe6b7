"""Your own model in every widget: an nn.Module, a ModelSpec or an Explainer as ``model``,
never mutated or moved, listed in the model menus, its layers and classes offered."""

from __future__ import annotations

import pytest
import torch
import torchvision

import cam_widgets as cw
from cam_widgets.api import get_explainer, widget_model
from cam_widgets.engine import count_hooks
from cam_widgets.widgets import Compare, Explorer, LayerSweep, SmoothGradStudy


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=5).eval()


@pytest.fixture(scope="module")
def labels():
    return ["ant", "bee", "cat", "dog", "eel"]


def test_every_widget_takes_your_model_and_leaves_it_as_it_was(net, labels):
    explainer = cw.Explainer(net, labels=labels, input_size=(96, 96))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    widgets = [
        Explorer(model=explainer),
        Compare(model=explainer, by="layer"),
        SmoothGradStudy(model=explainer, samples=2, snapshots=(1, 2)),
        LayerSweep(model=explainer, max_panels=2),
    ]
    try:
        name = widgets[0].state.model
        assert name.startswith("ResNet (yours") and all(w.state.model == name for w in widgets)
        assert get_explainer(name) is explainer and widget_model(explainer) == name
        assert (name, name) in list(widgets[0]._controls["model"].options)
        assert widgets[0].result.label in labels and not widgets[0].result.flagged
        assert set(widgets[1].state.values) <= {layer.name for layer in explainer.layers()}
        assert widgets[2].result.heatmap.shape == (96, 96)
    finally:
        for widget in widgets:
            widget.close()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert count_hooks(net) == 0 and not net.training
    assert next(net.parameters()).device.type == "cpu"


def test_the_same_module_twice_is_one_entry(net, labels):
    first = widget_model(cw.Explainer(net, labels=labels, input_size=(96, 96)))
    assert widget_model(net) == widget_model(net) and widget_model(net) != "efficientnet_lite0"
    assert widget_model("efficientnet_lite0") == "efficientnet_lite0"
    assert first.startswith("ResNet (yours")


def test_your_model_is_freed_with_its_widgets_and_leaves_the_menus(labels):
    import gc
    import weakref

    from cam_widgets.api import your_models

    net = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    alive = weakref.ref(net)
    explorer = Explorer(model=cw.Explainer(net, labels=labels, input_size=(64, 64)))
    name = explorer.state.model
    assert name in your_models()
    explorer.close()
    del explorer, net
    gc.collect()
    assert name not in your_models() and alive() is None
