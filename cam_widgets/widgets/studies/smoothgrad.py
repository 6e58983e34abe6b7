"""SmoothGradStudy: vanilla vs SmoothGrad and the running mean over sample counts (article 004)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from ...api import widget_model
from ...methods import get_method
from ...methods.smoothgrad import PROGRESS_UNIT as SMOOTHGRAD_UNIT
from ...models import DEFAULT_MODEL
from ...result import Explanation
from .controls import smoothgrad_controls
from .state import SNAPSHOTS, SmoothGradState
from .widget import Study
from .work import SmoothGradOutcome, SmoothGradWork


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
        snapshots: Sequence[int] = SNAPSHOTS,
        background: bool | None = None,
    ) -> None:
        self.plain: Explanation | None = None
        self.result: Explanation | None = None
        self._work = SmoothGradWork()
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
        super().__init__(state, smoothgrad_controls, placeholders=len(snaps) + 1, background=background)

    @property
    def engine_calls(self) -> int:
        """Runs that reached the engine so far (display changes make none)."""
        return self._work.calls

    @property
    def progress_calls(self) -> int:
        """SmoothGrad's progress reports so far."""
        return self._work.progress_calls

    def _first_compute(self, s: SmoothGradState, report):
        """On a kernel: the plain map at once, the SmoothGrad panels filled in by a request
        run after the cell (its noisy samples took 44 to 69 s with nothing on screen)."""
        if self._requests.queue.cell_loop() is None:
            return self._compute(s, report)
        return self._work.plain(s)

    def _compute(self, s: SmoothGradState, report):
        return self._work.run(s, report, partial(self._show_partial, report))

    def _finish(self, outcome: SmoothGradOutcome) -> None:
        self.plain = outcome.plain
        if outcome.result is None:  # the plain map only: SmoothGrad's run comes next
            self._compute_again()
        else:
            self.result = outcome.result
