"""Server defaults: local only (127.0.0.1), an upload cap, no usage statistics, browser protections on; the
README and docs/reliability.md say how to expose the server deliberately and what that implies."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.app.conftest import REPO
from vae_core import jobs


def _config() -> dict:
    return tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))


def test_config_binds_to_localhost_with_an_upload_cap():
    server = _config()["server"]
    assert server["address"] == "127.0.0.1"
    assert server["maxUploadSize"] == jobs.DEFAULT_UPLOAD_MB
    assert server.get("enableXsrfProtection", True) is True  # not switched off
    assert server.get("enableCORS", True) is True
    assert _config()["browser"]["gatherUsageStats"] is False


def test_streamlit_reads_the_same_address_from_the_repository():
    """Streamlit's own config loader, started in the repository root (as `streamlit run app.py` is)."""
    code = ("from streamlit import config as c; c.get_config_options(force_reparse=True); "
            "print(c.get_option('server.address'), c.get_option('server.maxUploadSize'), "
            "c.get_option('runner.postScriptGC'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # postScriptGC off: a full gc.collect(2) after every rerun held the GIL ~200 ms per slider move
    assert out.stdout.split() == ["127.0.0.1", str(jobs.DEFAULT_UPLOAD_MB), "False"]


def test_make_run_binds_to_localhost_too():
    run_recipe = (REPO / "Makefile").read_text(encoding="utf-8").split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--server.address 127.0.0.1" in run_recipe


def test_docs_say_how_to_expose_it_and_what_that_means():
    for doc in (REPO / "README.md", REPO / "docs" / "reliability.md"):
        text = doc.read_text(encoding="utf-8")
        assert "--server.address 0.0.0.0" in text, doc.name
        assert "reverse proxy" in text and "authentication" in text, doc.name
        assert "upload" in text and "train" in text, doc.name
