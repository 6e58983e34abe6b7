"""The Explorer driven from Python, headless: figure data, engine calls, errors in the widget."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading

import numpy as np
import pytest

from cam_widgets.widgets.explorer.widget import Explorer
from loop_helpers import run_loop


@pytest.fixture(scope="module")
def explorer():
    return Explorer(image="chelsea")


def heat(explorer):
    return np.array(explorer.panels.heatmap(0).z, dtype=float)


def test_first_view_is_the_top_class_on_the_default_layer(explorer):
    assert explorer.result.class_id == 285 and explorer.result.layer == "features.8"
    assert heat(explorer).shape == (7, 7)
    buttons = [row.children[0] for row in explorer._top.children]
    assert buttons[0].description.startswith("285") and buttons[0].button_style == "info"
    assert all(row.layout.display is None for row in explorer._top.children)


def test_class_switch_changes_the_map_without_a_forward(explorer):
    engine = explorer.explainer.engine
    forwards, before = engine.forward_calls, heat(explorer)
    figure = explorer.panels.figure
    explorer._top.children[1].children[0].click()  # the second prediction row
    assert explorer.result.class_id == explorer._top.children[1].children[0].class_id
    assert not np.allclose(heat(explorer), before)
    assert engine.forward_calls == forwards and explorer.panels.figure is figure
    # the hover label (the trace name) follows the title
    assert explorer.panels.heatmap(0).name == explorer.result.title
    assert "%{fullData.name}" in explorer.panels.heatmap(0).hovertemplate
    explorer._controls["search"].value = "242 boxer"
    assert explorer.result.class_id == 242 and "boxer" in figure.layout.annotations[0].text


def test_method_and_layer_controls(explorer):
    before = heat(explorer)
    explorer._controls["method"].value = "gradcam++"
    assert explorer.result.method == "gradcam++" and not np.allclose(heat(explorer), before)
    explorer._controls["layer"].value = "features.5"
    assert heat(explorer).shape == (14, 14)
    explorer._controls["method"].value = "guided_backprop"
    assert heat(explorer).shape == (224, 224)  # one panel: a pixel-level map whole
    assert len(json.dumps(heat(explorer).tolist())) < 400_000  # compact numbers, not float32's
    explorer.set(method="gradcam", layer="features.8")


def test_display_changes_never_call_the_engine(explorer, monkeypatch):
    calls = explorer.engine_calls
    z = heat(explorer)
    explorer._controls["opacity"].value = 0.9
    explorer._controls["colormap"].value = "jet"
    explorer._controls["view"].value = "raw"
    assert explorer.engine_calls == calls
    assert np.allclose(heat(explorer), z)
    assert explorer.panels.heatmap(0).opacity == 1.0 and explorer.panels.heatmap(0).zsmooth is False
    explorer._controls["view"].value = "overlay"
    assert explorer.panels.heatmap(0).opacity == 0.9


def test_errors_appear_in_the_widget(explorer):
    shown = explorer._controls["search"].value
    explorer._controls["search"].value = "zebraa"
    assert "cw-error" in explorer.status.line.value and "zebra" in explorer.status.line.value
    # busy state restored; SmoothGrad's own settings stay off while it is off
    smooth_only = {explorer._controls[n] for n in ("noise", "samples", "precision")}
    assert all(c.disabled == (c in smooth_only) for c in explorer._compute_controls())
    explorer.set(method="vanilla")  # no layer to pick for an input-gradient method
    assert explorer._controls["layer"].disabled
    explorer.set(method="gradcam")
    assert not explorer._controls["layer"].disabled
    assert explorer._controls["search"].value == shown  # the box names the class still shown


def test_the_class_box_names_the_class_and_a_new_photo_its_own_top_class(explorer, monkeypatch):
    box = explorer._controls["search"]
    try:
        explorer.set(image="chelsea", method="gradcam", target=None)
        assert box.value == "285 Egyptian cat"
        explorer._top.children[1].children[0].click()
        assert explorer.result.class_id == 282 and box.value == "282 tiger cat"
        explorer.set(image="coffee")  # not "tiger cat, p=0.000": the coffee's own top class
        assert explorer.state.target is None
        top = explorer.explainer.predict(explorer._prepared(), top=1)[0]
        assert explorer.result.class_id == top.class_id and box.value.startswith(str(top.class_id))
        box.value = "282"
        assert explorer.result.class_id == 282
        box.value = ""  # emptied: back to the top class
        assert explorer.state.target is None and explorer.result.class_id == top.class_id
        # while computing, the prediction buttons are disabled with the other controls
        seen = []
        inputs = [explorer._controls[n] for n in ("upload", "url", "all_layers", "export")]
        work = type(explorer)._compute
        monkeypatch.setattr(
            type(explorer),
            "_compute",
            lambda self, *args: (
                seen.append(
                    [row.children[0].disabled for row in self._top.children] + [c.disabled for c in inputs]
                )
                or work(self, *args)
            ),
        )
        explorer.set(method="gradcam++")
        assert seen == [[True] * 9]
        assert not any(c.disabled for c in inputs)  # and enabled again after
    finally:
        monkeypatch.undo()
        explorer.set(image="chelsea", method="gradcam", target=None)


def test_smoothgrad_reports_progress_in_noisy_samples(explorer):
    from cam_widgets.widgets.explorer.state import ExplorerState, progress_unit

    seen, lines = [], []
    explorer.status.progress.observe(lambda c: seen.append(c["new"]), names="value")
    explorer.status.line.observe(lambda c: lines.append(c["new"]), names="value")
    explorer.set(method="vanilla", smooth=True, samples=4, noise=0.1)
    assert explorer.result.params["samples"] == 4 and seen and seen[-1] == 1.0
    assert any("working... 4/4 noisy samples" in line for line in lines), lines
    explorer.set(smooth=False, method="gradcam")
    # each slow method says what it counts
    assert progress_unit(ExplorerState(method="scorecam")) == "masked copies"
    assert progress_unit(ExplorerState(method="integrated_gradients")) == "steps"
    assert progress_unit(ExplorerState(method="scorecam", smooth=True)) == "noisy samples"


def test_progress_says_the_time_left_once_it_has_a_pace(monkeypatch):
    from cam_widgets.widgets.shared.status import StatusLine, time_left

    assert time_left(2.0, 0, 100) == "" and time_left(0.2, 10, 100) == ""  # no pace yet
    assert time_left(2.0, 10, 100) == "18 s" and time_left(20.0, 10, 100) == "3 min"
    assert time_left(5.0, 100, 100) == ""  # finished
    # the same count again (SmoothGrad over Score-CAM, within a sample): it counts down, to
    # the steps after the current one at least (it climbed with the time spent before)
    assert [time_left(2.0, 1, 10, since=t) for t in (0.0, 1.0, 5.0)] == ["18 s", "17 s", "16 s"]
    clock = iter([100.0, 102.0, 200.0, 200.0])  # start, a report; a new run, its report
    monkeypatch.setattr("cam_widgets.widgets.shared.status.time.monotonic", lambda: next(clock))
    status = StatusLine()
    status.start()
    status.report(25, 100, "noisy samples")
    assert "working... 25/100 noisy samples, about 6 s left" in status.line.value
    assert status.progress.layout.display is None  # shown while working
    status.report(0, 100)  # a new run: no estimate from the previous run's pace
    assert status.line.value.endswith("working... 0/100</span>")


def test_status_line_sits_beside_the_map(explorer):
    """Progress and errors show next to the map, not below it out of sight (1280x720)."""
    row = next(child for child in explorer.children if explorer.view in child.children)
    side = next(child for child in row.children if child is not explorer.view)
    assert explorer.status.widget in side.children
    assert explorer.status.widget not in explorer.children
    # the map grows from 320 px with the page (the browser tests measure it), drawn 320 px
    # first: no taller than a 720-px screen in a front end that does not run FitWidth
    assert explorer.view is explorer.panels.widget and explorer.panels.figure in explorer.view.children
    assert explorer.view.layout.flex == "1 1 440px" and explorer.view.layout.max_width == "840px"
    fit = explorer.panels.fit
    assert (fit.min_panel, fit.max_panel, fit.window_reserve) == (320, 720, 250)
    # sized from where the Explorer is on the page (issue 19: an introduction above it put
    # half the map below the fold): FitWidth finds the Explorer's box by its class
    assert fit.anchor == "cw-explorer" and "cw-explorer" in explorer._dom_classes
    assert explorer.panels.figure.layout.width is None and explorer.panels.figure.layout.height == 320 + 90
    assert "<br>" in explorer.panels.figure.layout.annotations[0].text  # wrapped for 320 px


def test_smoothgrad_precision_control(explorer):
    options = [value for _, value in explorer._controls["precision"].options]
    assert options[0] == "fp32" and "bf16" in options
    assert ("fp16" in options) == (explorer.explainer.device.type == "cuda")
    explorer.set(method="vanilla", smooth=True, samples=2)
    assert "precision" not in explorer.result.params  # fp32 by default
    explorer._controls["precision"].value = "bf16"  # as a click in the browser
    assert explorer.result.params["precision"] == "bf16" and explorer.state.precision == "bf16"
    explorer.set(smooth=False, method="gradcam", precision="fp32")
    assert "precision" not in explorer.result.params


def test_smoothgrad_settings_compute_only_while_smoothgrad_is_on(explorer):
    explorer.set(method="vanilla", smooth=False)
    calls, z = explorer.engine_calls, heat(explorer)
    try:
        explorer._controls["noise"].value = 0.3
        explorer._controls["samples"].value = 3
        explorer._controls["precision"].value = "bf16"
        assert explorer.engine_calls == calls and np.allclose(heat(explorer), z)
        explorer._controls["smooth"].value = True  # now the stored settings are used
        assert explorer.engine_calls == calls + 1
        assert explorer.result.params["samples"] == 3 and explorer.result.params["noise"] == 0.3
        explorer._controls["samples"].value = 2
        assert explorer.engine_calls == calls + 2 and explorer.result.params["samples"] == 2
    finally:
        explorer.set(smooth=False, method="gradcam", precision="fp32", noise=0.2, samples=20)


def figure_messages(figure):
    """Record what the FigureWidget sends to the browser (restyle/relayout/update messages)."""
    sent = []

    def record(change):
        if change["new"] is not None:
            sent.append(len(json.dumps(change["new"], default=lambda o: np.asarray(o).tolist())))

    figure.observe(record, names=["_py2js_restyle", "_py2js_relayout", "_py2js_update"])
    return sent


def test_bytes_sent_per_class_switch_stay_small(explorer):
    sent = figure_messages(explorer.panels.figure)
    explorer.set(target=281)
    assert sent and sum(sent) < 100_000
    sent.clear()
    explorer._controls["opacity"].value = 0.3
    assert sent and sum(sent) < 1_000  # an opacity change sends no map at all


def test_probe_reports_the_value_the_hover_shows(explorer):
    """A click reads the drawn cell, as the hover does (not the upsampled heatmap: they
    differed in the third decimal, and a user compares them)."""
    from cam_widgets.widgets.shared.maps import nearest_pixel

    explorer._on_probe(100.0, 50.0)
    assert list(explorer.panels.marker(0).x) == [100.0]
    z = heat(explorer)
    cell = z[nearest_pixel(100.0, 50.0, (224, 224), z.shape)]
    assert f"value {cell:.3f}" in explorer.status.line.value
    assert f"{cell:.3f}" != f"{explorer.result.heatmap[50, 100]:.3f}"  # what it used to read


def test_export_and_static_fallback(explorer, tmp_path):
    for suffix in (".png", ".npy", ".html"):
        assert explorer.export(tmp_path / f"view{suffix}").stat().st_size > 0
    static = Explorer(image="coffee", static=True)
    assert static.panels is None and static.view.value[:4] == b"\x89PNG"


def test_png_exports_are_the_view_with_or_without_its_title_and_colour_bar(explorer, tmp_path, monkeypatch):
    from PIL import Image

    from cam_widgets.widgets.explorer.controls import OVERLAY_SUFFIX
    from cam_widgets.widgets.explorer.state import export_stem

    def written(name):
        return np.asarray(Image.open(tmp_path / "exports" / name).convert("RGB"))

    monkeypatch.chdir(tmp_path)
    explorer.set(opacity=0.7, colormap="jet")
    try:
        for _label, value in explorer._controls["export"].options[1:3]:
            explorer._controls["export"].value = value
        explorer.set(view="raw")
        explorer._controls["export"].value = OVERLAY_SUFFIX
    finally:
        explorer.set(opacity=0.5, colormap="viridis", view="overlay")
    r = explorer.result
    stem = export_stem(explorer.state.image, "efficientnet_lite0", r)
    assert [label for label, _ in explorer._controls["export"].options[1:3]] == ["PNG figure", "PNG overlay"]
    np.testing.assert_array_equal(written(stem + OVERLAY_SUFFIX), r.overlay(1.0, "jet"))  # raw: the map
    figure = written(stem + ".png")
    np.testing.assert_array_equal(figure, r.annotated(0.7, "jet"))
    assert figure.shape[0] > r.heatmap.shape[0] and figure.shape[1] > r.heatmap.shape[1]


def test_a_failed_change_keeps_the_previous_view(explorer):
    before = explorer.result
    assert explorer.set(target="no such class") is before
    assert "cw-error" in explorer.status.line.value
    explorer._controls["model"].value = "vgg16"  # no weights offline: error shown, model kept
    assert explorer.state.model == "efficientnet_lite0" and explorer.result is before
    assert "vgg16" in explorer.status.line.value and "cw-error" in explorer.status.line.value
    assert explorer._controls["layer"].value == explorer.state.layer
    assert explorer._controls["model"].value == "efficientnet_lite0"


def test_typed_class_text_is_parsed_once_for_every_widget():
    from cam_widgets.models import parse_target

    assert parse_target(" 282 tiger cat ") == 282
    assert parse_target("tiger cat") == "tiger cat"
    assert parse_target("   ") is None


def test_prediction_rows_show_only_what_they_hold():
    from cam_widgets.explainer import Prediction
    from cam_widgets.widgets.explorer.controls import prediction_rows, show_predictions

    picked = []
    box = prediction_rows(picked.append)
    assert all(row.layout.display == "none" for row in box.children)  # nothing to show yet
    show_predictions(box, [Prediction(3, "three", 0.7), Prediction(1, "one", 0.2)], selected=1)
    assert [row.layout.display for row in box.children] == [None, None, "none", "none", "none"]
    assert box.children[1].children[0].button_style == "info"
    box.children[0].children[0].click()
    assert picked == [3]


def test_pixel_maps_are_drawn_relative_to_their_99th_percentile(explorer):
    from cam_widgets.render.figures import prepare_map

    try:
        explorer.set(method="vanilla", target=282)
        r = explorer.result
        drawn = prepare_map(r.heatmap)  # the figure's map (224x224: one panel)
        shown = heat(explorer)
        np.testing.assert_allclose(shown, np.clip(drawn / np.percentile(drawn, 99), 0, 1), atol=6e-4)
        # without the scaling, 99% of it was under 0.6 of its top: it looked empty
        assert shown.max() == 1.0 and np.percentile(drawn, 99) < 0.6
        assert explorer.panels.figure.layout.coloraxis.colorbar.title.text == "1 = 99th pct"
        assert r.heatmap.max() == 1.0  # the result itself keeps its min-max normalisation
        explorer._on_probe(100.0, 50.0)  # a click reads the value drawn there
        cell = shown[50, 100]  # (one cell a pixel)
        assert explorer.status.line.value.endswith(f"value {cell:.3f} (1 = 99th pct)</span>")
        explorer.set(method="gradcam")
        assert explorer.panels.figure.layout.coloraxis.colorbar.title.text == ""
    finally:
        explorer.set(method="gradcam", target=None)


def test_export_offers_the_file_as_a_browser_download(explorer, tmp_path, monkeypatch):
    """Issue 19: the download link took the status line's place (the method and the probed
    value gone) and needed a second click. Exports have a row of their own: a format chosen,
    the file goes to the browser, which saves it at once (one more ``serial``), and the
    status line says what it said."""
    monkeypatch.chdir(tmp_path)  # the kernel's working folder: exports/ is written there
    row = explorer._controls["download"]
    explorer._on_probe(100.0, 100.0)
    status, serial = explorer.status.line.value, row.serial
    assert "pixel (100, 100): value" in status
    explorer._controls["export"].value = ".png"
    assert explorer.status.line.value == status  # untouched: method, class, probed value
    written = tmp_path / "exports" / row.filename
    assert row.serial == serial + 1 and row.payload == written.read_bytes()
    assert row.mime == "image/png" and row.payload[:4] == b"\x89PNG" and not row.error
    assert row.filename == "chelsea_efficientnet_lite0_gradcam_features.8_285.png"
    assert row.text == "saved in exports/ and"
    assert explorer._controls["export"].value == ""  # ready for the next export
    # the row sits in the column beside the map, below the status line, the format first
    side = next(box for box in explorer.children[3].children if explorer.status.widget in box.children)
    exports = side.children[-1]
    assert list(exports.children) == [explorer._controls["export"], row]
    assert side.children.index(explorer.status.widget) == len(side.children) - 2
    explorer._controls["export"].value = ".npy"
    assert row.serial == serial + 2 and row.mime == "application/octet-stream"
    assert np.array_equal(np.load(tmp_path / "exports" / row.filename), explorer.result.heatmap)
    monkeypatch.setattr("cam_widgets.widgets.shared.download.DOWNLOAD_LIMIT", 1000)
    explorer._controls["export"].value = ".png"  # too large for the widget's state: not sent
    assert "too large to send to the browser" in row.text and row.payload == b""
    assert row.filename == "" and row.serial == serial + 2  # nothing saved in the browser
    assert explorer.status.line.value == status


def test_a_failed_export_says_why_in_its_row(explorer, tmp_path, monkeypatch):
    from cam_widgets.errors import InvalidParameterError

    monkeypatch.chdir(tmp_path)
    status, row = explorer.status.line.value, explorer._controls["download"]

    def refuse(*args, **kwargs):
        raise InvalidParameterError("the disk is full\n(second line)")

    monkeypatch.setattr(type(explorer), "export", refuse)
    explorer._controls["export"].value = ".png"
    assert row.error and row.text == "export failed: the disk is full (second line)"
    assert row.filename == "" and row.payload == b""
    assert explorer.status.line.value == status and explorer._controls["export"].value == ""


def test_the_model_menu_says_which_weights_are_not_here(explorer, tmp_path, monkeypatch):
    import torch

    from cam_widgets.widgets.shared.controls import model_choices

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    choices = dict((value, label) for label, value in model_choices())
    assert choices["efficientnet_lite0"] == "efficientnet_lite0"
    assert choices["vgg16"] == "vgg16 (weights not here)"
    assert choices["dilated_vgg16"] == "dilated_vgg16 (weights not here)"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"")
    choices = dict((value, label) for label, value in model_choices())
    assert choices["vgg16"] == "vgg16" and choices["dilated_vgg16"] == "dilated_vgg16"
    assert [v for _, v in explorer._controls["model"].options][:1] == ["efficientnet_lite0"]


def test_tree_order_puts_each_block_before_its_parts():
    from types import SimpleNamespace

    from cam_widgets.widgets.shared.layer_menu import tree_order

    computed = ["stem.0", "stem", "body.0.a", "body.0.b", "body.0", "body.1", "body", "head"]
    ordered = tree_order([SimpleNamespace(name=n) for n in computed])
    assert [layer.name for layer in ordered] == [
        "stem",
        "stem.0",
        "body",
        "body.0",
        "body.0.a",
        "body.0.b",
        "body.1",
        "head",
    ]


def test_the_layer_menu_lists_blocks_and_all_layers_on_request(explorer):
    menu, everything = explorer._controls["layer"], explorer._controls["all_layers"]
    calls = explorer.engine_calls
    try:
        names = [v for _, v in menu.options]
        assert "features.8" in names and "features.1.0" in names and len(names) == 32
        # an outline: each block just before its parts (the engine lists parts first)
        assert names.index("features.8") + 1 == names.index("features.8.0")
        assert not any(n.count(".") > 2 for n in names)  # no features.1.0.block.0.1
        everything.value = True
        assert len(menu.options) == len(explorer.explainer.layers()) == 220
        assert menu.value == explorer.state.layer and explorer.engine_calls == calls  # display only
        explorer.set(layer="features.1.0.block.0.1")
        everything.value = False  # the current layer stays listed
        assert menu.value == "features.1.0.block.0.1" and len(menu.options) == 33
        everything.value = True
        explorer.set(layer="features.1.0.block.0.0")
        explorer.set(target="notaclassname")  # a failed change restores the controls...
        assert "notaclassname" in explorer.status.line.value  # ...and shows its own error
        everything.value = False
        explorer.set(layer="features.2.0.block.0.0")  # set from Python, outside the menu
        assert menu.value == "features.2.0.block.0.0"
    finally:
        explorer.set(layer="features.8")
        everything.value = False


def test_a_clicked_prediction_shows_at_once_while_a_computation_runs():
    """As a layer change does: the row and the class box, not when the running work ends."""
    live = Explorer(image="chelsea", background=True)  # as in a kernel
    buttons = [row.children[0] for row in live._top.children]
    box, release, work, seen, asked = live._controls["search"], threading.Event(), type(live)._compute, [], []

    def slow(self, *args):  # each request's engine work waits for the test
        seen.append((box.value, [b.button_style for b in buttons]))
        release.wait(30)
        return work(self, *args)

    submit = live._requests.queue.submit
    live._requests.queue.submit = lambda changes: asked.append(dict(changes)) or submit(changes)

    async def scenario():
        live._compute = slow.__get__(live)
        live._controls["layer"].value = "features.5"  # a computation starts...
        while not seen:  # (its engine work, off the loop)
            await asyncio.sleep(0.01)
        buttons[1].click()  # ...and the second prediction is clicked meanwhile
        assert [b.button_style for b in buttons] == ["", "info", "", "", ""]
        assert box.value == "282 tiger cat"
        assert asked == [{"layer": "features.5"}, {"target": 282}]  # the box asked nothing more
        release.set()
        await live._requests.queue.idle()

    run_loop(scenario)
    assert live.result.class_id == 282 and live.result.layer == "features.5"
    # the layer's map was shown (285), then the picked class computed: it stayed picked
    assert seen == [
        ("285 Egyptian cat", ["info", "", "", "", ""]),
        ("282 tiger cat", ["", "info", "", "", ""]),
    ]
    assert box.value == "282 tiger cat" and buttons[1].button_style == "info"


def test_a_mistyped_class_stays_in_the_box_beside_its_error(explorer):
    box, before, calls = explorer._controls["search"], explorer.result, explorer.engine_calls
    try:
        box.value = "tigr cat"
        line = html.unescape(explorer.status.line.value)
        assert "cw-error" in line and "Unknown class name 'tigr cat'" in line
        assert "Did you mean 'tiger cat' (282)" in line
        assert box.value == "tigr cat"  # kept, to correct (it was reset to the old class)
        assert explorer.result is before and explorer.state.target is None
        assert explorer.engine_calls == calls
        assert explorer._top.children[0].children[0].button_style == "info"  # the class shown
        box.value = "tiger cat"  # corrected
        assert explorer.result.class_id == 282 and box.value == "282 tiger cat"
    finally:
        explorer.set(target=None)


def test_the_probe_marker_goes_when_a_new_map_is_shown(explorer):
    """The pixel readout leaves the status line with a new map: so does the marker."""

    def marked():  # the value under the result it belongs to, which stays in view
        line = explorer.status.line.value
        return (
            list(explorer.panels.marker(0).x) == [100.0]
            and f"p={explorer.result.probability:.3f}" in line
            and re.search(r"<br>\d+x\d+ map, cell \(row \d+, col \d+\) around pixel \(100, 50\): value", line)
            is not None
        )

    try:
        explorer._on_probe(100.0, 50.0)
        explorer._controls["opacity"].value = 0.7  # display only: the same map
        assert marked()
        for change in (
            dict(method="gradcam++"),
            dict(target=282),
            dict(layer="features.5"),
            dict(image="coffee"),
        ):
            explorer._on_probe(100.0, 50.0)
            assert marked()
            explorer.set(**change)
            assert list(explorer.panels.marker(0).x) == []
            assert "pixel (" not in explorer.status.line.value
    finally:
        explorer._controls["opacity"].value = 0.5
        explorer.set(image="chelsea", method="gradcam", target=None, layer="features.8")


def test_an_app_page_exports_as_a_download_only(explorer, tmp_path, monkeypatch):
    """In Voila the kernel's folder is the server's: a visitor's exports must not pile up there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOILA_BASE_URL", "/")
    row = explorer._controls["download"]
    explorer._controls["export"].value = ".png"
    assert row.text == "" and row.payload[:4] == b"\x89PNG" and row.filename.endswith(".png")
    assert list(tmp_path.iterdir()) == []


