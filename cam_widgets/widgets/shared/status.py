"""The status line every widget shows: state, progress with time left, errors (one line, the
traceback folded below), and ``busy()`` around work, with a stop button for long work."""

from __future__ import annotations

import html
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import ipywidgets as W

from ...errors import CamWidgetsError


def _lines(text: str, detail: str) -> str:
    return html.escape(text) + (f"<br>{html.escape(detail)}" if detail else "")


#: Seconds of work off the kernel's loop before "working..." shows (if no report came).
WORKING_DELAY = 0.4


class StatusLine:
    """One HTML line for state and errors, plus an Output holding unexpected tracebacks."""

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        """``on_stop``: a stop button, shown with the progress bar, calls it."""
        self.line = W.HTML(value="")
        self.details = W.Output(layout=W.Layout(max_height="200px", overflow="auto"))
        self.progress = W.FloatProgress(
            value=0, min=0, max=1, description="", layout=W.Layout(width="240px", display="none")
        )
        self.stop = W.Button(
            description="stop",
            icon="stop",
            tooltip="stop this computation",
            layout=W.Layout(width="80px", display="none"),
        )
        if on_stop is not None:
            self.stop.on_click(lambda button: on_stop())
        shown = [self.progress] + ([self.stop] if on_stop is not None else []) + [self.line]
        self.widget = W.VBox(
            [W.HBox(shown, layout=W.Layout(flex_flow="row wrap", align_items="center")), self.details]
        )
        self._started: float | None = None
        self._last_done = 0
        self._changed: float | None = None  # when the count last moved
        self._working_soon = None  # the loop's timer that says "working..." (see start)
        self._kept = ("", "")  # the last good state's line and kind (see keep)

    def start(self, loop=None) -> None:
        """A computation starts: progress reports from now on estimate the time left. With
        ``loop`` (the work runs off the kernel's loop), "working..." and the stop button show
        if it takes over WORKING_DELAY before its first report (a slow forward, Score-CAM's
        set-up): the controls are live then, and the old map alone looked like nothing ran."""
        self._started, self._last_done = time.monotonic(), 0
        if loop is not None:
            self._working_soon = loop.call_later(WORKING_DELAY, self._show_working)

    def _show_working(self) -> None:
        self._working_soon = None
        if self.progress.layout.display == "none":  # no report yet
            self.progress.value = 0
            self.progress.layout.display = self.stop.layout.display = None
            self._set("cw-status", "working...")

    def _set(self, kind: str, inner_html: str, style: str = "") -> None:
        """The line: ``inner_html`` in a span of class ``kind``, with a line height of its
        own (the widget's 28 px, one control's, left a blank line between wrapped lines)."""
        self.kind = kind
        self.line.value = (
            f"<span class='{kind}' style='display:inline-block;line-height:1.4;{style}'>{inner_html}</span>"
        )

    def keep(self) -> None:
        """The line on show is the last good state's: :meth:`restore` shows it again."""
        self._kept = (self.line.value, getattr(self, "kind", ""))

    def restore(self) -> None:
        """Show the last good state's line again, in place of an old error."""
        self.line.value, self.kind = self._kept

    @property
    def shows_error(self) -> bool:
        """Whether the line shows an error (not a result, a warning or progress)."""
        return getattr(self, "kind", "") == "cw-error"

    def info(self, text: str, detail: str = "") -> None:
        """``text``, and ``detail`` on a line of its own (a pixel's value under its result)."""
        self._set("cw-status", _lines(text, detail))

    def warn(self, text: str, detail: str = "") -> None:
        self._set("cw-warning", f"&#9888; {_lines(text, detail)}", "color:#b35c00")

    def error(self, error: BaseException) -> None:
        self._set("cw-error", f"error: {html.escape(str(error))}", "color:#c00")
        if not isinstance(error, CamWidgetsError):  # (appended, not printed: no cell to print in)
            self.details.append_stdout(
                "".join(traceback.format_exception(type(error), error, error.__traceback__))
            )

    def done(self) -> None:
        """The computation ended: no progress bar or stop button."""
        if self._working_soon is not None:
            self._working_soon.cancel()
            self._working_soon = None
        self.progress.layout.display = self.stop.layout.display = "none"

    def report(self, done: int, total: int, unit: str = "") -> None:
        """Progress of long work ("12/100 noisy samples": counts in ``unit``), with the time
        left once it can be estimated (so that a slow run is told apart from a hang)."""
        now = time.monotonic()
        if self._started is None or done <= 0 or done < self._last_done:  # a new run
            self._started = self._changed = now
        elif done != self._last_done:
            self._changed = now  # the pace is measured up to the last step done
        self._last_done = done
        self.progress.layout.display = self.stop.layout.display = None
        self.progress.value = done / max(total, 1)
        # counts (samples, masked copies) as such; a fraction (a comparison's panels) in %
        text = (
            f"working... {done}/{total}{' ' + unit if unit else ''}"
            if isinstance(done, int)
            else f"working... {100 * done / max(total, 1e-9):.0f}%"
        )
        left = time_left(self._changed - self._started, done, total, since=now - self._changed)
        if left:
            text += f", about {left} left"
        self._set("cw-status", html.escape(text))


def time_left(elapsed: float, done: int, total: int, since: float = 0.0) -> str:
    """ "12 s" / "3 min" left at the pace of ``done`` steps in ``elapsed`` seconds, ``since``
    seconds into the next step (a report that repeats a count, as SmoothGrad over Score-CAM
    makes within a sample, counts down instead of up); at least the steps after the current
    one. "" before a pace is known (nothing done, or under half a second of work: the first
    batch is mostly warm-up)."""
    if done <= 0 or done >= total or elapsed < 0.5:
        return ""
    pace = elapsed / done
    seconds = max(pace * (total - done) - since, pace * (total - done - 1))
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


@contextmanager
def busy(controls: Sequence[W.Widget], status: StatusLine, loop=None) -> Iterator[None]:
    """Disable controls while computing (no pile-up of requests); always restore them.
    ``loop``: the work runs off it (see :meth:`StatusLine.start`)."""
    previous = [getattr(c, "disabled", False) for c in controls]
    for control in controls:
        control.disabled = True
    status.details.outputs = ()
    status.start(loop)
    try:
        with errors_shown(status):
            yield
    finally:
        for control, was in zip(controls, previous):
            control.disabled = was
        status.done()


@contextmanager
def errors_shown(status: StatusLine) -> Iterator[None]:
    """An error in the block is shown in the widget, never lost (and never raised into a
    widget callback, where nobody would see it)."""
    try:
        yield
    except Exception as error:
        status.error(error)
