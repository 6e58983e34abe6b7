"""Packaging: pyproject.toml is the one source of metadata (setup.py a shim), environment.yml
lists the same dependencies; the README's commands."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def setup_requirements() -> set[str]:
    return set(pyproject()["project"]["dependencies"])


def environment_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip = [line.strip()[2:].strip() for line in lines[start + 1 :] if line.strip().startswith("- ")]
    return {p for p in pip if not p.startswith("-")}  # options (-e ., --extra-index-url)


def test_environment_matches_the_package():
    """environment.yml runs the notebooks and the app: the package's dependencies, its app extra
    (Voila) and JupyterLab, with pyproject's specifiers, and CPU torch."""
    extras = pyproject()["project"]["optional-dependencies"]
    jupyterlab = {r for r in extras["test"] if r.startswith("jupyterlab")}
    assert setup_requirements() and len(jupyterlab) == 1
    assert environment_requirements() == setup_requirements() | set(extras["app"]) | jupyterlab
    text = (ROOT / "environment.yml").read_text()
    assert "- --extra-index-url https://download.pytorch.org/whl/cpu" in text and "- -e ." in text
    python = re.search(r"^\s*- python=(\d+)\.(\d+)\s*$", text, re.M)
    floor = re.fullmatch(r">=(\d+)\.(\d+)", pyproject()["project"]["requires-python"])
    assert python and floor and tuple(map(int, python.groups())) >= tuple(map(int, floor.groups()))


def test_metadata_has_one_source_and_setup_py_is_a_shim():
    project = pyproject()["project"]
    assert project["name"] == "cam_widgets" and project["dynamic"] == ["version"]
    assert "version" not in project
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cam_widgets.__version__"}
    # the version is a plain string assignment, which setuptools reads without importing torch
    tree = ast.parse((ROOT / "cam_widgets" / "__init__.py").read_text(encoding="utf-8"))
    versions = [
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and [getattr(t, "id", None) for t in n.targets] == ["__version__"]
        and isinstance(n.value, ast.Constant)
        and isinstance(n.value.value, str)
    ]
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+\S*", versions[0])
    shim = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(shim) if isinstance(n, ast.Call)]
    assert len(calls) == 1 and not calls[0].args and not calls[0].keywords  # setup()
    assert project["scripts"] == {"cam-widgets": "cam_widgets.cli:main"}
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_installed_metadata_is_the_pyprojects():
    """The editable install in use was built from this pyproject (re-run scripts/setup.sh if not)."""
    import importlib.metadata as metadata

    import cam_widgets

    assert metadata.version("cam_widgets") == cam_widgets.__version__
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts["cam-widgets"] == "cam_widgets.cli:main"
    requires = set(metadata.requires("cam_widgets") or [])
    assert {r.replace(" ", "") for r in setup_requirements()} <= {r.replace(" ", "") for r in requires}


def test_test_extra_holds_the_app_extra_and_the_linters():
    extras = pyproject()["project"]["optional-dependencies"]
    assert set(extras) == {"app", "test"}
    assert set(extras["app"]) <= set(extras["test"])
    assert {r.split("==")[0] for r in extras["test"] if "==" in r} >= {"ruff", "mypy"}


def test_linters_are_configured_and_pinned_alike():
    """ruff's target is requires-python's floor; pre-commit runs the test extra's ruff, and mypy
    over the folders [tool.mypy] names."""
    config = pyproject()
    floor = config["project"]["requires-python"].removeprefix(">=").replace(".", "")
    assert config["tool"]["ruff"]["target-version"] == f"py{floor}"
    assert config["tool"]["mypy"]["python_version"] == config["project"]["requires-python"][2:]
    assert config["tool"]["mypy"]["files"] == ["cam_widgets/engine", "cam_widgets/methods"]
    ruff = next(r for r in config["project"]["optional-dependencies"]["test"] if r.startswith("ruff=="))
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    assert hooks.count(f'additional_dependencies: ["{ruff}"]') == 2  # ruff check, ruff format
    assert "entry: .venv/bin/python -m mypy" in hooks


def _unit(module: str) -> str:
    """The box of docs/architecture.md's drawing a module belongs to: its folder under
    cam_widgets/, or the top-level module itself (``__init__`` for the package)."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _import_edges() -> tuple[set, set]:
    """(module-level, all) imports between the drawing's units, ``errors`` left out."""
    package = ROOT / "cam_widgets"
    top_level, every = set(), set()
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = (
                    ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                    if node.level
                    else node.module or ""
                )
                targets = [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != "cam_widgets":
                    continue
                edge = (_unit(module), _unit(target))
                if edge[0] != edge[1] and "errors" not in edge:
                    every.add(edge)
                    if id(node) in body:
                        top_level.add(edge)
    return top_level, every


def test_the_architecture_drawing_is_the_import_graph():
    """docs/architecture.md's solid arrows are the module-level imports between its boxes
    (folders and top-level modules), and each dashed arrow (an import in a function) exists."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = text[text.index("```mermaid") : text.index("```", text.index("```mermaid") + 3)]
    boxes = dict(re.findall(r'^\s*(\w+)\["([^"]+?)[/ "(.]', drawing, re.M))
    names = {
        box: "__init__" if label == "cam_widgets" else label.removesuffix(".py")
        for box, label in boxes.items()
    }
    solid = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\w+) --> (\w+)$", drawing, re.M)}
    dashed = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\w+) -\.-> (\w+)$", drawing, re.M)}
    top_level, every = _import_edges()
    assert solid == top_level, (
        f"drawn but not imported: {sorted(solid - top_level)}; "
        f"imported but not drawn: {sorted(top_level - solid)}"
    )
    assert dashed <= every - top_level, (
        f"dashed arrows that are no function-level import: {sorted(dashed - (every - top_level))}"
    )


def test_the_package_declares_what_it_imports():
    """Third-party modules imported anywhere in cam_widgets/ are declared dependencies."""
    declared = {re.split(r"[<>=!~; \[]", r)[0].lower() for r in setup_requirements()}
    provided_by = {
        "PIL": "pillow",
        "skimage": "scikit-image",
        "sklearn": "scikit-learn",
        "IPython": "ipywidgets",
        "traitlets": "ipywidgets",
    }  # ipywidgets requires both
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    imported = set()
    for path in (ROOT / "cam_widgets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in stdlib and m != "cam_widgets"}
    missing = {m for m in third_party if provided_by.get(m, m).lower().replace("_", "-") not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


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
    app.initialize(
        [f"--Voila.config_file_paths={ROOT / 'scripts'}", str(ROOT / "notebooks" / "00_quickstart.ipynb")]
    )
    assert app.tornado_settings["ws_ping_timeout"] >= 24 * 3600 * 1000  # ms
    assert app.voila_configuration.progressive_rendering
