"""cam_widgets.chapter_progress: the chapters' one-line status of the section computing."""

from __future__ import annotations

import threading

from cam_widgets import chapter_progress
from cam_widgets.chapter_progress import IDLE_AFTER_S, LINE_CLASS, RUNNING_CLASS, ChapterProgress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Events:
    """IPython's ``shell.events``, as far as the line uses it."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list] = {"pre_run_cell": [], "post_run_cell": []}

    def register(self, name, callback) -> None:
        self.callbacks[name].append(callback)

    def unregister(self, name, callback) -> None:
        self.callbacks[name].remove(callback)

    def fire(self, name) -> None:
        for callback in list(self.callbacks[name]):
            callback(None)


def text(line: ChapterProgress) -> str:
    return line.widget.value.split("</style>", 1)[1]


def test_durations_read_as_seconds_then_minutes():
    assert [duration(s) for s in (0, 4.4, 59.6, 65, 3600)] == [
        "0 s",
        "4 s",
        "1 min 00 s",
        "1 min 05 s",
        "60 min 00 s",
    ]


def test_the_line_names_the_section_and_counts_its_seconds():
    clock = Clock()
    line = ChapterProgress(clock)
    line.section("1. Three maps per label")
    assert text(line) == "<span>Computing: <b>1. Three maps per label</b> (0 s)</span>"
    assert {LINE_CLASS, RUNNING_CLASS} <= set(line.widget._dom_classes)
    clock.now += 42
    line.tick()
    assert "(42 s)" in text(line)
    line.section("2. Which maps are class-discriminative?")  # a new section counts from zero
    clock.now += 3
    line.tick()
    assert text(line) == "<span>Computing: <b>2. Which maps are class-discriminative?</b> (3 s)</span>"


def test_titles_are_shown_as_text():
    line = ChapterProgress(Clock())
    line.section("<b>x</b> & y")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in text(line)


def test_an_idle_kernel_is_not_counted_and_is_said_after_a_moment():
    clock, events = Clock(), Events()
    line = ChapterProgress(clock)
    line.watch(events)
    line.section("3. The noise level")
    clock.now += 10
    events.fire("post_run_cell")  # the cell ends: the kernel waits for the next one
    clock.now += IDLE_AFTER_S / 2
    line.tick()
    assert "Computing" in text(line)  # Voila's gaps between cells are shorter: no flicker
    clock.now += IDLE_AFTER_S
    line.tick()
    assert text(line).startswith("<span>Idle, last computed: <b>3. The noise level</b>")
    assert RUNNING_CLASS not in line.widget._dom_classes
    clock.now += 300  # a reader away in JupyterLab
    events.fire("pre_run_cell")
    clock.now += 5
    line.tick()
    assert "Computing: <b>3. The noise level</b> (15 s)" in text(line)  # 10 + 5: busy time only
    assert RUNNING_CLASS in line.widget._dom_classes


def test_done_says_the_total_compute_time_and_stops_following_the_kernel():
    clock, events = Clock(), Events()
    line = ChapterProgress(clock)
    line.watch(events)
    line.section("1. One")
    clock.now += 30
    events.fire("post_run_cell")
    clock.now += 100  # idle: not counted
    events.fire("pre_run_cell")
    line.section("2. Two")
    clock.now += 35
    line.done()
    assert text(line) == "<span>&#10003; Done: every section computed in 1 min 05 s</span>"
    assert RUNNING_CLASS not in line.widget._dom_classes and LINE_CLASS in line.widget._dom_classes
    assert events.callbacks == {"pre_run_cell": [], "post_run_cell": []}
    clock.now += 50
    line.tick()
    assert "Done" in text(line)


def test_the_ticker_rewrites_the_line_until_done():
    clock = Clock()
    line = ChapterProgress(clock)
    line.section("5. SmoothGrad over other base methods")
    ticked = threading.Event()
    tick = line.tick

    def counting_tick() -> None:
        tick()
        ticked.set()

    line.tick = counting_tick
    clock.now += 7
    thread = line.start_ticking(every_s=0.01)
    assert ticked.wait(10)
    assert "(7 s)" in text(line)
    line.done()
    thread.join(10)
    assert not thread.is_alive()


def test_section_shows_one_line_per_run_and_done_ends_it(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    monkeypatch.setattr(chapter_progress, "current", None)
    first = chapter_progress.section("Setup")
    assert chapter_progress.section("1. Next") is first and shown == [first.place]
    assert "1. Next" in text(first)
    chapter_progress.done()
    assert chapter_progress.current is None and "Done" in text(first)
    second = chapter_progress.section("Setup")  # "Run all" again: a new line in the new output
    assert second is not first and shown == [first.place, second.place]
    chapter_progress.done()
    chapter_progress.done()  # nothing to end: harmless


def test_a_chapter_run_again_before_it_was_done_shows_a_new_line(monkeypatch):
    """JupyterLab: a run stopped before done() (an error, a partial run), then the chapter run
    again from its first cell, whose output (the old line) was cleared: a new line shows, and
    the old one stops following the kernel and ticking."""
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    monkeypatch.setattr(chapter_progress, "current", None)
    first = chapter_progress.section("Running offline")
    chapter_progress.section("1. Next")  # the run stops here, done() never called
    again = chapter_progress.section("Running offline")
    try:
        assert again is not first and shown == [first.place, again.place]
        assert first._stop.is_set() and not again._stop.is_set()
        assert chapter_progress.section("1. Next") is again  # a later section: the same line
    finally:
        chapter_progress.done()
