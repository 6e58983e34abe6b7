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
