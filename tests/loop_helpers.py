"""Run a widget's browser-made changes as a kernel would: on an asyncio loop (of a thread
of its own: this process's main thread may already run Playwright's loop)."""

from __future__ import annotations

import asyncio
import threading
import time


def run_loop(scenario) -> None:
    """``asyncio.run(scenario())`` in a thread of its own: this process's main thread may
    already run a loop (Playwright's, after the browser tests)."""
    errors = []

    def target():
        try:
            asyncio.run(scenario())
        except BaseException as error:  # noqa: BLE001 - raised again below
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(600)  # bounded, and generous: a loaded machine (Score-CAM on a fresh model)
    assert not thread.is_alive(), "the scenario did not end"
    if errors:
        raise errors[0]


async def until(condition, timeout: float = 300.0) -> None:
    """Wait (bounded) until ``condition()`` holds, letting the loop run meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def until_working(widget) -> None:
    """Wait until ``widget`` shows long work (its progress bar and stop button)."""
    await until(lambda: widget.status.stop.layout.display is None)


async def stop_when_working(widget) -> None:
    """Press ``widget``'s stop button once long work shows, and wait for every request."""
    await until_working(widget)
    widget.status.stop.click()
    await widget._requests.queue.idle()
