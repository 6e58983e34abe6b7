"""One pass at a time on a model: the engine's lock, granted in arrival order.

Why a lock, and not per-thread capture state: every hook the engine registers, the
eval-mode switch around a pass and the forward wrappers live on the *model*, which is
shared; a second thread's forward would fire the first one's hooks and flip its train/eval
state mid-pass. On the machines the package serves (a Binder session has about one core)
two passes at once are no faster than one after the other, so the engine serialises its
passes and keeps every piece of state it caches consistent under that one lock.

Why fair: a long job (SmoothGrad's batches, a layer sweep) releases the lock between its
steps; a plain lock lets the releasing thread take it straight back, so a widget's class
click could wait for the whole job. Granting in arrival order bounds that wait by one step.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Literal

from torch import nn


class FairLock:
    """A re-entrant lock whose waiters are served first come, first served."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._depth += 1
                return True
            self._waiting.append(me)
            try:
                while self._owner is not None or self._waiting[0] != me:
                    self._condition.wait()
            except BaseException:  # an interrupted wait (KeyboardInterrupt) leaves the queue
                self._waiting.remove(me)
                self._condition.notify_all()
                raise
            self._waiting.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._condition:
            if self._owner != threading.get_ident():
                raise RuntimeError("the engine lock is released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._condition.notify_all()

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> Literal[False]:
        self.release()
        return False


_LOCKS: weakref.WeakKeyDictionary[nn.Module, FairLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def lock_for(model: nn.Module) -> FairLock:
    """The one lock of ``model``: two engines built on the same module (two Explainers of a
    user's model) share it, since the hooks and the train/eval switch live on the module."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = FairLock()
        return lock
