"""Photos in (an upload, a URL) and maps out (an export offered as a download) for an
:class:`~cam_widgets.widgets.explorer.Explorer`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ...app_mode import in_voila
from ...data import load_image
from ..shared.images import add_user_image, image_choice
from ..shared.status import errors_shown
from .controls import OVERLAY_SUFFIX
from .state import export_stem

#: The kernel's folder for exports outside an app page (JupyterLab, Notebook).
EXPORTS = "exports"


class ExplorerFiles:
    """An Explorer's photos in and maps out, held by it: it reads the explorer's state,
    result and status line, and works its upload, URL, image and export ``controls``."""

    def __init__(self, explorer, controls: dict) -> None:
        self.explorer, self.controls = explorer, controls

    def on_upload(self, change) -> None:
        files = change["new"]
        if files:
            with errors_shown(self.explorer.status):
                item = files[0]
                self._pick(add_user_image(item["name"], load_image(bytes(item["content"]))))

    def on_url(self, change) -> None:
        if change["new"].strip():
            with errors_shown(self.explorer.status):
                self._pick(image_choice(change["new"].strip()))  # named as set(image=url) names it

    def _pick(self, choice: str) -> None:
        """An image picked in the menu, which lists it already (every widget's ImageMenu):
        one request (new options, set quietly, did not make one for the first image)."""
        self.controls["image"].value = choice

    def on_export(self, change) -> None:
        """A format chosen: the view written and downloaded in the browser at once, in the
        export row (its link, or why it failed); the status line keeps what it says."""
        explorer = self.explorer
        suffix, row = change["new"], self.controls["download"]
        if not suffix:
            return
        try:
            stem = export_stem(explorer.state.image, explorer.explainer.spec.name, explorer.result)
            # on an app page the server's disk is out of the visitor's reach: a download only
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch) if in_voila() else Path(EXPORTS)
                path = explorer.export(folder / f"{stem}{suffix}", annotated=suffix != OVERLAY_SUFFIX)
                row.offer(path, "" if in_voila() else f"saved in {EXPORTS}/ and")
        except Exception as error:  # noqa: BLE001 - shown in the export row, in one line
            row.fail(error)
        finally:
            self.controls["export"].value = ""  # ready for the next export

    def export(self, path: os.PathLike, annotated: bool = True) -> Path:
        """Write the explorer's current view (see :meth:`Explorer.export`)."""
        state, result = self.explorer.state, self.explorer.result
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        alpha = 1.0 if state.view == "raw" else state.opacity
        return result.save(path, alpha=alpha, colormap=state.colormap, annotated=annotated)
