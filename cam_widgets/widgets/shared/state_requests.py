"""Controls and ``set()`` as requests, for a widget whose state changes only on success.

Every widget (the Explorer, Compare and the studies) shares this one request model: its
state is a frozen dataclass; a control change or a ``set(**changes)`` becomes a request (see
:mod:`.requests`); display settings (``DISPLAY``) re-render at once without an engine call;
the engine work gets the new state and returns it resolved (the class as an id, a layer the
model has) with what it computed, touching no widget; and the state is replaced only when
the engine work and the figure both succeeded: on an error or a stop the last good view stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import partial

from ...errors import InvalidParameterError, close_matches
from ...methods import get_method
from ...models import parse_target
from .images import image_choice
from .lifecycle import close_owned
from .requests import Request, RequestQueue, Stopped, drive, progress_reporter
from .status import StatusLine, busy, errors_shown

#: A change that asks for the state's engine work again (a study's deferred first run).
AGAIN = "__again__"


class StateRequests:
    """The request plumbing; a subclass provides the engine work and the view.

    A subclass sets ``DISPLAY`` (state fields that only re-render) and implements
    ``_compute(state, report)`` -> ``(state, computed)`` (the engine work: it may run in a
    worker thread, so it touches no widget; ``report(done, total)`` is its progress),
    ``_apply(state, computed)`` (the view, on the loop's thread), ``_show_display(**changes)``,
    ``_sync_controls(keep_text)`` and ``_compute_controls()``.
    """

    DISPLAY: tuple = ()
    RESULT = "results"  # the attribute set() returns
    PROGRESS_UNIT = ""  # what _compute's progress reports count
    STOPPED = "stopped: the maps are the ones before"

    def _start_requests(self, background: bool | None, implied: dict | None = None) -> None:
        """The queue and the status line (its stop button stops the running request).
        ``implied``: see :class:`~.requests.RequestQueue`."""
        self._requests = RequestQueue(self._request, background, implied=implied)
        self._progress = None
        self._closed = False
        self.status = StatusLine(on_stop=self._requests.stop)
        self._requests.on_error = self.status.error
        self._syncing = False
        self._line = ""  # the last good state's status line

    def close(self) -> None:
        """Close this widget and every widget it built (controls, figures, status line);
        running work stops at its next progress report, and the results are dropped."""
        self._closed = True
        requests = getattr(self, "_requests", None)  # absent when __init__ raised early
        if requests is not None:
            requests.stop()
        close_owned(self)
        super().close()

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Controls written from the state: their observers must not act on it."""
        was, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = was

    def _watch_controls(self) -> None:
        for name, control in self._controls.items():
            control.observe(self._on_change(name), names="value")

    def set(self, **changes):
        """Change state fields from Python (as the controls do); returns the result(s).

        Errors (an unknown class, layer or model...) are shown in the status line; the
        previous state and figure are kept.
        """
        drive(self._request(changes, inline=True))  # (a cell runs on the kernel's loop too)
        return getattr(self, self.RESULT)

    def _request(self, changes: dict, inline: bool = False) -> Request:
        """Apply ``changes``: the engine work yielded (off the kernel's loop for a change
        made in the browser), then the figure; the state changes only when it all succeeds."""
        loop = None if inline else self._requests.loop()
        ok = False
        # off the loop the controls stay live (a change replaces the running work)
        with busy([] if loop is not None else self._compute_controls(), self.status, loop):
            try:
                changes = dict(changes)
                again = changes.pop(AGAIN, False)
                new, display_only = next_state(
                    type(self).__name__,
                    self.state,
                    changes,
                    self._display_fields(self.state),
                    self._normalize,
                )
                display_only = display_only and not again
                if display_only:  # nothing for the engine: re-render only
                    self._show_display(**self._display_of(new))
                else:
                    shown = self._display_of(self.state)
                    report = progress_reporter(self.status, self._requests, loop, self._progress_unit(new))
                    self._progress = report  # the request whose partial results may show
                    state, computed = yield partial(self._compute, new, report)
                    if self._closed:  # closed while it computed: nothing to show it in
                        return
                    # display settings changed while it computed are the newest
                    newer = {
                        k: v for k, v in self._display_of(self.state).items() if k in shown and v != shown[k]
                    }
                    self._apply(replace(state, **newer), computed)
                    self._line = self.status.line.value
                ok = True
            except Stopped:  # the stop button
                self._discard_progress()
                self.status.info(self.STOPPED)
                ok = True
            except BaseException:  # an error, or a newer request took its place
                self._discard_progress()
                raise
            finally:
                self._progress = None
        if not self._closed:
            self._sync_controls(keep_text=not ok)  # a typed value stays beside its error

    def _discard_progress(self) -> None:
        """Undo what a request showed before it ended without a result (partial maps): the
        figure shows the state's results again. Nothing to undo by default."""

    def _progress_unit(self, state) -> str:
        """What the progress reports of ``state``'s engine work count."""
        return self.PROGRESS_UNIT

    def _display_fields(self, state) -> tuple:
        """The settings of ``state`` whose change asks nothing of the engine (``DISPLAY``)."""
        return self.DISPLAY

    def _display_of(self, state) -> dict:
        return {k: getattr(state, k) for k in self._display_fields(state)}

    def _on_change(self, name: str):
        def changed(change):
            if self._syncing:
                return
            new = self._parse_control(name, change["new"])
            if self._requests.current(name, getattr(self.state, name)) == new:
                return
            if name in self._display_fields(self.state):  # never waits for (or stops) a computation
                with errors_shown(self.status):
                    self._show_display(**{name: new})
            else:
                self._requests.submit({name: new})

        return changed

    def _parse_control(self, name: str, value):
        """A control's value as a state field."""
        if name == "target":
            return parse_target(value)
        if name == "layer":
            return value or None  # the menu's "" is the default layer
        return value

    def _normalize(self, changes: dict) -> dict:
        """Derived settings filled in (e.g. a new model's default layer)."""
        return changes


def next_state(
    owner: str, state, changes: dict, display: Sequence[str], normalize: Callable[[dict], dict] = dict
):
    """(the state after ``changes``, whether only ``display`` fields really changed).

    Unknown setting names are a one-line error naming the widget's settings; ``normalize``
    fills in derived settings (e.g. the default values of a new comparison axis).
    """
    names = {f.name for f in fields(state)}
    for key in changes:
        if key not in names:
            raise InvalidParameterError(
                f"{owner} has no setting {key!r}; it has {', '.join(sorted(names))}."
                + close_matches(key, names)
            )
    changes = normalize(dict(changes))
    if "method" in changes:  # a title or other spelling: the registry name the menus hold
        changes["method"] = get_method(changes["method"]).name
    if "image" in changes:  # a path, URL or array too
        changes["image"] = image_choice(changes["image"])
    new = replace(state, **changes)
    display_only = all(key in display or getattr(new, key) == getattr(state, key) for key in changes)
    return new, display_only
