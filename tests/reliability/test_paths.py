"""Paths typed in the app stay inside the configured data and run folders; run names are sanitised;
an existing run is never replaced without the overwrite box (and never while it runs).

Already covered elsewhere: tests/core/test_jobs.py (resolve_data_path on an absolute path elsewhere,
'../', /etc/passwd and a symlinked file; sanitize_run_name on a list of bad names; run_path;
start_training refusing an existing run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui.state import parse_run_name
from vae_core import jobs
from vae_core.runs import write_status

from .test_uploads import snapshot


@pytest.fixture
def data_layout(tmp_path, monkeypatch):
    """data/ (allowed, with a corpus, a symlinked file and a symlinked folder pointing out) and other/ (not)."""
    data, other = tmp_path / "data", tmp_path / "other"
    (data / "sub").mkdir(parents=True)
    other.mkdir()
    (data / "c.txt").write_text("a b\n", encoding="utf-8")
    (other / "secret.txt").write_text("x\n", encoding="utf-8")
    (data / "link.txt").symlink_to(other / "secret.txt")
    (data / "linkdir").symlink_to(other, target_is_directory=True)
    monkeypatch.setenv("VAE_DATA_DIRS", str(data))
    return data, other


@pytest.mark.parametrize(
    "typed",
    [
        "sub/../../other/secret.txt",  # '..' from inside a data folder
        "../other/secret.txt",
        "{other}/secret.txt",  # absolute, elsewhere
        "/etc/passwd",
        "~/.bashrc",
        "link.txt",  # a symlinked file pointing out
        "linkdir/secret.txt",  # through a symlinked folder
        "{data}/linkdir/secret.txt",
        "{data}/../other/secret.txt",
    ],
)
def test_typed_corpus_paths_outside_the_data_folders_are_refused(data_layout, typed):
    data, other = data_layout
    with pytest.raises(ValueError, match="must lie inside"):
        jobs.resolve_data_path(typed.format(data=data, other=other))


@pytest.mark.parametrize("typed", ["", "   ", "c.txt\x00/../../etc/passwd"])
def test_empty_or_nul_paths_are_refused(data_layout, typed):
    with pytest.raises(ValueError):
        jobs.resolve_data_path(typed)


def test_paths_inside_are_accepted(data_layout):
    data, _ = data_layout
    assert jobs.resolve_data_path("c.txt") == (data / "c.txt").resolve()
    assert jobs.resolve_data_path("sub/../c.txt") == (data / "c.txt").resolve()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_accepted_run_name_stays_directly_inside_the_runs_folder(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "runs-root"
    try:
        clean = jobs.sanitize_run_name(name)
    except ValueError as e:
        assert str(e)  # a message, never an empty one
        return
    assert clean == name.strip() and clean not in (".", "..") and not clean.startswith(".")
    assert "/" not in clean and "\\" not in clean and "\x00" not in clean and len(clean) <= jobs.MAX_RUN_NAME
    assert jobs.run_path(root, clean).parent == root.resolve()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(st.text(max_size=20), max_size=3), st.none(), st.integers()))
def test_run_query_parameter_is_a_plain_name_or_nothing(value):
    name = parse_run_name(value)
    assert name is None or ("/" not in name and "\\" not in name and name not in (".", ".."))


# --------------------------------------------------------------------------- in the app


def _train_page_synthetic(open_app):
    at = open_app("app_pages/train.py")
    sizes = {"train_embed_dim": 8, "train_hidden_dim": 16, "train_latent_dim": 4, "train_max_steps": 10}
    for key, value in sizes.items():
        at.number_input(key=key).set_value(value)
    return at


def test_train_page_refuses_unsafe_names_and_existing_runs(open_app, tiny_run_dir, tmp_path):
    runs = Path(os.environ["VAE_RUNS_DIR"])
    shutil.copytree(tiny_run_dir, runs / "existing", ignore=shutil.ignore_patterns("cache"))
    before = snapshot(tmp_path)
    at = _train_page_synthetic(open_app)
    for name, message in (("../evil", "may hold only"), ("a/b", "may hold only"), (".hidden", "dot"),
                          ("existing", "already exists; pick another name or confirm overwriting it")):
        at.text_input(key="train_run_name").set_value(name)
        at.button(key="train_start").click().run()
        assert not at.exception, name
        errors = [e.value.replace("\\", "") for e in at.error]
        assert any(message in e for e in errors), (name, errors)
    assert snapshot(tmp_path) == before, "nothing written, the existing run untouched"
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ["existing"]
    # Even with the overwrite box ticked, a run that is running is not replaced.
    write_status(runs / "existing", "running", pid=os.getpid())
    before = snapshot(tmp_path)
    at.text_input(key="train_run_name").set_value("existing")
    at.checkbox(key="train_overwrite").check()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("stop it before replacing it" in e.value for e in at.error)
    assert snapshot(tmp_path) == before
    write_status(runs / "existing", "finished")


def test_train_page_corpus_path_outside_is_refused(open_app, data_layout):
    data, other = data_layout
    at = open_app("app_pages/train.py")
    at.radio(key="train_corpus_source").set_value("path").run()
    for typed in ("../other/secret.txt", str(other / "secret.txt"), "/etc/passwd", "link.txt", "linkdir/secret.txt"):
        at.text_input(key="train_corpus_path").set_value(typed).run()
        assert not at.exception, typed
        assert any("must lie inside" in e.value.replace("\\", "") for e in at.error), typed
        assert at.button(key="train_start").disabled, typed


def test_compare_page_sweep_refuses_unsafe_name_and_outside_corpus(open_app, tmp_path, data_layout):
    runs = Path(os.environ["VAE_RUNS_DIR"])
    at = open_app("app_pages/compare.py")
    cases = (("sw_name", "../evil", "may hold only"), ("sw_corpus", "/etc/passwd", "must lie inside"))
    for field, value, message in cases:
        at.text_input(key="sw_name").set_value("ok-sweep")
        at.text_input(key="sw_corpus").set_value("synthetic")
        at.text_input(key=field).set_value(value)
        at.button(key="sw_launch").click().run()
        assert not at.exception, field
        errors = [e.value.replace("\\", "") for e in at.error]
        assert any("Cannot launch" in e and message in e for e in errors), (field, errors)
    assert not (runs / jobs.SWEEP_DIR).exists(), "no sweep was recorded"