def test_export_file_names_tell_layers_and_smoothgrad_apart(explorer, tmp_path, monkeypatch):
    """Grad-CAM at two layers wrote one file (chelsea_gradcam_285.png) twice."""
    monkeypatch.chdir(tmp_path)
    try:
        for layer in ("features.8", "features.5"):
            explorer.set(method="gradcam", layer=layer, target=285)
            explorer._controls["export"].value = ".png"
        explorer.set(method="vanilla", smooth=True, samples=2, noise=0.1)
        explorer._controls["export"].value = ".npy"
    finally:
        explorer.set(method="gradcam", layer="features.8", target=None, smooth=False, samples=20, noise=0.2)
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [
        "chelsea_efficientnet_lite0_gradcam_features.5_285.png",
        "chelsea_efficientnet_lite0_gradcam_features.8_285.png",
        "chelsea_efficientnet_lite0_vanilla_285_smoothgrad-n2-noise0.1.npy",
    ]


def test_export_stem_is_safe_on_every_os():
    from types import SimpleNamespace

    from cam_widgets.widgets.explorer.state import export_stem

    r = SimpleNamespace(method="gradcam++", layer="features.8", class_id=282, params={})
    assert export_stem("yours:a b/cat?.jpg", "vgg16", r) == "a_b_cat_vgg16_gradcam++_features.8_282"
    assert export_stem("chelsea", "resnet50", r) != export_stem("chelsea", "vgg16", r)
    r = SimpleNamespace(
        method="vanilla",
        layer=None,
        class_id=1,
        params={"samples": 20, "noise": 0.2, "seed": 0, "precision": "bf16"},
    )
    assert (
        export_stem("scene:two_class", "efficientnet_lite0", r)
        == "two_class_efficientnet_lite0_vanilla_1_smoothgrad-n20-noise0.2-bf16"
    )
    stem = export_stem("yours:../x", "m", r)  # no folder
    assert "/" not in stem and ":" not in stem and not stem.startswith(".")


