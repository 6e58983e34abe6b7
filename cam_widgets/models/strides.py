"""Output strides of a network's layers, measured by tracing one dummy forward.

:func:`output_stride` (input size / feature size of a layer) and :func:`stride_report` (the
same before and after :func:`~cam_widgets.models.dilate.dilate`); the trace also tells
``dilate`` where downsampling happens.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidParameterError, Received, UnknownLayerError, close_matches, expected

__all__ = ["output_stride", "stride_report"]

DOWNSAMPLERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _first_4d(args) -> torch.Tensor | None:
    for a in args:
        if isinstance(a, torch.Tensor) and a.dim() == 4:
            return a
    return None


class ShapeTrace:
    """Runs one dummy forward and records, in execution order, every leaf's input/output size."""

    def __init__(self, model: nn.Module, probe_size: int):
        self.leaves: list[tuple[str, nn.Module, tuple | None, tuple | None]] = []
        self.ends: dict[str, int] = {}  # module name -> number of leaves started when it ended
        self.outputs: dict[str, tuple | None] = {}
        self.probe = int(probe_size)
        handles = []
        counter = [0]

        def pre(name):
            def hook(module, args):
                counter[0] += 1
                x = _first_4d(args)
                self.leaves.append((name, module, tuple(x.shape[-2:]) if x is not None else None, None))

            return hook

        def post(name, leaf):
            def hook(module, args, output):
                out = output if isinstance(output, torch.Tensor) else None
                hw = tuple(out.shape[-2:]) if out is not None and out.dim() == 4 else None
                self.ends.setdefault(name, counter[0])
                self.outputs.setdefault(name, hw)
                if leaf:
                    for i in range(len(self.leaves) - 1, -1, -1):
                        n, m, hin, hout = self.leaves[i]
                        if m is module and hout is None:
                            self.leaves[i] = (n, m, hin, hw if hw is not None else ())
                            break

            return hook

        for name, module in model.named_modules():
            leaf = len(module._modules) == 0
            if leaf:
                handles.append(module.register_forward_pre_hook(pre(name)))
            if name:
                handles.append(module.register_forward_hook(post(name, leaf)))
        param = next(model.parameters(), None)
        kwargs = {"dtype": param.dtype, "device": param.device} if param is not None else {}
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, self.probe, self.probe, **kwargs))
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise InvalidParameterError(
                expected(
                    "model",
                    f"a model taking (1, 3, {self.probe}, {self.probe}) images",
                    Received(f"{type(model).__name__} that raised {type(exc).__name__}: {first}"),
                    "the model must accept a 3-channel image of that size; try another probe_size=",
                    problem="Model could not run on a probe input",
                )
            ) from None
        finally:
            model.train(was_training)
            for h in handles:
                h.remove()


def stride_of(probe: int, hw: tuple) -> int:
    if not hw or hw[0] <= 0:
        return 0
    return max(1, int(round(probe / hw[0])))


def resolve_after(model: nn.Module, after: str | int | None) -> str | None:
    if after is None:
        return None
    names = [n for n, _ in model.named_modules() if n]
    if isinstance(after, bool) or not isinstance(after, (int, str)):
        raise InvalidParameterError(
            expected("'after'", "a module name (str), an index into model.features (int) or None", after)
        )
    if isinstance(after, int):
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Sequential):
            raise InvalidParameterError(
                expected(
                    "'after' index",
                    "an int only for models with a 'features' nn.Sequential (VGG-style)",
                    Received(f"{after} for {type(model).__name__}"),
                    "pass a module name instead (e.g. 'layer2')",
                )
            )
        n = len(features)
        if not -n <= after < n:
            raise InvalidParameterError(
                expected(
                    "'after' index",
                    f"-{n} <= after < {n} (model.features has {n} modules)",
                    Received(str(after)),
                )
            )
        return f"features.{after % n}"
    if after not in names:
        raise UnknownLayerError(
            expected(
                "'after'",
                f"a module name of {type(model).__name__}",
                Received(repr(after)),
                close_matches(after, names),
                problem="Unknown layer for 'after'",
            )
        )
    return after


def _default_layer(model: nn.Module, trace: ShapeTrace) -> str | None:
    if isinstance(getattr(model, "features", None), nn.Module):
        return "features"
    last = None
    for name, module, _hin, hout in trace.leaves:
        if hout and not isinstance(module, GLOBAL_POOLS):
            last = name
    return last


def output_stride(model: nn.Module, layer: str | None = None, *, probe_size: int = 64) -> int:
    """Output stride of ``layer`` (input size / feature-map size), measured with one dummy forward.

    ``layer`` defaults to ``features`` when the model has one, else to the last module with a
    spatial (4-D) output that is not a global pool. ``probe_size`` is the side of the dummy
    input; it should be a multiple of the model's total stride (64 suits most ImageNet CNNs).
    """
    if layer is not None:
        names = [n for n, _ in model.named_modules() if n]
        if layer not in names:
            raise UnknownLayerError(
                expected(
                    "layer",
                    f"a module name of {type(model).__name__}",
                    Received(repr(layer)),
                    close_matches(layer, names),
                    problem="Unknown layer",
                )
            )
    trace = ShapeTrace(model, probe_size)
    if layer is None:
        layer = _default_layer(model, trace)
    hw = trace.outputs.get(layer) if layer is not None else None
    if not hw:
        why = "did not run" if layer not in trace.outputs else "returned a non 4-D output"
        raise UnknownLayerError(
            expected(
                "layer",
                f"a module producing (N, C, H, W) on a {probe_size}x{probe_size} probe",
                Received(f"{layer!r} that {why}"),
                problem="Layer has no spatial output",
            )
        )
    return stride_of(trace.probe, hw)


def stride_report(
    before: nn.Module, after: nn.Module, layer: str | None = None, *, probe_size: int = 64
) -> dict:
    """``{"layer", "before", "after", "probe_size"}``: output strides of ``layer`` in both models."""
    return {
        "layer": layer,
        "before": output_stride(before, layer, probe_size=probe_size),
        "after": output_stride(after, layer, probe_size=probe_size),
        "probe_size": int(probe_size),
    }
