"""CSV exports: a cell (or header) beginning with = + - @ (or tab, CR) is prefixed with ' so a spreadsheet
shows it as text instead of running it; plain numbers are kept. Checked on ui.widgets.safe_csv directly,
as a property on arbitrary text, and on the bytes the Traversals and Interpolation pages hand to
st.download_button (decoded sentences replaced by formulas, so the export path itself is what is tested).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.app.conftest import REPO
from ui import loaders
from ui.widgets import FORMULA_PREFIXES, safe_csv

PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
FORMULAS = ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
            '=HYPERLINK("http://x","y")', "=cmd|' /C notepad'!'A1'")


def cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def dangerous(cell: str) -> bool:
    return cell.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.fullmatch(cell)


def test_safe_csv_neutralises_every_formula_start_and_keeps_numbers():
    df = pd.DataFrame({"=header": list(FORMULAS), "numbers": [-3.5, 2, -1e-3, 0, 1, 2, 3, 4],
                       "as_text": ["-3.00", "+1", "1e5", "ok", "a=b", "-", "+", "@"]})
    data = safe_csv(df)
    assert data.endswith(b"\r\n") and b"\"'\r=1+1\"" in data  # CRLF rows: a cell holding a bare CR is quoted
    rows = cells(data)
    assert rows[0][0] == "'=header"
    body = rows[1:]
    assert [r[0] for r in body] == ["'" + f for f in FORMULAS]
    assert [r[1] for r in body] == ["-3.5", "2.0", "-0.001", "0.0", "1.0", "2.0", "3.0", "4.0"]
    assert [r[2] for r in body] == ["-3.00", "+1", "1e5", "ok", "a=b", "'-", "'+", "'@"]
    assert not [c for r in rows for c in r if dangerous(c)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=8), st.text(max_size=10))
def test_safe_csv_property_no_cell_starts_a_formula(texts, header):
    df = pd.DataFrame({header or "h": texts, "n": range(len(texts))})
    rows = cells(safe_csv(df))
    assert not [c for r in rows for c in r if dangerous(c)]
    for original, shown in zip(texts, (r[0] for r in rows[1:]), strict=True):
        assert shown == original or (dangerous(original) and shown == "'" + original)


def test_every_download_goes_through_safe_csv():
    """No page or ui module writes CSV or a download button of its own."""
    offenders = []
    for p in sorted((REPO / "app_pages").glob("*.py")) + sorted((REPO / "ui").glob("*.py")) + [REPO / "app.py"]:
        text = p.read_text(encoding="utf-8")
        if p.name != "widgets.py" and (".to_csv(" in text or "download_button(" in text):
            offenders.append(p.name)
    assert not offenders, offenders


@pytest.fixture
def captured_downloads(monkeypatch) -> dict[str, bytes]:
    """st.download_button spied on: file name -> the bytes offered. Decoded sentences become formulas."""
    seen: dict[str, bytes] = {}
    real = streamlit.download_button

    def spy(label, data=None, file_name=None, *args, **kwargs):
        seen[str(file_name)] = data
        return real(label, data, file_name, *args, **kwargs)

    def formulas(run, z, cfg=None):
        n = 1 if torch.as_tensor(z).dim() == 1 else int(torch.as_tensor(z).shape[0])
        return [FORMULAS[i % len(FORMULAS)] for i in range(n)]

    monkeypatch.setattr(streamlit, "download_button", spy)
    monkeypatch.setattr(loaders, "decode_texts", formulas)
    return seen


@pytest.mark.parametrize(("page", "prefixes"), [("app_pages/traversals.py", ("traversal-",)),
                                                ("app_pages/interpolation.py", ("interpolation-", "attribute-"))])
def test_page_exports_are_neutralised(open_app, captured_downloads, page, prefixes):
    at = open_app(page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.get("download_button"), "the export button is on the page"
    for prefix in prefixes:
        name = next((n for n in captured_downloads if Path(n).name.startswith(prefix)), None)
        assert name, (prefix, list(captured_downloads))
        rows = cells(captured_downloads[name])
        flat = [c for r in rows for c in r]
        assert "'=1+1" in flat, "the formulas reached the export, neutralised"
        assert not [c for c in flat if dangerous(c)], [c for c in flat if dangerous(c)][:5]
