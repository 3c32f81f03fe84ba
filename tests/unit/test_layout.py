"""The tests' own layout: test modules import helpers from tests/support, never from one
another or from conftest; tests/ holds no loose helper modules."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = TESTS / "support"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_no_module_imports_a_test_module_or_conftest() -> None:
    offenders = {
        f"{path.relative_to(TESTS)} imports {name}"
        for path in TESTS.rglob("*.py")
        for name in _imported_modules(path)
        if name == "conftest" or name.startswith("test_")
    }
    assert not offenders, f"import from tests/support instead: {sorted(offenders)}"


def test_helpers_live_in_support() -> None:
    loose = sorted(path.name for path in TESTS.glob("*.py") if path.name != "conftest.py")
    assert not loose, f"move {loose} into tests/support"
    assert not list(SUPPORT.glob("test_*.py")), "tests/support holds helpers, not tests"
