"""vae_core never imports streamlit, ui or pages (the import direction is pages → ui → vae_core)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "vae_core"
FORBIDDEN = ("streamlit", "ui", "pages", "app_pages", "app")


def _imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.append(node.args[0].value)
    return names


def test_core_package_exists():
    assert sorted(CORE.glob("*.py")), f"no modules found under {CORE}"


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_does_not_import_the_app(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [m for m in _imported_modules(tree) if m.split(".")[0] in FORBIDDEN]
    assert not bad, f"{path.name} imports {bad}: vae_core must not depend on the app"


def test_the_checker_catches_a_streamlit_import():
    tree = ast.parse("import os\nfrom streamlit import cache_data\nimport ui.loaders\nx = __import__('pages')")
    assert [m for m in _imported_modules(tree) if m.split(".")[0] in FORBIDDEN] == ["streamlit", "ui.loaders", "pages"]
