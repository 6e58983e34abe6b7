"""SmoothGrad, written once as a wrapper over any registered method.

Smilkov et al. 2017, eq. 2: M^(x) = 1/n sum_i M(x + N(0, sigma^2)), sigma = noise * (max - min)
of the input range. Noisy copies run in batches under the engine's memory budget; the running
mean is read off at chosen sample counts, so the 1, 2, 3, 10 ... 100 progression is one run.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..engine import Capture, Engine
from ..errors import InvalidParameterError, MethodNotApplicableError, expected
from .context import MethodContext, Progress
from .registry import MethodOutput, MethodSpec, positive_int

ARTICLE_SNAPSHOTS = (1, 2, 3, 10, 20, 30, 50, 75, 100)
#: What SmoothGrad's progress reports count.
PROGRESS_UNIT = "noisy samples"

#: SmoothGrad's noisy batches may run in reduced precision: the average over many noisy
#: samples hides the rounding (benchmarks/RESULTS.md gives the agreement with float32).
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class SmoothOutput:
    """Mean maps over the noisy samples, and running means at the snapshot counts."""

    output: MethodOutput
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    batch_size: int = 0


#: The most noisy samples a SmoothGrad run takes: 10,000 is minutes on a CPU; 10**9 would be
#: years (the mean settles within a few hundred).
MAX_SAMPLES = 10_000


def check_smoothing(noise: float, samples: int) -> tuple[float, int]:
    """(noise, samples) as a float and an int (numpy's scalars too), or one-line errors."""
    if not positive_int(samples) or samples > MAX_SAMPLES:
        raise InvalidParameterError(
            expected(
                "samples",
                f"an int from 1 to {MAX_SAMPLES:,}",
                samples,
                "the SmoothGrad paper uses 50, and past a few hundred the mean no longer changes",
            )
        )
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real) or not 0 <= noise <= 10:
        raise InvalidParameterError(
            expected("noise", "a fraction of the input range between 0 and 10, e.g. 0.2", noise)
        )
    return float(noise), int(samples)


@dataclass(frozen=True)
class Smoothing:
    """SmoothGrad's settings in one place, with the SmoothGrad article's defaults (noise 20%
    of the input range, 100 samples), checked when made: what an Explanation carries and its
    title and export names read.

    ``batch_size``: noisy copies a pass (None: as the memory budget allows); ``precision``:
    'fp32', or 'fp16' (CUDA) / 'bf16' for the noisy batches; ``snapshots``: sample counts
    whose running mean is kept (counts above ``samples`` are skipped)."""

    noise: float = 0.2
    samples: int = 100
    seed: int = 0
    precision: str = "fp32"
    batch_size: int | None = None
    snapshots: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        noise, samples = check_smoothing(self.noise, self.samples)
        if not (positive_int(self.seed) or self.seed == 0) or self.seed >= 2**63:
            raise InvalidParameterError(expected("seed", "an int in [0, 2**63)", self.seed))
        if self.precision not in PRECISIONS:
            raise InvalidParameterError(
                expected("precision", f"one of {', '.join(PRECISIONS)}", self.precision)
            )
        if self.batch_size is not None and not positive_int(self.batch_size):
            raise InvalidParameterError(expected("batch_size", "an int >= 1 or None", self.batch_size))
        object.__setattr__(self, "noise", noise)
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "snapshots", _checked_snapshots(self.snapshots))

    @property
    def label(self) -> str:
        """E.g. "SmoothGrad (n=100, noise 0.2)", with the precision when not fp32."""
        extra = f", {self.precision}" if self.precision != "fp32" else ""
        return f"SmoothGrad (n={self.samples}, noise {self.noise:g}{extra})"

    def params(self) -> dict:
        """The entries an Explanation's ``params`` has always carried for SmoothGrad."""
        out: dict = {"noise": self.noise, "samples": self.samples, "seed": self.seed}
        if self.precision != "fp32":
            out["precision"] = self.precision
        return out


