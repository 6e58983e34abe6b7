"""Studies: SmoothGrad convergence, one class through the layers, a model vs its dilated twin.

Each study is a VBox with a frozen state, controls linked to it, one HeatmapPanels figure
updated in place, and a ``set(**changes)`` API; errors go to the status line.
"""
from __future__ import annotations

import copy
import html
import math
import time
from dataclasses import dataclass, fields, replace
from typing import Optional, Sequence

import ipywidgets as W
import numpy as np
import torch
from torch import nn

from ..api import get_explainer
from ..errors import InvalidParameterError, close_matches
from ..explainer import Explainer
from ..methods import list_methods
from ..models import DEFAULT_MODEL, ModelSpec, list_models, resolve_class
from ..models.dilate import dilate
from ..render import list_colormaps
from ..result import Explanation
from .common import StatusLine, busy, display_map, image_choices, load_choice
from .panels import HeatmapPanels

DISPLAY = ("opacity", "colormap")


def stage_layers(explainer: Explainer, layer: Optional[str] = None,
                 max_panels: int = 8) -> list[str]:
    """Up to ``max_panels`` layers from shallow to deep, ending at ``layer`` (default layer):
    the last layer of each resolution among the siblings of ``layer`` (each stage's output),
    evenly thinned when there are too many."""
    layers = explainer.layers()
    last = explainer.resolve_layer(layer)
    names = [l.name for l in layers]
    upto = layers[:names.index(last) + 1]
    parent = last.rpartition(".")[0]
    siblings = [l for l in upto if l.name.rpartition(".")[0] == parent]
    stages = [l for k, l in enumerate(siblings)
              if k == len(siblings) - 1 or siblings[k + 1].height != l.height]
    chosen = stages if len(stages) >= 2 else siblings
    count = max(1, int(max_panels))
    if len(chosen) > count:
        picks = sorted({int(round(i * (len(chosen) - 1) / max(count - 1, 1))) for i in range(count)})
        chosen = [chosen[i] for i in picks]
    names = [l.name for l in chosen]
    return names if names[-1] == last else (names + [last])[-count:]


def _parse_target(text: str):
    text = str(text).strip()
    if not text:
        return None
    head = text.split()[0]
    return int(head) if head.isdigit() else text


