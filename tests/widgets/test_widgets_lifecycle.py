"""Widgets that end: close() closes all they built, a re-run cell replaces its widgets,
and fifty re-runs leave the widget count and memory flat."""

from __future__ import annotations

import gc
import weakref

import pytest
from ipywidgets.widgets.widget import _instances

from cam_widgets.widgets import Compare, DilationStudy, Explorer, LayerSweep, SmoothGradStudy
from cam_widgets.widgets.shared.lifecycle import replace_in_cell

BUILDERS = {
    "Explorer": lambda: Explorer(image="chelsea"),
    "Compare": lambda: Compare(image="chelsea", by="method", values=("Grad-CAM", "Layer-CAM")),
    "SmoothGradStudy": lambda: SmoothGradStudy(image="chelsea", samples=4, snapshots=(1, 4)),
    "LayerSweep": lambda: LayerSweep(image="chelsea", max_panels=3),
    "DilationStudy": lambda: DilationStudy(image="chelsea", base="efficientnet_lite0"),
}


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("name", list(BUILDERS))
def test_close_closes_every_widget_it_built_and_lets_it_go(name):
    BUILDERS[name]()  # (first build: the engine's and the menus' caches)
    gc.collect()
    before = set(_instances)
    widget = BUILDERS[name]()
    assert len(set(_instances) - before) > 20  # controls, figure, layouts...
    widget.close()
    assert set(_instances) - before == set()
    assert getattr(widget, "result", None) is None and getattr(widget, "results", None) is None
    ref = weakref.ref(widget)
    del widget
    gc.collect()
    assert ref() is None, "a closed widget is still referenced"


def test_a_cell_run_again_closes_the_widgets_of_its_previous_run():
    first = Explorer(image="chelsea")
    replace_in_cell(first, ("cell-a", "run-1"))
    other = Explorer(image="chelsea")
    replace_in_cell(other, ("cell-b", "run-1"))  # another cell's widget stays
    again = Explorer(image="chelsea")
    replace_in_cell(again, ("cell-a", "run-1"))  # the same run: both stay
    assert first.comm is not None and again.comm is not None
    newer = Explorer(image="chelsea")
    replace_in_cell(newer, ("cell-a", "run-2"))
    assert first.comm is None and again.comm is None and first.result is None
    assert other.comm is not None and newer.comm is not None
    for widget in (other, newer):
        widget.close()


def _explorers_alive() -> int:
    gc.collect()
    return sum(isinstance(o, Explorer) for o in gc.get_objects())


def test_fifty_runs_of_a_cell_leave_widgets_and_memory_flat():
    counts, memory, alive = [], [], _explorers_alive()  # (other tests' may live on)
    for run in range(50):
        widget = Explorer(image="chelsea")
        replace_in_cell(widget, ("quickstart-cell", run))
        del widget
        if run in (9, 49):
            gc.collect()
            counts.append(len(_instances))
            memory.append(_rss_mb())
    assert counts[0] == counts[1]
    kept = _explorers_alive() - alive
    assert kept <= 1, f"{kept} Explorers alive after 50 runs of one cell"
    assert memory[1] - memory[0] < 60, f"memory grew {memory[1] - memory[0]:.0f} MB in 40 runs"


@pytest.mark.parametrize("build", [lambda: Compare(by="clas"), lambda: Explorer(method="no such method")])
def test_a_widget_refused_while_being_built_is_freed_quietly(build, monkeypatch):
    """ipywidgets closes a collected widget: close() must hold for one whose __init__ raised."""
    import sys

    raised = []
    monkeypatch.setattr(sys, "unraisablehook", raised.append)
    with pytest.raises(Exception):  # noqa: B017 (two kinds of refusal: any error will do)
        build()
    gc.collect()
    assert [str(r.exc_value) for r in raised] == []


def test_closing_a_study_while_its_request_runs_ends_it_quietly():
    import asyncio

    from loop_helpers import run_loop, until

    errors, before = [], None
    study = SmoothGradStudy(image="chelsea", method="vanilla", samples=2, snapshots=(1, 2), background=True)
    study._requests.queue.on_error = errors.append

    async def browser():
        nonlocal before
        study._controls["samples"].value = 60  # a long run, off the loop
        await until(
            lambda: study._requests.queue.running and study._requests.progress is not None, timeout=120
        )
        await asyncio.sleep(0.3)
        before = set(_instances)
        study.close()
        await study._requests.queue.idle(timeout=120)
        assert set(_instances) <= before  # nothing built after the close

    run_loop(browser)
    assert errors == []
    assert "cw-error" not in study.status.line.value  # nothing undone on a closed figure
