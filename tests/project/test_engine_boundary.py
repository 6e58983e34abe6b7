"""The engine's boundary (issue 20): nothing outside the engine runs autograd or touches a
capture's internals, so no module outside it reads an Explainer's ``.engine``; metrics,
widgets and the command line use the Explainer's public API (``scores``, ``batch_size``,
``batch_raw_maps``, ``layer_info``, ``model``, ``exclusive``, ``clear_cache`` ...)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cam_widgets"

#: The code that owns the engine: it, the methods run over it, and the two modules that
#: build and hold it.
INSIDE = ("cam_widgets/engine/", "cam_widgets/methods/", "cam_widgets/explainer.py", "cam_widgets/api.py")

#: Modules still reading ``.engine``, until they use the Explainer's public API. This list
#: must only shrink: a module is taken off when fixed (the test below says when), and none
#: is ever added.
NOT_YET: dict[str, str] = {}


def engine_reads(source: str) -> list[int]:
    """Line numbers reading an attribute named ``engine`` (``x.engine``, ``getattr(x, "engine")``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "engine":
            lines.append(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "engine"
        ):
            lines.append(node.lineno)
    return sorted(lines)


def _outside() -> dict[str, list[int]]:
    """{path relative to the repository: lines reading ``.engine``} of every module outside
    the engine's side."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(INSIDE):
            continue
        lines = engine_reads(path.read_text(encoding="utf-8"))
        if lines:
            found[relative] = lines
    return found


def test_no_module_outside_the_engine_reads_an_explainers_engine():
    found = _outside()
    offenders = {path: lines for path, lines in found.items() if path not in NOT_YET}
    assert not offenders, (
        f".engine read outside the engine (path: lines): {offenders}; use the Explainer's "
        f"public API (scores, batch_size, batch_raw_maps, layer_info, model, exclusive, "
        f"clear_cache), or add what is missing to cam_widgets/explainer.py"
    )


def test_the_list_of_modules_not_yet_fixed_only_shrinks():
    fixed = sorted(set(NOT_YET) - set(_outside()))
    assert not fixed, f"{fixed} no longer read .engine: take them off NOT_YET in this file"
    assert len(NOT_YET) <= 2  # the two widget modules of issue 20, never more
    assert not any(path.startswith("cam_widgets/metrics/") for path in NOT_YET)


def test_the_scan_finds_each_way_of_reading_the_engine():
    source = (
        "a = explainer.engine\n"
        "explainer.engine.scores(x)\n"
        "with base.engine.exclusive():\n    pass\n"
        "getattr(explainer, 'engine')\n"
        "engine = 1\n"  # a name, no attribute read
        "explainer.engines\n"
        "explainer.scores(x)\n"
    )
    assert engine_reads(source) == [1, 2, 3, 5]