def _checked_snapshots(snapshots: Sequence[int]) -> tuple[int, ...]:
    counts: tuple[int, ...] | None
    try:
        counts = tuple(snapshots)
    except TypeError:
        counts = None
    if counts is None or not all(positive_int(n) for n in counts):
        raise InvalidParameterError(
            expected("snapshots", "sample counts (ints >= 1), e.g. (1, 10, 100)", snapshots)
        )
    return counts


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or a one-line error."""
    if precision not in PRECISIONS:
        raise InvalidParameterError(expected("precision", f"one of {', '.join(PRECISIONS)}", precision))
    if precision == "fp16" and device.type != "cuda":
        raise InvalidParameterError(
            expected(
                "precision",
                f"'bf16' or 'fp32' on this explainer's device ({device.type}): fp16 needs a CUDA device",
                precision,
                "use 'bf16' or 'fp32'",
            )
        )
    return PRECISIONS[precision]


def smooth(
    engine: Engine,
    method: MethodSpec,
    inputs: torch.Tensor,
    class_ids: torch.Tensor,
    layer: str | None,
    params: dict,
    *,
    noise: float = 0.2,
    samples: int = 100,
    input_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int | None = None,
    seed: int = 0,
    snapshots: Sequence[int] = (),
    noise_samples: torch.Tensor | None = None,
    progress: Progress = None,
    precision: str = "fp32",
    on_snapshot: Callable[[int, torch.Tensor], None] | None = None,
) -> SmoothOutput:
    """Average ``method`` over ``samples`` noisy copies of ``inputs`` (1, 3, H, W).

    Args:
        noise: sigma as a fraction of ``input_range`` (the SmoothGrad article: 0.2).
        batch_size: noisy copies per pass (None: as many as the memory budget allows;
            methods with extra forwards of their own take one copy at a time).
        seed: seeds a private generator (the global RNG is never touched).
        noise_samples: explicit (samples, 3, H, W) noise to add instead of drawing it
            (the same noise across methods or libraries, for a fair comparison).
        precision: 'fp32' (default), or 'fp16' (CUDA) / 'bf16' mixed precision for the
            noisy batches; the map is accumulated in float32 either way.
        on_snapshot: ``on_snapshot(count, maps)`` as each count of ``snapshots`` is reached,
            with the running mean then ((K, 1, h, w), as ``snapshots`` returns it).
    """
    noise, samples = check_smoothing(noise, samples)
    if not (positive_int(seed) or seed == 0) or seed >= 2**63:
        raise InvalidParameterError(expected("seed", "an int in [0, 2**63)", seed))
    snapshots = _checked_snapshots(snapshots)
    if batch_size is not None and not positive_int(batch_size):
        raise InvalidParameterError(expected("batch_size", "an int >= 1 or None", batch_size))
    dtype = autocast_dtype(precision, engine.device)
    shape = (samples,) + tuple(inputs.shape[1:])
    if noise_samples is not None and (
        not isinstance(noise_samples, torch.Tensor) or tuple(noise_samples.shape) != shape
    ):
        raise InvalidParameterError(
            expected("noise_samples", f"a tensor of shape {shape}: one noise tensor a sample", noise_samples)
        )
    sigma = float(noise) * (input_range[1] - input_range[0])
    if batch_size is None:
        batch_size = 1 if "extra_forwards" in method.needs else engine.batch_size_for()
    else:  # a batch size given is capped at what the memory budget holds
        batch_size = engine.batch_size_for(requested=batch_size)
    batch_size = max(1, min(int(batch_size), samples))
    generator = torch.Generator(device=inputs.device).manual_seed(int(seed))
    wanted = sorted({int(s) for s in snapshots if 1 <= int(s) <= samples})
    running_maps, running_attr, taken = None, None, {}
    done = 0
    if progress is not None:
        progress(0, samples)  # started: a progress bar at once, not after the first batch
    while done < samples:
        count = min(batch_size, samples - done)
        if noise_samples is None:
            drawn = (
                torch.randn(
                    (count,) + tuple(inputs.shape[1:]),
                    generator=generator,
                    device=inputs.device,
                    dtype=inputs.dtype,
                )
                * sigma
            )
        else:
            drawn = noise_samples[done : done + count].to(inputs.device, inputs.dtype)
        # a slow base method (Score-CAM) reports within the batch: the same count again,
        # so that a caller can stop between its own steps
        within = None if progress is None else (lambda *_, seen=done: progress(seen, samples))
        out = _run_batch(engine, method, inputs + drawn, class_ids, layer, params, dtype, within)
        maps = out.maps.float()
        maps = maps.clamp(min=0) if method.clip_negative else maps
        cumulative = maps.cumsum(dim=1) + (0 if running_maps is None else running_maps)
        for count_seen in wanted:
            if done < count_seen <= done + count:
                taken[count_seen] = cumulative[:, count_seen - done - 1 : count_seen - done] / count_seen
                if on_snapshot is not None:
                    on_snapshot(count_seen, taken[count_seen])
        running_maps = cumulative[:, -1:]
        if out.attribution is not None:
            batch_attr = out.attribution.float().sum(dim=1, keepdim=True)
            running_attr = batch_attr if running_attr is None else running_attr + batch_attr
        done += count
        if progress is not None:
            progress(done, samples)
    assert running_maps is not None  # samples >= 1 (check_smoothing): the loop ran
    if not torch.isfinite(running_maps).all():  # one check per call, not one per batch
        raise MethodNotApplicableError(
            "the model returned NaN or infinite values for the noisy copies of this image; "
            "try a smaller 'noise' or precision='fp32'"
        )
    attribution = None if running_attr is None else running_attr / samples
    return SmoothOutput(MethodOutput(running_maps / samples, attribution), taken, batch_size)


def _run_batch(
    engine: Engine,
    method: MethodSpec,
    noisy: torch.Tensor,
    class_ids: torch.Tensor,
    layer: str | None,
    params: dict,
    dtype: torch.dtype | None,
    progress: Progress = None,
) -> MethodOutput:
    """The base method over one batch of noisy inputs (a fresh, uncached pass)."""
    layers = [layer] if layer is not None else []
    # a method that reads a layer only keeps no graph below it (less memory a noisy copy)
    root = layer if layer is not None and "input_gradients" not in method.needs else None
    with engine.exclusive():  # the batch's forward and backward as one step: one graph alive
        forward = engine.run(
            noisy,
            layers,
            record_relus="guided" in method.needs,
            autocast_dtype=dtype,
            check_finite=False,
            root=root,
        )
        # one backward (not guided Grad-CAM's two): let autograd free the graph as it goes
        single = len(method.needs & {"gradients", "input_gradients"}) == 1
        context = MethodContext(
            engine, Capture("", forward, single_backward=single), class_ids, layer, params, progress
        )
        return method.fn(context)
