"""Closing a widget closes everything it built.

ipywidgets' ``close()`` closes one model only: a VBox's children, its Layout, a figure's
panels and the controls a widget keeps out of view would stay registered in the kernel (and
in the browser) for as long as the kernel lives. A class re-runs its cells many times, so
a widget's ``close()`` closes every widget it holds, then forgets its results, and a
widget built by a cell that runs again is closed (:func:`replace_in_cell`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import ipywidgets as W

#: Attributes of a closed widget set to None: what holds images, maps and the engine.
DROPPED = (
    "result",
    "results",
    "explainer",
    "_prepared_image",
    "_map",
    "panels",
    "view",
    "_controls",
    "sources",
    "titles",
    "_figure",
    "plain",
)


def owned_widgets(owner: object) -> list[W.Widget]:
    """Every widget reachable from ``owner`` (its synced traits, and its attributes and the
    package's helper objects under them), ``owner`` itself excluded."""
    seen: set[int] = {id(owner)}
    found: list[W.Widget] = []
    for widget in _walk(_attributes(owner), seen):
        found.append(widget)
    return found


def close_owned(owner: W.Widget) -> None:
    """Close every widget ``owner`` built (not ``owner`` itself), then drop its results."""
    for widget in owned_widgets(owner):
        widget.close()
        _stop_following_files(widget)
    for name in DROPPED:
        if name in vars(owner):
            setattr(owner, name, None)


def close_widget(widget: W.Widget) -> None:
    """What a widget's ``close()`` does before ipywidgets' own: its running work stopped (its
    request model, absent when its ``__init__`` raised early), every widget it built closed,
    its results dropped."""
    requests = vars(widget).get("_requests")
    if requests is not None:
        requests.close()
    close_owned(widget)


def _stop_following_files(widget: W.Widget) -> None:
    """anywidget ties each instance to its class's script file (a hot-reload hook for
    development) by a callback holding the instance: a closed plotly FigureWidget, with its
    images and maps, would never be freed."""
    for klass in type(widget).__mro__:
        for key in ("_esm", "_css"):
            signal = getattr(vars(klass).get(key), "changed", None)
            for slot in list(getattr(signal, "_slots", ())):
                callback = slot.dereference() if hasattr(slot, "dereference") else None
                cells = getattr(callback, "__closure__", None) or ()
                if any(cell.cell_contents is widget for cell in cells):
                    signal.disconnect(callback)


def _attributes(value: object) -> list:
    """What to look into: a widget's synced traits, a package object's attributes."""
    if isinstance(value, W.Widget):
        return [
            getattr(value, name, None) for name in value.keys if name not in ("_model_id", "_view_count")
        ] + list(vars(value).values())
    if type(value).__module__.startswith("cam_widgets.widgets") and hasattr(value, "__dict__"):
        return list(vars(value).values())
    return []


def _walk(values, seen: set[int]) -> Iterator[W.Widget]:
    for value in values:
        if id(value) in seen or isinstance(value, (str, bytes, int, float)) or value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            seen.add(id(value))
            yield from _walk(list(value), seen)
        elif isinstance(value, dict):
            seen.add(id(value))
            yield from _walk(list(value.values()), seen)
        elif isinstance(value, W.Widget) or type(value).__module__.startswith("cam_widgets.widgets"):
            seen.add(id(value))
            if isinstance(value, W.Widget):
                yield value
            yield from _walk(_attributes(value), seen)


#: cell id -> (the run of that cell, weak references to the widgets it built)
_BY_CELL: dict[str, tuple[object, list]] = {}


def current_cell() -> tuple[str, object] | None:
    """(the id of the notebook cell running, which run of it) in a kernel whose front end
    sends cell ids (JupyterLab, Notebook 7), else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell")
    except TypeError:  # older ipykernel: no channel argument
        parent = kernel.get_parent()
    cell = (parent or {}).get("metadata", {}).get("cellId")
    run = (parent or {}).get("header", {}).get("msg_id")
    return None if not cell else (str(cell), run)


def replace_in_cell(widget: W.Widget, cell: tuple[str, object] | None = None) -> None:
    """Remember ``widget`` as built by the running cell; when that cell runs again, the
    widgets of its previous run (whose output the front end has just cleared) are closed:
    a cell re-run fifty times holds one widget, not fifty."""
    cell = current_cell() if cell is None else cell
    if cell is None:
        return
    cell_id, run = cell
    previous_run, built = _BY_CELL.get(cell_id, (None, []))
    if previous_run != run:
        for ref in built:
            old = ref()
            if old is not None and old is not widget:
                old.close()
        built = []
    built.append(weakref.ref(widget))
    _BY_CELL[cell_id] = (run, built)
