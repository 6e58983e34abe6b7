"""Headless checks of the Compare widget: figure data, probe, shared scale, engine calls, errors."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from cam_widgets.explainer import Explainer  # noqa: E402
from cam_widgets.render import shared_scale  # noqa: E402
from cam_widgets.render.figures import MIN_WRAP_PANEL  # noqa: E402
from cam_widgets.widgets.compare.widget import Compare, parse_values  # noqa: E402


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


def _cell(z, x: float, y: float, shape=(224, 224)) -> float:
    """The value of drawn map ``z`` that Plotly's hover shows at pixel (x, y)."""
    z = np.asarray(z, dtype=float)
    return float(z[int((y + 0.5) * z.shape[0] / shape[0]), int((x + 0.5) * z.shape[1] / shape[1])])


def _table_values(w: Compare) -> list[str]:
    return re.findall(r"text-align:right'>([^<]*)<", w.table.value)


def test_probe_marks_every_panel_and_returns_the_hovered_values(widget):
    _reset(widget)
    values = widget.probe(100, 80)
    for k in range(widget.panels.count):
        assert list(widget.panels.marker(k).x) == [100]
        assert list(widget.panels.marker(k).y) == [80]
    # the drawn cell under the pixel (what the hover shows), not the smoothed heatmap
    expected = [_cell(widget.panels.heatmap(k).z, 100, 80) for k in range(2)]
    assert values == pytest.approx(expected)
    assert values[0] != pytest.approx(float(widget.results[0].heatmap[80, 100]), abs=1e-3)
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
    # in shared mode the probe reports the drawn raw value, in the colour bar's unit
    assert widget.probe(100, 80)[1] == pytest.approx(
        float(widget.results[1].raw[int((80.5) * 7 / 224), int((100.5) * 7 / 224)]) / unit, abs=6e-4
    )  # (drawn with 4 significant digits)
    assert f"value as drawn (× {unit:g})" in widget.table.value  # not "x1e-01"
    assert axis.colorbar.title.text == f"× {unit:g}"
    assert widget.panels.figure is figure
    assert widget.engine_calls == calls_before and counted == []
    widget._controls["shared_scale"].value = False
    assert (widget.panels.figure.layout.coloraxis.cmin, widget.panels.figure.layout.coloraxis.cmax) == (
        0.0,
        1.0,
    )


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
    widget.set(method="guided_gradcam")  # a pixel-level map: its title still says the layer's
    assert [r.raw.shape for r in widget.results] == [(224, 224)] * 2
    assert [a.text for a in widget.panels.figure.layout.annotations[:2]] == [
        "features.3  28x28",
        "features.8  7x7",
    ]
    assert "features.3 (28x28), features.8 (7x7)" in widget.status.line.value
    widget.set(method="gradcam")


def test_pixel_maps_saturate_at_their_99th_percentile_per_panel_and_shared(widget):
    from cam_widgets.render.figures import prepare_map

    _reset(widget)
    try:
        widget.set(by="method", values=("gradcam", "vanilla"))
        axis = widget.panels.figure.layout.coloraxis
        # mixed panels: the colour bar says which 1 each family's panels mean
        assert axis.colorbar.title.text == "1 = max (CAM), 99th pct (pixel)"
        assert axis.colorbar.title.side == "right"  # along the bar, clear of its ticks
        cam, vanilla = (np.asarray(widget.panels.heatmap(k).z, dtype=float) for k in (0, 1))
        assert cam.shape == (7, 7) and vanilla.max() == 1.0
        assert np.mean(vanilla >= 0.999) > 0.005  # the top 1% saturates (it looked empty)
        probed = widget.probe(100, 50)  # the values drawn: each panel's cell
        assert probed == [_cell(cam, 100, 50), _cell(vanilla, 100, 50)]
        widget.set(values=("vanilla", "guided_backprop"), shared_scale=True)  # one family
        drawn = [
            prepare_map(np.maximum(r.raw, 0), 158)  # two panels: 158x158
            for r in widget.results
        ]
        assert np.asarray(widget.panels.heatmap(0).z).shape == (158, 158)
        assert "pixel maps drawn at 158x158 cells (one panel: 224x224)" in widget.status.line.value
        top = np.percentile(np.concatenate([d.ravel() for d in drawn]), 99)
        unit = 10.0 ** np.floor(np.log10(top))
        axis = widget.panels.figure.layout.coloraxis
        assert axis.cmax == pytest.approx(top / unit, rel=1e-4) and top < max(d.max() for d in drawn)
        assert axis.colorbar.title.text == f"× {unit:g}, top = 99th pct"
    finally:
        _reset(widget)


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


