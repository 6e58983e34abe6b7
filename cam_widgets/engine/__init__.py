"""Engine layer: the only code that touches hooks, autograd, devices and dtypes."""
from .device import choose_device
from .engine import Engine, Capture, LayerInfo
from .hooks import RELU_LIKE, count_hooks
from .passes import ForwardPass

__all__ = ["Engine", "Capture", "LayerInfo", "ForwardPass", "RELU_LIKE", "choose_device", "count_hooks"]