def test_export_names_are_short_and_clean():
    """Issue 19: "yours_cat_dog.jpg_efficientnet_lite0_..." kept ".jpg" in its middle and was
    clipped in the link: the image's extension goes, and a name has at most 80 characters."""
    from types import SimpleNamespace

    from cam_widgets.widgets.explorer.state import MAX_STEM, export_stem

    r = SimpleNamespace(method="gradcam", layer="features.8", class_id=242, params={})
    assert (
        export_stem("yours:cat_dog.jpg", "efficientnet_lite0", r)
        == "cat_dog_efficientnet_lite0_gradcam_features.8_242"
    )
    assert export_stem("yours:cat_dog.jpg (2)", "vgg16", r) == "cat_dog-2_vgg16_gradcam_features.8_242"
    assert export_stem("yours:Photo.JPEG", "vgg16", r).startswith("Photo_vgg16_")
    for image in ("yours:cat_dog.jpg", "yours:x.png", "yours:y.webp", "yours:z.tiff"):
        assert not any(
            ext in export_stem(image, "vgg16", r).lower() for ext in (".jpg", ".png", ".webp", ".tif")
        )
    long = export_stem(
        "yours:" + "a_very_long_photo_name_" * 10 + ".jpg",
        "m" * 60,
        SimpleNamespace(
            method="guided_gradcam",
            layer="blocks.11.attention." * 5,
            class_id=999,
            params={"samples": 100, "noise": 0.25},
        ),
    )
    assert len(long) <= MAX_STEM and not long.endswith(("_", "."))
    assert long.startswith("a_very_long"), long  # the names cut, not the class
    assert long.endswith("_999_smoothgrad-n100-noise0.25") and "_guided_gradcam_blocks.11" in long, long