def test_built_by_model_or_with_a_bad_by():
    w = Compare(by="model", values=("efficientnet_lite0",))
    assert "cw-error" not in w.status.line.value  # the layer menu is filled for the fixed layer
    assert w.status.line.value.count("1 map by model: efficientnet_lite0; Grad-CAM, class ") == 1
    with pytest.raises(Exception, match="Invalid by: expected one of class, method, layer, model"):
        Compare(by="clas")


def test_parse_values():
    assert parse_values(" 242, tiger cat ,,282") == (242, "tiger cat", 282)


def test_values_take_method_titles_and_names_in_any_case(widget):
    _reset(widget)
    try:
        widget.set(by="method")
        assert widget._controls["values"].value == "Grad-CAM, Grad-CAM++, Layer-CAM"  # titles shown
        widget._controls["values"].value = "grad-cam++, LAYERCAM, Vanilla Gradient"
        assert "cw-error" not in widget.status.line.value
        assert widget.state.values == ("gradcam++", "layercam", "vanilla")
        assert [r.method for r in widget.results] == ["gradcam++", "layercam", "vanilla"]
        assert widget._controls["values"].value == "Grad-CAM++, Layer-CAM, Vanilla gradient"
        from cam_widgets.widgets.compare.state import method_name

        assert method_name("Eigen-CAM") == method_name("Eigen-CAM (any class)") == "eigencam"
        widget._controls["values"].value = "Grad-CAM, Grad-CAMM"
        line = widget.status.line.value
        assert "cw-error" in line and "\n" not in line and "Grad-CAMM" in line
        assert "expected method titles or names" in line and "Guided Grad-CAM++" in line
        assert widget.state.values == ("gradcam++", "layercam", "vanilla")  # kept
    finally:
        _reset(widget)


def test_summary_names_what_each_panel_is_and_the_wall_time(widget, monkeypatch):
    _reset(widget)
    line = widget.status.line.value
    assert "2 maps by class: boxer (242), tiger cat (282); Grad-CAM at features.8;" in line
    original = Explainer.explain

    def slow(self, *args, **kwargs):  # engine time outside any result's own clock
        time.sleep(0.1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "explain", slow)
    try:
        widget.set(by="method", values=("gradcam", "gradcam++"))
        line = widget.status.line.value
        assert "2 maps by method: Grad-CAM, Grad-CAM++; class Egyptian cat (285) at features.8;" in line
        ms = int(re.search(r"computed in (\d+) ms", line).group(1))
        assert ms >= 200 and ms == round(widget.seconds * 1000)
        assert ms > 1000 * sum(r.seconds for r in widget.results)
    finally:
        monkeypatch.undo()
        _reset(widget)


def test_layer_menu_lists_the_blocks_and_keeps_the_current_layer(widget):
    from cam_widgets.widgets.shared.layer_menu import layer_menu

    _reset(widget)
    explainer = widget.sources[0][0]
    control = widget._controls["layer"]
    blocks = [layer.name for layer in layer_menu(explainer.layers(), "features.8", None, everything=False)]
    assert [v for _, v in control.options] == [""] + blocks
    assert len(control.options) < 40 < len(explainer.layers())
    deep = "features.1.0.block.0.1"
    try:
        widget.set(layer=deep)
        assert widget.results[0].layer == deep
        assert deep in [v for _, v in control.options] and control.value == deep
    finally:
        widget.set(layer=None)
    assert control.value == "" and deep not in [v for _, v in control.options]


