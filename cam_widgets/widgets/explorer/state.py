"""What an :class:`~cam_widgets.widgets.explorer.Explorer` is set to, without any widget.

:class:`ExplorerState` and which of its settings need the engine, then the small decisions the
widget makes from it: the photo of the chosen image (:func:`photo_of`), the engine parameters
(:func:`explain_params`), the probe and status texts, the export file name and the PNG of the
static view.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...methods import get_method
from ...methods.smoothgrad import PROGRESS_UNIT as SMOOTHGRAD_UNIT
from ...models import DEFAULT_MODEL
from ...render import to_png_bytes
from ...result import Explanation
from ..shared.images import load_choice
from ..shared.maps import nearest_pixel

#: Settings whose change needs the engine; the others (DISPLAY) only re-render.
COMPUTE = ("image", "model", "layer", "target", "method", "smooth", "noise", "samples", "precision")
#: Settings of the view: a change re-renders the map on show, with no engine call.
DISPLAY = ("opacity", "colormap", "view")
#: The controls that write those settings (the class has its own search box).
COMPUTE_CONTROLS = tuple(name for name in COMPUTE if name != "target")
#: read only while SmoothGrad is on: changing them with it off computes nothing
SMOOTHGRAD_ONLY = ("noise", "samples", "precision")
#: How many predictions the clickable bar chart shows.
TOP_PREDICTIONS = 5
#: The map's views: the map over the photo, the map alone (its grid visible), and the photo
#: beside the map over it (as torch-cam's demo and Captum Insights show them).
SIDE_BY_SIDE = "side by side"
VIEWS = ("overlay", "raw", SIDE_BY_SIDE)


@dataclass(frozen=True)
class ExplorerState:
    """Everything the Explorer shows: replaced whole when a request succeeds (see
    :mod:`..shared.state_requests`), read by the controls, the view and the engine work."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    layer: str | None = None
    target: int | None = None
    method: str = "gradcam"
    smooth: bool = False
    noise: float = 0.2
    samples: int = 20
    precision: str = "fp32"
    opacity: float = 0.5
    colormap: str = "viridis"
    view: str = "overlay"  # one of VIEWS


def photo_of(state: ExplorerState) -> np.ndarray:
    """RGB array of the chosen image: a bundled photo, a scene or one the user added."""
    return load_choice(state.image)


def explain_params(state: ExplorerState, report: Callable[[int, int], None]) -> dict:
    """Keyword arguments of ``Explainer.explain`` beyond method, class and layer.

    ``report`` gets the progress of the slow cases only: SmoothGrad's noisy batches, and
    methods that run extra forward passes (Score-CAM, Integrated Gradients).
    """
    if state.smooth:
        return dict(noise=state.noise, samples=state.samples, precision=state.precision, progress=report)
    if "extra_forwards" in get_method(state.method).needs:
        return dict(progress=report)
    return {}


def progress_unit(state: ExplorerState) -> str:
    """What the progress of ``state``'s computation counts."""
    return SMOOTHGRAD_UNIT if state.smooth else get_method(state.method).progress_unit


def probe_message(values: np.ndarray, x: float, y: float, image_shape=None, note: str = "") -> str:
    """The status text for a click at pixel (x, y) of an image of ``image_shape`` (default:
    the map's own): the value of the map's cell there, and what its scale means (``note``).
    A map coarser than the image says which of its cells that is: Plotly reports a click on a
    heatmap at the cell's centre, which is where the marker goes, not at the pixel clicked."""
    shape = tuple(values.shape if image_shape is None else image_shape)[:2]
    row, col = nearest_pixel(x, y, shape, values.shape)
    pixel_row, pixel_col = nearest_pixel(x, y, shape, shape)
    where = f"pixel ({pixel_col}, {pixel_row})"
    if values.shape != shape:
        rows, cols = values.shape
        where = f"{rows}x{cols} map, cell (row {row}, col {col}) around {where}"
    return f"{where}: value {values[row, col]:.3f}" + (f" ({note})" if note else "")


def result_message(result: Explanation) -> str:
    """The status text of a result that is not flagged."""
    reused = ", forward pass reused" if result.forward_reused else ""  # why a switch is fast
    return f"{result.title}  ({result.seconds * 1000:.0f} ms on {result.device}{reused})"


#: Longest export file name (no suffix): it shows whole in a download link and a file browser.
MAX_STEM = 80
#: Longest part of it taken from the image's, the model's or the layer's name.
MAX_PART = 24
#: What an image's name may end with that is no part of an export's name.
IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|gif|bmp|webp|tiff?)$", re.IGNORECASE)


def _name_part(text: str) -> str:
    """``text`` as a file name part: letters, digits and ``._+-`` (the rest "_"), no dots or
    underscores at its ends, at most MAX_PART characters."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._")[:MAX_PART].strip("._")


def image_part(image: str) -> str:
    """The image's name in an export's name: the menu's choice without its "yours:" or
    "scene:" prefix, its file's extension or a "(2)" (the second image of that name: "-2")."""
    name = image.split(":", 1)[1] if image.startswith(("yours:", "scene:")) else image
    name, again = re.subn(r"\s*\((\d+)\)$", "", name.strip())
    number = image.strip().rsplit("(", 1)[1].rstrip(")") if again else ""
    name = IMAGE_SUFFIX.sub("", name.strip()) or "image"
    return _name_part(name) + (f"-{number}" if number else "")


def export_stem(image: str, model: str, result: Explanation) -> str:
    """File name (no suffix) of an export of ``result`` on ``image`` by ``model``: image (its
    file's extension dropped: "cat_dog.jpg" gives "cat_dog"), model, method, layer (for
    methods that read one), class and SmoothGrad's settings when on; letters, digits and
    ``._+-`` only (safe on every OS), at most MAX_STEM characters (the longest of the image's,
    model's and layer's names cut first: the class and the settings stay)."""
    names = [image_part(image), _name_part(model), _name_part(result.layer or "")]
    tail = [str(result.class_id)]
    p = result.params
    if "samples" in p:  # SmoothGrad
        tail.append(
            f"smoothgrad-n{p['samples']}-noise{p['noise']:g}"
            + (f"-{p['precision']}" if "precision" in p else "")
        )

    def joined() -> str:
        parts = names[:2] + [result.method] + names[2:] + tail
        text = re.sub(r"[^A-Za-z0-9._+-]+", "_", "_".join(part for part in parts if part))
        return text.strip("._")

    # over MAX_STEM: the names share what the method, class and settings leave, the shorter
    # ones whole, the others cut to an equal share (at least 8 characters each)
    over = len(joined()) - MAX_STEM
    if over > 0:
        room = sum(len(n) for n in names) - over
        present = sorted((k for k in range(len(names)) if names[k]), key=lambda k: len(names[k]))
        for i, k in enumerate(present):
            share = max(8, room // (len(present) - i))
            names[k] = names[k][:share].rstrip("._")
            room -= len(names[k])
    return joined()[:MAX_STEM].rstrip("._")


def static_png(result: Explanation, state: ExplorerState) -> bytes:
    """The PNG of the static view (no Plotly): the overlay, or the bare map for "raw"."""
    alpha = 1.0 if state.view == "raw" else state.opacity
    return to_png_bytes(result.overlay(alpha, state.colormap))