def test_the_precision_menu_shows_its_longest_option_whole(explorer):
    """It showed "bf16 (mixe": the label takes ~88 px, each character ~7 px, the arrow ~28."""
    from cam_widgets.widgets.shared.controls import precisions_for

    longest = max(len(label) for label, _ in precisions_for("cuda"))  # "fp16 (mixed)"
    width = int(explorer._controls["precision"].layout.width.removesuffix("px"))
    assert width - 88 >= 7 * longest + 28


def test_set_from_python_shows_in_the_controls(explorer):
    """set() changed the map but the menus kept the old method, SmoothGrad off, fp32..."""
    c = explorer._controls
    try:
        explorer.set(method="vanilla", smooth=True, samples=2, precision="bf16", opacity=0.3)
        shown = {n: c[n].value for n in ("method", "smooth", "samples", "precision", "opacity")}
        assert shown == dict(method="vanilla", smooth=True, samples=2, precision="bf16", opacity=0.3)
        assert explorer.result.params["precision"] == "bf16"
    finally:
        explorer.set(method="gradcam", smooth=False, samples=20, precision="fp32", opacity=0.5)
    assert c["method"].value == "gradcam" and not c["smooth"].value


def test_widget_maps_travel_as_short_numbers():
    """A FigureWidget sends 2-D arrays as JSON lists: float32 values printed 17 digits."""
    from cam_widgets.widgets.shared.panels import compact_z

    z = np.array([[0.12345678, 1.0], [0.0, np.nan]], np.float32)
    assert json.dumps(compact_z(z).tolist()) == "[[0.123, 1.0], [0.0, NaN]]"
    assert compact_z(np.float32([[1234.5678, 0.5]])).tolist() == [[1235.0, 0.0]]
    assert compact_z(np.float32([[0.00123456]])).tolist() == [[0.001235]]


