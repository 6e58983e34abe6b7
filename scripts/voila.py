# Voila's Python settings, read with scripts/voila.json (Voila loads both `voila.py` and
# `voila.json` from --Voila.config_file_paths): scripts/explorer.sh and the browser tests serve
# with them, and binder/postBuild copies this file to ~/.jupyter for Voila on Binder.
#
# 1. A closed tab ends its kernel. On `beforeunload`, Voila's page posts
#    /voila/api/shutdown/<kernel> with the `_xsrf` form field read from the `_xsrf` cookie, but
#    Voila's page handler never sets that cookie (tornado sets it on the first read of
#    `handler.xsrf_token`, which Voila's rendering never does), so jupyter_server refused every
#    shutdown (403 "'_xsrf' argument missing from POST", voila-dashboards/voila#1458) and each
#    closed tab left a 1 to 1.8 GB kernel running until the server stopped. The prelaunch hook
#    runs in the page's request handler before any byte of the page is sent; reading
#    `xsrf_token` there sets the cookie (or keeps an existing one). The XSRF check itself stays
#    on: only a page of the same origin can read the cookie and echo it back, which is what
#    JupyterLab's own pages do. (Not compatible with `preheat_kernel`, which is not used here.)
#    The same hook gives Voila's grey placeholders (one per code cell not yet run, progressive
#    rendering) a still look: their "shine" animates a background gradient, repainted at 60
#    frames a second for as long as any placeholder is on the page, which cost each waiting
#    page 0.12 to 0.16 CPU-s per second (its renderer and Chromium's GPU process; 0.004 still).
#    Five pages waiting 30 s for their kernels: some 20 CPU-s, about 10 s of a 2-core machine
#    that also runs the kernels (benchmarks/RESULTS.md, session 13). The placeholders, their
#    place and the status line that counts the seconds a cell computes stay. The rule goes into
#    the page as a <style> before the first markdown cell's text, in the copy of the notebook
#    Voila renders (markdown cells are not run; the file is unchanged, and JupyterLab never
#    sees it). VOILA_PLACEHOLDER_SHINE=1 keeps Voila's animation.
# 2. Kernels left behind anyway (a browser that crashed, a tab killed without `beforeunload`,
#    a lost network) are culled once idle: with no connected tab and not running for
#    CULL_IDLE_SECONDS (default 600; 0 turns culling off), checked every
#    CULL_INTERVAL_SECONDS (default 60). A kernel with an open tab is never culled, however
#    long its user stays idle (cull_connected False); nor is one still running (cull_busy False).
# 3. No module-federation error in the page's console. Voila loads every JupyterLab extension of
#    the environment into its page, Notebook 7's `@jupyter-notebook/lab-extension` too (its
#    "open in..." menus: nothing for an app page). Built for JupyterLab 4.7, it asks for
#    `@jupyterlab/docregistry`, which Voila 0.5's page (JupyterLab 4.2.5 inside) does not share,
#    and failed with "Failed to create module ... The getter for the shared module is not a
#    function ... #RUNTIME-012" and seven "[ Federation Runtime ] Version 4.2.5 ... does not
#    satisfy" warnings. Left out here. The "Unsatisfied version 4.2.5 ... (required ^4.6.2)"
#    warnings that stay come from ipywidgets' own extension (jupyterlab_widgets, built for
#    JupyterLab 4.6): its shared modules are not strict, so it runs on the 4.2.5 ones Voila
#    provides, as every browser test of the widgets shows. Offline, Voila's page template also
#    asks a CDN for Font Awesome ("Failed to load resource: net::ERR_NAME_NOT_RESOLVED", twice):
#    the icons come from the Font Awesome 5 bundled with ipywidgets' extension all the same.
import copy
import os

c = get_config()  # noqa: F821 - defined by traitlets' config loader


#: Voila's placeholders without their shine (the classes of voila's spinner.macro.html.j2).
STILL_PLACEHOLDERS = (
    "<style>.voila-skeleton-post .voila-skeleton-avatar, .voila-skeleton-post .voila-skeleton-line"
    " {animation: none;}</style>"
)


def _still_placeholders(notebook):
    """A copy of ``notebook`` whose first markdown cell starts with STILL_PLACEHOLDERS (None:
    no markdown cell, or the shine kept)."""
    if os.environ.get("VOILA_PLACEHOLDER_SHINE", "").strip() == "1":
        return None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            page = copy.copy(notebook)
            page.cells = list(notebook.cells)
            page.cells[index] = copy.deepcopy(cell)
            page.cells[index].source = STILL_PLACEHOLDERS + "\n\n" + cell.source
            return page
    return None


def _prelaunch(req, notebook, cwd):
    """Voila prelaunch hook: give the page its `_xsrf` cookie; placeholders without their
    shine (the notebook Voila renders, a copy: the file is unchanged)."""
    req.xsrf_token  # noqa: B018 - tornado sets the cookie on first read
    return _still_placeholders(notebook)


c.VoilaConfiguration.prelaunch_hook = _prelaunch


def _seconds(name, default):
    """Whole seconds from the environment; a value that is not one keeps the default (a
    config file that raised would be skipped whole, the hook above with it)."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(0, int(raw)) if raw else default
    except ValueError:
        print(f"[voila.py] {name}={raw!r} is not a whole number of seconds; using {default}")
        return default


c.MappingKernelManager.cull_idle_timeout = _seconds("CULL_IDLE_SECONDS", 600)
c.MappingKernelManager.cull_interval = _seconds("CULL_INTERVAL_SECONDS", 60) or 60
c.MappingKernelManager.cull_connected = False
c.MappingKernelManager.cull_busy = False

c.VoilaConfiguration.extension_denylist = ["@jupyter-notebook/lab-extension"]
