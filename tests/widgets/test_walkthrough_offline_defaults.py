"""Every widget's defaults work with no network (issue 19): a class on a machine without
torchvision's weights gets maps, not empty axes and an error."""

from __future__ import annotations

import socket
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from cam_widgets import api, widgets  # noqa: E402
from cam_widgets.engine.device import choose_device  # noqa: E402
from cam_widgets.explainer import Explainer  # noqa: E402
from cam_widgets.models import DEFAULT_MODEL  # noqa: E402
from cam_widgets.models.torchvision_zoo import build_torchvision  # noqa: E402
from cam_widgets.models.weight_files import OFFLINE_ENV  # noqa: E402
from cam_widgets.widgets.studies.dilation import finer_layer  # noqa: E402


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No torchvision weights (an empty torch hub), downloads forbidden, and any connection
    refused: whatever the machine has, the defaults must not need it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv(OFFLINE_ENV, "1")

    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _line(widget) -> str:
    return widget.status.line.value


def test_the_offline_fixture_is_offline(offline):
    """What the tests below run under: no weights on disk, no host reachable."""
    from cam_widgets.models import weights_on_disk
    from cam_widgets.models.weight_files import host_reachable, offline_by_env

    with pytest.raises(OSError, match="no network"):
        socket.create_connection(("pypi.org", 443), timeout=1)
    assert offline_by_env() and not host_reachable("https://download.pytorch.org/models/")
    assert not weights_on_disk("vgg16")


def test_dilation_study_defaults_build_offline(offline):
    assert DEFAULT_MODEL == "efficientnet_lite0"
    study = widgets.DilationStudy()
    try:
        assert "cw-error" not in _line(study), _line(study)
        assert study.state.base == DEFAULT_MODEL and study._controls["base"].value == DEFAULT_MODEL
        base, twin = study.results
        assert (base.layer, twin.layer) == ("features.8", "features.8")
        # dilated after features.3 (28x28): the twin's map is 4x finer than the 7x7 one
        assert finer_layer(api.get_explainer(DEFAULT_MODEL), "features.8") == "features.3"
        assert base.raw.shape == (7, 7) and twin.raw.shape == (28, 28)
        assert base.class_id == twin.class_id == 285  # chelsea's top class: Egyptian cat
        assert base.status.ok and twin.status.ok and np.ptp(twin.raw) > 0
        assert all(ms > 0 for ms in study.timings)
        assert study.table.value.count("Egyptian cat") == 2  # in both top-5 columns
        assert "7x7 vs 28x28" in _line(study)
    finally:
        study.close()


def _defaults_case(name: str):
    # SmoothGradStudy's defaults are the article's 100 samples: a minute on 2 CPU cores
    return pytest.param(name, marks=pytest.mark.slow) if name == "SmoothGradStudy" else name


@pytest.mark.parametrize("name", [_defaults_case(n) for n in widgets.__all__])
def test_every_widget_builds_with_its_defaults_offline(offline, name):
    widget = getattr(widgets, name)()
    try:
        assert "cw-error" not in _line(widget), f"{name}(): {_line(widget)}"
        model = getattr(widget.state, "model", getattr(widget.state, "base", None))
        assert model == DEFAULT_MODEL, (name, model)
        shown = widget.results if hasattr(widget, "results") else widget.result  # Explorer: .result
        shown = shown if isinstance(shown, list) else [shown]
        assert shown and all(r is not None and r.status.ok for r in shown), (name, shown)
        assert widget.panels is not None and widget.panels.count >= 1
        maps = [np.asarray(widget.panels.heatmap(k).z, dtype=float) for k in range(widget.panels.count)]
        assert all(np.nanmax(m) > 0 for m in maps), name  # maps drawn, not empty axes
    finally:
        widget.close()


@pytest.mark.slow
def test_dilation_study_on_vgg16_when_its_weights_are_here(monkeypatch):
    """``base="vgg16"`` still gives the article's dilated VGG16 when VGG16 has weights: a VGG16
    with random weights stands in for them (the shared explainer), at 64x64 to keep it quick."""
    spec = replace(build_torchvision("vgg16", pretrained=False), input_size=(64, 64))
    monkeypatch.setattr(api, "_SHARED", {("vgg16", str(choose_device(None)), None): Explainer(spec)})
    study = widgets.DilationStudy(base="vgg16", target=282)
    try:
        assert "cw-error" not in _line(study), _line(study)
        base, twin = study.results
        assert base.layer == twin.layer == "features.29" and base.class_id == twin.class_id == 282
        assert base.raw.shape == (4, 4) and twin.raw.shape == (64, 64)  # stride 16 vs 1
        assert "dilated_vgg16" in study.table.value
        twin_model = api.get_explainer("dilated_vgg16").spec.model
        assert twin_model.features[28].dilation == (16, 16)
        assert twin_model.features[28].weight.data_ptr() == spec.model.features[28].weight.data_ptr()
    finally:
        study.close()
