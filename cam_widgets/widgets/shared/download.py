"""A file offered to the browser: downloaded at once, with a link to download it again."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import anywidget
import traitlets

from ...errors import CamWidgetsError

#: Largest file offered to the browser: it travels in the widget's state (an HTML view with
#: plotly.js is ~5 MB).
DOWNLOAD_LIMIT = 16 * 2**20


class Download(anywidget.AnyWidget):
    """A row's text and a download link: each new file (``offer``) is saved by the browser at
    once, so that one choice of a format downloads it (the kernel may run on another machine:
    Voila, Binder), and the link stays for another try (a browser that asks before a second
    automatic download). Its text and errors are its own: the widget's status line stays."""

    _esm = r"""
    // The link must read as a link in every front end (Voila's theme shows plain text).
    const LINK = "color:#0b62a4;text-decoration:underline;font-weight:600;margin-left:6px";
    export default {
      render({ model, el }) {
        const text = document.createElement("span");
        const link = document.createElement("a");
        link.className = "cw-download";
        link.style.cssText = LINK;
        el.style.lineHeight = "1.4";
        el.append(text, link);
        let url = null;
        const show = (now) => {
          text.textContent = model.get("text");
          text.style.color = model.get("error") ? "#c00" : "";
          if (url) { URL.revokeObjectURL(url); url = null; }
          const name = model.get("filename"), data = model.get("payload");
          if (!name || !data || data.byteLength === 0) { link.style.display = "none"; return; }
          url = URL.createObjectURL(new Blob([data], { type: model.get("mime") }));
          link.href = url;
          link.download = name;
          link.textContent = "\u2b07\u00a0" + name;  // (the arrow stays with its name)
          link.title = "download " + name;
          link.style.display = "";
          if (now) link.click();  // a new file: saved at once
        };
        show(false);  // a view drawn again shows the last file, without saving it again
        const offered = () => show(true), changed = () => show(false);
        model.on("change:serial", offered);
        model.on("change:text change:error", changed);
        return () => {
          model.off("change:serial", offered);
          model.off("change:text change:error", changed);
          if (url) URL.revokeObjectURL(url);
        };
      }
    };
    """
    text = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Bool(False).tag(sync=True)
    filename = traitlets.Unicode("").tag(sync=True)
    mime = traitlets.Unicode("application/octet-stream").tag(sync=True)
    payload = traitlets.Bytes(b"").tag(sync=True)
    #: one more per file offered: the browser saves the file when it changes
    serial = traitlets.Int(0).tag(sync=True)

    def offer(self, path: Path, text: str = "") -> None:
        """The file at ``path`` to the browser (saved at once), ``text`` before its link; a
        file above :data:`DOWNLOAD_LIMIT` is named, not sent."""
        path = Path(path)
        size = path.stat().st_size
        with self.hold_sync():
            self.error = False
            if size > DOWNLOAD_LIMIT:
                self.filename, self.payload = "", b""
                self.text = (
                    f"{text} {path.name}: {size / 2**20:.1f} MB, too large to send to the browser"
                ).strip()
                return
            self.text, self.filename = text, path.name
            self.mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.payload = path.read_bytes()
            self.serial += 1

    def fail(self, error: BaseException) -> None:
        """Say why the export failed, in one line (no link: the last file is not this one)."""
        what = str(error) if isinstance(error, CamWidgetsError) else f"{type(error).__name__}: {error}"
        with self.hold_sync():
            self.filename, self.payload, self.error = "", b"", True
            self.text = "export failed: " + " ".join(what.split())
