"""The engine part of each study's requests, without any widget: what to show for a state,
and the state with its class resolved once to an id. It may run in a worker thread: it
touches no widget (partial maps go to an ``on_partial`` callback, which hands them to the
loop's thread), and each work object counts its own engine calls."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from ...api import get_explainer
from ...errors import InvalidParameterError
from ...explainer import Explainer
from ...methods import get_method
from ...methods.context import Progress
from ...models import ModelSpec, resolve_target
from ...models.dilate import dilate
from ...result import Explanation
from ..shared.images import load_choice
from ..shared.layer_menu import stage_layers
from ..shared.maps import (
    colorbar_note,
    display_map,
    layer_resolution,
    map_fade,
    overlay_fades,
    snapshot_display,
    top_classes,
    unseen_note,
)
from .state import DilationState, LayerSweepState, SmoothGradState, smoothgrad_counts
from .view import StudyView, dilation_table


class StudyWork:
    """What every study's engine work shares; ``calls`` counts the requests that reached the
    engine (display changes make none)."""

    def __init__(self) -> None:
        self.calls = 0

    def prepare(self, state, model: str):
        """(explainer, prepared photo, class resolved to an id or None) of ``state`` on ``model``."""
        explainer = get_explainer(model)
        prepared = explainer.prepare(load_choice(state.image))
        target = resolve_target(state.target, explainer.labels)
        self.calls += 1
        return explainer, prepared, target


def unseen(explainer: Explainer, prepared, result: Explanation) -> str:
    """The note of ``result``'s class when the model does not see it."""
    return unseen_note(result, top_classes(explainer, prepared))


class SmoothGradOutcome(NamedTuple):
    view: StudyView
    plain: Explanation
    result: Explanation | None  # None: the plain map only, the SmoothGrad run to come


class SmoothGradWork(StudyWork):
    """The plain map, then SmoothGrad's running means at each count of ``snapshots``, all
    from one run; ``progress_calls`` counts its progress reports."""

    def __init__(self) -> None:
        super().__init__()
        self.progress_calls = 0

    def plain(self, s: SmoothGradState) -> tuple[SmoothGradState, SmoothGradOutcome]:
        """The plain map at once, the SmoothGrad panels empty (to be filled in by :meth:`run`)."""
        explainer, prepared, plain, target = self._plain(s)
        maps, titles = _smoothgrad_panels(plain, smoothgrad_counts(s), {})
        name = get_method(plain.method).title
        view = StudyView(
            prepared.rgb,
            maps,
            titles,
            colorbar_note([plain]),
            explainer,
            plain,
            [map_fade(plain)] * len(maps),
            f"{name}: {plain.label} ({plain.class_id}); SmoothGrad runs, its panels fill in",
            [unseen(explainer, prepared, plain)],
        )
        return replace(s, target=target), SmoothGradOutcome(view, plain, None)

    def run(
        self, s: SmoothGradState, report: Progress, on_partial: Callable[[StudyView], None]
    ) -> tuple[SmoothGradState, SmoothGradOutcome]:
        """Every panel; ``on_partial(view)`` gets the panels so far as each count is reached."""
        explainer, prepared, plain, target = self._plain(s)
        counts = smoothgrad_counts(s)
        panels, reached = 1 + len(counts), {}
        fades = [map_fade(plain)] * panels

        def progress(done: int, total: int) -> None:
            self.progress_calls += 1
            report(done, total)

        def snapshot(count: int, heatmaps: list) -> None:
            reached[count] = snapshot_display(heatmaps[0], plain.pixel_level, panels)
            maps, titles = _smoothgrad_panels(plain, counts, reached)
            on_partial(StudyView(prepared.rgb, maps, titles, colorbar_note([plain]), explainer, plain, fades))

        result = explainer.explain(
            prepared,
            s.method,
            plain.class_id,
            noise=s.noise,
            samples=s.samples,
            snapshots=counts,
            progress=progress,
            on_snapshot=snapshot,
        )
        maps, titles = _smoothgrad_panels(
            plain, counts, {n: display_map(result, snapshot=n, panels=panels) for n in counts}
        )
        name = get_method(plain.method).title
        line = (
            f"{name}: {plain.label} ({plain.class_id}), noise {s.noise:g}, "
            f"{s.samples} sample{'s' if s.samples != 1 else ''} in {result.seconds:.1f} s"
        )
        view = StudyView(
            prepared.rgb,
            maps,
            titles,
            colorbar_note([plain, result]),
            explainer,
            plain,
            fades,
            line,
            [unseen(explainer, prepared, plain)],
        )
        return replace(s, target=target), SmoothGradOutcome(view, plain, result)

    def _plain(self, s: SmoothGradState):
        explainer, prepared, target = self.prepare(s, s.model)
        return explainer, prepared, explainer.explain(prepared, s.method, target), target


