"""Widget requests whose engine work runs off the kernel's event loop; the newest one wins.

In a Jupyter kernel a widget callback runs on the kernel's asyncio loop, and while it runs no
other widget message is read: slider steps and clicks pile up behind a slow computation, and
a stop button cannot be heard. A :class:`RequestQueue` runs the engine part of a request in a
worker thread and awaits it, so the loop keeps reading: requests that arrive meanwhile are
merged into one, the running one is told to stop at its next progress report, and every
widget update still happens on the loop's thread. Outside a kernel (plain Python, tests), or
from a widget's ``set()``, a request runs inline, start to end.

A request is a generator (see :func:`drive`): it does its widget and state work, yields the
engine work as a callable, gets the callable's result (or its exception) back, and goes on.
A request replaced by newer changes while it runs is closed by the queue (its ``finally``
blocks run; nothing after its yield does) and its changes run with the newer ones: a request
handles :class:`Stopped` only for the stop button.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator
from functools import partial

from ...errors import CamWidgetsError

#: A request: yields engine work (a callable, run off the loop), receives its result.
Request = Generator[Callable[[], object], object, None]


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (Voila, JupyterLab, Notebook)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Stopped(CamWidgetsError):
    """The work was stopped at a progress report: a newer request, or the stop button."""


def drive(request: Request) -> None:
    """Run ``request`` inline: each piece of engine work is called here, on this thread."""
    try:
        work = next(request)
        while True:
            try:
                outcome = work()
            except Exception as error:  # handed back: the request shows it and cleans up
                work = request.throw(error)
            else:
                work = request.send(outcome)
    except StopIteration:
        pass


class RequestQueue:
    """Merges the changes asked for while a request runs, and runs them as one after it.

    Args:
        make_request: ``make_request(changes)`` -> the :data:`Request` applying ``changes``.
        background: run requests off the running loop (None: when in a Jupyter kernel; not
            any loop: a test process may have one running for other purposes).
        implied: ``{setting: dependents}``: a newer change of ``setting`` voids the older,
            replaced changes of its dependents (a new photo: not the old photo's class).
    """

    def __init__(
        self,
        make_request: Callable[[dict], Request],
        background: bool | None = None,
        implied: dict | None = None,
    ) -> None:
        self._make_request = make_request
        self.background = in_kernel() if background is None else bool(background)
        self.implied = dict(implied or {})
        self.on_error: Callable[[Exception], None] = lambda error: None
        self.pending: dict = {}
        self.active: dict = {}  # the changes of the running request
        # settings a cell's set() changed while the running request computed (see overrule)
        self.overruled: set = set()
        self._task: asyncio.Task | None = None
        self._stop = threading.Event()
        self.stopped_by_user = False

    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop to run requests off: the running one (a kernel's widget callback runs
        on it) when in the background mode, else None."""
        if not self.background:
            return None
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def cell_loop(self) -> asyncio.AbstractEventLoop | None:
        """The kernel's loop, when called from a notebook cell in the background mode (work
        asked for now runs after the cell); None outside a Jupyter kernel, where a running
        loop is a test's or a library's own (Playwright's, in the browser tests)."""
        return self.loop() if in_kernel() else None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def submit(self, changes: dict) -> None:
        """Ask for ``changes``: off the loop when one runs here, else inline."""
        if self.loop() is None:
            drive(self._make_request(dict(changes)))
            return
        self.pending.update(changes)
        if self.running:
            self._stop.set()  # superseded: the running request stops at its next report
        else:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def stop(self) -> None:
        """The stop button: the running request stops at its next progress report, and
        the changes waiting behind it are dropped (the widget shows what it showed)."""
        if self.running:
            self.pending.clear()
            self.stopped_by_user = True
            self._stop.set()

    def check(self) -> None:
        """Called at each progress report of the engine work (in its thread)."""
        if self._stop.is_set():
            raise Stopped("stopped")

    def current(self, name: str, shown):
        """The value last asked for ``name``: waiting, running, else ``shown`` (a control
        set back to the shown value while another runs is a change too)."""
        for changes in (self.pending, self.active):
            if name in changes:
                return changes[name]
        return shown

    def requeue(self, changes: dict) -> None:
        """A superseded request's changes, beneath the newer ones (a widget whose state
        changes only when a request succeeds would lose them otherwise), less those the
        newer ones void (see ``implied``) and those a cell's set() overruled meanwhile."""
        void = self.with_dependents(self.pending) | self.overruled
        older = {k: v for k, v in changes.items() if k not in void}
        self.pending = {**older, **self.pending}

    def with_dependents(self, names) -> set:
        """``names`` and the settings a newer change of them voids (see ``implied``)."""
        return set(names) | {d for key in names for d in self.implied.get(key, ())}

    def overrule(self, names) -> None:
        """A ``set()`` from a cell changed ``names``: it came after every browser change
        asked so far, so those waiting for them (and for their dependents) are dropped, and
        the running request's are, when it is requeued or done (see :attr:`overruled`)."""
        names = self.with_dependents(names)
        self.pending = {k: v for k, v in self.pending.items() if k not in names}
        if self.running:
            self.overruled |= names

    @property
    def _superseded(self) -> bool:
        """Whether newer changes wait (a stopped request then leaves its state to them)."""
        return bool(self.pending) and not self.stopped_by_user

    async def _drive(self, changes: dict) -> None:
        """Run the request for ``changes`` on the running loop, its engine work in a worker
        thread; superseded, it is closed and its changes wait beneath the newer ones."""
        loop = asyncio.get_running_loop()
        request = self._make_request(changes)
        try:
            work = next(request)
            while True:
                try:
                    outcome = await loop.run_in_executor(None, work)
                except Stopped as error:
                    if self._superseded:
                        request.close()
                        self.requeue(changes)
                        return
                    work = request.throw(error)
                except Exception as error:
                    work = request.throw(error)
                else:
                    work = request.send(outcome)
        except StopIteration:
            pass

    async def _drain(self) -> None:
        try:
            while self.pending:
                changes, self.pending = self.pending, {}
                self.active = changes
                self.overruled = set()
                self._stop.clear()
                self.stopped_by_user = False
                try:
                    await self._drive(changes)
                except Exception as error:  # a request shows its own; never lost in the task
                    self.on_error(error)
        finally:
            self.active = {}
            self.overruled = set()
            self._stop.clear()  # a late stop click must not stop the next request
            self.stopped_by_user = False

    async def idle(self, timeout: float = 300.0) -> None:
        """Wait until every request asked for so far has run (for tests and scripts)."""
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)


class Progress:
    """The progress callback of engine work for ``status`` (a StatusLine), its counts in
    ``unit`` ("noisy samples"): direct when the work runs inline (``loop`` None), else
    handed to the loop's thread, where widgets are updated; the place where a stop (button,
    newer request) is heard. :meth:`show` hands a partial result's display the same way."""

    def __init__(self, status, queue: RequestQueue, loop, unit: str = "") -> None:
        self._status, self._queue, self._loop, self._unit = status, queue, loop, unit

    def __call__(self, done, total) -> None:
        if self._loop is None:
            self._status.report(done, total, unit=self._unit)
            return
        self._loop.call_soon_threadsafe(partial(self._status.report, done, total, self._unit))
        self._queue.check()

    def show(self, update) -> None:
        """Run ``update()`` (a widget update, e.g. panels filled so far) on the loop's thread."""
        if self._loop is None:
            update()
        else:
            self._loop.call_soon_threadsafe(update)


def progress_reporter(status, queue: RequestQueue, loop, unit: str = "") -> Progress:
    """See :class:`Progress`."""
    return Progress(status, queue, loop, unit)
