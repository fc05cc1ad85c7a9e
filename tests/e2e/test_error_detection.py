"""The suite catches broken pages: assert_no_error against a tiny Streamlit script that raises, shows an
error box, or is fine (no model, no torch: the server starts in a second or two)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from .conftest import assert_no_error, open_app_page, serve

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent(
    """
    import streamlit as st

    mode = st.query_params.get("mode", "ok")
    st.title(f"Mode {mode}")
    if mode == "raise":
        raise RuntimeError("a deliberately broken page")
    if mode == "error":
        st.error("Something the user must see went wrong")
    st.write("the rest of the page")
    """
)


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("e2e-toy")
    script = work / "toy_app.py"
    script.write_text(SCRIPT, encoding="utf-8")
    with serve(script, work, work / "models", work / "runs", cwd=work) as server:
        yield server


@pytest.mark.parametrize("mode", ["raise", "error"])
def test_assert_no_error_fails_on_a_broken_page(app_page, toy_server, mode: str):
    open_app_page(app_page, toy_server.url, f"?mode={mode}", timeout=30)
    with pytest.raises(AssertionError) as info:
        assert_no_error(app_page)
    expected = "deliberately broken" if mode == "raise" else "went wrong"
    assert expected in str(info.value)


def test_assert_no_error_passes_on_a_good_page(app_page, toy_server):
    open_app_page(app_page, toy_server.url, "?mode=ok", timeout=30)
    assert app_page.get_by_text("the rest of the page").is_visible()
    assert_no_error(app_page)


def test_servers_leave_no_process(tmp_path: Path):
    """stop() ends the server's whole process group."""
    script = tmp_path / "toy_app.py"
    script.write_text(SCRIPT, encoding="utf-8")
    with serve(script, tmp_path, tmp_path / "models", tmp_path / "runs", cwd=tmp_path) as server:
        pid = server.proc.pid
    assert server.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing is left in the server's process group
