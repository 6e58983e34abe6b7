# Kernel culling for the Binder image's Jupyter server (JupyterLab, and Voila as its server
# extension): binder/postBuild copies this file to ~/.jupyter, beside the
# jupyter_server_config.json it writes (the WebSocket ping setting); jupyter_server reads both.
#
# A closed Voila tab ends its kernel itself (scripts/voila.py, also copied to ~/.jupyter, sets
# the `_xsrf` cookie its shutdown request needs). Kernels left anyway, by a browser that crashed
# or lost its network, or by a notebook closed in JupyterLab (which keeps its kernel), are shut
# down once they have had no connected tab and run nothing for CULL_IDLE_SECONDS (default 600;
# 0 turns culling off), checked every CULL_INTERVAL_SECONDS (default 60): each kernel holds 1 to
# 1.8 GB, and a Binder session has 2 GB. A kernel with an open tab is never culled.
import os

c = get_config()  # noqa: F821 - defined by traitlets' config loader


def _seconds(name, default):
    """Whole seconds from the environment; a value that is not one keeps the default."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(0, int(raw)) if raw else default
    except ValueError:
        print(f"[jupyter_server_config.py] {name}={raw!r} is not a whole number of seconds; "
              f"using {default}")
        return default


c.MappingKernelManager.cull_idle_timeout = _seconds("CULL_IDLE_SECONDS", 600)
c.MappingKernelManager.cull_interval = _seconds("CULL_INTERVAL_SECONDS", 60) or 60
c.MappingKernelManager.cull_connected = False
c.MappingKernelManager.cull_busy = False