def test_class_defaults_are_the_top_two_and_follow_the_image_typed_values_stay():
    w = Compare(image="chelsea")

    def top(image):
        return tuple(p.class_id for p in w.sources[0][0].predict(image, top=2))

    assert w.state.values == top("chelsea") == (285, 282) and w.state.auto_values
    assert w._controls["values"].value == "285, 282"
    w._controls["image"].value = "coffee"  # defaulted values follow the image
    assert w.state.values == top("coffee") and [r.class_id for r in w.results] == list(top("coffee"))
    w._controls["values"].value = "281, 282"  # typed values stay
    w._controls["image"].value = "chelsea"
    assert w.state.values == (281, 282) and not w.state.auto_values
    w.set(by="class")  # the same comparison: nothing to default
    assert w.state.values == (281, 282)
    w._controls["values"].value = ""  # cleared: the defaults again
    assert w.state.values == (285, 282) and w._controls["values"].value == "285, 282"
    w.set(by="method")
    w.set(by="class", image="coffee")
    assert w.state.values == top("coffee") and "cw-error" not in w.status.line.value


def _fitted(panels):
    """(box layout, FitWidth) of a figure that fits its output area's width."""
    from cam_widgets.widgets.shared.fit_width import FitWidth

    box = panels.widget
    assert box is not panels.figure and list(box.children)[0] is panels.figure
    (fit,) = [c for c in box.children if isinstance(c, FitWidth)]
    return box.layout, fit


def test_the_figure_fits_the_output_area_up_to_its_panel_size(widget):
    _reset(widget)
    fig = widget.panels.figure
    # no fixed width: the figure takes its box's width, which the FitWidth follows
    assert fig.layout.width is None and fig._config.get("responsive") is True
    assert list(widget._figure_box.children) == [widget.panels.widget]
    layout, fit = _fitted(widget.panels)
    assert layout.width == "100%" and layout.max_width == f"{2 * 320 + 120}px"  # no strip
    assert (fit.panels, fit.aspect, fit.max_panel, fit.window_reserve) == (2, 1.0, 320, 0)
    assert fig.layout.height == 320 + 90  # at most panel_size high, as before
    assert all(fig.layout[f"yaxis{k}"].constraintoward == "top" for k in ("", "2"))
    try:
        widget.set(by="method", values=("gradcam", "gradcam++", "xgradcam", "layercam"))
        assert widget.panels.count == 4 and widget.panels.panel_size == 320
        layout, fit = _fitted(widget.panels)
        # panels up to 320 px, in rows of 150 px or more (the studies' panel code: issue 19)
        assert layout.max_width == "1400px" and layout.min_width == f"{MIN_WRAP_PANEL + 120}px"
        assert fit.panels == 4 and fit.max_panel == 320 and (fit.columns, fit.rows) == (4, 1)
        assert widget.panels.figure.layout.width is None
        widget.panels.fit.width = 500  # a narrow output, as the browser reports it
        assert (fit.columns, fit.rows) == (2, 2) and widget.panels.grid.panel >= 150
    finally:
        _reset(widget)


def test_shared_scale_is_off_while_cam_and_pixel_maps_mix(widget):
    _reset(widget)
    toggle = widget._controls["shared_scale"]
    try:
        widget.set(by="method", values=("gradcam", "vanilla"), shared_scale=True)
        axis = widget.panels.figure.layout.coloraxis
        assert (axis.cmin, axis.cmax) == (0.0, 1.0)
        # two short lines along the bar (it was five: "1 = max (CAM)<br>1 = 99th pct<br>...")
        assert axis.colorbar.title.text == "1 = max (CAM), 99th pct (pixel)<br>per panel: units differ"
        drawn = [np.asarray(widget.panels.heatmap(k).z, dtype=float) for k in (0, 1)]
        assert drawn[0].max() == 1.0 and drawn[1].max() == 1.0  # each panel on its own scale
        assert toggle.disabled and not toggle.value and "no common unit" in toggle.tooltip
        assert widget.state.shared_scale and "shared scale off" in widget.status.line.value
        values = widget.probe(100, 50)
        assert _table_values(widget) == [f"{v:.3f}" for v in values]  # as the hover's %{z:.3f}
        assert "(1 = max (CAM), 99th pct (pixel); per panel: units differ)" in widget.table.value
        widget.set(shared_scale=False)  # display only: the summary follows
        assert "shared scale off" not in widget.status.line.value
        widget.set(shared_scale=True)
        assert "shared scale off" in widget.status.line.value
        widget.set(values=("gradcam", "gradcam++"))  # one family: the shared scale is back
        assert not toggle.disabled and toggle.value and toggle.tooltip == ""
        assert widget.panels.figure.layout.coloraxis.colorbar.title.text.startswith("× ")
    finally:
        _reset(widget)


