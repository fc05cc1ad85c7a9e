"""Reliability suite fixtures: the AppTest fixtures of tests/app (a tiny trained run, open_app,
assert_page_ok) re-exported here so these tests reuse them instead of building their own."""

from tests.app.conftest import (  # noqa: F401 - fixtures are found by name
    _clear_streamlit_caches,
    _tiny_models_root,
    assert_page_ok,
    open_app,
    page_text,
    tiny_models_dir,
    tiny_run_dir,
)
