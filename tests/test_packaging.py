"""Packaging: environment.yml and setup.py list the same dependencies; the README's commands."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_requirements() -> set[str]:
    text = (ROOT / "setup.py").read_text()
    block = text[text.index("INSTALL_REQUIRES = [") : text.index("]", text.index("INSTALL_REQUIRES"))]
    return set(re.findall(r'"([^"]+)"', block))


def environment_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    pip = [l.strip()[2:].strip() for l in lines[start + 1:] if l.strip().startswith("- ")]
    return {p for p in pip if not p.startswith("-e")}


def test_environment_matches_setup():
    assert setup_requirements() and environment_requirements() == setup_requirements()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci


def test_public_api_is_small_and_importable():
    import cam_widgets

    assert callable(cam_widgets.explain) and cam_widgets.Explainer
    assert len(cam_widgets.__all__) < 25


def test_the_explorer_serves_long_notebooks_whole():
    """Voila runs a notebook inside one WebSocket message handler, during which no pong is
    read: with jupyter_server's 90 s ping timeout, chapters running longer lost their socket
    and the page kept its placeholders. scripts/voila.json (the settings of explorer.sh and
    of the browser tests) lifts the timeout and keeps progressive rendering."""
    import pytest

    voila_app = pytest.importorskip("voila.app")
    script = (ROOT / "scripts" / "explorer.sh").read_text()
    assert "--Voila.config_file_paths=scripts" in script and 'cd "$(dirname "$0")/.."' in script
    app = voila_app.Voila()
    app.initialize([f"--Voila.config_file_paths={ROOT / 'scripts'}",
                    str(ROOT / "notebooks" / "00_quickstart.ipynb")])
    assert app.tornado_settings["ws_ping_timeout"] >= 24 * 3600 * 1000  # ms
    assert app.voila_configuration.progressive_rendering
