"""Engine layer: the only code that touches hooks, autograd, devices and dtypes."""

from .capture import Capture, PerImageCapture, ScoreCapture
from .device import choose_device
from .engine import Engine
from .heap import gives_back_memory, return_freed_memory
from .hooks import RELU_LIKE, count_hooks
from .layers import LayerInfo
from .passes import ForwardPass

__all__ = [
    "Engine",
    "Capture",
    "PerImageCapture",
    "ScoreCapture",
    "LayerInfo",
    "ForwardPass",
    "RELU_LIKE",
    "choose_device",
    "count_hooks",
    "gives_back_memory",
    "return_freed_memory",
]