def test_shared_scale_factor_reads_as_a_number():
    """The colour bar and probe table said "x1e-01": now "× 0.1" (superscripts far out)."""
    from cam_widgets.widgets.compare.view import probe_table_html, times_text

    assert [times_text(e) for e in (-1, 0, 1, -3, 3)] == ["× 0.1", "× 1", "× 10", "× 0.001", "× 1000"]
    assert times_text(-5) == "× 10⁻⁵" and times_text(12) == "× 10¹²"
    assert "value as drawn (× 0.01, top = 99th pct)" in probe_table_html(
        ["a"], [0.5], 1, 2, "× 0.01, top = 99th pct"
    )


def test_probe_table_shows_the_hovered_value_of_each_panel(widget):
    _reset(widget)
    template = widget.panels.heatmap(0).hovertemplate
    assert "%{z:.3f}" in template
    for shared in (False, True):
        widget.set(shared_scale=shared)
        widget.probe(60, 120)
        hovered = [f"{_cell(widget.panels.heatmap(k).z, 60, 120):.3f}" for k in range(2)]
        assert _table_values(widget) == hovered
    assert re.search(r"value as drawn \(× [0-9.]+\)", widget.table.value)  # the colour bar's unit
    _reset(widget)


# ------------------------------------------------------------------------ metrics section
from cam_widgets.data import get_scene  # noqa: E402
from cam_widgets.metrics import deletion_insertion, energy_pointing_game, pointing_game  # noqa: E402
from cam_widgets.widgets.compare import metrics_panel, metrics_view  # noqa: E402
from cam_widgets.widgets.compare.metrics_panel import BOX_SHAPE  # noqa: E402
from cam_widgets.widgets.compare.metrics_view import POINTING_TOLERANCE, parse_box  # noqa: E402


@pytest.fixture(scope="module")
def scene_widget():
    w = Compare(image="scene:two_class", model="efficientnet_lite0", by="class", values=(285, 967))
    w.metrics.steps = 8  # a short curve keeps the CPU tests quick
    return w


@pytest.fixture
def metric_calls(monkeypatch):
    calls = []
    # the scores are computed in metrics_view, the curve in metrics_panel: patch where looked up
    for module, name in (
        (metrics_view, "pointing_game"),
        (metrics_view, "energy_pointing_game"),
        (metrics_view, "iou_at_thresholds"),
        (metrics_view, "average_drop_increase"),
        (metrics_panel, "deletion_insertion"),
    ):
        original = getattr(module, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)
    return calls


def _metrics_on(w: Compare, box: str = "") -> None:
    w.metrics.box.value = box
    w.metrics.toggle.value = True
    assert "cw-error" not in w.status.line.value


