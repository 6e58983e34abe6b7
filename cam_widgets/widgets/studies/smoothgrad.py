"""SmoothGradStudy: vanilla vs SmoothGrad and the running mean over sample counts (article 004)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as W
import numpy as np

from ...api import widget_model
from ...methods import get_method, list_methods
from ...methods.smoothgrad import PROGRESS_UNIT as SMOOTHGRAD_UNIT
from ...models import DEFAULT_MODEL
from ...result import Explanation
from ..shared.controls import control_row
from ..shared.maps import colorbar_note, display_map, map_fade, snapshot_display
from .base import Study, StudyView


@dataclass(frozen=True)
class SmoothGradState:
    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    target: object = None
    method: str = "vanilla"
    noise: float = 0.2
    samples: int = 100
    snapshots: tuple = (1, 2, 3, 10, 20, 30, 50, 75, 100)
    opacity: float = 0.6
    colormap: str = "viridis"


class SmoothGradStudy(Study):
    """The plain map of ``method``, then the SmoothGrad running mean after each count of
    ``snapshots`` noisy samples, all from ONE run (counts above ``samples`` show the final
    mean); a run asked for from the browser fills its panels in as their counts are
    reached. ``.plain`` and ``.result`` are the plain and smoothed Explanations."""

    COMPUTE_CONTROLS = ("image", "model", "target", "method", "noise", "samples")
    RESULT = "result"
    PROGRESS_UNIT = SMOOTHGRAD_UNIT

    def __init__(
        self,
        image: str = "chelsea",
        model: str = DEFAULT_MODEL,
        target=None,
        method: str = "vanilla",
        noise: float = 0.2,
        samples: int = 100,
        snapshots: Sequence[int] = (1, 2, 3, 10, 20, 30, 50, 75, 100),
        background: bool | None = None,
    ) -> None:
        self.plain: Explanation | None = None
        self.result: Explanation | None = None
        self.progress_calls = 0
        snaps = tuple(sorted({int(n) for n in snapshots}))
        self._yours: list = []  # your model's Explainer, held while this widget lives
        state = SmoothGradState(
            image,
            widget_model(model, self._yours),
            target,
            get_method(method).name,
            float(noise),
            int(samples),
            snaps,
        )
        super().__init__(state, placeholders=len(snaps) + 1, background=background)

    def _build_controls(self) -> dict:
        s, c = self.state, self._common_controls()
        c["method"] = W.Dropdown(
            options=[(m.title, m.name) for m in list_methods()], value=s.method, description="method"
        )
        c["noise"] = W.FloatSlider(
            value=s.noise, min=0.0, max=0.5, step=0.01, description="noise", continuous_update=False
        )
        c["samples"] = W.IntSlider(
            value=s.samples, min=1, max=max(100, s.samples), description="samples", continuous_update=False
        )
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox(
            [
                control_row(c["image"], c["model"], c["method"], c["target"]),
                control_row(c["noise"], c["samples"], c["opacity"], c["colormap"]),
            ]
        )

    def _first_compute(self, s: SmoothGradState, report):
        """On a kernel: the plain map at once, the SmoothGrad panels filled in by a request
        run after the cell (its noisy samples took 44 to 69 s with nothing on screen)."""
        if self._requests.queue.cell_loop() is None:
            return self._compute(s, report)
        explainer, prepared, plain, counts = self._plain(s)
        maps, titles = self._panels(plain, counts, {})
        name = get_method(plain.method).title
        line = f"{name}: {plain.label} ({plain.class_id}); SmoothGrad runs, its panels fill in"
        unseen = self._unseen(explainer, prepared, plain)

        def finish() -> None:
            self.plain = plain
            self._say(line, [unseen])
            self._compute_again()

        return s, StudyView(
            prepared.rgb,
            maps,
            titles,
            colorbar_note([plain]),
            explainer,
            finish,
            shown=plain,
            fades=[map_fade(plain)] * len(maps),
        )

    def _plain(self, s: SmoothGradState):
        """(explainer, prepared photo, the plain Explanation, the counts this run reaches)."""
        explainer, prepared, target = self._prepare(s, s.model)
        self.engine_calls += 1
        plain = explainer.explain(prepared, s.method, target)
        # the counts this run reaches (and its last): no panel twice when samples is small
        counts = sorted({n for n in s.snapshots if n <= s.samples} | {s.samples})
        return explainer, prepared, plain, counts

    @staticmethod
    def _panels(plain: Explanation, counts: list, reached: dict) -> tuple[list, list]:
        """Maps and titles: the plain map, then each count's running mean (``reached``:
        count -> map as drawn) or, until it is reached, an empty panel that says so."""
        first = display_map(plain, panels=1 + len(counts))
        name = get_method(plain.method).title
        maps = [first] + [reached.get(n, np.zeros_like(first)) for n in counts]
        titles = [f"{name}, no noise"] + [
            f"SmoothGrad n={n}" if n in reached else f"n={n}: to come" for n in counts
        ]
        return maps, titles

    def _compute(self, s: SmoothGradState, report):
        explainer, prepared, plain, counts = self._plain(s)
        panels, reached = 1 + len(counts), {}

        def progress(done: int, total: int) -> None:
            self.progress_calls += 1
            report(done, total)

        def snapshot(count: int, heatmaps: list) -> None:  # (worker thread: no widget touched)
            reached[count] = snapshot_display(heatmaps[0], plain.pixel_level, panels)
            self._show_progress(
                report,
                prepared.rgb,
                *self._panels(plain, counts, reached),
                colorbar_note([plain]),
                key=(s.image, prepared.rgb.shape),
                fades=[map_fade(plain)] * panels,
            )

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
        maps, titles = self._panels(
            plain, counts, {n: display_map(result, snapshot=n, panels=panels) for n in counts}
        )
        name = get_method(plain.method).title
        line = (
            f"{name}: {plain.label} ({plain.class_id}), noise {s.noise:g}, "
            f"{s.samples} sample{'s' if s.samples != 1 else ''} in {result.seconds:.1f} s"
        )
        unseen = self._unseen(explainer, prepared, plain)

        def finish() -> None:
            self.plain, self.result = plain, result
            self._say(line, [unseen])

        return s, StudyView(
            prepared.rgb,
            maps,
            titles,
            colorbar_note([plain, result]),
            explainer,
            finish,
            shown=plain,
            fades=[map_fade(plain)] * len(maps),
        )
