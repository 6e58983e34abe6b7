"""DilationStudy: a model and its dilated twin (article 000): predictions, resolution, cost."""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass

import ipywidgets as W
import torch

from ...api import get_explainer, widget_model
from ...errors import InvalidParameterError
from ...explainer import Explainer
from ...models import DEFAULT_MODEL, ModelSpec
from ...models.dilate import dilate
from ...result import Explanation
from ..shared.controls import control_row, model_choices
from ..shared.images import load_choice
from ..shared.layer_menu import layer_menu, layer_options
from ..shared.maps import colorbar_note, display_map, overlay_fades
from .base import Study, StudyView


@dataclass(frozen=True)
class DilationState:
    image: str = "chelsea"
    base: str = DEFAULT_MODEL  # offline: VGG16's weights may not be here (see DilationStudy)
    target: object = None
    layer: str | None = None
    opacity: float = 0.5
    colormap: str = "viridis"


BASES = (DEFAULT_MODEL, "vgg16", "resnet50")


class DilationStudy(Study):
    """A model and its dilated twin: top-5 of both, Grad-CAM map resolution, forward cost.

    The default base is the offline model (EfficientNet-Lite0, whose weights come with the
    package), so ``DilationStudy()`` works with no network. ``base="vgg16"`` (the article's,
    when its weights are here) uses the zoo's ``dilated_vgg16``; other models are dilated with
    :func:`~cam_widgets.models.dilate.dilate` after the layer whose resolution is 4x that of
    ``layer`` (the twin's map is 4x finer: for EfficientNet-Lite0's ``features.8``, dilated
    after ``features.3``, 28x28 instead of 7x7). ``.results`` holds both Explanations,
    ``.timings`` the forward cost of each in ms.
    """

    COMPUTE_CONTROLS = ("image", "base", "target", "layer")
    IMPLIED = {"base": ("layer",)}
    PROGRESS_UNIT = "steps"

    def __init__(
        self,
        image: str = "chelsea",
        base: str = DEFAULT_MODEL,
        target=None,
        layer: str | None = None,
        background: bool | None = None,
    ) -> None:
        self.results: list[Explanation] = []
        self.timings: tuple[float, float] = (math.nan, math.nan)
        self.table = W.HTML(value="")
        self._twins: dict = {}
        self._yours: list = []  # your model's Explainer, held while this widget lives
        super().__init__(
            DilationState(image, widget_model(base, self._yours), target, layer),
            placeholders=2,
            background=background,
        )

    def _build_controls(self) -> dict:
        s, c = self.state, self._common_controls(models=False)
        labels = dict((name, label) for label, name in model_choices())  # "(weights not here)"
        c["base"] = W.Dropdown(
            options=[(labels.get(name, name), name) for name in dict.fromkeys((s.base,) + BASES)],
            value=s.base,
            description="model",
        )
        c["layer"] = W.Dropdown(options=[("default", "")], value="", description="layer")
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox(
            [
                control_row(c["image"], c["base"], c["layer"], c["target"]),
                control_row(c["opacity"], c["colormap"]),
            ]
        )

    def _extra(self) -> list:
        return [self.table]

    def _normalize(self, changes: dict) -> dict:
        if "base" in changes and "layer" not in changes:
            changes["layer"] = None
        return changes

    def _compute(self, s: DilationState, report):
        report(0, 4)
        base, prepared, target = self._prepare(s, s.base)
        self.engine_calls += 1
        layer = base.layer_info(s.layer).name
        twin = self._twin(base, s.base, layer)
        twin_prepared = twin.prepare(load_choice(s.image))
        report(1, 4)
        # timed first: the explanations' kept graphs (the twin's full-resolution activation and
        # gradient) are not in memory yet, so the timing forward adds to less (a Binder session)
        timings = (_forward_ms(base, prepared), _forward_ms(twin, twin_prepared))
        report(2, 4)
        first = base.explain(prepared, "gradcam", target, layer)
        report(3, 4)
        second = twin.explain(twin_prepared, "gradcam", first.class_id, layer)
        report(4, 4)
        results = [first, second]
        table = _dilation_table(
            (s.base, twin.name),
            (base.predict(prepared), twin.predict(twin_prepared)),
            [r.raw.shape for r in results],
            timings,
        )
        line = (
            f"Grad-CAM @ {first.layer} for {first.label} ({first.class_id}): "
            f"{_side(first)} vs {_side(second)}; forward {timings[1] / timings[0]:.1f}x slower"
        )
        titles = [f"{name}: {_side(r)} map" for name, r in zip((s.base, twin.name), results)]
        unseen = [self._unseen(base, prepared, first), self._unseen(twin, twin_prepared, second)]

        def finish() -> None:
            self.results, self.timings, self.table.value = results, timings, table
            self._fill_layer_menu(base, s)
            self._say(line, unseen)

        return s, StudyView(
            prepared.rgb,
            [display_map(r, panels=2) for r in results],
            titles,
            colorbar_note(results),
            base,
            finish,
            shown=first,
            fades=overlay_fades(results),
        )

    def _fill_layer_menu(self, base: Explainer, s: DilationState) -> None:
        """The model's blocks (and a deeper layer set from Python), when they changed."""
        listed = {value for _, value in self._controls["layer"].options}
        if getattr(self, "_layers_of", None) != s.base or (s.layer or "") not in listed:
            self._layers_of = s.base
            self._requests.syncing = True
            try:
                menu = layer_menu(base.layers(), base.default_layer, s.layer or None, False)
                self._controls["layer"].options = [("default", "")] + layer_options(menu)
            finally:
                self._requests.syncing = False

    def _twin(self, base: Explainer, name: str, layer: str) -> Explainer:
        if name == "vgg16":
            return get_explainer("dilated_vgg16")
        key = (name, layer)
        if key not in self._twins:
            after = finer_layer(base, layer)
            with base.exclusive():  # (another widget's pass may be on the shared model)
                model = dilate(base.spec.model, after=after)
            spec = base.spec
            self._twins[key] = Explainer(
                ModelSpec(
                    name=f"{name}_dilated",
                    model=model.eval(),
                    preprocess=spec.preprocess,
                    labels=spec.labels,
                    input_size=spec.input_size,
                    default_layer=layer,
                    input_range=spec.input_range,
                    description=f"{name} dilated after {after}",
                ),
                device=base.device,
            )
        return self._twins[key]


