"""Typed errors raised by cam_widgets.

Every error message says what was wrong, what was expected, what was received and,
where it helps, a hint (for example close matches for a mistyped layer name).
All errors derive from :class:`CamWidgetsError`, so callers (the CLI, the widgets)
can show them as one line without a traceback.

A message about a bad value (an argument, a file's content, a CSV field, an environment
variable) is written in one way only, by :func:`expected`, as one line::

    Invalid <name>: expected <what>, received <describe(value)>. Hint: <hint>

for example ``raise InvalidParameterError(expected("timeout", "a positive number of seconds",
timeout, "pass e.g. timeout=10.0"))``. ``problem=`` replaces "Invalid <name>" where the
headline says more ("Image too large"); :class:`Received` passes received text already written
(a size, a count, a quoted path) in place of ``describe(value)``. Messages about something
that is not a bad value (a server error, a failed rendezvous) stay prose, still one line
that says what happened and what to do. tests/project/test_error_style.py keeps the older
styles ("'x' must be ... (got ...)", "x must be ..., got ...") from coming back.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class CamWidgetsError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidImageError(CamWidgetsError, ValueError):
    """The image could not be read or is not usable (wrong type, truncated, NaN...)."""


class UnknownModelError(CamWidgetsError, KeyError):
    """A model name that the zoo does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(CamWidgetsError, FileNotFoundError):
    """Pretrained weights are neither cached locally nor downloadable."""


class UnknownLayerError(CamWidgetsError, KeyError):
    """A layer name that does not exist in the model, or that has no spatial output."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownClassError(CamWidgetsError, KeyError):
    """A class id out of range, or a class name that matches no label."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownMethodError(CamWidgetsError, KeyError):
    """A method name that the registry does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MethodNotApplicableError(CamWidgetsError, ValueError):
    """The method cannot run on this model (no GAP+linear head, no ReLU-like module...)."""


class InvalidParameterError(CamWidgetsError, ValueError):
    """A method or call parameter has the wrong type or value."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return a hint such as " Did you mean 'features.28', 'features.29'?" or ""."""
    matches = difflib.get_close_matches(str(word), list(candidates), n=n, cutoff=0.5)
    if not matches:
        return ""
    return " Did you mean " + ", ".join(repr(m) for m in matches) + "?"


def describe(value: object) -> str:
    """attrs-style description of a received value: "<value> that is a <type>"."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:  # arrays, tensors: their repr spans lines
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = " ".join(repr(value).split())  # one line, always
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} that is a {type(value).__name__}"


class Received(str):
    """Received text already written for a message (a size, a count, a quoted path): used
    by :func:`expected` as it is, in place of ``describe(value)``."""


def expected(name: str, what: str, received: object, hint: str = "", *, problem: str = "") -> str:
    """The one line about a bad value:
    "Invalid <name>: expected <what>, received <describe(received)>. Hint: <hint>".

    ``problem`` replaces "Invalid <name>" (e.g. "Image too large"); ``received`` goes through
    :func:`describe` unless it is :class:`Received` text; a hint from :func:`close_matches`
    (" Did you mean ...?") is kept as it is, any other hint follows "Hint: "."""
    got = str(received) if isinstance(received, Received) else describe(received)
    text = f"{problem or 'Invalid ' + name}: expected {what}, received {got}."
    hint = hint.strip()
    if hint:
        text += " " + (hint if hint.startswith("Did you mean") else "Hint: " + hint)
        text += "" if hint.endswith((".", "?", "!")) else "."
    return " ".join(text.splitlines())


_WORKER = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")
_QUALIFIED = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*: ")


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line. An error raised in a DataLoader worker comes back
    from torch as "Caught X in DataLoader worker process N." plus the worker's whole
    traceback: its last line holds the original message, which is what is kept."""
    text = str(error)
    if _WORKER.match(text):
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        text = _QUALIFIED.sub("", last, count=1)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
