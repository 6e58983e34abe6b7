"""cam_widgets: explore what a convolutional network looks at, interactively, in Jupyter.

Public API::

    import cam_widgets as cw
    result = cw.explain("chelsea", method="gradcam", target="tiger cat")
    result.heatmap          # float32 (224, 224) in [0, 1]
    ex = cw.Explainer("efficientnet_lite0"); ex.layers(); ex.predict("coffee")
"""

from .api import explain, get_explainer
from .data import get_scene, list_samples, list_scenes, load_image, sample_image
from .errors import CamWidgetsError
from .explainer import Explainer, Prediction
from .methods import Smoothing, get_method, list_methods
from .models import list_models, load_model
from .models.targets import contrast
from .result import Explanation

__version__ = "0.1.0"

_WIDGETS = ("Compare", "DilationStudy", "Explorer", "LayerSweep", "SmoothGradStudy")

__all__ = [
    "CamWidgetsError",
    "Explainer",
    "Explanation",
    "Prediction",
    "Smoothing",
    "explain",
    "get_explainer",
    "get_method",
    "get_scene",
    "list_methods",
    "list_models",
    "list_samples",
    "list_scenes",
    "load_image",
    "load_model",
    "sample_image",
    "contrast",
    *_WIDGETS,
]


def __getattr__(name: str):
    """``cw.Explorer`` and the other widgets, imported on first use: ipywidgets and plotly
    stay out of a script that only explains."""
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'cam_widgets' has no attribute {name!r}")