def _smoothgrad_panels(plain: Explanation, counts: list, reached: dict) -> tuple[list, list]:
    """Maps and titles: the plain map, then each count's running mean (``reached``: count
    -> map as drawn) or, until it is reached, an empty panel that says so."""
    first = display_map(plain, panels=1 + len(counts))
    name = get_method(plain.method).title
    maps = [first] + [reached.get(n, np.zeros_like(first)) for n in counts]
    titles = [f"{name}, no noise"] + [
        f"SmoothGrad n={n}" if n in reached else f"n={n}: to come" for n in counts
    ]
    return maps, titles


class LayerSweepOutcome(NamedTuple):
    view: StudyView
    results: list


class LayerSweepWork(StudyWork):
    """One class through several layers, from one backward."""

    def run(self, s: LayerSweepState, report: Progress) -> tuple[LayerSweepState, LayerSweepOutcome]:
        explainer, prepared, target = self.prepare(s, s.model)
        names = list(s.layers) if s.layers else stage_layers(explainer, None, s.max_panels)
        results = explainer.explain_layers(prepared, target, s.method, names, progress=report)
        r, needs = results[0], get_method(s.method).needs
        how = (
            ""
            if "extra_forwards" in needs  # Score-CAM: masked forwards at each layer
            else ", from one backward"
            if "gradients" in needs
            else ", from one forward"
        )
        view = StudyView(
            prepared.rgb,
            [display_map(x, panels=len(results)) for x in results],
            [f"{x.layer}  {layer_resolution(explainer, x.layer)}" for x in results],
            colorbar_note(results),
            explainer,
            r,
            overlay_fades(results),
            f"{get_method(r.method).title}: {r.label} ({r.class_id}) through {len(results)} layers{how}",
            [unseen(explainer, prepared, r)],
        )
        return replace(s, target=target), LayerSweepOutcome(view, results)


class DilationOutcome(NamedTuple):
    view: StudyView
    results: list
    timings: tuple
    table: str


class DilationWork(StudyWork):
    """A model and its dilated twin (kept per base model and layer): top-5 of both, Grad-CAM
    map resolution, forward cost."""

    def __init__(self) -> None:
        super().__init__()
        self._twins: dict = {}

    def run(self, s: DilationState, report: Progress) -> tuple[DilationState, DilationOutcome]:
        report(0, 4)
        base, prepared, target = self.prepare(s, s.base)
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
        table = dilation_table(
            (s.base, twin.name),
            (base.predict(prepared), twin.predict(twin_prepared)),
            [r.raw.shape for r in results],
            timings,
        )
        view = StudyView(
            prepared.rgb,
            [display_map(r, panels=2) for r in results],
            [f"{name}: {_side(r)} map" for name, r in zip((s.base, twin.name), results)],
            colorbar_note(results),
            base,
            first,
            overlay_fades(results),
            f"Grad-CAM @ {first.layer} for {first.label} ({first.class_id}): "
            f"{_side(first)} vs {_side(second)}; forward {timings[1] / timings[0]:.1f}x slower",
            [unseen(base, prepared, first), unseen(twin, twin_prepared, second)],
        )
        return replace(s, target=target), DilationOutcome(view, results, timings, table)

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
