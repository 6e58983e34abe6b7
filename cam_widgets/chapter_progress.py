"""Which section of a chapter is computing: a one-line status the chapters' code cells update.

    from cam_widgets.chapter_progress import done, section
    section("3. The noise level")   # first call: shows the line; later calls: a new section
    ...
    done()                          # last cell: "Done: every section computed in 1 min 32 s"

In Voila (progressive rendering) every markdown cell is on the page at once and every code
cell not yet run shows the same grey placeholder, the running one included; a cell's outputs
arrive only when it ends. So the line is a widget, shown by the first cell that calls
``section`` (it appears when that cell ends) and then updated over its comm while later cells
run: the section's title and, each second while the kernel runs a cell, the seconds it has
spent on it (the kernel is alive). In Voila (``body[data-voila]``) the line is pinned to the
bottom of the window while it computes and goes back to its place when done; in JupyterLab it
stays in place; under ``nbconvert --execute`` it is a widget with nobody to draw it.
Between cells the kernel is idle: after a second of that the line says so (a notebook run cell
by cell in JupyterLab), rather than counting on.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable

import ipywidgets as W

#: Classes of the line (``cw-chapter-progress``), and while it computes (pinned in Voila).
LINE_CLASS = "cw-chapter-progress"
RUNNING_CLASS = "cw-chapter-progress-running"
#: Voila's page marks its body with data-voila; JupyterLab's and Notebook 7's do not. Its
#: scrolling panels are Lumino BoxPanels with ``contain: strict``, which would hold a fixed
#: line (it would scroll away with the cells): while the line computes they keep only the
#: size containment (Lumino sizes them itself; without !important Lumino's setting wins).
STYLE = (
    "<style>body[data-voila] .cw-chapter-progress-running {position: fixed; bottom: 12px; "
    "right: 16px; z-index: 10000; pointer-events: none; max-width: 60vw; padding: 4px 12px; "
    "border-radius: 4px; background: var(--jp-layout-color2, #eee); "
    "box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3);} "
    "body[data-voila] :is(.lm-BoxPanel, .lm-BoxPanel-child):has(.cw-chapter-progress-running) "
    "{contain: size style !important;}</style>"
)
#: Height kept for the line in its cell's output (one line of text and its margins).
PLACE_HEIGHT = "32px"
#: The kernel idle this long between cells: the line says it is idle (Voila's gaps are shorter).
IDLE_AFTER_S = 1.5


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``."""
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


class ChapterProgress:
    """The status line of one run of a chapter: its current section and compute time.

    ``cell_started`` / ``cell_ended`` are told when the kernel starts and ends a cell (IPython's
    ``pre_run_cell`` / ``post_run_cell`` events, see ``watch``); ``tick`` rewrites the line
    (each second from a thread, see ``start_ticking``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.widget = W.HTML()
        self.widget.add_class(LINE_CLASS)
        # what the cell shows: the line's place, kept while the line is pinned elsewhere, so
        # that nothing below moves when it comes back (the quickstart's map was sized from
        # where it stood, and "Done" pushed its bottom off the first screen)
        self.place = W.Box([self.widget], layout=W.Layout(min_height=PLACE_HEIGHT))
        self.title: str | None = None
        self.first_title: str | None = None  # the section that showed the line
        self.finished = False
        self._busy_since: float | None = clock()  # section() is called from a running cell
        self._idle_since: float | None = None
        self._section_s = 0.0  # compute time of the current section, cells ended
        self._total_s = 0.0  # compute time of the chapter, cells ended
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._unwatch: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ what the chapter says
    def section(self, title: str) -> None:
        with self._lock:
            if self._busy_since is not None:  # the time so far belongs to the previous section
                now = self.clock()
                self._total_s += now - self._busy_since
                self._busy_since = now
            self.title, self._section_s = title, 0.0
            self.tick()

    def stop(self) -> None:
        """Stop following the kernel's cells and ticking; the line stays as it reads."""
        with self._lock:
            self._stop.set()
            self._unwatch()

    def done(self) -> None:
        with self._lock:
            self.cell_ended()
            self.finished = True
            self._stop.set()
            self._unwatch()
            self.widget.remove_class(RUNNING_CLASS)
            self._show(f"&#10003; Done: every section computed in {duration(self._total_s)}")

    # ------------------------------------------------------------------ what the kernel does
    def cell_started(self, *_args) -> None:
        with self._lock:
            if self._busy_since is None:
                self._busy_since, self._idle_since = self.clock(), None
            self.tick()

    def cell_ended(self, *_args) -> None:
        with self._lock:
            if self._busy_since is not None:
                spent = self.clock() - self._busy_since
                self._section_s += spent
                self._total_s += spent
                self._busy_since, self._idle_since = None, self.clock()

    def tick(self) -> None:
        """Rewrite the line from the state and the clock."""
        with self._lock:
            if self.finished or self.title is None:
                return
            title = html.escape(self.title)
            if self._busy_since is not None:
                section_s = self._section_s + self.clock() - self._busy_since
                self.widget.add_class(RUNNING_CLASS)
                self._show(f"Computing: <b>{title}</b> ({duration(section_s)})")
            elif self._idle_since is not None and self.clock() - self._idle_since >= IDLE_AFTER_S:
                self.widget.remove_class(RUNNING_CLASS)
                self._show(f"Idle, last computed: <b>{title}</b> (the kernel waits for the next cell)")

    def _show(self, text: str) -> None:
        value = f"{STYLE}<span>{text}</span>"
        if self.widget.value != value:
            self.widget.value = value

    # ------------------------------------------------------------------ wiring
    def watch(self, events) -> None:
        """Follow the kernel's cells through IPython's ``events`` (``get_ipython().events``)."""
        events.register("pre_run_cell", self.cell_started)
        events.register("post_run_cell", self.cell_ended)

        def unwatch() -> None:
            for name, callback in (("pre_run_cell", self.cell_started), ("post_run_cell", self.cell_ended)):
                try:
                    events.unregister(name, callback)
                except ValueError:  # already gone
                    pass

        self._unwatch = unwatch

    def start_ticking(self, every_s: float = 1.0) -> threading.Thread:
        """A daemon thread that calls ``tick`` every ``every_s`` until ``done``."""

        def run() -> None:
            while not self._stop.wait(every_s):
                self.tick()

        thread = threading.Thread(target=run, name="cam_widgets chapter progress", daemon=True)
        thread.start()
        return thread


#: The line of the chapter running in this kernel (None: none yet, or done).
current: ChapterProgress | None = None


def section(title: str) -> ChapterProgress:
    """Say that ``title`` (a markdown heading of the chapter) is computing. The first call of a
    run shows the line in its cell's output and follows the kernel's cells. The first title of
    the line on show again (a chapter run again before it was done, in JupyterLab: its first
    cell's output, the line with it, was cleared) starts a new line."""
    global current
    if current is not None and title == current.first_title:
        current.stop()  # (its thread ends; its widget went with the cleared output)
        current = None
    if current is None:
        from IPython import get_ipython
        from IPython.display import display

        current = ChapterProgress()
        current.first_title = title
        shell = get_ipython()
        if shell is not None:
            current.watch(shell.events)
        current.section(title)
        display(current.place)
        current.start_ticking()
    else:
        current.section(title)
    return current


def done() -> None:
    """Say that every section has been computed; a later ``section`` starts a new line."""
    global current
    if current is not None:
        current.done()
        current = None