def test_the_status_says_when_a_switch_reused_the_forward_pass(explorer):
    try:
        explorer.set(target=282)  # same photo: only a backward
        assert explorer.status.line.value.endswith(", forward pass reused)</span>")
    finally:
        explorer.set(target=None)


def test_side_by_side_shows_the_photo_beside_the_map(explorer):
    """Issue 19: torch-cam's demo and Captum Insights show the photo beside the overlay; the
    Explorer only toggled. "side by side" is a view: two panels, the photo alone, then the
    map over it; a display setting (no engine work); the probe reads the map's panel."""
    from cam_widgets.widgets.explorer.view import PHOTO_TITLE

    assert list(explorer._controls["view"].options) == ["overlay", "raw", "side by side"]
    calls, single = explorer.engine_calls, explorer.panels
    explorer._on_probe(100.0, 100.0)
    alone = explorer.status.line.value.split("<br>")[1]
    try:
        explorer._controls["view"].value = "side by side"
        panels = explorer.panels
        assert panels is not single and panels.count == 2 and explorer.engine_calls == calls
        assert [t.type for t in panels.figure.data] == ["image", "heatmap", "scatter"] * 2
        assert panels.heatmap(0).visible is False and panels.heatmap(1).visible is not False
        assert panels.photo(0).visible and panels.photo(1).visible  # the photo under both
        assert panels.photo(0).source == panels.photo(1).source == single.photo(0).source
        titles = [a.text for a in panels.figure.layout.annotations]
        assert titles[0] == PHOTO_TITLE and titles[1] == single.figure.layout.annotations[0].text
        np.testing.assert_array_equal(np.asarray(panels.heatmap(1).z, float), heat_of(single))
        assert panels.heatmap(1).opacity == explorer.state.opacity
        # in the old figure's place beside the predictions, which is closed
        row = next(r for r in explorer.children if panels.widget in r.children)
        assert row.children.index(panels.widget) == 0 and single.figure.comm is None
        assert panels.fit.panels == 2 and explorer.view.layout.flex == "1 1 760px"
        # the probe marks both panels and reads the map, as before
        explorer._on_probe(100.0, 100.0)
        assert explorer.status.line.value.split("<br>")[1] == alone
        assert [list(panels.marker(k).x) for k in range(2)] == [[100.0], [100.0]]
        # a new class updates both panels in place
        explorer.set(target=282)
        assert explorer.panels is panels and "(282)" in panels.figure.layout.annotations[1].text
        assert panels.figure.layout.annotations[0].text == PHOTO_TITLE
        explorer._controls["opacity"].value = 0.7  # display settings reach the map's panel
        assert panels.heatmap(1).opacity == pytest.approx(0.7)
    finally:
        explorer.set(target=None, opacity=0.5)
        explorer._controls["view"].value = "overlay"
    assert explorer.panels.count == 1 and explorer.engine_calls == calls + 2
    assert explorer.view in next(r for r in explorer.children if explorer.view in r.children).children


