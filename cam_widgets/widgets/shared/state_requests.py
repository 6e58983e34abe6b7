"""Controls and ``set()`` as requests, for a widget whose state changes only on success.

Every widget (the Explorer, Compare and the studies) holds one :class:`StateRequests`, the
one request model they share: the widget's state is a frozen dataclass; a control change or
a ``set(**changes)`` becomes a request (see :mod:`.requests`); display settings re-render at
once without an engine call; the engine work gets the new state and returns it resolved (the
class as an id, a layer the model has) with what it computed, touching no widget; and the
state is replaced only when the engine work and the figure both succeeded: on an error or a
stop the last good view stays.

The widget is the component's host (:class:`RequestHost`): it keeps its state and its roles
(work, view, controls); the component keeps the plumbing (queue, status line, progress,
quiet control writes) and calls the host's hooks. Held, not inherited: a widget's class is
a plain ``VBox`` with parts, and what the plumbing may call is the protocol below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import partial
from typing import Any, Protocol

from ...errors import InvalidParameterError, close_matches
from ...methods import get_method
from ...models import parse_target
from .images import image_choice
from .requests import Progress, Request, RequestQueue, Stopped, drive, progress_reporter
from .status import StatusLine, busy, errors_shown

#: A change that asks for the state's engine work again (a study's deferred first run).
AGAIN = "__again__"


class RequestHost(Protocol):
    """What a widget gives the :class:`StateRequests` it holds."""

    state: Any  # the frozen state on show

    def _compute(self, state: Any, report: Progress) -> tuple:
        """(``state`` resolved, what was computed): the engine work. It may run in a worker
        thread, so it touches no widget; ``report(done, total)`` is its progress."""

    def _apply(self, state: Any, computed: Any) -> None:
        """Show ``computed`` and make ``state`` the widget's (on the loop's thread)."""

    def _show_display(self, **changes: Any) -> None:
        """Settings that ask nothing of the engine, shown at once."""

    def _sync_controls(self, keep_text: bool = False) -> None:
        """Controls show the state (``keep_text``: a typed value stays beside its error)."""

    def _compute_controls(self) -> list:
        """Controls disabled while a request computes inline."""


def control_value(name: str, value: Any) -> Any:
    """A control's value as a state field: a typed class parsed, the layer menu's "" as the
    default layer."""
    if name == "target":
        return parse_target(value)
    if name == "layer":
        return value or None
    return value


class StateRequests:
    """The request plumbing of one widget (its ``host``); see the module's docstring.

    Args:
        host: the widget (:class:`RequestHost`).
        background: compute browser changes off the kernel's loop (None: when in a kernel).
        implied: ``{setting: dependents}`` (see :class:`~.requests.RequestQueue`).
        display: ``display(state)`` -> the settings of ``state`` that only re-render.
        normalize: ``normalize(changes)`` -> the changes with derived settings filled in
            (e.g. a new model's default layer).
        progress_unit: ``progress_unit(state)`` -> what its engine work's reports count.
        parse_control: ``parse_control(name, value)`` -> a control's value as a state field.
        discard_progress: undoes what a request showed before it ended without a result
            (partial maps).
        stopped: the status line after the stop button.
    """

    def __init__(
        self,
        host: RequestHost,
        background: bool | None,
        *,
        implied: dict | None = None,
        display: Callable[[Any], Sequence[str]] = lambda state: (),
        normalize: Callable[[dict], dict] = dict,
        progress_unit: Callable[[Any], str] = lambda state: "",
        parse_control: Callable[[str, Any], Any] = control_value,
        discard_progress: Callable[[], None] = lambda: None,
        stopped: str = "stopped: the maps are the ones before",
    ) -> None:
        self._host = host
        self.queue = RequestQueue(self._request, background, implied=implied)
        self.status = StatusLine(on_stop=self.queue.stop)
        self.queue.on_error = self.status.error
        self.progress: Progress | None = None  # the running request's (its partial results may show)
        self.closed = False
        self.syncing = False  # controls are being written from the state
        self._display, self._normalize, self._unit = display, normalize, progress_unit
        self._parse, self._discard, self._stopped = parse_control, discard_progress, stopped

    def close(self) -> None:
        """Running work stops at its next progress report, and its results are dropped."""
        self.closed = True
        self.queue.stop()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Controls written from the state: their observers must not act on it."""
        was, self.syncing = self.syncing, True
        try:
            yield
        finally:
            self.syncing = was

    def watch(self, controls: dict) -> None:
        """Each control's change becomes a request (or a display change, shown at once)."""
        for name, control in controls.items():
            control.observe(self._on_change(name), names="value")

    def set(self, changes: dict) -> None:
        """Apply ``changes`` inline (a cell runs on the kernel's loop too); an error shows in
        the status line and the state and figure stay."""
        drive(self._request(changes, inline=True))

    def display_of(self, state) -> dict:
        """The display settings of ``state`` and their values."""
        return {k: getattr(state, k) for k in self._display(state)}

    def report(self, loop=None, state=None) -> Progress:
        """The progress reporter of engine work for ``state`` (the host's by default)."""
        state = self._host.state if state is None else state
        return progress_reporter(self.status, self.queue, loop, self._unit(state))

    def _request(self, changes: dict, inline: bool = False) -> Request:
        """Apply ``changes``: the engine work yielded (off the kernel's loop for a change
        made in the browser), then the figure; the state changes only when it all succeeds."""
        host = self._host
        loop = None if inline else self.queue.loop()
        ok = False
        # off the loop the controls stay live (a change replaces the running work)
        with busy([] if loop is not None else host._compute_controls(), self.status, loop):
            try:
                changes = dict(changes)
                again = changes.pop(AGAIN, False)
                before = host.state
                new, display_only = next_state(
                    type(host).__name__, before, changes, self._display(before), self._normalize
                )
                if display_only and not again:  # nothing for the engine: re-render only
                    host._show_display(**self.display_of(new))
                else:
                    shown = self.display_of(before)
                    report = self.report(loop, new)
                    self.progress = report  # the request whose partial results may show
                    state, computed = yield partial(host._compute, new, report)
                    if self.closed:  # closed while it computed: nothing to show it in
                        return
                    if not inline and self.queue.overruled:  # a cell's set() showed a newer state
                        self._redo(changes)
                        return
                    # display settings changed while it computed are the newest
                    now = self.display_of(host.state)
                    newer = {k: v for k, v in now.items() if k in shown and v != shown[k]}
                    host._apply(replace(state, **newer), computed)
                    self.status.keep()
                    if inline:  # set later than any browser change asked so far
                        self.queue.overrule(changes)
                ok = True
            except Stopped:  # the stop button
                if not self.closed:
                    self._discard()
                    self.status.info(self._stopped)
                ok = True
            except BaseException:  # an error, or a newer request took its place
                if not self.closed:
                    self._discard()
                raise
            finally:
                self.progress = None
        if not self.closed:
            host._sync_controls(keep_text=not ok)  # a typed value stays beside its error

    def _redo(self, changes: dict) -> None:
        """A browser request computed on an older state while a cell's ``set()`` showed a
        newer one: rather than its stale result overwriting the set(), its changes run again
        on the newer state, less the settings the set() changed and their dependents (set
        later, they win); nothing runs again after the stop button."""
        self._discard()
        if not self.queue.stopped_by_user:
            self.queue.requeue(changes)

    def _on_change(self, name: str):
        def changed(change):
            if self.syncing:
                return
            host = self._host
            new = self._parse(name, change["new"])
            if self.queue.current(name, getattr(host.state, name)) == new:
                return
            if name in self._display(host.state):  # never waits for (or stops) a computation
                with errors_shown(self.status):
                    host._show_display(**{name: new})
            else:
                self.queue.submit({name: new})

        return changed


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
