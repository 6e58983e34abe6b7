"""The method registry: public names -> small functions over a MethodContext.

Widgets and the CLI build their menus from here; nothing looks methods up any other way.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InvalidParameterError, UnknownMethodError, close_matches, expected

#: What a method may declare it needs, and what that asks of the model.
NEEDS_OF_MODEL = {
    "layer": "a layer whose output reads as a grid (N, C, h, w): channels first or last, or "
    "tokens (N, 1+h*w, C) as in ViT; any other layout through Explainer(reshape=...)",
    "gradients": "gradients of the class score to the layer",
    "input_gradients": "gradients of the class score to the input pixels",
    "guided": "ReLU-like activations (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, "
    "F.relu): guided backprop rewrites their backward. GELU, SiLU and the like are "
    "not guided, so a model with none of these (ViT, Swin, ConvNeXt) is refused",
    "head": "the layer feeding a global-average-pool + linear head directly",
    "extra_forwards": "more forward passes (masked or interpolated inputs), in batches",
}
NEEDS = frozenset(NEEDS_OF_MODEL)


@dataclass(frozen=True)
class MethodOutput:
    """A method's result for K classes x N images.

    Attributes:
        maps: (K, N, h, w) signed maps at layer resolution (CAM family) or input resolution.
        attribution: optional (K, N, 3, H, W) per-channel input attribution (pixel family).
    """

    maps: torch.Tensor
    attribution: torch.Tensor | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: public name (``"gradcam++"``).
        fn: ``fn(ctx) -> MethodOutput``.
        family: ``"cam"`` (layer maps) or ``"pixel"`` (input-resolution maps).
        needs: what the method needs from the engine, and so of the model (see
            :data:`NEEDS_OF_MODEL`: "guided" methods need ReLU-like activations).
        clip_negative: whether the displayed map keeps only positive evidence (a ReLU).
        defaults: default values of the method's own parameters.
        title: short human name for menus.
        reference: the paper the equation comes from.
        choices: the allowed values of string parameters.
        progress_unit: what the method's progress reports count ("masked copies"), for a
            slow method that reports progress.
    """

    name: str
    fn: Callable
    family: str
    needs: frozenset
    clip_negative: bool
    defaults: dict = field(default_factory=dict)
    title: str = ""
    reference: str = ""
    choices: dict = field(default_factory=dict)
    progress_unit: str = ""

    @property
    def needs_layer(self) -> bool:
        return "layer" in self.needs

    @property
    def needs_relu(self) -> bool:
        """Whether the method guides gradients through ReLU-like activations (guided
        backprop and its products): models without them (ViT, Swin) cannot run it."""
        return "guided" in self.needs

    @property
    def requirements(self) -> list[str]:
        """What the method asks of the model, one sentence a need (for docs and menus)."""
        return [NEEDS_OF_MODEL[need] for need in sorted(self.needs)]

    def check_params(self, params: dict) -> None:
        """One-line errors for unknown parameters and values of the wrong kind: each default
        tells the kind (bool, int >= 1, finite number, one of ``choices``); ``batch_size`` is
        None or an int >= 1 for every method."""
        allowed = set(self.defaults) | {"batch_size"}
        for key, value in params.items():
            if key not in allowed:
                raise InvalidParameterError(
                    expected(
                        f"parameter of method {self.name!r}",
                        f"one of {', '.join(sorted(allowed))}",
                        key,
                        close_matches(key, allowed),
                        problem=f"Method {self.name!r} has no parameter {key!r}",
                    )
                )
            default = self.defaults.get(key)
            if key == "batch_size" or (isinstance(default, int) and not isinstance(default, bool)):
                ok, kind = (
                    positive_int(value) or (key == "batch_size" and value is None),
                    "an int >= 1" + (" or None" if key == "batch_size" else ""),
                )
            elif isinstance(default, bool):
                ok, kind = isinstance(value, (bool, np.bool_)), "True or False"
            elif isinstance(default, float):
                ok = (
                    isinstance(value, numbers.Real)
                    and not isinstance(value, (bool, np.bool_))
                    and math.isfinite(value)
                )
                kind = "a finite number"
            else:
                options = self.choices.get(key, ())
                ok, kind = value in options, "one of " + ", ".join(map(repr, options))
            if not ok:
                raise InvalidParameterError(expected(f"{self.name} parameter {key!r}", kind, value))


def positive_int(value: object) -> bool:
    """An int >= 1 (numpy's integers too), not a bool."""
    # int(): typeshed's numbers.Integral declares no >= against an int
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and int(value) >= 1


_REGISTRY: dict[str, MethodSpec] = {}


def register(
    name: str,
    *,
    family: str,
    needs: set,
    clip_negative: bool,
    title: str,
    reference: str,
    defaults: dict | None = None,
    choices: dict | None = None,
    progress_unit: str = "",
) -> Callable:
    """Decorator registering ``fn`` under ``name``."""
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"unknown needs {sorted(unknown)} for method {name!r}")

    unchecked = [k for k, v in (defaults or {}).items() if isinstance(v, str) and k not in (choices or {})]
    if unchecked:  # check_params tells a string's allowed values from ``choices`` only
        raise ValueError(f"method {name!r}: string parameters {unchecked} need their choices")

    def decorate(fn: Callable) -> Callable:
        _REGISTRY[name] = MethodSpec(
            name,
            fn,
            family,
            frozenset(needs),
            clip_negative,
            dict(defaults or {}),
            title,
            reference,
            dict(choices or {}),
            progress_unit,
        )
        return fn

    return decorate


def _spelling(name: str) -> str:
    """A method name as typed, without case, spaces, hyphens or underscores: "Grad-CAM",
    "grad cam" and "GradCAM" are one method."""
    return "".join(ch for ch in name.lower() if ch not in " -_")


def _known_spellings() -> dict[str, str]:
    """Registry names and display titles (with or without a title's note, as in "Eigen-CAM
    (any class)"), by :func:`_spelling`."""
    known: dict[str, str] = {}
    for spec in _REGISTRY.values():
        for text in (spec.name, spec.title, spec.title.split(" (")[0]):
            if text:
                known.setdefault(_spelling(text), spec.name)
    return known


def get_method(name: str) -> MethodSpec:
    """The MethodSpec registered under ``name``, its display title or either spelled with
    other case, spaces or hyphens ("Grad-CAM++", "guided backprop"); UnknownMethodError with
    close matches otherwise."""
    if isinstance(name, str):
        if name in _REGISTRY:
            return _REGISTRY[name]
        found = _known_spellings().get(_spelling(name))
        if found is not None:
            return _REGISTRY[found]
    raise UnknownMethodError(
        expected(
            "method",
            f"one of {', '.join(sorted(_REGISTRY))} (or their titles, as 'cam-widgets methods' lists them)",
            name,
            close_matches(str(name).lower(), _REGISTRY),
            problem="Unknown method",
        )
    )


def list_methods(family: str | None = None) -> list[MethodSpec]:
    """Registered methods in registration order, optionally of one family."""
    return [m for m in _REGISTRY.values() if family is None or m.family == family]