def heat_of(panels, k: int = 0) -> np.ndarray:
    return np.asarray(panels.heatmap(k).z, dtype=float)


def test_side_by_side_without_plotly_is_one_picture(explorer):
    """The static view (front ends without Plotly) draws the photo, a white gap and the
    overlay in one PNG."""
    import io

    from PIL import Image

    from cam_widgets.widgets.explorer.state import ExplorerState
    from cam_widgets.widgets.explorer.view import SIDE_GAP, view_png

    result = explorer.result
    state = ExplorerState(view="side by side", opacity=0.5)
    both = np.asarray(Image.open(io.BytesIO(view_png(result, state))).convert("RGB"))
    over = np.asarray(Image.open(io.BytesIO(view_png(result, ExplorerState(opacity=0.5)))).convert("RGB"))
    h, w = result.image.shape[:2]
    assert both.shape == (h, 2 * w + SIDE_GAP, 3)
    np.testing.assert_array_equal(both[:, :w], result.image)
    assert (both[:, w : w + SIDE_GAP] == 255).all()
    np.testing.assert_array_equal(both[:, w + SIDE_GAP :], over)


def test_a_class_the_model_does_not_see_says_so(explorer):
    """Issue 19: a chosen class below 1% and outside the model's top 5 is flagged in the
    status line (the title keeps its p=0.000); a class of the top 5 is not (lynx, 0.010)."""
    try:
        explorer.set(target=242)
        line = explorer.status.line.value
        assert "cw-warning" in line and "boxer (242) p=0.000" in line
        assert line.endswith("boxer: p=0.000, the model does not see this class here</span>")
        explorer._on_probe(100.0, 100.0)  # the probe keeps the warning above its value
        assert "the model does not see this class here<br>" in explorer.status.line.value
        explorer.set(target=287)
        assert explorer.result.probability < 0.011 and 287 in explorer._top_ids
        assert "cw-warning" not in explorer.status.line.value
    finally:
        explorer.set(target=None)
    assert "does not see" not in explorer.status.line.value


