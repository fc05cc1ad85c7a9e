"""The import direction is app_pages → ui → vae_core: vae_core never imports streamlit, ui or the pages (any
module, sub-packages included), and ui/, app_pages/ and app.py never import torch (they work on numpy arrays
and call vae_core). Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "vae_core"
FORBIDDEN_IN_CORE = ("streamlit", "ui", "pages", "app_pages", "app")
FORBIDDEN_IN_APP = ("torch",)
APP_FILES = sorted((REPO / "ui").rglob("*.py")) + sorted((REPO / "app_pages").rglob("*.py")) + [REPO / "app.py"]


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


def _forbidden(source: str, forbidden: tuple[str, ...]) -> list[str]:
    return [m for m in _imported_modules(ast.parse(source)) if m.split(".")[0] in forbidden]


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_core_package_exists():
    assert sorted(CORE.glob("*.py")), f"no modules found under {CORE}"


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=_rel)
def test_core_module_does_not_import_the_app(path: Path):
    bad = _forbidden(path.read_text(encoding="utf-8"), FORBIDDEN_IN_CORE)
    assert not bad, f"{_rel(path)} imports {bad}: vae_core must not depend on the app"


def test_app_files_are_found():
    names = {_rel(p) for p in APP_FILES}
    assert {"app.py", "ui/loaders.py", "app_pages/sliders.py"} <= names, sorted(names)


@pytest.mark.parametrize("path", APP_FILES, ids=_rel)
def test_app_module_does_not_import_torch(path: Path):
    bad = _forbidden(path.read_text(encoding="utf-8"), FORBIDDEN_IN_APP)
    assert not bad, f"{_rel(path)} imports {bad}: pages and ui work on numpy arrays through vae_core"


def test_the_checker_catches_a_streamlit_import():
    source = "import os\nfrom streamlit import cache_data\nimport ui.loaders\nx = __import__('pages')"
    assert _forbidden(source, FORBIDDEN_IN_CORE) == ["streamlit", "ui.loaders", "pages"]


def test_the_checker_catches_a_torch_import():
    source = (
        "import numpy as np\nimport torchvision_like_name\n"
        "def f():\n    import torch\n    from torch.nn import functional\n    return importlib.import_module('torch')\n"
    )
    assert _forbidden(source, FORBIDDEN_IN_APP) == ["torch", "torch.nn", "torch"]
    assert _forbidden("from vae_core import explore\nimport numpy", FORBIDDEN_IN_APP) == []


def test_the_checker_walks_sub_packages(tmp_path: Path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "deep.py").write_text("import streamlit as st\n", encoding="utf-8")
    found = [p for p in (tmp_path / "pkg").rglob("*.py") if _forbidden(p.read_text(), FORBIDDEN_IN_CORE)]
    assert [p.name for p in found] == ["deep.py"]
