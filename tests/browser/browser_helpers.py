"""Page helpers for the browser tests: read Plotly's state from the DOM, probe widgets."""

from __future__ import annotations

#: Per Plotly graph div: annotation texts and, per trace, its type and a digest of z / x / y.
PLOT_STATE_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
  titles: ((gd.layout || {}).annotations || []).map(a => a.text),
  traces: (gd.data || []).map(t => {
    const out = {type: t.type};
    if (t.type === 'heatmap' && t.z) {
      const rows = Array.from(t.z, r => Array.from(r, Number));
      const flat = rows.flat();
      out.shape = [rows.length, rows.length ? rows[0].length : 0];
      out.sum = flat.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
      out.finite = flat.filter(Number.isFinite).length;
      out.sample = flat.filter((_, i) => i % Math.max(1, Math.floor(flat.length / 64)) === 0)
                       .slice(0, 64).map(v => Math.round(v * 1e4) / 1e4);
    }
    if (t.type === 'scatter') {
      out.x = Array.from(t.x || [], Number);
      out.y = Array.from(t.y || [], Number);
    }
    return out;
  }),
  calcdataHeatmaps: (gd.calcdata || []).filter(c => c[0] && c[0].trace && c[0].trace.type === 'heatmap').length,
}))"""


def plot_state(page) -> list[dict]:
    return page.evaluate(PLOT_STATE_JS)


def heatmaps(plot: dict) -> list[dict]:
    return [t for t in plot["traces"] if t["type"] == "heatmap"]


def markers(plot: dict) -> list[dict]:
    return [t for t in plot["traces"] if t["type"] == "scatter"]


def status_text(page, nth: int = 0) -> str:
    """Text of the nth status line (.cw-status / .cw-warning / .cw-error)."""
    return page.evaluate(
        """n => { const e = document.querySelectorAll('.cw-status, .cw-warning, .cw-error')[n];
                  return e ? e.textContent : null; }""",
        nth,
    )


# Voila: window.jupyterapp.widgetManager is exposed. anywidget (0.9-0.11) rejects a model's
# `runtime.ready` if its ESM has not loaded+initialised within 2 s; afterwards the model
# silently drops every Python->JS message. Send each AnyModel an empty update and see it handled.
#: The probe itself, on a widget manager ``wm``: every AnyModel given an empty update; the ids
#: (and reasons) of those that do not handle it within 5 s (Voila's and Lab's probes share it).
PROBE_ANYWIDGETS_JS = """
  const ents = wm._models instanceof Map ? [...wm._models.entries()] : Object.entries(wm._models);
  const dead = [];
  for (const [id, p] of ents) {
    const m = await p;
    if (m.get('_model_name') !== 'AnyModel') continue;
    const msg = {content: {data: {method: 'update', state: {}, buffer_paths: []}}, buffers: [],
                 metadata: {}, header: {msg_type: 'comm_msg'}, parent_header: {}};
    try {
      await Promise.race([m._handle_comm_msg(msg),
                          new Promise((_, rej) => setTimeout(() => rej(new Error('probe timeout')), 5000))]);
    } catch (e) { dead.push(`${id} (${m.get('_anywidget_id')}): ${e && e.message}`); }
  }
  return dead;
"""
DEAD_ANYWIDGETS_JS = (
    """async () => {
  const wm = window.jupyterapp && window.jupyterapp.widgetManager;
  if (!wm) return null;"""
    + PROBE_ANYWIDGETS_JS
    + "}"
)


#: plotly's, not ours: raised by its FigureWidget on some updates in every front end
PLOTLY_UPSTREAM_ERRORS = ("setData is not a function",)


def errors_except(page, known: tuple[str, ...] = PLOTLY_UPSTREAM_ERRORS) -> list[str]:
    """The page's JavaScript errors, less the known upstream ones (messages containing ``known``)."""
    return [e for e in page.errors if not any(k in e for k in known)]


#: Where the nth Plotly figure lies on the page (viewport px): the union of its ``.main-svg``
#: layers (colour bar included), its colour bar, each subplot's plot area (``.nsewdrag``), the
#: output area holding it and the notebook panel (``.jp-NotebookPanel``: the visible part).
FIGURE_GEOMETRY_JS = """n => {
  const gd = document.querySelectorAll('.js-plotly-plot')[n];
  if (!gd) return null;
  const box = e => { if (!e) return null; const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}; };
  const svgs = [...gd.querySelectorAll('.main-svg')].map(box);
  if (!svgs.length) return null;
  const left = Math.min(...svgs.map(b => b.left)), right = Math.max(...svgs.map(b => b.right));
  const top = Math.min(...svgs.map(b => b.top)), bottom = Math.max(...svgs.map(b => b.bottom));
  return {
    figure: {left, right, top, bottom, width: right - left, height: bottom - top},
    colorbar: box(gd.querySelector('.colorbar')),
    panels: [...gd.querySelectorAll('.nsewdrag')].map(box),
    output: box(gd.closest('.jp-OutputArea-output')),
    notebook: box(gd.closest('.jp-NotebookPanel')),
  };
}"""

#: True once the nth figure's size and its panels' sizes stayed the same for ``ms`` (and the
#: figure is wider than ``minWidth``); keeps its last reading on window.__cwSettle.
FIGURE_SETTLED_JS = """([n, ms, minWidth]) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[n];
  const svg = gd && gd.querySelector('.main-svg');
  if (!svg) return false;
  const r = svg.getBoundingClientRect();
  const key = [r.width, r.height, ...[...gd.querySelectorAll('.nsewdrag')].map(e => {
    const b = e.getBoundingClientRect(); return b.width + 'x' + b.height; })].join(',');
  const now = performance.now(), s = window.__cwSettle;
  if (!s || s.key !== key) { window.__cwSettle = {key, since: now}; return false; }
  return r.width > minWidth && now - s.since >= ms;
}"""


def figure_geometry(page, plot_index: int = 0) -> dict | None:
    return page.evaluate(FIGURE_GEOMETRY_JS, plot_index)


def wait_figure_settled(
    page, plot_index: int = 0, *, wider_than: float = 0, quiet_ms: int = 600, timeout: int = 15_000
) -> dict:
    """Wait (bounded) until the figure is wider than ``wider_than`` and its size has not changed
    for ``quiet_ms`` (a resize re-fits after a debounce and a redraw); returns its geometry."""
    page.evaluate("() => { window.__cwSettle = null; }")
    page.wait_for_function(
        FIGURE_SETTLED_JS, arg=[plot_index, quiet_ms, wider_than], timeout=timeout, polling=100
    )
    return figure_geometry(page, plot_index)


def watched_page(browser, viewport: dict):
    """(context, page) at ``viewport``; the page collects its uncaught errors (``.errors``)
    and console lines (``.console_lines``) for the checks and for failure evidence."""
    ctx = browser.new_context(viewport=viewport)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.errors = []  # uncaught exceptions
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.console_lines = []
    pg.on("console", lambda m: pg.console_lines.append(f"{m.type}: {m.text[:300]}"))
    return ctx, pg


def save_failure_evidence(page, shot, state, full_page: bool = False) -> None:
    """A failed test's evidence: a screenshot at ``shot``, ``state(page)`` (what was drawn),
    the page's errors and the console's last lines."""
    try:
        page.screenshot(path=str(shot), full_page=full_page, timeout=15_000)
        print(f"failure screenshot: {shot}")
        print("state:", state(page))
    except Exception as e:  # noqa: BLE001 - evidence is best effort
        print("could not capture failure evidence:", e)
    print("page errors:", page.errors)
    print("console:", "\n".join(page.console_lines[-40:]))
