"""The studies: a base of panels over one computation, SmoothGrad's sample counts, a layer
sweep and the dilated-convolution study."""

from .dilation import DilationStudy
from .layer_sweep import LayerSweep
from .smoothgrad import SmoothGradStudy

__all__ = ["DilationStudy", "LayerSweep", "SmoothGradStudy"]