def test_the_class_box_takes_a_contrast_a_vs_b(explorer):
    """Issue 18: "282 vs 285" (or names) explains what makes the model say A rather than B,
    the map pytorch-grad-cam's contrastive target gives; the box names both classes."""
    import cam_widgets as cw
    from cam_widgets.models import parse_target
    from cam_widgets.widgets.shared.controls import target_text

    labels = explorer.explainer.labels
    assert parse_target("tiger cat VS egyptian") == cw.contrast("tiger cat", "egyptian")
    assert parse_target("282 tiger cat vs 285") == cw.contrast(282, 285)
    assert target_text(cw.contrast(282, 285), labels) == "282 tiger cat vs 285 Egyptian cat"
    try:
        explorer._controls["search"].value = "tiger cat vs egyptian cat"
        r = explorer.result
        assert r.label == "tiger cat vs Egyptian cat" and r.class_id == 282
        assert explorer.state.target == cw.contrast(282, 285)  # resolved once, to ids
        assert explorer._controls["search"].value == "282 tiger cat vs 285 Egyptian cat"
        alone = explorer.explainer.explain(explorer._prepared(), "gradcam", cw.contrast(282, 285))
        np.testing.assert_allclose(r.raw, alone.raw, rtol=1e-5, atol=1e-6)
        assert not np.allclose(r.raw, explorer.explainer.explain(explorer._prepared(), "gradcam", 282).raw)
        # a method that reads a class's own weights takes no contrast: said in one line, map kept
        explorer._controls["method"].value = "cam"
        assert "cw-error" in explorer.status.line.value and explorer.result is r
        assert explorer.state.method == "gradcam"
        from_python = explorer.set(target="tiger cat vs egyptian")
        assert from_python.label == "tiger cat vs Egyptian cat"
    finally:
        explorer.set(method="gradcam", target=None)
    assert explorer._controls["search"].value.startswith("285 ")


