"""Browser-made changes run off the kernel's event loop: live controls, newest wins, stop.

In a kernel, widget callbacks run on its asyncio loop; here ``asyncio.run`` plays that loop
and the controls are set as the browser sets them.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cam_widgets.api import get_explainer
from cam_widgets.engine import count_hooks
from cam_widgets.widgets.explorer.widget import Explorer
from cam_widgets.widgets.shared.requests import RequestQueue, Stopped, drive
from loop_helpers import run_loop, stop_when_working, until_working
from loop_helpers import until as _until


@pytest.fixture(scope="module")
def explorer():
    return Explorer(image="chelsea", background=True)  # as in a kernel


def test_changes_made_during_a_computation_replace_it(explorer):
    threads = []
    work = type(explorer)._compute

    def spy(self, *args):
        threads.append(threading.current_thread())
        return work(self, *args)

    loop_threads = []

    async def scenario():
        loop_threads.append(threading.current_thread())
        calls = explorer.engine_calls
        explorer._compute = spy.__get__(explorer)
        try:
            c = explorer._controls
            c["method"].value = "vanilla"
            assert c["layer"].disabled  # at once: the running work need not end first
            c["smooth"].value = True  # runs SmoothGrad off the loop...
            assert explorer._requests.queue.running and not c["method"].disabled  # controls live
            assert not c["samples"].disabled  # SmoothGrad's own settings, at once
            for samples in (30, 40, 50):  # ...slider steps meanwhile: merged, the newest wins
                c["samples"].value = samples
            await explorer._requests.queue.idle()
        finally:
            del explorer._compute
        assert explorer.result.method == "vanilla" and explorer.state.smooth
        assert explorer.result.params["samples"] == 50 and explorer.state.samples == 50
        assert explorer.engine_calls - calls <= 3  # not one run per step
        assert threads and loop_threads[0] not in threads  # the loop stayed free

    try:
        run_loop(scenario)
    finally:
        explorer.set(method="gradcam", smooth=False, samples=20)


def test_the_stop_button_stops_long_work_and_keeps_the_map_before(explorer):
    before = explorer.result

    async def scenario():
        c = explorer._controls
        c["method"].value = "scorecam"  # one report per batch of masked copies
        await until_working(explorer)
        assert "working..." in explorer.status.line.value
        explorer.status.stop.click()
        await explorer._requests.queue.idle()

    run_loop(scenario)
    assert explorer.result is before and explorer.state.method == "gradcam"
    assert explorer._controls["method"].value == "gradcam"  # the control shows the state
    assert "stopped" in explorer.status.line.value
    assert explorer.status.stop.layout.display == "none"
    assert explorer.status.progress.layout.display == "none"
    assert count_hooks(explorer.explainer.engine.model) == 0  # stopped mid-pass, nothing left
    explorer.set(method="gradcam++")  # and the widget goes on working
    assert explorer.result.method == "gradcam++"
    explorer.set(method="gradcam")


def test_an_error_off_the_loop_is_shown_and_the_state_kept(explorer):
    async def scenario():
        explorer._controls["search"].value = "zebraa"
        await explorer._requests.queue.idle()

    run_loop(scenario)
    assert "cw-error" in explorer.status.line.value and "zebra" in explorer.status.line.value
    assert explorer.state.target is None and explorer.result.class_id == 285


def test_requests_run_inline_without_a_loop():
    seen = []

    def request(changes):
        seen.append(("state", changes))
        outcome = yield lambda: threading.current_thread()
        seen.append(("shown", outcome))

    queue = RequestQueue(request)
    queue.submit({"a": 1})
    assert seen == [("state", {"a": 1}), ("shown", threading.current_thread())]
    queue.check()  # nothing asked it to stop


def test_an_error_of_the_engine_work_is_handed_back_to_the_request():
    seen = []

    def request(changes):
        try:
            yield lambda: 1 / 0
        except ZeroDivisionError as error:
            seen.append(type(error).__name__)

    drive(request({}))
    assert seen == ["ZeroDivisionError"]
    with pytest.raises(Stopped):
        queue = RequestQueue(request)
        queue._stop.set()
        queue.check()


def test_an_unexpected_error_off_the_loop_keeps_its_traceback_in_the_widget(explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    async def scenario():
        monkeypatch.setattr(explorer.explainer, "explain", broken)
        explorer._controls["method"].value = "layercam"
        await explorer._requests.queue.idle()

    try:
        run_loop(scenario)
    finally:
        monkeypatch.undo()
    assert "boom" in explorer.status.line.value and explorer.state.method == "gradcam"
    text = "".join(o.get("text", "") for o in explorer.status.details.outputs)
    assert "Traceback" in text and "RuntimeError: boom" in text
    explorer.set(method="gradcam")
    assert explorer.status.details.outputs == ()  # cleared by the next computation


@pytest.fixture(scope="module")
def compare():
    from cam_widgets.widgets.compare.widget import Compare

    return Compare(image="chelsea", by="class", values=(285, 282), background=True)


def test_compare_keeps_a_replaced_change_and_display_changes_made_meanwhile(compare):
    calls = compare.engine_calls

    async def scenario():
        c = compare._controls
        c["by"].value = "method"  # replaced by the next change before it shows...
        c["values"].value = "Grad-CAM, layer-cam"  # ...which must still compare methods
        c["opacity"].value = 0.8  # display only: neither waits nor stops the computation
        assert compare.state.opacity == 0.8
        await compare._requests.queue.idle()

    try:
        run_loop(scenario)
        assert compare.state.by == "method" and compare.state.values == ("gradcam", "layercam")
        assert [r.method for r in compare.results] == ["gradcam", "layercam"]
        assert compare.state.opacity == 0.8 and compare.engine_calls - calls <= 2
        assert compare.panels.heatmap(0).opacity == pytest.approx(0.8)
    finally:
        compare.set(by="class", values=(285, 282), opacity=0.5)


def test_compare_stop_keeps_the_maps_before(compare):
    before = compare.results

    async def scenario():
        compare._controls["by"].value = "method"
        compare._controls["values"].value = "Score-CAM"  # replaces it: one slow panel
        await stop_when_working(compare)

    run_loop(scenario)
    assert compare.results is before and compare.state.by == "class"
    assert compare._controls["by"].value == "class" and "stopped" in compare.status.line.value
    assert count_hooks(compare.sources[0][0].engine.model) == 0


def test_a_replaced_request_stops_at_its_next_report_and_its_changes_are_kept():
    applied, started = [], threading.Event()

    def slow_work():
        started.set()
        for _ in range(500):  # a long computation reporting its progress
            queue.check()
            time.sleep(0.01)
        return "done"

    def request(changes):
        outcome = yield slow_work if changes.get("slow") else (lambda: "quick")
        applied.append((dict(changes), outcome))  # superseded: never reached

    queue = RequestQueue(request, background=True)

    async def scenario():
        queue.submit({"slow": False, "a": 1})
        await _until(lambda: not queue.running)
        queue.submit({"slow": True, "b": 2})
        await _until(started.is_set)
        queue.submit({"slow": False, "c": 3})  # replaces the running one
        await queue.idle()

    run_loop(scenario)
    assert applied == [({"slow": False, "a": 1}, "quick"), ({"slow": False, "b": 2, "c": 3}, "quick")]


def test_outside_a_kernel_changes_run_inline_even_under_a_running_loop():
    """A test process may run a loop of its own (Playwright's): only a kernel's counts."""
    from cam_widgets.widgets.shared.requests import in_kernel

    seen = []

    def request(changes):
        seen.append((yield lambda: changes))

    queue = RequestQueue(request, background=None)
    assert not in_kernel() and not queue.background

    async def scenario():
        queue.submit({"a": 1})
        assert seen == [{"a": 1}]  # done before submit returned
        assert queue.loop() is None

    run_loop(scenario)


def test_a_study_keeps_its_controls_live_and_can_be_stopped():
    from cam_widgets.widgets import SmoothGradStudy

    study = SmoothGradStudy(image="chelsea", samples=4, snapshots=(1, 4), background=True)
    before = study.result

    async def scenario():
        c = study._controls
        c["method"].value = "scorecam"  # SmoothGrad over Score-CAM: slow, reports within samples
        c["opacity"].value = 0.9  # display only, at once
        assert study.state.opacity == 0.9
        await stop_when_working(study)

    run_loop(scenario)
    assert study.result is before and study.state.method == "vanilla"
    assert study._controls["method"].value == "vanilla" and "stopped" in study.status.line.value
    assert study.state.opacity == 0.9 and study.panels.heatmap(0).opacity == pytest.approx(0.9)
    assert count_hooks(get_explainer("efficientnet_lite0").engine.model) == 0

    async def noise_steps():
        for noise in (0.1, 0.15, 0.25):  # merged: the newest wins
            study._controls["noise"].value = noise
        await study._requests.queue.idle()

    calls = study.engine_calls
    run_loop(noise_steps)
    assert study.state.noise == 0.25 and study.result.params["noise"] == 0.25
    assert study.engine_calls - calls <= 2


def test_a_newer_change_voids_the_older_changes_it_implies_and_errors_are_not_lost():
    applied, errors, started = [], [], threading.Event()

    def slow_work():
        started.set()
        for _ in range(500):
            queue.check()
            time.sleep(0.01)

    def request(changes):
        if changes.get("boom"):
            raise RuntimeError("boom")  # outside any handler of the request
        yield slow_work if changes.get("slow") else (lambda: None)
        applied.append(dict(changes))

    queue = RequestQueue(request, background=True, implied={"by": ("values",)})
    queue.on_error = errors.append

    async def scenario():
        queue.submit({"slow": True, "values": ("Score-CAM",)})
        await _until(started.is_set)
        queue.submit({"slow": False, "by": "class"})  # the old values belonged to "method"
        await queue.idle()
        queue.submit({"boom": True})
        await queue.idle()
        queue.submit({"after": 1})  # the queue goes on
        await queue.idle()

    run_loop(scenario)
    assert applied == [{"slow": False, "by": "class"}, {"after": 1}]
    assert [str(e) for e in errors] == ["boom"]


def test_setting_a_control_back_while_another_value_computes_is_a_change(compare):
    async def scenario():
        compare._controls["method"].value = "scorecam"  # slow...
        await until_working(compare)
        compare._controls["method"].value = "gradcam"  # ...and back: the shown value
        await compare._requests.queue.idle()

    run_loop(scenario)
    assert compare.state.method == "gradcam" and [r.method for r in compare.results] == ["gradcam", "gradcam"]
    assert compare._controls["method"].value == "gradcam"


def test_a_replaced_model_change_still_switches_the_model_and_a_stop_restores_the_map_on_show():
    explorer = Explorer(image="chelsea", background=True)

    async def switch_then_pick():
        explorer._controls["method"].value = "scorecam"
        explorer._controls["model"].value = "efficientnet_lite2"  # merged with the method
        await until_working(explorer)
        explorer._top.children[1].children[0].click()  # replaces it: a class, not a model
        await explorer._requests.queue.idle()

    run_loop(switch_then_pick)
    assert explorer.explainer.spec.name == "efficientnet_lite2" == explorer.state.model
    assert explorer.result.heatmap.shape == (260, 260) and explorer.result.method == "scorecam"

    shown = explorer.result

    async def replace_then_stop():
        explorer._controls["method"].value = "gradcam++"
        explorer._controls["method"].value = "integrated_gradients"  # merged: one slow run
        await until_working(explorer)
        explorer._top.children[0].children[0].click()  # replaces it...
        await stop_when_working(explorer)  # ...and that one is stopped: back to the map on show

    run_loop(replace_then_stop)
    assert explorer.result is shown and explorer.state.method == "scorecam"
    assert explorer._controls["method"].value == "scorecam"


def test_set_from_a_cell_runs_inline_even_on_the_kernels_loop(explorer):
    async def scenario():
        explorer.set(method="integrated_gradients")  # a cell: the kernel's loop is running
        await asyncio.sleep(0.2)  # no progress report arrives after set() returned
        assert explorer.status.progress.layout.display == "none"
        assert explorer.status.stop.layout.display == "none"
        assert "Integrated Gradients" in explorer.status.line.value

    try:
        run_loop(scenario)
    finally:
        explorer.set(method="gradcam")


def test_slow_work_without_progress_reports_says_it_is_working(explorer):
    """A slow step before any report (a forward, Score-CAM's set-up): the controls are live,
    so without a sign the old map alone looked like nothing ran."""
    work = type(explorer)._compute

    def slow(self, *args):
        time.sleep(1.0)  # over WORKING_DELAY, and no progress report
        return work(self, *args)

    async def scenario():
        explorer._compute = slow.__get__(explorer)
        try:
            explorer._controls["method"].value = "gradcam++"
            assert "working" not in explorer.status.line.value  # not for what ends at once
            await until_working(explorer)
            assert "working..." in explorer.status.line.value
            await explorer._requests.queue.idle()
        finally:
            del explorer._compute

    try:
        run_loop(scenario)
        assert explorer.result.method == "gradcam++" and "working" not in explorer.status.line.value
        assert explorer.status.stop.layout.display == "none"
    finally:
        explorer.set(method="gradcam")


def test_a_layer_sweep_over_score_cam_can_be_stopped_and_says_how_it_computed():
    from cam_widgets.widgets import LayerSweep

    sweep = LayerSweep(image="chelsea", method="eigencam", max_panels=3, background=True)
    assert "through 3 layers, from one forward" in sweep.status.line.value  # no backward
    before = sweep.results

    async def scenario():
        sweep._controls["method"].value = "scorecam"  # masked forwards: reports within a layer
        await stop_when_working(sweep)

    run_loop(scenario)
    assert sweep.results is before and sweep.state.method == "eigencam"
    assert "stopped" in sweep.status.line.value
    assert count_hooks(get_explainer("efficientnet_lite0").engine.model) == 0
    sweep.set(method="gradcam")
    assert "from one backward" in sweep.status.line.value


#: (browser change, held; browser changes waiting before the cell; the cell's set();
#:  browser changes after it; a progress report when released; expected (method, layer, target):
#:  features.8 is the model's default layer)
SET_DURING_A_REQUEST = {
    "other setting": (
        {"method": "gradcam++"},
        {},
        {"target": 281},
        {},
        False,
        ("gradcam++", "features.8", 281),
    ),
    "same setting": (
        {"method": "gradcam++"},
        {},
        {"target": 281, "method": "layercam"},
        {},
        False,
        ("layercam", "features.8", 281),
    ),
    # a newer browser change supersedes the running request: its requeued changes lose too
    "superseded": (
        {"method": "gradcam++"},
        {},
        {"method": "layercam"},
        {"layer": "features.5"},
        True,
        ("layercam", "features.5", None),
    ),
    # a browser change waiting since before the cell is older than the set()
    "waiting": (
        {"layer": "features.5"},
        {"method": "gradcam++"},
        {"method": "layercam"},
        {},
        False,
        ("layercam", "features.5", None),
    ),
    # a new photo set from a cell voids the class picked for the old one (implied)
    "dependent": ({"target": 282}, {}, {"image": "coffee"}, {}, False, ("gradcam", "features.8", None)),
}


@pytest.mark.parametrize("case", SET_DURING_A_REQUEST)
def test_a_set_from_a_cell_during_a_browser_request_is_kept(explorer, case):
    """A cell's ``set()`` while browser changes compute or wait: the browser's request,
    computed on the older state, must not overwrite it when it ends or is superseded; its
    changes run again on the newer state, less the settings the cell set and their
    dependents (set later, they win)."""
    first, waiting, cell, after, report, (method, layer, target) = SET_DURING_A_REQUEST[case]
    work = type(explorer)._compute
    entered, release = threading.Event(), threading.Event()

    def held(self, state, progress):
        if not entered.is_set():  # the browser's request: held until the cell has run
            entered.set()
            assert release.wait(300)
            if report:  # a progress report, as SmoothGrad and Score-CAM make
                progress(0, 1)
        return work(self, state, progress)

    async def scenario():
        explorer._compute = held.__get__(explorer)
        try:
            explorer._ask(**first)  # made in the browser
            await _until(entered.is_set)
            if waiting:
                explorer._ask(**waiting)
            explorer.set(**cell)  # a cell runs on the loop meanwhile, inline
            if after:
                explorer._ask(**after)
            release.set()
            await explorer._requests.queue.idle()
        finally:
            release.set()
            del explorer._compute

    try:
        run_loop(scenario)
        s, r = explorer.state, explorer.result
        assert (s.method, s.layer, s.target) == (method, layer, target), case
        assert s.image == cell.get("image", "chelsea")
        assert r.method == method and (target is None or r.class_id == target)
        assert explorer._controls["method"].value == method
    finally:
        explorer.set(image="chelsea", method="gradcam", target=None, layer=None)


def test_the_stop_button_is_not_undone_by_a_set_from_a_cell(explorer):
    """Stopped after a cell's set(): the browser's request is not run again."""
    work = type(explorer)._compute
    entered, release = threading.Event(), threading.Event()

    def held(self, *args):
        if not entered.is_set():
            entered.set()
            assert release.wait(300)
        return work(self, *args)

    async def scenario():
        explorer._compute = held.__get__(explorer)
        try:
            explorer._ask(method="gradcam++")
            await _until(entered.is_set)
            explorer.set(target=281)
            calls = explorer.engine_calls
            explorer.status.stop.click()
            release.set()
            await explorer._requests.queue.idle()
            assert explorer.engine_calls == calls + 1  # the held run alone, not run again
        finally:
            release.set()
            del explorer._compute

    try:
        run_loop(scenario)
        assert explorer.state.method == "gradcam" and explorer.state.target == 281
    finally:
        explorer.set(method="gradcam", target=None)
