"""The studies: panels over one computation each, with the same roles as the other families
(``widget``: the shared :class:`~.widget.Study`; ``state``, ``controls``, ``view``, ``work``),
and one module per study: SmoothGrad's sample counts, a layer sweep and the
dilated-convolution study."""

from .dilation import DilationStudy
from .layer_sweep import LayerSweep
from .smoothgrad import SmoothGradStudy

__all__ = ["DilationStudy", "LayerSweep", "SmoothGradStudy"]
