"""The controls of an :class:`~cam_widgets.widgets.explorer.Explorer`, laid out, and its top-5
prediction rows; building and filling widgets only (the Explorer wires them to its state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as W

from ...methods import list_methods
from ...render import list_colormaps
from ..shared.controls import control_row, model_choices
from ..shared.download import Download
from ..shared.images import image_choices
from .state import TOP_PREDICTIONS, VIEWS, ExplorerState

#: The export menu's "PNG overlay" (the bare picture; "PNG figure" adds title and colour bar).
OVERLAY_SUFFIX = "_overlay.png"


def build_controls(s: ExplorerState) -> dict:
    """Every control by name, showing ``s``; the layer, precision and class options depend on
    the model and are filled in when it is loaded."""
    return {
        "image": W.Dropdown(options=image_choices(), value=s.image, description="image"),
        "upload": W.FileUpload(accept="image/*", multiple=False, description="upload"),
        "url": W.Text(placeholder="https://... (when online)", description="URL", continuous_update=False),
        "model": W.Dropdown(options=model_choices(), value=s.model, description="model"),
        "layer": W.Dropdown(description="layer"),
        "all_layers": W.Checkbox(
            value=False,
            description="all layers",
            indent=False,
            layout=W.Layout(width="90px", margin="0 0 0 6px"),
        ),
        "method": W.Dropdown(
            options=[(m.title, m.name) for m in list_methods()], value=s.method, description="method"
        ),
        "search": W.Combobox(
            placeholder="a class: boxer, 282...; or A vs B",
            description="class",
            ensure_option=False,
            continuous_update=False,
        ),
        "smooth": W.Checkbox(
            value=s.smooth,
            description="SmoothGrad",
            indent=False,
            layout=W.Layout(width="110px", margin="0 0 0 16px"),
        ),
        "noise": W.FloatSlider(
            value=s.noise,
            min=0.0,
            max=0.5,
            step=0.05,
            description="noise",
            continuous_update=False,
            layout=W.Layout(width="250px"),
        ),
        "samples": W.IntSlider(
            value=s.samples,
            min=1,
            max=100,
            description="samples",
            continuous_update=False,
            layout=W.Layout(width="250px"),
        ),
        # SmoothGrad's noisy batches in mixed precision (fp16 on a GPU: ~1.5x faster,
        # maps at r >= 0.998 of fp32; see benchmarks/RESULTS.md)
        "precision": W.Dropdown(
            options=[("fp32", "fp32")], value="fp32", description="precision", layout=W.Layout(width="240px")
        ),  # "bf16 (mixed)" fits
        "opacity": W.FloatSlider(
            value=s.opacity,
            min=0,
            max=1,
            step=0.05,
            description="opacity",
            continuous_update=True,
            layout=W.Layout(width="250px"),
        ),
        "colormap": W.Dropdown(
            options=list_colormaps(), value=s.colormap, description="colormap", layout=W.Layout(width="210px")
        ),
        "view": W.ToggleButtons(
            options=list(VIEWS),
            value=s.view,
            tooltips=[
                "the map over the photo",
                "the map alone, its cells visible",
                "the photo beside the map over it",
            ],
            style={"button_width": "auto"},
        ),
        "export": W.Dropdown(
            options=[
                ("export...", ""),
                ("PNG figure", ".png"),
                ("PNG overlay", OVERLAY_SUFFIX),
                (".npy", ".npy"),
                ("HTML", ".html"),
            ],
            value="",
            description="",
            tooltip="choose a format: the view is downloaded at once",
            layout=W.Layout(width="150px"),
        ),
        "download": Download(layout=W.Layout(flex="1 1 auto", min_width="0")),
    }


#: The narrowest the column beside the map gets (px): a prediction's name, a short bar, its value.
SIDE_MIN_WIDTH = 360


def explorer_layout(c: dict, predictions: W.Widget, view: W.Widget, status: W.Widget) -> list[W.Widget]:
    """Three rows saying what to explain (image; model, layer, method; class and SmoothGrad),
    then the map beside the predictions, the display settings, the status line and the
    exports (a format and its download link): the map,
    its progress and its errors are in the first screen even on a 1280x720 laptop, and stay
    beside the map in JupyterLab's default layout (file browser open: ~850 px of output),
    where the side column narrows to SIDE_MIN_WIDTH before it wraps under the map."""
    # exports in a row of their own: their link never takes the status line's place
    exports = W.HBox(
        [c["export"], c["download"]], layout=W.Layout(flex_flow="row wrap", align_items="center")
    )
    side = W.VBox(
        [predictions, control_row(c["opacity"], c["colormap"]), c["view"], status, exports],
        layout=W.Layout(
            margin="36px 0 0 12px",
            max_width="520px",
            flex=f"1 1 {SIDE_MIN_WIDTH}px",
            min_width=f"{SIDE_MIN_WIDTH}px",
        ),
    )
    return [
        control_row(c["image"], c["upload"], c["url"]),
        control_row(c["model"], c["layer"], c["all_layers"], c["method"]),
        control_row(c["search"], c["smooth"], c["noise"], c["samples"], c["precision"]),
        W.HBox([view, side], layout=W.Layout(flex_flow="row wrap", align_items="flex-start")),
    ]


def prediction_rows(on_pick: Callable[[int], None]) -> W.VBox:
    """The top predictions' rows, each a button (its click picks the class), a probability
    bar and its value; built once, then updated in place (no widget churn per computation)."""
    rows = []
    for _ in range(TOP_PREDICTIONS):
        button = W.Button(layout=W.Layout(width="200px", flex="0 0 auto"))
        button.on_click(lambda b: on_pick(b.class_id))
        bar = W.FloatProgress(min=0, max=1, layout=W.Layout(width="auto", flex="1 1 60px", max_width="200px"))
        rows.append(
            W.HBox([button, bar, W.Label(layout=W.Layout(flex="0 0 auto"))], layout=W.Layout(display="none"))
        )  # shown once filled
    return W.VBox(rows)


def show_predictions(box: W.Box, predictions: Sequence, selected: int) -> None:
    """Show the top ``predictions`` in the rows of :func:`prediction_rows`, ``selected``
    highlighted; rows left over (a model with fewer classes) stay hidden."""
    for n, row in enumerate(box.children):
        row.layout.display = None if n < len(predictions) else "none"
    for row, p in zip(box.children, predictions):
        button, bar, label = row.children
        button.class_id = p.class_id
        button.description = f"{p.class_id} {p.label}"[:28]
        button.tooltip = f"{p.label} ({p.class_id}): {p.probability:.3f}"
        bar.value, label.value = p.probability, f"{p.probability:.3f}"
    highlight(box, selected)


def highlight(box: W.Box, selected) -> None:
    """Highlight the row of class ``selected`` in the rows of :func:`prediction_rows` (none
    when it is not among them)."""
    for row in box.children:
        button = row.children[0]
        button.button_style = "info" if getattr(button, "class_id", None) == selected else ""
