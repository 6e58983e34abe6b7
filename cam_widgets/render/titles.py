"""Titles broken into lines that fit a width: shared by plotly figures and annotated PNGs."""

from __future__ import annotations

from collections.abc import Callable


def title_lines(title: object, fits: Callable[[str], bool]) -> list[str]:
    """``title`` as lines for which ``fits(line)`` holds (a word longer than that gets a line
    of its own). What made the map and which class stay on separate lines: "Grad-CAM @
    features.8:" / "tiger cat (282) p=0.088"; a number stays with the word before it."""
    text = str(title)
    if fits(text):
        return [text]
    head, sep, tail = text.partition(": ")
    parts = [head + sep.rstrip(), tail] if sep else [text]
    lines: list[str] = []
    for part in parts:
        start = len(lines)
        for word in _units(part):
            if len(lines) > start and fits(lines[-1] + " " + word):
                lines[-1] += " " + word
            else:
                lines.append(word)
    return lines


def _units(text: str) -> list[str]:
    """The words of ``text``, a number kept with the word before it ("noise 0.2):" is not
    broken between its name and its value)."""
    units: list[str] = []
    for word in text.split(" "):
        if units and word[:1].isdigit():
            units[-1] += " " + word
        else:
            units.append(word)
    return units
