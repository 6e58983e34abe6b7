"""The one place that decides device and precision."""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..errors import InvalidParameterError, describe

DeviceLike = Union[str, torch.device, None]


def choose_device(device: DeviceLike = None) -> torch.device:
    """CUDA when available, else CPU; an explicit ``device`` wins.

    Raises:
        InvalidParameterError: unknown device string, or CUDA asked for where there is none.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidParameterError(
            f"'device' must be 'cpu', 'cuda', 'cuda:N' or None (got {describe(device)})"
        ) from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            "'device' is 'cuda' but no CUDA GPU is available here; use device='cpu' or None"
        )
    return chosen


def module_device(model: torch.nn.Module) -> Optional[torch.device]:
    """The device of the model's first parameter or buffer, or None for a stateless module."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return None
