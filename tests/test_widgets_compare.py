"""Headless checks of the Compare widget: figure data, probe, shared scale, engine calls, errors."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from cam_widgets.explainer import Explainer  # noqa: E402
from cam_widgets.render import shared_scale  # noqa: E402
from cam_widgets.widgets.compare import Compare, parse_values  # noqa: E402


@pytest.fixture(scope="module")
def widget():
    return Compare(image="chelsea", model="efficientnet_lite0", by="class", values=(242, 282))


def _reset(w: Compare) -> None:
    w.set(by="class", values=(242, 282), shared_scale=False, opacity=0.5)
    assert "cw-error" not in w.status.line.value


@pytest.fixture
def counted(monkeypatch):
    calls = []
    for name in ("explain", "explain_classes", "explain_layers"):
        original = getattr(Explainer, name)

        def wrapper(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Explainer, name, wrapper)
    return calls


def test_by_class_gives_two_different_maps(widget):
    _reset(widget)
    assert [r.class_id for r in widget.results] == [242, 282]
    assert widget.panels.count == 2 and len(widget.panels.figure.data) == 6
    z0 = np.asarray(widget.panels.heatmap(0).z, dtype=float)
    z1 = np.asarray(widget.panels.heatmap(1).z, dtype=float)
    assert z0.shape == z1.shape == widget.results[0].raw.shape
    assert not np.allclose(z0, z1)
    titles = [a.text for a in widget.panels.figure.layout.annotations[:2]]
    assert "boxer" in titles[0] and "tiger cat" in titles[1]


def test_probe_marks_every_panel_and_returns_heatmap_values(widget):
    _reset(widget)
    values = widget.probe(100, 80)
    for k in range(widget.panels.count):
        assert list(widget.panels.marker(k).x) == [100]
        assert list(widget.panels.marker(k).y) == [80]
    expected = [float(r.heatmap[80, 100]) for r in widget.results]
    assert values == pytest.approx(expected)
    assert widget.table.value.count("<tr>") == 1 + len(widget.results)
    # a click on a heatmap does the same
    widget._on_probe(1, 50.0, 60.0)
    assert list(widget.panels.marker(0).x) == [50.0]


def test_shared_scale_toggle_is_display_only(widget, counted):
    _reset(widget)
    figure = widget.panels.figure
    calls_before = widget.engine_calls
    z_before = np.asarray(widget.panels.heatmap(1).z, dtype=float)
    assert (figure.layout.coloraxis.cmin, figure.layout.coloraxis.cmax) == (0.0, 1.0)
    widget._controls["shared_scale"].value = True
    assert widget.state.shared_scale
    lo, hi = shared_scale([np.maximum(r.raw, 0) for r in widget.results])
    unit = 10.0 ** np.floor(np.log10(hi))
    axis = widget.panels.figure.layout.coloraxis
    assert axis.cmin == pytest.approx(lo / unit, rel=1e-4)
    assert axis.cmax == pytest.approx(hi / unit, rel=1e-4)
    z_after = np.asarray(widget.panels.heatmap(1).z, dtype=float)
    assert not np.allclose(z_before, z_after)
    np.testing.assert_allclose(z_after, np.maximum(widget.results[1].raw, 0) / unit, atol=1e-3)
    # in shared mode the probe reports raw values
    assert widget.probe(100, 80)[1] == pytest.approx(
        float(widget.results[1].raw[int((80.5) * 7 / 224), int((100.5) * 7 / 224)]))
    assert widget.panels.figure is figure
    assert widget.engine_calls == calls_before and counted == []
    widget._controls["shared_scale"].value = False
    assert (widget.panels.figure.layout.coloraxis.cmin, widget.panels.figure.layout.coloraxis.cmax) == (0.0, 1.0)


def test_opacity_and_colormap_do_not_call_the_engine(widget, counted):
    _reset(widget)
    figure = widget.panels.figure
    calls_before = widget.engine_calls
    widget._controls["opacity"].value = 0.8
    widget._controls["colormap"].value = "jet"
    assert counted == [] and widget.engine_calls == calls_before
    assert widget.panels.figure is figure
    assert all(widget.panels.heatmap(k).opacity == pytest.approx(0.8) for k in range(2))


def test_value_change_updates_the_figure_in_place(widget, counted):
    _reset(widget)
    figure = widget.panels.figure
    z_before = np.asarray(widget.panels.heatmap(0).z, dtype=float)
    widget._controls["values"].value = "281, 282"
    assert widget.state.values == (281, 282)
    assert counted == ["explain_classes"]  # both classes from one batched call
    assert widget.panels.figure is figure
    assert not np.allclose(z_before, np.asarray(widget.panels.heatmap(0).z, dtype=float))


def test_unknown_class_is_shown_not_raised(widget):
    _reset(widget)
    results = list(widget.results)
    widget.set(values=(242, "notaclass"))
    line = widget.status.line.value
    assert "cw-error" in line and "notaclass" in line
    assert widget.results == results and widget.state.values == (242, 282)
    widget._controls["values"].value = "242, nosuchthing"
    assert "nosuchthing" in widget.status.line.value
    assert widget._controls["values"].value == "242, nosuchthing"  # kept for fixing
    widget.set(colour="red")
    assert "no setting &#x27;colour&#x27;" in widget.status.line.value


def test_by_method_and_by_layer(widget, counted):
    _reset(widget)
    widget._controls["by"].value = "method"
    assert widget.state.by == "method"
    assert [r.method for r in widget.results] == ["gradcam", "gradcam++", "layercam"]
    assert widget.panels.count == 3 and widget._controls["method"].disabled
    assert len({r.class_id for r in widget.results}) == 1
    counted.clear()
    widget.set(by="layer", values=("features.3", "features.8"))
    assert counted[0] == "explain_layers"
    assert [r.raw.shape for r in widget.results] == [(28, 28), (7, 7)]
    assert "28x28" in widget.panels.figure.layout.annotations[0].text


def test_by_model_prepares_per_model_and_reports_missing_weights(widget):
    _reset(widget)
    widget.set(by="model", values=("efficientnet_lite0",), target=282)
    assert widget.panels.count == 1 and widget.results[0].class_id == 282
    widget.set(values=("efficientnet_lite0", "vgg16"))
    line = widget.status.line.value
    if widget.state.values == ("efficientnet_lite0", "vgg16"):  # weights on this machine
        assert widget.panels.count == 2
    else:
        assert "cw-error" in line and "vgg16" in line
    widget.set(target=None)


def test_parse_values():
    assert parse_values(" 242, tiger cat ,,282") == (242, "tiger cat", 282)
