"""The one-call API and the shared explainers (one engine per model and device)."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .engine.device import choose_device
from .explainer import Explainer, Target
from .models import DEFAULT_MODEL, ModelSpec
from .result import Explanation

_SHARED: dict[tuple, Explainer] = {}
#: explain()'s Explainer of the last user model it was given: (model, device, explainer).
#: One only: it keeps that model alive, and a caller with many models builds Explainers.
_LAST_USER: tuple | None = None
#: Threads asking for the same explainer at once get one (a second would double the memory).
_SHARED_LOCK = threading.Lock()


#: Your models in the widgets: menu name -> Explainer, held weakly: the widgets that show a
#: model keep it (``widget_model(model, keep)``), so a model whose widgets are closed (a cell
#: run again) is freed and leaves the menus, instead of staying for the session.
_YOURS: weakref.WeakValueDictionary[str, Explainer] = weakref.WeakValueDictionary()


def widget_model(model: Any, keep: list | None = None) -> str:
    """The name a widget's model menu and state use for ``model``: a zoo name as it is; an
    Explainer, an nn.Module or a ModelSpec registered under "<its name> (yours)" (the same
    object twice: the same name, one Explainer), so that every widget can take your own model
    with the same rules as Explainer (never mutated, never moved). ``keep``: the widget's list
    that holds the Explainer as long as the widget lives (the registry holds it weakly)."""
    if isinstance(model, str):
        return model
    with _SHARED_LOCK:  # (look-up and insert as one step: two threads, one entry)
        found = next(
            (
                name
                for name, ex in _YOURS.items()
                if ex is model or ex.spec is model or ex.spec.model is model
            ),
            None,
        )
        if found is None:
            explainer = model if isinstance(model, Explainer) else Explainer(model)
            found, count = f"{explainer.name} (yours)", 1
            while found in _YOURS:
                count += 1
                found = f"{explainer.name} (yours {count})"
            _YOURS[found] = explainer
        if keep is not None:
            keep.append(_YOURS[found])
        return found


def your_models() -> list[str]:
    """Names of the models given to widgets that are still open (see :func:`widget_model`)."""
    with _SHARED_LOCK:
        return list(_YOURS)


def get_explainer(model: Any = DEFAULT_MODEL, device=None, weights_path=None) -> Explainer:
    """The shared Explainer of a zoo model: every widget and call reuses its engine and cache
    (``device=None`` and the device it picks share one; ``weights_path``: see load_model).
    An Explainer is returned as it is; a name from :func:`widget_model` gives its Explainer."""
    if isinstance(model, Explainer):
        return model
    if isinstance(model, str):
        yours = _YOURS.get(model)
        if yours is not None:
            return yours
    key = (
        str(model).lower(),
        str(choose_device(device)),
        None if weights_path is None else str(weights_path),
    )
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = _shared_build(key[0], device, weights_path)
        return _SHARED[key]


def _shared_build(name: str, device, weights_path) -> Explainer:
    """A zoo model's shared explainer; the dilated VGG16 is built on the shared VGG16's
    weights (a second copy would be 528 MB more in a session of 1 to 2 GB)."""
    if name == "dilated_vgg16":
        from .models.dilated_vgg import dilated_vgg16_spec

        key = ("vgg16", str(choose_device(device)), None if weights_path is None else str(weights_path))
        if key not in _SHARED:
            _SHARED[key] = Explainer("vgg16", device=device, weights_path=weights_path)
        base = _SHARED[key]
        with base.engine.exclusive():  # (a pass on it puts wrappers on the modules copied)
            spec = dilated_vgg16_spec(base.spec)
        return Explainer(spec, device=device)
    return Explainer(name, device=device, weights_path=weights_path)


def explain(
    image: Any,
    model: Any = DEFAULT_MODEL,
    method: str = "gradcam",
    target: Target = None,
    layer: str | None = None,
    *,
    device=None,
    weights_path=None,
    **params,
) -> Explanation:
    """Explain ``image`` with ``method`` for class ``target`` (id or name; None = top class).

    ``model`` is a zoo name (shared explainer; ``weights_path``: a weight file for it), an
    Explainer, or a ModelSpec / nn.Module (the last one given keeps its Explainer).
    ``params``: the method's parameters, and ``noise`` / ``samples`` for SmoothGrad.
    Returns an Explanation whose ``.heatmap`` is float32 (H, W) in [0, 1] at the input size.
    """
    if isinstance(model, Explainer):
        explainer = model
    elif isinstance(model, str):
        explainer = get_explainer(model, device, weights_path)
    else:
        explainer = _user_explainer(model, device)
    return explainer.explain(image, method, target, layer, **params)


def _user_explainer(model: Any, device) -> Explainer:
    """The Explainer of a user's model: the last one's again (its cached forwards, no new
    probe), else a new one."""
    global _LAST_USER
    with _SHARED_LOCK:
        if _LAST_USER is not None and _LAST_USER[0] is model and _LAST_USER[1] == device:
            return _LAST_USER[2]
        explainer = Explainer(model, device=device)
        module = model.model if isinstance(model, ModelSpec) else model
        # kept only when it runs the caller's module itself: a private copy (another device)
        # would not see the caller's later changes
        _LAST_USER = (model, device, explainer) if explainer.engine.model is module else None
        return explainer