def test_metrics_are_off_by_default_then_scene_boxes_give_one_row_per_panel(scene_widget, metric_calls):
    w = scene_widget
    assert not w.metrics.toggle.value and w.metrics.calls == 0 and w.metrics.table.value == ""
    assert not w.panels.figure.layout.shapes
    _metrics_on(w)
    assert w.metrics.calls == 1
    # batched: one call per localization metric for both panels, one Average Drop call
    assert sorted(set(metric_calls)) == sorted(metric_calls)
    table = w.metrics.table.value
    assert table.count("<tr>") == 1 + 2 and "ground-truth" in table
    cat, cup = get_scene("two_class").boxes
    assert w.metrics.targets == [[cat.xyxy], [cup.xyxy]]
    rows = w.metrics.rows
    assert rows[0]["pointing"] is True  # the cat map points at the cat
    maps = np.stack([r.heatmap for r in w.results])
    energy = energy_pointing_game(maps, [[cat.xyxy], [cup.xyxy]])
    assert [r["energy"] for r in rows] == pytest.approx(list(energy))
    assert all(0.0 <= r["energy"] <= 1.0 for r in rows)
    assert [r["pointing"] for r in rows] == list(
        pointing_game(maps, [[cat.xyxy], [cup.xyxy]], tolerance=POINTING_TOLERANCE)
    )
    assert all(0.0 <= r["drop"] <= 100.0 and 0.0 <= r["iou"][0.5] <= 1.0 for r in rows)
    shapes = w.panels.figure.layout.shapes
    assert [(s.name, s.xref, s.x0, s.x1) for s in shapes] == [
        (BOX_SHAPE, "x", cat.x0 - 0.5, cat.x1 - 0.5),
        (BOX_SHAPE, "x2", cup.x0 - 0.5, cup.x1 - 0.5),
    ]


def test_curve_aucs_equal_deletion_insertion_and_recompute_only_when_needed(scene_widget):
    w = scene_widget
    _metrics_on(w)
    assert w.metrics.curve_for.options == tuple((t, k) for k, t in enumerate(w.titles))
    assert w.metrics.curve_for.value == 0 and "<svg" in w.metrics.curve.value
    explainer, prepared = w.sources[0]
    direct = deletion_insertion(explainer, prepared, w.results[0].heatmap, 285, steps=w.metrics.steps)
    assert w.metrics.curve_result["deletion_auc"] == pytest.approx(direct["deletion_auc"])
    assert w.metrics.curve_result["insertion_auc"] == pytest.approx(direct["insertion_auc"])
    assert f"{direct['insertion_auc']:.3f}" in w.metrics.curve.value
    before = w.metrics.curve_calls
    w.metrics.curve_for.value = 1
    assert w.metrics.curve_calls == before + 1 and w.titles[1] in w.metrics.curve.value
    w.metrics.curve_for.value = 0  # seen before: cached
    w.set(opacity=0.7)  # display only: no metric at all
    w.metrics.box.value = "0,0,112,224"  # a new box: table again, same maps: same curve
    assert w.metrics.curve_calls == before + 1


def test_typed_and_drawn_boxes(scene_widget):
    w = scene_widget
    _metrics_on(w, "0,0,112,224")
    assert w.metrics.box_xyxy == (0, 0, 112, 224)
    assert w.metrics.targets == [[(0, 0, 112, 224)]] * 2 and "typed" in w.metrics.table.value
    assert [(s.x0, s.y1) for s in w.panels.figure.layout.shapes] == [(-0.5, 223.5)] * 2
    calls = w.metrics.calls
    w.metrics.box.value = "10, 20, nope"
    line = w.status.line.value
    assert "cw-error" in line and "x0,y0,x1,y1" in line and "\n" not in line
    assert w.metrics.box_xyxy == (0, 0, 112, 224) and w.metrics.calls == calls
    w.metrics.box.value = "0,0,300,10"
    assert "cw-error" in w.status.line.value and "224" in w.status.line.value
    # a rectangle drawn in panel 2 (the relayout the browser sends) becomes every panel's box
    drawn = dict(type="rect", xref="x2", yref="y2", x0=119.5, y0=59.6, x1=9.5, y1=150.4)
    shapes = [s.to_plotly_json() for s in w.panels.figure.layout.shapes] + [drawn]
    w.panels.figure._js2py_relayout = {"relayout_data": {"shapes": shapes}, "source_view_id": "v"}
    assert w.metrics.box.value == "10,60,120,151" and w.metrics.box_xyxy == (10, 60, 120, 151)
    assert "cw-error" not in w.status.line.value
    assert [s.name for s in w.panels.figure.layout.shapes] == [BOX_SHAPE] * 2


