"""JupyterLab's browser console in the tests (issue 19): which of its errors and warnings are
explained, and a probe for anywidget models that missed anywidget's 2 s deadline.

A console line is an error or a warning the page logged (``page.console_lines``, "error: ..." or
"warning: ...") or an uncaught error (``page.errors``); each must contain a fragment of
``EXPLAINED`` (with its cause) or, under the conditions of ``unexplained_console``, anywidget's
deadline message.
"""

from __future__ import annotations

from .browser_helpers import PROBE_ANYWIDGETS_JS

#: (fragment of the line, its cause): harmless lines of JupyterLab's console on the quickstart.
EXPLAINED: tuple[tuple[str, str], ...] = (
    (
        "setData is not a function",
        "plotly's FigureWidget (its own JavaScript) raises it on some updates in every front end; "
        "the figure is drawn and updated all the same (see browser_helpers.PLOTLY_UPSTREAM_ERRORS)",
    ),
)

#: anywidget 0.11 rejects a model whose module has not loaded and bound within
#: AbortSignal.timeout(2000) (a browser starved of CPU parsing Plotly's bundle); every later
#: message from Python to that model then fails with this line (README, "A class on one server
#: or on Binder"). Never harmless: the model is dead. See ``unexplained_console``.
ANYWIDGET_DEADLINE = "[anywidget] Failed to initialize model"

#: JupyterLab started with --LabApp.expose_app_in_browser=True: from window.jupyterapp, the
#: widget manager of the notebook open in the main area (through any widget view of its
#: outputs), then every anywidget model given an empty update, as Python would send: a model
#: that missed the deadline rejects it (the ``DEAD_ANYWIDGETS_JS`` probe of browser_helpers, for
#: Voila, reaches the manager directly). null: no widget view found.
LAB_DEAD_ANYWIDGETS_JS = (
    """async () => {
  const app = window.jupyterapp;
  if (!app) return null;
  const seen = new Set();
  const managerOf = (w) => {
    if (!w || seen.has(w)) return null;
    seen.add(w);
    const view = w._view;
    if (view && view.model && view.model.widget_manager) return view.model.widget_manager;
    for (const child of w.children()) { const m = managerOf(child); if (m) return m; }
    return null;
  };
  let wm = null;
  for (const w of app.shell.widgets('main')) { wm = managerOf(w); if (wm) break; }
  if (!wm) return null;"""
    + PROBE_ANYWIDGETS_JS
    + "}"
)


def lab_dead_anywidgets(page) -> list[str]:
    """The anywidget models of the open notebook that no longer take updates from Python."""
    dead = page.evaluate(LAB_DEAD_ANYWIDGETS_JS)
    assert dead is not None, "no widget manager found (is Lab started with expose_app_in_browser?)"
    return dead


def console_problems(page) -> list[str]:
    """The page's errors and warnings (console lines and uncaught errors), in order."""
    lines = [line for line in page.console_lines if line.startswith(("error:", "warning:"))]
    return lines + [f"uncaught: {e}" for e in page.errors]


def unexplained_console(page, deadline_rerun: bool) -> list[str]:
    """The page's errors and warnings that nothing in ``EXPLAINED`` accounts for.

    anywidget's deadline message is accounted for only with ``deadline_rerun``: the probe found
    models that missed the deadline when the notebook was first run and the notebook was run
    again, as README tells a user, and the caller checks that no model is dead now. A dead model
    never recovers, so the message is never let through merely because figures were drawn (a
    dead figure still draws; it ignores every later update)."""
    out = []
    for line in console_problems(page):
        if any(fragment in line for fragment, _cause in EXPLAINED):
            continue
        if deadline_rerun and ANYWIDGET_DEADLINE in line:
            continue
        out.append(line)
    return out
