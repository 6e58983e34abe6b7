"""Browser-made changes run off the kernel's event loop: live controls, newest wins, stop.

In a kernel, widget callbacks run on its asyncio loop; here ``asyncio.run`` plays that loop
and the controls are set as the browser sets them.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cam_widgets.engine import count_hooks
from cam_widgets.widgets.explorer import Explorer
from cam_widgets.widgets.requests import RequestQueue, Stopped, drive


@pytest.fixture(scope="module")
def explorer():
    return Explorer(image="chelsea")


async def _until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_changes_made_during_a_computation_replace_it(explorer):
    threads = []
    work = type(explorer)._work

    def spy(self, *args):
        threads.append(threading.current_thread())
        return work(self, *args)

    async def scenario():
        calls = explorer.engine_calls
        explorer._work = spy.__get__(explorer)
        try:
            c = explorer._controls
            c["method"].value = "vanilla"
            assert c["layer"].disabled  # at once: the running work need not end first
            c["smooth"].value = True  # runs SmoothGrad off the loop...
            assert explorer._requests.running and not c["method"].disabled  # controls live
            assert not c["samples"].disabled  # SmoothGrad's own settings, at once
            for samples in (30, 40, 50):  # ...slider steps meanwhile: merged, the newest wins
                c["samples"].value = samples
            await explorer._requests.idle()
        finally:
            del explorer._work
        assert explorer.result.method == "vanilla" and explorer.state.smooth
        assert explorer.result.params["samples"] == 50 and explorer.state.samples == 50
        assert explorer.engine_calls - calls <= 3  # not one run per step
        assert threads and threading.main_thread() not in threads  # the loop stayed free

    try:
        asyncio.run(scenario())
    finally:
        explorer.set(method="gradcam", smooth=False, samples=20)


def test_the_stop_button_stops_long_work_and_keeps_the_map_before(explorer):
    before = explorer.result

    async def scenario():
        c = explorer._controls
        c["method"].value = "scorecam"  # one report per batch of masked copies
        await _until(lambda: explorer.status.stop.layout.display is None)
        assert "working..." in explorer.status.line.value
        explorer.status.stop.click()
        await explorer._requests.idle()

    asyncio.run(scenario())
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
        await explorer._requests.idle()

    asyncio.run(scenario())
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
        await explorer._requests.idle()

    try:
        asyncio.run(scenario())
    finally:
        monkeypatch.undo()
    assert "boom" in explorer.status.line.value and explorer.state.method == "gradcam"
    text = "".join(o.get("text", "") for o in explorer.status.details.outputs)
    assert "Traceback" in text and "RuntimeError: boom" in text
    explorer.set(method="gradcam")
    assert explorer.status.details.outputs == ()  # cleared by the next computation