def test_toggling_metrics_off_stops_metric_computation(scene_widget, metric_calls):
    w = scene_widget
    _metrics_on(w)
    w.metrics.toggle.value = False
    assert w.metrics.table.value == "" and w.metrics.curve.value == ""
    assert not w.panels.figure.layout.shapes
    calls, curves = w.metrics.calls, w.metrics.curve_calls
    metric_calls.clear()
    w.set(method="layercam")
    w.metrics.curve_for.value = 1
    assert w.state.method == "layercam"
    assert metric_calls == [] and (w.metrics.calls, w.metrics.curve_calls) == (calls, curves)
    _metrics_on(w)  # on again: the new maps are scored
    assert w.metrics.calls == calls + 1 and "deletion_insertion" in metric_calls
    w.metrics.toggle.value = False
    w.set(method="gradcam")


def test_parse_box():
    assert parse_box("  ", (224, 224)) is None
    assert parse_box("(1, 2, 30.4, 40)", (224, 224)) == (1, 2, 30, 40)
    for bad in ("1,2,3", "5,5,5,9", "a,b,c,d", "0,0,225,10"):
        with pytest.raises(Exception, match="x0"):
            parse_box(bad, (224, 224))


def test_a_new_figure_gets_its_box_shapes_only_once_the_browser_drew_it(scene_widget):
    w = scene_widget
    _metrics_on(w)
    old = w.panels.figure
    w.set(values=(285, 967, 281))  # three panels: a new figure
    figure = w.panels.figure
    assert figure is not old and w.metrics.table.value.count("<tr>") == 1 + 3
    assert not figure.layout.shapes  # not edited between placement and the first draw
    figure._js2py_relayout = {"relayout_data": {}, "source_view_id": "v"}  # the browser's first word
    assert [s.xref for s in figure.layout.shapes] == ["x", "x2", "x3"]
    w.metrics.toggle.value = False
    w.set(values=(285, 967))


def test_explorer_and_compare_probe_the_same_pixel():
    from cam_widgets.widgets.compare.view import value_at
    from cam_widgets.widgets.explorer.state import probe_message

    heat = np.arange(16, dtype=np.float32).reshape(4, 4) / 15
    # pixel centres sit at integer coordinates: 1.5 is the left edge of pixel 2 (not 2, then 1)
    for x, y, (row, col) in [(1.5, 0.5, (1, 2)), (2.5, 2.49, (2, 3)), (-3.0, 9.0, (3, 0))]:
        assert value_at(heat, x, y, heat.shape) == heat[row, col]
        assert probe_message(heat, x, y) == f"pixel ({col}, {row}): value {heat[row, col]:.3f}"
    # a map at a quarter of the image resolution: image pixel 5 lies in map cell 1
    assert value_at(heat, 5.0, 0.0, (16, 16)) == heat[0, 1]
    assert (
        probe_message(heat, 5.0, 0.0, (16, 16))
        == f"4x4 map, cell (row 0, col 1) around pixel (5, 0): value {heat[0, 1]:.3f}"
    )


def test_slow_methods_report_their_progress_as_a_share_of_the_comparison(widget, monkeypatch):
    from cam_widgets.widgets.compare.work import _progress_of

    seen = []
    report = _progress_of("scorecam", lambda done, total: seen.append((done, total)), 1, 2)
    report["progress"](5, 10)  # half of the second of two panels
    assert seen == [(0.75, 1.0)]
    assert _progress_of("gradcam", seen.append, 0, 2) == {}  # fast: no progress bar
    explainer = widget.sources[0][0]
    real, kwargs = explainer.explain, []

    def spy(image, method, *args, **params):
        kwargs.append((method, "progress" in params))
        if "progress" in params:
            params.pop("progress")(3, 4)
        return real(image, "gradcam" if method == "scorecam" else method, *args, **params)

    lines = []
    widget.status.line.observe(lambda c: lines.append(c["new"]), names="value")
    monkeypatch.setattr(explainer, "explain", spy)
    try:
        widget.set(by="method", values=("gradcam", "scorecam"))
    finally:
        monkeypatch.undo()
        widget.set(by="class", values=(242, 282))
    assert kwargs == [("gradcam", False), ("scorecam", True)]
    assert any("working... 88%" in line for line in lines), lines  # (1 + 3/4) / 2


