"""Jupyter widgets over the shared engine, in families: ``explorer/``, ``compare/`` (with its
metrics panel), ``studies/``, and the parts they share in ``shared/`` (no family imports
another)."""

from .compare import Compare
from .explorer import Explorer
from .shared.images import add_user_image as add_user_image  # your photo in every widget's menu
from .studies import DilationStudy, LayerSweep, SmoothGradStudy

__all__ = ["Compare", "DilationStudy", "Explorer", "LayerSweep", "SmoothGradStudy"]  # the widgets