class _Study(W.VBox):
    """Shared plumbing: state <-> controls, set(), busy/status, one panels figure."""

    COMPUTE_CONTROLS: tuple = ()
    RESULT = "results"

    def __init__(self, state, placeholders: int) -> None:
        self.state = state
        self.status = StatusLine()
        self.engine_calls = 0
        self.panels: Optional[HeatmapPanels] = None
        self._syncing = False
        self._controls = self._build_controls()
        self._figure_box = W.Box([])
        super().__init__([self._layout(), self._figure_box, *self._extra(), self.status.widget])
        self._line = ""
        with busy([], self.status):
            self._apply(self.state)
            self._line = self.status.line.value
        if self.panels is None:  # the first computation failed: empty panels, error shown
            self._show(np.zeros((224, 224, 3), np.uint8),
                       [np.zeros((7, 7), np.float32)] * placeholders, ["(not computed)"] * placeholders)
        self._sync_controls()
        for name, control in self._controls.items():
            control.observe(self._on_change(name), names="value")

    # hooks for the subclasses
    def _build_controls(self) -> dict:
        raise NotImplementedError

    def _layout(self) -> W.Widget:
        raise NotImplementedError

    def _extra(self) -> list:
        return []

    def _compute(self, state) -> tuple[np.ndarray, list, list[str]]:
        raise NotImplementedError

    def _normalize(self, changes: dict) -> dict:
        return changes

    # shared behaviour
    def set(self, **changes):
        """Change state fields from Python (as the controls do); errors go to the status line."""
        with busy([self._controls[n] for n in self.COMPUTE_CONTROLS], self.status):
            names = {f.name for f in fields(self.state)}
            for key in changes:
                if key not in names:
                    raise InvalidParameterError(
                        f"{type(self).__name__} has no setting {key!r}; it has "
                        f"{', '.join(sorted(names))}." + close_matches(key, names))
            changes = self._normalize(dict(changes))
            new = replace(self.state, **changes)
            if all(key in DISPLAY or getattr(new, key) == getattr(self.state, key)
                   for key in changes):  # nothing for the engine: re-render only
                self.state = new
                self._render_display()
                self.status.line.value = self._line  # the last good state's line, not an old error
            else:
                self._apply(new)
                self._line = self.status.line.value
        self._sync_controls()
        return getattr(self, self.RESULT)

    def _apply(self, state) -> None:
        rgb, maps, titles = self._compute(state)
        self.state = state
        self._show(rgb, maps, titles, key=(state.image, rgb.shape))

    def _show(self, rgb: np.ndarray, maps, titles, key=None) -> None:
        if self.panels is None or self.panels.count != len(maps):
            self.panels = HeatmapPanels(rgb, maps, titles, opacity=self.state.opacity,
                                        colormap=self.state.colormap)
            self.panels.on_probe(lambda k, x, y: self.panels.mark(x, y))
            self._figure_box.children = [self.panels.figure]
        else:
            with self.panels.figure.batch_update():
                if getattr(self, "_photo_key", None) != key:
                    self.panels.set_image(rgb)
                self.panels.set_maps(maps, titles, zrange=(0.0, 1.0))
        self._photo_key = key
        self._render_display()

    def _render_display(self) -> None:
        with self.panels.figure.batch_update():
            self.panels.set_opacity(self.state.opacity)
            self.panels.set_colormap(self.state.colormap)

    def _on_change(self, name: str):
        def changed(change):
            if self._syncing:
                return
            new = _parse_target(change["new"]) if name == "target" else change["new"]
            if name == "layer":
                new = new or None
            if getattr(self.state, name) != new:
                self.set(**{name: new})
        return changed

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for name, control in self._controls.items():
                value = getattr(self.state, name)
                if name == "target":
                    value = "" if value is None else str(value)
                elif name == "layer":
                    value = value or ""
                if (name != "layer" or value in [o[1] for o in control.options]) \
                        and control.value != value:
                    control.value = value
        finally:
            self._syncing = False

    def _common_controls(self, models=True) -> dict:
        s = self.state
        c = {"image": W.Dropdown(options=image_choices(), value=s.image, description="image")}
        if models:
            c["model"] = W.Dropdown(options=list(list_models()), value=s.model, description="model")
        c["target"] = W.Combobox(placeholder="top class; or boxer, 282...", description="class",
                                 ensure_option=False, continuous_update=False)
        c["opacity"] = W.FloatSlider(value=s.opacity, min=0, max=1, step=0.05, description="opacity")
        c["colormap"] = W.Dropdown(options=list_colormaps(), value=s.colormap, description="colormap")
        return c

    def _prepare(self, state, model: str):
        explainer = get_explainer(model)
        if getattr(self, "_options_model", None) != model:
            self._controls["target"].options = [f"{i} {n}" for i, n in enumerate(explainer.labels)]
            self._options_model = model
        prepared = explainer.prepare(load_choice(state.image))
        target = None if state.target is None else resolve_class(state.target, explainer.labels)
        return explainer, prepared, target


# ----------------------------------------------------------------------------- SmoothGrad
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


