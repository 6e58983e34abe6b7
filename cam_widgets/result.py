"""The result of one explanation: raw map, display map in [0, 1], and what produced it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidParameterError, expected
from .render import MapStatus, apply_colormap, overlay, percentile_scale, save_png
from .render.overlay import fade_for

if TYPE_CHECKING:  # (methods import result's neighbours; the type only, for readers)
    from .methods.smoothgrad import Smoothing

#: Colour bar title of a pixel-level map drawn relative to its 99th percentile.
PERCENTILE_NOTE = "1 = 99th pct"


@dataclass(frozen=True)
class Explanation:
    """One map for one (image, model, method, layer, class).

    Attributes:
        heatmap: float32 (H, W) in [0, 1] at the model input size; zeros when ``status.flat``.
        raw: float32 signed map at layer resolution (CAM family) or input resolution (pixel
            family), before the final ReLU and normalisation.
        attribution: float32 (3, H, W) per-channel attribution (pixel family) or None.
        status: flat / all-zero / negative-only flags with a one-line message.
        snapshots: SmoothGrad running means at chosen sample counts (count -> heatmap).
        image: the RGB uint8 (H, W, 3) image the model saw (None for a raw tensor input).
        smoothing: SmoothGrad's settings when the map is a SmoothGrad mean (None otherwise);
            ``params`` repeats them (noise, samples, seed, precision) as it always has.
        forward_reused: whether the image's forward pass came from the engine's cache
            (then ``seconds`` is the backward and the method alone).
    """

    heatmap: np.ndarray
    raw: np.ndarray
    method: str
    layer: str | None
    class_id: int  # -1 for a function target (see ``label``)
    label: str
    probability: float
    status: MapStatus
    params: dict = field(default_factory=dict)
    device: str = "cpu"
    seconds: float = 0.0
    forward_reused: bool = False
    attribution: np.ndarray | None = None
    snapshots: dict = field(default_factory=dict)
    image: np.ndarray | None = None
    smoothing: Smoothing | None = None

    def __repr__(self) -> str:  # one line: a notebook shows the picture (_repr_png_)
        flag = "" if self.status.ok else f" [{self.status.message}]"
        return f"<Explanation {self.title}{flag}>"

    def _repr_png_(self) -> bytes:
        """What a notebook shows for an Explanation left at the end of a cell: the annotated
        overlay (title, status, colour bar)."""
        from .render.overlay import to_png_bytes

        return to_png_bytes(self.annotated())

    def show(self) -> None:
        """Display the annotated overlay from anywhere in a notebook cell."""
        from IPython.display import display

        display(self)

    @property
    def flagged(self) -> bool:
        """True when the map is empty, flat or negative-only (see ``status.message``)."""
        return not self.status.ok

    @property
    def pixel_level(self) -> bool:
        """True for the input-gradient family (vanilla, Guided Backprop, IG...)."""
        from .methods.registry import get_method

        return get_method(self.method).family == "pixel"

    def display_heatmap(self, max_side: int | None = None, snapshot: int | None = None) -> np.ndarray:
        """The heatmap (or SmoothGrad's running mean at ``snapshot`` samples) as drawn,
        area-downsampled to at most ``max_side`` a side (figures) or not (None: PNG overlays).
        Pixel-level maps are drawn relative to the 99th percentile of what is drawn
        (:func:`~cam_widgets.render.percentile_scale`): gradients are spiky and look empty on
        a [0, max] scale. ``heatmap`` itself stays min-max normalised."""
        m = self.heatmap if snapshot is None else self.snapshots[snapshot]
        if max_side is not None:
            from .render.figures import prepare_map  # plotly: only when a figure is made

            m = prepare_map(m, max_side)
        return percentile_scale(m) if self.pixel_level else m

    def overlay(self, alpha: float = 0.5, colormap: str = "viridis") -> np.ndarray:
        """RGB uint8 overlay of the map as drawn on the image (or the coloured map alone), as
        the Explorer draws it: transparent where the map is low (pixel maps in proportion,
        CAM maps below half their range), so the photo stays the photo."""
        if self.image is None:
            return apply_colormap(self.display_heatmap(), colormap)
        return overlay(
            self.image,
            self.display_heatmap(),
            alpha=alpha,
            colormap=colormap,
            fade=fade_for(self.pixel_level),
        )

    def annotated(self, alpha: float = 0.5, colormap: str = "viridis") -> np.ndarray:
        """The overlay with the title above it (and what the map's status says, e.g. an empty
        map) and the colour bar beside it: RGB uint8, a picture that says what it shows."""
        from .render.annotate import annotated

        title = self.title if self.status.ok else f"{self.title}: {self.status.message}"
        return annotated(
            self.overlay(alpha, colormap), title, colormap, PERCENTILE_NOTE if self.pixel_level else ""
        )

    def save(
        self, path: str | os.PathLike, alpha: float = 0.5, colormap: str = "viridis", annotated: bool = False
    ) -> Path:
        """Write ``.png`` (the overlay; with ``annotated`` its title and colour bar too, see
        :meth:`annotated`), ``.npy`` (the heatmap, float32) or ``.html`` (Plotly view)."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".png":
            picture = self.annotated(alpha, colormap) if annotated else self.overlay(alpha, colormap)
            return save_png(target, picture)
        if suffix == ".npy":
            from .data.files import atomic_write

            target.parent.mkdir(parents=True, exist_ok=True)
            # np.save(path) would add ".npy" to "x.NPY"; renamed over the target when complete
            with atomic_write(target, "wb") as file:
                np.save(file, self.heatmap.astype(np.float32))
            return target
        if suffix == ".html":
            from .render import heatmap_figure, standalone_html
            from .render.figures import MAX_MAP_SIDE

            photo = self.image if self.image is not None else apply_colormap(self.heatmap, "gray")
            fig = heatmap_figure(
                photo,
                [self.display_heatmap(MAX_MAP_SIDE)],
                [self.title],
                opacity=alpha,
                colorscale=colormap,
                zmin=0.0,
                zmax=1.0,
            )
            if self.pixel_level:
                fig.layout.coloraxis.colorbar.title.text = PERCENTILE_NOTE
            return standalone_html(fig, target)
        raise InvalidParameterError(
            expected("output path", "a path ending in .png, .npy or .html", str(path))
        )

    @property
    def title(self) -> str:
        """E.g. "Grad-CAM @ features.8: tiger cat (282) p=0.088", with SmoothGrad's settings."""
        from .methods.registry import get_method  # the registry's display names

        where = f" @ {self.layer}" if self.layer else ""
        smooth = "" if self.smoothing is None else f" + {self.smoothing.label}"
        name = get_method(self.method).title or self.method
        if self.class_id < 0:  # a function target: no one class, no probability
            return f"{name}{where}{smooth}: {self.label}"
        return f"{name}{where}{smooth}: {self.label} ({self.class_id}) p={self.probability:.3f}"

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no arrays)."""
        return {
            "method": self.method,
            "layer": self.layer,
            "class_id": self.class_id,
            "label": self.label,
            "probability": None if self.probability != self.probability else round(self.probability, 6),
            "raw_shape": list(self.raw.shape),
            "device": self.device,
            "seconds": round(self.seconds, 4),
            "flagged": self.flagged,
            "message": self.status.message,
            "params": self.params,
        }
