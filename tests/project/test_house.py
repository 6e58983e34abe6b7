"""The house rules that a move can break without any other test noticing: imports run one
way between files (no circles), and no module takes another's ``_private`` names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cam_widgets"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path):
    """(imported module, names, lineno, at module level) for each import of the package."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != root.name:
                continue
            yield target, [a.name for a in node.names], node.lineno, id(node) in top_level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root.name:
                    yield alias.name, [], node.lineno, id(node) in top_level


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in root.rglob("*.py")}


def _resolve(target: str, name: str, modules: dict[str, Path]) -> str:
    """``from target import name``: the submodule when ``name`` is one, else ``target``."""
    return f"{target}.{name}" if f"{target}.{name}" in modules else target


def private_imports(root: Path) -> list[str]:
    modules = _modules(root)
    found = []
    for module, path in modules.items():
        for target, names, line, _ in _imports(path, root):
            for name in names:
                if (
                    name.startswith("_")
                    and not name.startswith("__")
                    and _resolve(target, name, modules) == target
                    and target != module
                ):
                    found.append(f"{path.relative_to(root.parent)}:{line} {name} from {target}")
    return found


def import_circles(root: Path) -> list[str]:
    modules = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, names, _, top in _imports(path, root):
            if not top:
                continue  # an import inside a function runs later, on purpose
            for dep in {_resolve(target, n, modules) for n in names} or {target}:
                # a package's __init__ re-exporting its own modules is not an arrow back
                if dep in modules and dep != module and not module.startswith(dep + "."):
                    graph[module].add(dep)
    circles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                circles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return circles


def test_no_module_imports_another_modules_private_names():
    found = private_imports(PACKAGE)
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def test_module_level_imports_have_no_circles():
    circles = import_circles(PACKAGE)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_checks_catch_a_circle_and_a_private_import(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from .a import public\n")
    (root / "a.py").write_text("from .sub.b import _hidden\npublic = 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "b.py").write_text("from ..c import thing\n_hidden = 2\n")
    (root / "c.py").write_text("import pkg.a\nthing = 3\ndef later():\n    from .a import _own\n")
    assert import_circles(root) == ["pkg.a -> pkg.sub.b -> pkg.c -> pkg.a"]
    assert private_imports(root) == ["pkg/a.py:1 _hidden from pkg.sub.b", "pkg/c.py:4 _own from pkg.a"]


#: The widget families: each imports only ``shared`` and the layers below, never another family.
FAMILIES = ("explorer", "compare", "studies")
#: Most modules a widgets folder may hold (``__init__.py`` counted).
MAX_MODULES = 12


def family_arrows(widgets: Path, root: Path) -> list[str]:
    """Imports (at any level) from one widget family, or ``shared``, into another family."""
    found = []
    for path in widgets.rglob("*.py"):
        own = path.relative_to(widgets).parts[0]
        if own == "__init__.py":
            continue  # the package re-exports each family's widgets
        for target, _names, line, _ in _imports(path, root):
            parts = target.split(".")
            if parts[:2] != [root.name, "widgets"] or len(parts) < 3:
                continue
            other = parts[2]
            if other in FAMILIES and other != own:
                found.append(f"{path.relative_to(root.parent)}:{line} imports {target}")
    return found


def test_widget_families_import_no_other_family():
    found = family_arrows(PACKAGE / "widgets", PACKAGE)
    assert not found, "arrows between widget families:\n" + "\n".join(found)


def test_the_family_check_catches_an_arrow(tmp_path):
    root = tmp_path / "cam_widgets"
    for family in ("shared", "explorer", "studies"):
        (root / "widgets" / family).mkdir(parents=True)
        (root / "widgets" / family / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "widgets" / "__init__.py").write_text("from .explorer import thing\n")  # the package: fine
    (root / "widgets" / "studies" / "base.py").write_text(
        "from ..shared import a\nfrom ..explorer import b\n"
    )
    assert family_arrows(root / "widgets", root) == [
        "cam_widgets/widgets/studies/base.py:2 imports cam_widgets.widgets.explorer"
    ]


def test_no_widget_folder_holds_more_than_twelve_modules():
    widgets = PACKAGE / "widgets"
    crowded = {
        str(folder.relative_to(PACKAGE.parent)): count
        for folder in [widgets, *(p for p in widgets.iterdir() if p.is_dir() and p.name != "__pycache__")]
        if (count := len(list(folder.glob("*.py")))) > MAX_MODULES
    }
    assert not crowded, f"folders over {MAX_MODULES} modules: {crowded}"
