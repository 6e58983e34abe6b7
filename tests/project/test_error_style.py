"""One error style: a message about a bad value is written by ``cam_widgets.errors.expected``
("Invalid <name>: expected <what>, received <describe(value)>. Hint: <hint>"), never by hand.

The test reads the string literals of every cam_widgets module (docstrings left out) and
fails on the older styles: "'x' must be ... (got ...)", "x must be ..., got ..." and an
"Invalid x: expected ..." written without the helper. ``NOT_YET_CONVERTED`` names the files
that still write them; that list must only shrink: convert a file, then remove it here (the
second test fails while a listed file no longer needs its entry). Never add a file to it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cam_widgets"

OLD_STYLES = (
    re.compile(r"\(got "),  # "'x' must be ... (got <value>)"
    re.compile(r"\bmust (?:be|have|hold)\b[^\n]*?, got "),  # "x must be ..., got <value>."
    re.compile(r"\bInvalid [^:{}]{0,40}(?:\{\})?[^:{}]{0,20}: expected"),  # by hand, not expected()
)

# Files not converted yet (owned by other work at the time of issue 20). Only shrink this.
NOT_YET_CONVERTED: set[str] = set()


def _text(node: ast.AST) -> str:
    """A string literal's text; an f-string's placeholders read "{}"."""
    if isinstance(node, ast.Constant):
        return node.value
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def old_style_messages(path: Path) -> list[str]:
    """'line: text' for each string literal of ``path`` written in an older error style."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.JoinedStr)):
            skipped.add(id(node.value))  # docstrings and other bare strings: no message
        if isinstance(node, ast.JoinedStr):
            skipped.update(id(v) for v in node.values)  # read as part of their f-string
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Constant, ast.JoinedStr)):
            continue
        if isinstance(node, ast.Constant) and not isinstance(node.value, str):
            continue
        text = _text(node)
        if any(style.search(text) for style in OLD_STYLES):
            found.append(f"{node.lineno}: {text[:90]}")
    return found


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_bad_value_messages_are_written_by_expected():
    offenders = {
        _relative(path): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if _relative(path) not in NOT_YET_CONVERTED and (found := old_style_messages(path))
    }
    assert not offenders, (
        "write these messages with cam_widgets.errors.expected(name, what, received, hint): "
        + "; ".join(f"{p}:{line}" for p, lines in offenders.items() for line in lines)
    )


def test_the_not_yet_converted_list_only_shrinks():
    stale = sorted(p for p in NOT_YET_CONVERTED if not (PACKAGE.parent / p).is_file())
    stale += sorted(
        p
        for p in NOT_YET_CONVERTED
        if (PACKAGE.parent / p).is_file() and not old_style_messages(PACKAGE.parent / p)
    )
    assert not stale, f"remove from NOT_YET_CONVERTED (converted or gone): {', '.join(stale)}"


def test_the_scan_sees_each_old_style():
    samples = [
        "raise E(f\"'tolerance' must be a number >= 0 (got {describe(t)})\")",
        "raise E(f\"fmt must be 'png' or 'jpeg', got {describe(fmt)}.\")",
        'raise E(f"Invalid timeout: expected a number, received {describe(t)}.")',
        'raise E(f"Invalid {name}: expected a number, received {describe(t)}.")',
    ]
    for sample in samples:
        tree = ast.parse(sample)
        node = next(n for n in ast.walk(tree) if isinstance(n, (ast.JoinedStr, ast.Constant)))
        assert any(style.search(_text(node)) for style in OLD_STYLES), sample
    assert not any(style.search("Invalid timeout") for style in OLD_STYLES)