def test_compare_takes_a_contrast_in_its_class_box():
    import cam_widgets as cw
    from cam_widgets.widgets import Compare

    widget = Compare(image="chelsea", by="method", values=("gradcam", "vanilla"))
    widget._controls["target"].value = "282 vs 285"
    assert [r.label for r in widget.results] == ["tiger cat vs Egyptian cat"] * 2
    assert widget.state.target == cw.contrast(282, 285)
    assert widget._controls["target"].value == "282 tiger cat vs 285 Egyptian cat"
    widget.close()


def test_a_bad_layer_or_precision_is_an_error_never_another_setting(explorer):
    """On the model it has, an unknown layer or a precision the device lacks is a one-line
    error with the view kept (only a model just picked has its settings fitted to it); a
    SmoothGrad setting changed while SmoothGrad is off is checked at once all the same."""
    shown = explorer.result
    for changes, message in [
        ({"layer": "featurs.3"}, "Did you mean"),
        ({"precision": "bogus", "smooth": True}, "Invalid precision"),
        ({"precision": "fp16"}, "Invalid precision"),  # SmoothGrad off: kept state untouched
        ({"samples": -3}, "Invalid samples"),
    ]:
        before = explorer.state
        explorer.set(**changes)
        assert message in html.unescape(explorer.status.line.value), changes
        assert explorer.state == before and explorer.result is shown
    explorer.set(samples=30)  # SmoothGrad off: kept, no engine call, the error line goes
    assert explorer.state.samples == 30 and "cw-error" not in explorer.status.line.value
    explorer.set(samples=20)
