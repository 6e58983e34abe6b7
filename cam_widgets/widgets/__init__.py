"""Jupyter widgets over the shared engine (import this module to use them)."""

from .compare import Compare
from .dilation_study import DilationStudy
from .explorer import Explorer
from .layer_sweep import LayerSweep
from .smoothgrad_study import SmoothGradStudy

__all__ = ["Compare", "DilationStudy", "Explorer", "LayerSweep", "SmoothGradStudy"]
