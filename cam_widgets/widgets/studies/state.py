"""What each study is set to, without any widget: one frozen state per study, and the
settings that only re-render."""

from __future__ import annotations

from dataclasses import dataclass

from ...models import DEFAULT_MODEL

#: State fields whose change only re-renders (no engine call), in every study.
DISPLAY = ("opacity", "colormap")
#: SmoothGradStudy's sample counts shown by default (the article's figure).
SNAPSHOTS = (1, 2, 3, 10, 20, 30, 50, 75, 100)
#: DilationStudy's models: the offline one first (VGG16's weights may not be here).
BASES = (DEFAULT_MODEL, "vgg16", "resnet50")


@dataclass(frozen=True)
class SmoothGradState:
    """SmoothGradStudy's settings; ``target`` a class id (or None: the top class) once
    resolved."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    target: object = None
    method: str = "vanilla"
    noise: float = 0.2
    samples: int = 100
    snapshots: tuple = SNAPSHOTS
    opacity: float = 0.6
    colormap: str = "viridis"


@dataclass(frozen=True)
class LayerSweepState:
    """LayerSweep's settings; ``layers`` None: each stage's output, up to ``max_panels``."""

    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    target: object = None
    method: str = "gradcam"
    layers: tuple | None = None
    max_panels: int = 8
    opacity: float = 0.5
    colormap: str = "viridis"


@dataclass(frozen=True)
class DilationState:
    """DilationStudy's settings: the base model (its twin is dilated) and the layer mapped."""

    image: str = "chelsea"
    base: str = DEFAULT_MODEL
    target: object = None
    layer: str | None = None
    opacity: float = 0.5
    colormap: str = "viridis"


def smoothgrad_counts(state: SmoothGradState) -> list[int]:
    """The sample counts a run reaches, its last included: no panel twice when ``samples``
    is small."""
    return sorted({n for n in state.snapshots if n <= state.samples} | {state.samples})