def test_the_class_box_names_the_class_as_the_explorer_does(widget):
    _reset(widget)
    try:
        widget.set(by="method", values=("gradcam",), target=967)
        assert widget._controls["target"].value == "967 espresso"
        widget._controls["target"].value = "282 tiger cat"  # what the menu offers reads back
        assert widget.state.target == 282 and widget.results[0].class_id == 282
    finally:
        _reset(widget)


def test_the_class_is_resolved_once_to_ids_in_the_state(widget):
    """A typed name or contrast is kept as ids of the model's labels, as the Explorer keeps
    it: the engine work does not parse the class box's text again on every request."""
    import cam_widgets as cw

    _reset(widget)
    try:
        widget.set(by="method", values=("gradcam",), target="tiger cat")
        assert widget.state.target == 282 and widget.results[0].class_id == 282
        widget._controls["target"].value = "tiger cat vs Egyptian cat"
        assert widget.state.target == cw.contrast(282, 285)
        assert widget._controls["target"].value == "282 tiger cat vs 285 Egyptian cat"
        widget.set(by="model", values=("efficientnet_lite0",), target="Egyptian cat")
        assert widget.state.target == 285 and widget.results[0].class_id == 285
    finally:
        _reset(widget)


def test_compare_starts_in_the_colormap_and_opacity_given():
    import pytest

    from cam_widgets.errors import InvalidParameterError

    w = Compare(image="chelsea", by="method", values=("gradcam",), colormap="jet", opacity=0.8)
    assert (w.state.colormap, w.state.opacity) == ("jet", 0.8)
    assert w._controls["colormap"].value == "jet" and w._controls["opacity"].value == 0.8
    assert w.panels.heatmap(0).opacity == pytest.approx(0.8)
    with pytest.raises(
        InvalidParameterError,
        match=r"Invalid opacity: expected a number in \[0, 1\], received 2 that is a int",
    ):
        Compare(opacity=2)
    with pytest.raises(
        InvalidParameterError, match=r"Invalid opacity: expected a number in \[0, 1\], received True"
    ):
        Compare(opacity=True)


def test_a_class_the_model_does_not_see_is_flagged(widget):
    """Issue 19: Compare(by="class", values=(242, 282)) on the cat photo showed "boxer
    p=0.000" with no word of warning. A chosen class below 1% and outside the model's top 5
    says so in its panel's title and in the status line; a class the model considers does not
    (tiger cat, 0.088; lynx, 0.010 and fourth)."""
    _reset(widget)
    titles = [a.text for a in widget.panels.figure.layout.annotations[:2]]
    assert titles[0].endswith("p=0.000, not seen here") and titles[1] == "tiger cat (282) p=0.088"
    line = widget.status.line.value
    assert "cw-warning" in line and line.count("the model does not see this class here") == 1
    assert "boxer: p=0.000, the model does not see this class here" in line
    assert "2 maps by class: boxer (242), tiger cat (282)" in line  # the summary stays
    widget.probe(100, 100)  # the probe table names the panels as their titles do
    assert "not seen here" in widget.table.value
    try:
        widget.set(values=(287, 282))  # lynx: p=0.010, and fourth of the top 5
        assert "cw-warning" not in widget.status.line.value
        assert not any("not seen" in a.text for a in widget.panels.figure.layout.annotations[:2])
        widget.set(by="method", values=("gradcam", "layercam"), target=242)
        line = widget.status.line.value  # the class is fixed: the status says it once
        assert line.count("boxer: p=0.000, the model does not see this class here") == 1
        assert [a.text for a in widget.panels.figure.layout.annotations[:2]] == ["Grad-CAM", "Layer-CAM"]
    finally:
        widget.set(by="class", values=(242, 282), target=None)
        widget.table.value = ""
        widget.probed = None