class SmoothGradStudy(_Study):
    """The plain map of ``method``, then the SmoothGrad running mean after each count of
    ``snapshots`` noisy samples, all from ONE run (counts above ``samples`` show the final
    mean). ``.plain`` and ``.result`` are the plain and smoothed Explanations."""

    COMPUTE_CONTROLS = ("image", "model", "target", "method", "noise", "samples")
    RESULT = "result"

    def __init__(self, image: str = "chelsea", model: str = DEFAULT_MODEL, target=None,
                 method: str = "vanilla", noise: float = 0.2, samples: int = 100,
                 snapshots: Sequence[int] = (1, 2, 3, 10, 20, 30, 50, 75, 100)) -> None:
        self.plain: Optional[Explanation] = None
        self.result: Optional[Explanation] = None
        self.progress_calls = 0
        snaps = tuple(sorted({int(n) for n in snapshots}))
        super().__init__(SmoothGradState(image, model, target, method, float(noise), int(samples),
                                         snaps), placeholders=len(snaps) + 1)

    def _build_controls(self) -> dict:
        s, c = self.state, self._common_controls()
        c["method"] = W.Dropdown(options=[(m.title, m.name) for m in list_methods()],
                                 value=s.method, description="method")
        c["noise"] = W.FloatSlider(value=s.noise, min=0.0, max=0.5, step=0.01, description="noise",
                                   continuous_update=False)
        c["samples"] = W.IntSlider(value=s.samples, min=1, max=max(100, s.samples),
                                   description="samples", continuous_update=False)
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox([W.HBox([c["image"], c["model"], c["method"], c["target"]]),
                       W.HBox([c["noise"], c["samples"], c["opacity"], c["colormap"]])])

    def _progress(self, done: int, total: int) -> None:
        self.progress_calls += 1
        self.status.report(done, total)

    def _compute(self, s: SmoothGradState):
        explainer, prepared, target = self._prepare(s, s.model)
        self.engine_calls += 1
        plain = explainer.explain(prepared, s.method, target)
        counts = [min(n, s.samples) for n in s.snapshots]
        result = explainer.explain(prepared, s.method, plain.class_id, noise=s.noise,
                                   samples=s.samples, snapshots=sorted(set(counts)),
                                   progress=self._progress)
        self.plain, self.result = plain, result
        maps = [display_map(plain)] + [result.snapshots[n] for n in counts]
        titles = [f"{plain.method}, no noise"] + [f"SmoothGrad n={n}" for n in counts]
        self.status.info(f"{plain.method}: {plain.label} ({plain.class_id}), noise {s.noise:g}, "
                         f"{s.samples} samples in {result.seconds:.1f} s")
        return prepared.rgb, maps, titles


# ----------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class LayerSweepState:
    image: str = "chelsea"
    model: str = DEFAULT_MODEL
    target: object = None
    method: str = "gradcam"
    layers: Optional[tuple] = None
    max_panels: int = 8
    opacity: float = 0.5
    colormap: str = "viridis"


class LayerSweep(_Study):
    """One class through several layers (default: each stage's output, up to ``max_panels``,
    ending at the default layer), all from one backward; titles give each map's resolution."""

    COMPUTE_CONTROLS = ("image", "model", "target", "method")

    def __init__(self, image: str = "chelsea", model: str = DEFAULT_MODEL, target=None,
                 method: str = "gradcam", layers: Optional[Sequence[str]] = None,
                 max_panels: int = 8) -> None:
        self.results: list[Explanation] = []
        state = LayerSweepState(image, model, target, method,
                                None if layers is None else tuple(layers), int(max_panels))
        super().__init__(state, placeholders=len(layers) if layers else 1)

    def _build_controls(self) -> dict:
        s, c = self.state, self._common_controls()
        c["method"] = W.Dropdown(options=[(m.title, m.name) for m in list_methods() if m.needs_layer],
                                 value=s.method, description="method")
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox([W.HBox([c["image"], c["model"], c["method"], c["target"]]),
                       W.HBox([c["opacity"], c["colormap"]])])

    def _normalize(self, changes: dict) -> dict:
        if "model" in changes and "layers" not in changes:
            changes["layers"] = None  # another model's layers: back to its stages
        if changes.get("layers") is not None:
            changes["layers"] = tuple(changes["layers"])
        return changes

    def _compute(self, s: LayerSweepState):
        explainer, prepared, target = self._prepare(s, s.model)
        self.engine_calls += 1
        names = list(s.layers) if s.layers else stage_layers(explainer, None, s.max_panels)
        results = explainer.explain_layers(prepared, target, s.method, names)
        self.results = results
        r = results[0]
        self.status.info(f"{r.method}: {r.label} ({r.class_id}) through {len(results)} layers "
                         f"({r.seconds * 1000:.0f} ms for the last)")
        titles = [f"{x.layer}  {x.raw.shape[0]}x{x.raw.shape[1]}" for x in results]
        return prepared.rgb, [display_map(x) for x in results], titles


