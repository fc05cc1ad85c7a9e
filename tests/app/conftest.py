"""Fixtures for AppTest page tests: a tiny run on the built-in corpus, trained once per session.

`tiny_models_dir` points the app at a models dir holding that run (as its DEFAULT) and at an
empty per-test runs dir, through VAE_MODELS_DIR / VAE_RUNS_DIR / VAE_CACHE_DIR. Streamlit's
caches are process-wide, so they are cleared before every test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from vae_core.config import ModelConfig, TrainConfig
from vae_core.corpus import load_corpus
from vae_core.train import train

REPO = Path(__file__).resolve().parents[2]
TINY_RUN = "tiny-synthetic"

APP_TIMEOUT = 60


@pytest.fixture(scope="session")
def _tiny_models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/ with one tiny synthetic run (trained once per session) and a DEFAULT file naming it."""
    models = tmp_path_factory.mktemp("models")
    train(
        models / TINY_RUN,
        load_corpus("synthetic"),
        ModelConfig(embed_dim=16, hidden_dim=32, latent_dim=4),
        TrainConfig(max_steps=60, batch_size=64, log_every=20),
    )
    (models / "DEFAULT").write_text(TINY_RUN + "\n", encoding="utf-8")
    return models


@pytest.fixture
def tiny_models_dir(_tiny_models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny models dir, with the app's env pointed at it and at a fresh, empty runs dir."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("VAE_MODELS_DIR", str(_tiny_models_root))
    monkeypatch.setenv("VAE_RUNS_DIR", str(runs))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return _tiny_models_root


@pytest.fixture
def tiny_run_dir(tiny_models_dir: Path) -> Path:
    """The tiny run's directory (inside tiny_models_dir)."""
    return tiny_models_dir / TINY_RUN


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """st.cache_resource / st.cache_data are shared by every AppTest in the process: start each test clean."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def open_page(
    page: str | None = None,
    query: dict[str, str] | None = None,
    session: dict | None = None,
    timeout: float = APP_TIMEOUT,
) -> AppTest:
    """Run app.py (with optional query params and initial session state), then switch to `page`
    (e.g. "app_pages/sliders.py") and run it.

    Every rerun runs app.py (the router) again, so the sidebar's model picker and decode settings
    can be changed with their widgets between runs.
    """
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    for k, v in (session or {}).items():
        at.session_state[k] = v
    at.run()
    if page and page != "app_pages/overview.py":
        at.switch_page(page)
        at.run()
    return at


def markdown_bodies(at: AppTest) -> list[str]:
    """The text of every markdown-like element on the page (st.markdown, st.caption, alerts)."""
    out = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.info, at.warning, at.error, at.success):
        out.extend(e.value for e in kind)
    return out


def assert_no_exception(at: AppTest) -> None:
    """No exception box and no error box on the page."""
    assert not at.exception, f"the page raised: {[e.value for e in at.exception]}"
    assert not at.error, f"the page shows an error: {[e.value for e in at.error]}"


@pytest.fixture
def open_app(tiny_models_dir: Path):
    """open_page bound to the tiny models dir: open_app("app_pages/sliders.py", query={"s": "..."})."""
    return open_page


@pytest.fixture
def page_text():
    """markdown_bodies as a fixture: page_text(at) -> list of markdown/caption/alert bodies."""
    return markdown_bodies


@pytest.fixture
def assert_page_ok():
    """assert_no_exception as a fixture: assert_page_ok(at) fails on an exception or error box."""
    return assert_no_exception