def test_what_counts_as_not_seen():
    """Below 1% and outside the top 5: both; a function target has no one class."""
    from types import SimpleNamespace

    from cam_widgets.widgets.shared.maps import UNSEEN_PROBABILITY, UNSEEN_TOP, unseen_note

    def r(class_id, p):
        return SimpleNamespace(class_id=class_id, probability=p, label="boxer")

    top = {285, 282, 281, 287, 728}
    assert (UNSEEN_PROBABILITY, UNSEEN_TOP) == (0.01, 5)
    assert unseen_note(r(242, 0.0099), top) == "boxer: p=0.010, the model does not see this class here"
    assert unseen_note(r(242, 0.0), top).startswith("boxer: p=0.000")
    assert unseen_note(r(242, 0.01), top) == ""  # 1% is seen
    assert unseen_note(r(728, 0.001), top) == ""  # in the top 5, however small
    assert unseen_note(r(-1, 0.0), top) == ""  # a function of the logits


def _colours(scale) -> list:
    return [list(step) for step in scale]


def test_panels_fade_as_the_explorers_cam_maps_and_pixel_maps_each_by_their_family(widget):
    """Issue 19: Compare tinted the whole photo; each panel now fades as the Explorer's
    overlay of its map (a pixel map transparent where low, a CAM map below half)."""
    from cam_widgets.render import plotly_colorscale

    _reset(widget)
    try:
        widget.set(by="method", values=("gradcam", "vanilla"), colormap="viridis")
        assert [widget.panels.heatmap(k).coloraxis for k in (0, 1)] == ["coloraxis", "coloraxis2"]
        assert _colours(widget.panels.figure.layout.coloraxis.colorscale) == plotly_colorscale(
            "viridis", fade="cam"
        )
        assert _colours(widget.panels.figure.layout.coloraxis2.colorscale) == plotly_colorscale(
            "viridis", fade="pixel"
        )
        # one colour bar (the first axis'), one colour range, the opacity slider's opacity
        assert widget.panels.figure.layout.coloraxis2.showscale is False
        assert (widget.panels.figure.layout.coloraxis2.cmin, widget.panels.figure.layout.coloraxis2.cmax) == (
            widget.panels.figure.layout.coloraxis.cmin,
            widget.panels.figure.layout.coloraxis.cmax,
        )
        assert [widget.panels.heatmap(k).opacity for k in (0, 1)] == [0.5, 0.5]
        # a pixel map's zero is transparent (the photo), a CAM map's below half too
        assert widget.panels.figure.layout.coloraxis2.colorscale[0][1].endswith(",0.0)")
        assert widget.panels.figure.layout.coloraxis.colorscale[0][1].endswith(",0.0)")
        widget.set(colormap="jet", opacity=0.7)  # display only: both fades follow
        assert _colours(widget.panels.figure.layout.coloraxis.colorscale) == plotly_colorscale(
            "jet", fade="cam"
        )
        assert _colours(widget.panels.figure.layout.coloraxis2.colorscale) == plotly_colorscale(
            "jet", fade="pixel"
        )
        assert [widget.panels.heatmap(k).opacity for k in (0, 1)] == [0.7, 0.7]
        # one family: one colour axis, its fade; the shared scale's range stays the axis'
        widget.set(values=("vanilla", "guided_backprop"), shared_scale=True)
        assert [widget.panels.heatmap(k).coloraxis for k in (0, 1)] == ["coloraxis", "coloraxis"]
        assert _colours(widget.panels.figure.layout.coloraxis.colorscale) == plotly_colorscale(
            "jet", fade="pixel"
        )
        assert (
            widget.panels.figure.layout.coloraxis.cmax > 0
            and widget.panels.figure.layout.coloraxis.colorbar.title.text.startswith("× ")
        )
        widget.set(values=("gradcam", "gradcam++"))
        assert [widget.panels.heatmap(k).coloraxis for k in (0, 1)] == ["coloraxis", "coloraxis"]
        assert _colours(widget.panels.figure.layout.coloraxis.colorscale) == plotly_colorscale(
            "jet", fade="cam"
        )
        assert widget.panels.figure.layout.coloraxis.colorbar.title.text.startswith("× ")
    finally:
        widget.set(colormap="viridis")
        _reset(widget)