def finer_layer(explainer: Explainer, layer: str, factor: int = 4) -> str:
    """The last layer before ``layer`` whose resolution is ``factor`` (else 2, 8) times finer,
    preferring a stage output (same depth as ``layer``): where dilation starts."""
    layers = explainer.layers()
    names = [layer.name for layer in layers]
    info = layers[names.index(layer)]
    for f in (factor, 2, 8):
        found = [
            candidate for candidate in layers[: names.index(layer)] if candidate.height == info.height * f
        ]
        if found:
            same_depth = [candidate for candidate in found if candidate.name.count(".") == layer.count(".")]
            return (same_depth or found)[-1].name
    raise InvalidParameterError(
        f"nothing to dilate: expected a layer before {layer!r} ({info.resolution}) with a finer "
        f"resolution, found none; hint: choose a deeper layer."
    )


def _forward_ms(explainer: Explainer, prepared, repeat: int = 2) -> float:
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        explainer.scores(prepared.tensor)
        if explainer.device.type == "cuda":
            torch.cuda.synchronize(explainer.device)
        best = min(best, time.perf_counter() - started)
    return best * 1000.0


def _side(result: Explanation) -> str:
    return f"{result.raw.shape[0]}x{result.raw.shape[1]}"


#: Table cells with room between columns (front ends' themes give tables none).
_CELL = "padding:2px 14px 2px 0;text-align:left"


def _dilation_table(names, predictions, shapes, timings) -> str:
    e = html.escape

    def row(cells, tag="td") -> str:
        return "<tr>" + "".join(f"<{tag} style='{_CELL}'>{c}</{tag}>" for c in cells) + "</tr>"

    rows = "".join(
        row([k + 1] + [f"{e(p.label)} ({p.class_id}) {p.probability:.3f}" for p in pair])
        for k, pair in enumerate(zip(*predictions))
    )
    return (
        "<table class='cw-dilation' style='border-collapse:collapse'>"
        + row(["top-5"] + [e(n) for n in names], "th")
        + rows
        + row(["Grad-CAM map"] + [f"{h}x{w}" for h, w in shapes])
        + row(["forward"] + [f"{ms:.0f} ms" for ms in timings])
        + row(["ratio", "", f"{timings[1] / timings[0]:.1f}x"])
        + "</table>"
    )
