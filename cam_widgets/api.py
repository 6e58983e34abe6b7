"""The one-call API and the shared explainers (one engine per model and device)."""
from __future__ import annotations

from typing import Any, Optional

from .explainer import Explainer, Target
from .models import DEFAULT_MODEL
from .result import Explanation

_SHARED: dict[tuple, Explainer] = {}


def get_explainer(model: str = DEFAULT_MODEL, device=None) -> Explainer:
    """The shared Explainer of a zoo model: every widget and call reuses its engine and cache."""
    key = (str(model).lower(), None if device is None else str(device))
    if key not in _SHARED:
        _SHARED[key] = Explainer(model, device=device)
    return _SHARED[key]


def explain(image: Any, model: Any = DEFAULT_MODEL, method: str = "gradcam",
            target: Target = None, layer: Optional[str] = None, *, device=None,
            **params) -> Explanation:
    """Explain ``image`` with ``method`` for class ``target`` (id or name; None = top class).

    ``model`` is a zoo name (shared explainer), an Explainer, or a ModelSpec / nn.Module.
    ``params``: the method's parameters, and ``noise`` / ``samples`` for SmoothGrad.
    Returns an Explanation whose ``.heatmap`` is float32 (H, W) in [0, 1] at the input size.
    """
    if isinstance(model, Explainer):
        explainer = model
    elif isinstance(model, str):
        explainer = get_explainer(model, device)
    else:
        explainer = Explainer(model, device=device)
    return explainer.explain(image, method, target, layer, **params)
