"""Issue 19.12: byte sizes and caps are shown in one unit convention (binary: KiB, MiB, GiB) everywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from vae_core import jobs
from vae_core.corpus import CorpusError, parse_text
from vae_core.units import GIB, KIB, MIB, format_bytes, mib

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("n", "shown"),
    [(0, "0 bytes"), (1, "1 byte"), (1023, "1,023 bytes"), (KIB, "1 KiB"), (1536, "1.5 KiB"), (50 * MIB, "50 MiB"),
     (50 * MIB + 1, "50.0 MiB"), (200 * MIB, "200 MiB"), (3 * GIB, "3 GiB"), (1_000_000, "976.6 KiB")],
)
def test_format_bytes(n, shown):
    assert format_bytes(n) == shown


def test_mib_is_the_unit_of_streamlits_upload_cap():
    assert mib(50) == 50 * 1024 * 1024 == jobs.DEFAULT_UPLOAD_MB * MIB


def test_upload_and_corpus_caps_say_size_and_cap_in_the_same_unit():
    data = b"the cat sat .\n" * 200
    _, err = jobs.validate_upload("big.txt", data, max_bytes=2 * KIB)
    assert err == f"big.txt is {format_bytes(len(data))}; the upload limit is 2 KiB"
    with pytest.raises(CorpusError, match=re.escape(f"is {format_bytes(len(data))}; the limit is 2 KiB")):
        parse_text(data, "txt", "big.txt", max_bytes=2 * KIB)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            out.add(id(first.value))
    return out


def test_no_decimal_megabytes_are_shown_anywhere():
    """Every size a user reads goes through format_bytes: no division by 1e6 / 1,000,000 / 1024 and no "MB", "KB",
    "GB" in a string of the app or the core (docstrings and comments may still say what they mean)."""
    offenders = []
    for folder in ("vae_core", "ui", "app_pages"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name == "units.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docs = _docstrings(tree)
            for node in ast.walk(tree):
                where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
                if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
                        and isinstance(node.right, ast.Constant) and node.right.value in (1e6, 1024)):
                    offenders.append(f"{where}: divides by {node.right.value}")
                if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                        and re.search(r"\b[KMG]B\b", node.value)):
                    offenders.append(f"{where}: {node.value!r}")
    assert not offenders, offenders
