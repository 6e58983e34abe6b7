"""Helpers shared by the widget classes: display maps, error display, busy state, images."""

from __future__ import annotations

import html
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace

import ipywidgets as W
import numpy as np
import torch

from ..api import your_models
from ..errors import CamWidgetsError, InvalidParameterError, close_matches
from ..methods import get_method
from ..methods.smoothgrad import PRECISIONS, autocast_dtype
from ..models import list_models, weights_on_disk
from ..render import normalize_map, percentile_scale
from ..render.colormaps import resolve_colormap
from ..render.figures import map_side, prepare_map
from ..render.overlay import check_opacity
from ..result import PERCENTILE_NOTE, Explanation
from .images import image_choice


def parse_target(text: str):
    """A class typed in a text box: "282 tiger cat" -> 282, "tiger cat" -> "tiger cat",
    blank -> None (the engine resolves names and gives the errors)."""
    text = str(text).strip()
    if not text:
        return None
    head = text.split()[0]
    return int(head) if head.isdigit() else text


def display_map(result: Explanation, snapshot: int | None = None, panels: int = 1) -> np.ndarray:
    """What a panel of a figure of ``panels`` draws: the layer-resolution map normalised (the
    browser smooths it), or for pixel methods the heatmap at the figure's resolution
    (:func:`~cam_widgets.render.figures.map_side`), relative to its 99th percentile;
    ``snapshot``: SmoothGrad's running mean at that many samples instead."""
    if result.pixel_level:
        return result.display_heatmap(map_side(panels), snapshot)
    if snapshot is not None:
        return result.snapshots[snapshot]
    return normalize_map(result.raw, clip_negative=True)[0]


def snapshot_display(heatmap: np.ndarray, pixel_level: bool, panels: int = 1) -> np.ndarray:
    """What :func:`display_map` draws for a SmoothGrad running mean given as its heatmap
    (``Explainer.explain_classes``' ``on_snapshot``), before the Explanation exists."""
    if pixel_level:
        return percentile_scale(prepare_map(heatmap, map_side(panels)))
    return heatmap


#: A chosen class is flagged as one the model does not see when its probability is below
#: UNSEEN_PROBABILITY and it is not among the model's top UNSEEN_TOP classes for the image:
#: its map then answers "what here would make this a boxer", not "where is the boxer", and a
#: class was shown "boxer p=0.000" without a word (issue 19). The top-5 rule keeps a class
#: the model does consider (a cat photo's third cat breed at p=0.007) unflagged.
UNSEEN_PROBABILITY, UNSEEN_TOP = 0.01, 5


def top_classes(explainer, prepared) -> set[int]:
    """The ids of the model's top UNSEEN_TOP classes for a prepared image (its cached forward)."""
    return {p.class_id for p in explainer.predict(prepared, top=UNSEEN_TOP)}


def unseen_note(result: Explanation, top: set[int]) -> str:
    """ "boxer: p=0.000, the model does not see this class here" when ``result``'s class has a
    negligible probability (below UNSEEN_PROBABILITY, not in ``top``, the model's top
    classes), else "" (a target that is a function of the logits has no one class)."""
    if result.class_id < 0 or result.class_id in top or not result.probability < UNSEEN_PROBABILITY:
        return ""
    return f"{result.label}: p={result.probability:.3f}, the model does not see this class here"


def with_notes(text: str, notes: Sequence[str]) -> str:
    """``text``, then each distinct note (one per class), separated by "; "."""
    return "; ".join([text] + [n for n in dict.fromkeys(notes) if n])


def layer_resolution(explainer, layer: str) -> str:
    """ "14x14": the layer's own output size (a pixel-level map is the input's size instead:
    Guided Grad-CAM at features.6 is 224x224, its layer 14x14)."""
    return explainer.engine.check_layer(layer).resolution


def colorbar_note(results: Sequence[Explanation]) -> str:
    """The colour bar's title for panels of ``results`` drawn by :func:`display_map`."""
    return PERCENTILE_NOTE if any(r.pixel_level for r in results) else ""


def _lines(text: str, detail: str) -> str:
    return html.escape(text) + (f"<br>{html.escape(detail)}" if detail else "")


def nearest_pixel(x: float, y: float, image_shape, map_shape) -> tuple[int, int]:
    """(row, col) of a map of ``map_shape`` under pixel (x, y) of an image of ``image_shape``
    (pixel centres at integer coordinates, as Plotly's heatmaps place them)."""
    (h, w), (rows, cols) = image_shape[:2], map_shape[:2]
    row = min(max(int(np.floor((y + 0.5) * rows / h)), 0), rows - 1)
    col = min(max(int(np.floor((x + 0.5) * cols / w)), 0), cols - 1)
    return row, col


def model_choices() -> list[tuple[str, str]]:
    """Dropdown options of the zoo; a model whose weights are not on this machine says so
    (picking it downloads them when online, or explains how to provide them)."""
    return [
        (name if weights_on_disk(name) else f"{name} (weights not here)", name) for name in list_models()
    ] + [(name, name) for name in your_models()]


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
        self.line.value = (
            f"<span class='{kind}' style='display:inline-block;line-height:1.4;{style}'>{inner_html}</span>"
        )

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


def control_row(*controls: W.Widget) -> W.HBox:
    """A row of controls that wraps instead of overflowing narrow outputs (JupyterLab)."""
    return W.HBox(list(controls), layout=W.Layout(flex_flow="row wrap"))


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


def first_view(colormap: str, opacity) -> tuple[str, float]:
    """A widget's first colormap and opacity, checked: given to the constructor, since Voila
    drops figure edits made before the widget is drawn."""
    return resolve_colormap(colormap), check_opacity(opacity)


def precisions_for(device) -> list[tuple[str, str]]:
    """SmoothGrad precisions a device offers, as dropdown options (SmoothGrad's own rule)."""
    device = torch.device(getattr(device, "type", device))
    options = []
    for precision in PRECISIONS:
        try:
            mixed = autocast_dtype(precision, device) is not None
        except InvalidParameterError:  # fp16 off CUDA
            continue
        options.append((f"{precision} (mixed)" if mixed else precision, precision))
    return options