# ----------------------------------------------------------------------------- dilation
@dataclass(frozen=True)
class DilationState:
    image: str = "chelsea"
    base: str = "vgg16"
    target: object = None
    layer: Optional[str] = None
    opacity: float = 0.5
    colormap: str = "viridis"


BASES = ("vgg16", "efficientnet_lite0", "resnet50")


class DilationStudy(_Study):
    """A model and its dilated twin: top-5 of both, Grad-CAM map resolution, forward cost.

    ``base="vgg16"`` uses the zoo's ``dilated_vgg16``; other models are dilated with
    :func:`~cam_widgets.models.dilate.dilate` after the layer whose resolution is 4x that of
    ``layer`` (the twin's map is 4x finer, e.g. 28x28 instead of 7x7). ``.results`` holds
    both Explanations, ``.timings`` the forward cost of each in ms.
    """

    COMPUTE_CONTROLS = ("image", "base", "target", "layer")

    def __init__(self, image: str = "chelsea", base: str = "vgg16", target=None,
                 layer: Optional[str] = None) -> None:
        self.results: list[Explanation] = []
        self.timings: tuple[float, float] = (math.nan, math.nan)
        self.table = W.HTML(value="")
        self._twins: dict = {}
        super().__init__(DilationState(image, base, target, layer), placeholders=2)

    def _build_controls(self) -> dict:
        s, c = self.state, self._common_controls(models=False)
        c["base"] = W.Dropdown(options=list(dict.fromkeys((s.base,) + BASES)), value=s.base,
                               description="model")
        c["layer"] = W.Dropdown(options=[("default", "")], value="", description="layer")
        return c

    def _layout(self) -> W.Widget:
        c = self._controls
        return W.VBox([W.HBox([c["image"], c["base"], c["layer"], c["target"]]),
                       W.HBox([c["opacity"], c["colormap"]])])

    def _extra(self) -> list:
        return [self.table]

    def _normalize(self, changes: dict) -> dict:
        if "base" in changes and "layer" not in changes:
            changes["layer"] = None
        return changes

    def _compute(self, s: DilationState):
        report = self.status.report
        report(0, 4)
        base, prepared, target = self._prepare(s, s.base)
        if getattr(self, "_layers_of", None) != s.base:
            self._layers_of = s.base
            self._syncing = True
            try:
                self._controls["layer"].options = [("default", "")] + [
                    (f"{l.name}  {l.resolution}", l.name) for l in base.layers()]
            finally:
                self._syncing = False
        self.engine_calls += 1
        first = base.explain(prepared, "gradcam", target, s.layer)
        report(1, 4)
        twin = self._twin(base, s.base, first.layer)
        report(2, 4)
        twin_prepared = twin.prepare(load_choice(s.image))
        second = twin.explain(twin_prepared, "gradcam", first.class_id, first.layer)
        report(3, 4)
        self.timings = (_forward_ms(base, prepared), _forward_ms(twin, twin_prepared))
        report(4, 4)
        self.results = [first, second]
        self.table.value = _dilation_table(
            (s.base, twin.name), (base.predict(prepared), twin.predict(twin_prepared)),
            [r.raw.shape for r in self.results], self.timings)
        ratio = self.timings[1] / self.timings[0]
        self.status.info(f"Grad-CAM @ {first.layer} for {first.label} ({first.class_id}): "
                         f"{_side(first)} vs {_side(second)}; forward {ratio:.1f}x slower")
        titles = [f"{name}: {_side(r)} map" for name, r in zip((s.base, twin.name), self.results)]
        return prepared.rgb, [display_map(r) for r in self.results], titles

    def _twin(self, base: Explainer, name: str, layer: str) -> Explainer:
        if name == "vgg16":
            return get_explainer("dilated_vgg16")
        key = (name, layer)
        if key not in self._twins:
            self.status.info(f"building the dilated {name} (one probe forward)...")
            after = finer_layer(base, layer)
            model = dilate(_explicit_same_padding(base.spec.model, after), after=after)
            spec = base.spec
            self._twins[key] = Explainer(ModelSpec(
                name=f"{name}_dilated", model=model.eval(), preprocess=spec.preprocess,
                labels=spec.labels, input_size=spec.input_size, default_layer=layer,
                input_range=spec.input_range,
                description=f"{name} dilated after {after}"), device=base.device)
        return self._twins[key]


