"""Whether this kernel serves a Voila app page: there the code is hidden and read-only, and
files the kernel writes stay on the server, out of the visitor's reach."""

from __future__ import annotations

import os

#: Set in the kernels Voila starts (voila.utils.ENV_VARIABLE), the first by its handler, the
#: second by the code it runs before the notebook.
VOILA_VARIABLES = ("VOILA_BASE_URL", "VOILA_KERNEL_ID")


def in_voila() -> bool:
    return any(name in os.environ for name in VOILA_VARIABLES)