def finer_layer(explainer: Explainer, layer: str, factor: int = 4) -> str:
    """The last layer before ``layer`` whose resolution is ``factor`` (else 2, 8) times finer,
    preferring a stage output (same depth as ``layer``): where dilation starts."""
    layers = explainer.layers()
    names = [l.name for l in layers]
    info = layers[names.index(layer)]
    for f in (factor, 2, 8):
        found = [l for l in layers[:names.index(layer)] if l.height == info.height * f]
        if found:
            same_depth = [l for l in found if l.name.count(".") == layer.count(".")]
            return (same_depth or found)[-1].name
    raise InvalidParameterError(
        f"nothing to dilate: expected a layer before {layer!r} ({info.resolution}) with a finer "
        f"resolution, found none; hint: choose a deeper layer.")


def _explicit_same_padding(model: nn.Module, after: str) -> nn.Module:
    """A copy where the convs after ``after`` that pad themselves in ``forward`` ("SAME"
    padding, like EfficientNet's Conv2dSame) become plain Conv2d with explicit symmetric
    padding, which :func:`dilate` can handle (exact once their stride is 1)."""
    from ..models.efficientnet_lite import Conv2dSame

    names = [n for n, _ in model.named_modules()]
    later = set(names[names.index(after) + 1:])
    clone = copy.deepcopy(model)
    for name, module in list(clone.named_modules()):
        if not (isinstance(module, Conv2dSame) and name in later and not name.startswith(after + ".")):
            continue
        k, d = module.kernel_size, module.dilation
        if k[0] % 2 == 0 or k[1] % 2 == 0:
            continue
        conv = nn.Conv2d(module.in_channels, module.out_channels, k, module.stride,
                         padding=(d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2), dilation=d,
                         groups=module.groups, bias=module.bias is not None)
        conv.load_state_dict(module.state_dict())
        parent, _, child = name.rpartition(".")
        setattr(clone.get_submodule(parent) if parent else clone, child,
                conv.to(module.weight.device, module.weight.dtype))
    return clone


def _forward_ms(explainer: Explainer, prepared, repeat: int = 2) -> float:
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        explainer.engine.scores(prepared.tensor)
        if explainer.device.type == "cuda":
            torch.cuda.synchronize(explainer.device)
        best = min(best, time.perf_counter() - started)
    return best * 1000.0


def _side(result: Explanation) -> str:
    return f"{result.raw.shape[0]}x{result.raw.shape[1]}"


def _dilation_table(names, predictions, shapes, timings) -> str:
    e = html.escape
    head = "".join(f"<th>{e(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{k + 1}</td>" + "".join(
            f"<td>{e(p.label)} ({p.class_id}) {p.probability:.3f}</td>" for p in pair) + "</tr>"
        for k, pair in enumerate(zip(*predictions)))
    res = "".join(f"<td>{h}x{w}</td>" for h, w in shapes)
    cost = "".join(f"<td>{ms:.0f} ms</td>" for ms in timings)
    return (f"<table class='cw-dilation'><tr><th>top-5</th>{head}</tr>{rows}"
            f"<tr><td>Grad-CAM map</td>{res}</tr><tr><td>forward</td>{cost}</tr>"
            f"<tr><td>ratio</td><td></td><td>{timings[1] / timings[0]:.1f}x</td></tr></table>")
