"""Train page (AppTest): renders, refuses a bad upload, starts a tiny run and watches it, stops a run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import loaders
from vae_core.runs import read_status

PAGE = "app_pages/train.py"
TINY_WIDGETS = {"train_embed_dim": 8, "train_hidden_dim": 16, "train_latent_dim": 4, "train_batch_size": 32,
                "train_log_every": 5}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    return True


@pytest.fixture
def runs_dir(tiny_models_dir, tmp_path) -> Path:
    """The per-test runs dir; any training still alive at the end is killed (no orphans, even on failure)."""
    runs = Path(os.environ["VAE_RUNS_DIR"])
    yield runs
    for status in runs.glob("*/status.json"):
        pid = read_status(status.parent).pid
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _set_tiny(at: AppTest, max_steps: int, name: str) -> None:
    for key, value in {**TINY_WIDGETS, "train_max_steps": max_steps}.items():
        at.number_input(key=key).set_value(value)
    at.text_input(key="train_run_name").set_value(name)


def _wait_status(run: Path, states: tuple[str, ...], timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = read_status(run)
        if s.state in states:
            return s
        time.sleep(0.5)
    raise AssertionError(f"{run.name} did not reach {states}; status {read_status(run)}")


def test_train_page_renders(open_app, runs_dir):
    at = open_app(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.header][:3] == ["1 · Corpus", "2 · Objective and model", "3 · Start"]
    assert at.number_input(key="train_beta").value == 1.0
    assert at.button(key="train_start").disabled is False  # the built-in corpus is ready
    assert any("No runs yet" in i.value for i in at.info)
    help_texts = [at.number_input(key=k).help for k in ("train_beta", "train_free_bits", "train_latent_dim")]
    assert all(help_texts)
    at.selectbox(key="train_schedule").set_value("capacity").run()
    assert {"train_capacity_max", "train_gamma", "train_capacity_steps"} <= {n.key for n in at.number_input}


def test_invalid_upload_shows_error_and_starts_nothing(open_app, runs_dir):
    at = open_app(PAGE)
    at.radio(key="train_corpus_source").set_value("upload").run()
    assert at.button(key="train_start").disabled  # nothing uploaded yet
    at.session_state["train_upload"] = {"name": "bad.csv", "data": b"a,b\n1,2\n3,4\n"}
    at.run()
    assert not at.exception
    assert any("no text column" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled
    at.session_state["train_upload"] = {"name": "latin.txt", "data": "déjà vu\n".encode("latin-1") * 80}
    at.run()
    assert any("UTF" in e.value for e in at.error)
    assert at.button(key="train_start").disabled  # a browser user cannot click it
    assert not any(runs_dir.iterdir()), "an invalid upload must not create a run"


def test_valid_upload_preview(open_app, runs_dir):
    at = open_app(PAGE)
    at.radio(key="train_corpus_source").set_value("upload").run()
    data = ("text,mood\n" + "\n".join(f"a cat number {i} sat .,{'ab'[i % 2]}" for i in range(60))).encode()
    at.session_state["train_upload"] = {"name": "cats.csv", "data": data}
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Sentences"] == "60"
    assert at.selectbox(key="train_upload_column").options == ["(guess)", "text", "mood"]
    assert list(at.dataframe[0].value.columns) == ["sentence", "mood"]
    assert not at.button(key="train_start").disabled


def test_path_outside_data_dirs_is_refused(open_app, runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_DATA_DIRS", str(tmp_path / "data"))
    at = open_app(PAGE)
    at.radio(key="train_corpus_source").set_value("path").run()
    at.text_input(key="train_corpus_path").set_value("/etc/passwd").run()
    assert any("must lie inside" in e.value for e in at.error)
    assert at.button(key="train_start").disabled


@pytest.mark.slow
def test_start_tiny_run_watch_progress_and_curves(open_app, runs_dir):
    at = open_app(PAGE)
    _set_tiny(at, 30, "tiny-page-run")
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run = runs_dir / "tiny-page-run"
    assert run.is_dir() and (run / "status.json").is_file()
    assert any("Started run" in s.value for s in at.success)
    assert at.selectbox(key="train_watch_run").value == "tiny-page-run"
    s = _wait_status(run, ("finished", "failed"), timeout=90)
    assert s.state == "finished", (run / "train.log").read_text()
    at.run()
    assert not at.exception
    progress = at.get("progress")
    assert progress and "step 30 / 30" in progress[0].proto.text
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    assert any("badge[" in m.value and "finished" in m.value for m in at.markdown)
    assert any("model picker" in m.value for m in at.success)
    assert run in loaders.available_runs()  # what the sidebar's model picker lists
    at.button(key="train_open").click().run()
    assert at.session_state["run_path"] == str(run)


@pytest.mark.slow
def test_stop_ends_the_subprocess(open_app, runs_dir):
    at = open_app(PAGE)
    _set_tiny(at, 100_000, "long-run")
    at.run()
    at.button(key="train_start").click().run()
    run = runs_dir / "long-run"
    pid = read_status(run).pid
    assert _alive(pid)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").is_file():  # wait until it really trains
        time.sleep(0.5)
    at.run()
    assert "step" in at.get("progress")[0].proto.text
    assert at.button(key="train_stop")  # shown while running
    at.button(key="train_stop").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not _alive(pid), "the training process survived Stop"
    assert read_status(run).state == "stopped"  # the CLI caught SIGTERM and saved a checkpoint
    assert (run / "model.safetensors").is_file()
    assert any("badge[" in m.value and "stopped" in m.value for m in at.markdown)
    with pytest.raises(OSError):
        os.kill(pid, 0)


def test_failed_run_shows_its_error(open_app, runs_dir):
    import subprocess
    import sys

    from vae_core.runs import write_status

    run = runs_dir / "broken"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    write_status(run, "running", pid=proc.pid)  # a training whose process is gone
    (run / "train.log").write_text("Traceback (most recent call last):\nRuntimeError: out of memory\n")
    at = open_app(PAGE)
    assert not at.exception
    assert any("Training failed" in e.value for e in at.error)
    assert any("out of memory" in c.value for c in at.code)
    assert not [b for b in at.button if b.key == "train_stop"]


@pytest.mark.slow
def test_uploaded_corpus_is_saved_into_the_run_when_training_starts(open_app, runs_dir):
    at = open_app(PAGE)
    at.radio(key="train_corpus_source").set_value("upload").run()
    words = ["cat", "dog", "bird", "fish"]
    data = ("text,animal\n" + "\n".join(f"the {w} number {i} sat here .,{w}" for i in range(30)
                                        for w in words)).encode()
    at.session_state["train_upload"] = {"name": "animals.csv", "data": data}
    _set_tiny(at, 10, "uploaded")
    at.run()
    assert not runs_dir.joinpath("uploaded").exists(), "nothing is written before Start"
    at.button(key="train_start").click().run()
    run = runs_dir / "uploaded"
    assert (run / "corpus.csv").read_bytes() == data
    s = _wait_status(run, ("finished", "failed"), timeout=90)
    assert s.state == "finished", (run / "train.log").read_text()
    config = json.loads((run / "config.json").read_text())
    assert config["corpus"]["spec"] == str((run / "corpus.csv").resolve())


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["positional", "additive"])
def test_non_autoregressive_decoder_and_late_tc_reach_the_run_config(open_app, runs_dir, decoder):
    at = open_app(PAGE)
    _set_tiny(at, 10, f"tiny-{decoder}")
    at.selectbox(key="train_decoder").set_value(decoder).run()
    shown = {n.key for n in at.number_input}
    assert ("train_fourier_features" in shown) == (decoder == "additive")  # shown only where it applies
    at.number_input(key="train_decoder_layers").set_value(2)
    if decoder == "additive":  # hidden (and left at 0) for the other decoders
        at.number_input(key="train_fourier_features").set_value(3)
    at.number_input(key="train_tc_weight").set_value(2.0).run()
    at.number_input(key="train_tc_start").set_value(4)
    at.number_input(key="train_tc_warmup_steps").set_value(3).run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run = runs_dir / f"tiny-{decoder}"
    s = _wait_status(run, ("finished", "failed"), timeout=90)
    assert s.state == "finished", (run / "train.log").read_text()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["decoder_layers"] == 2
    assert cfg["model"]["fourier_features"] == (3 if decoder == "additive" else 0)
    assert cfg["model"]["decoder"] == decoder and cfg["model"]["max_positions"] == cfg["train"]["max_len"] + 1
    assert (cfg["train"]["tc_weight"], cfg["train"]["tc_start"], cfg["train"]["tc_warmup_steps"]) == (2.0, 4, 3)


def test_invalid_number_refuses_start_instead_of_using_the_previous_value(open_app, runs_dir):
    """Issue 20.3: 99999999 epochs showed in red while Start trained 10; now the page sees it and refuses."""
    at = open_app(PAGE)
    at.number_input(key="train_epochs").set_value(99_999_999).run()
    errors = [e.value.replace("\\", "") for e in at.error]  # the page escapes markdown
    assert any("epochs must be between 1 and 100000, got 99999999" in e for e in errors), errors
    assert at.button(key="train_start").disabled
    at.number_input(key="train_epochs").set_value(3).run()
    assert not at.error and not at.button(key="train_start").disabled


def test_widgets_come_from_the_setting_declarations(open_app, runs_dir):
    from ui.settings import help_text
    from vae_core.config import applies, training_settings

    at = open_app(PAGE)
    shown = {w.key: w for kind in ("number_input", "selectbox", "slider", "checkbox") for w in at.get(kind)}
    defaults = {s.name: s.default for s in training_settings().values()}
    for s in training_settings().values():
        w = shown.get("train_" + s.name)
        if not applies(s, defaults):
            assert w is None, f"{s.name} is shown where it does not apply"
            continue
        assert w is not None, f"no widget for {s.name}"
        assert (w.label, w.help) == (s.title, help_text(s))
        assert w.value == (s.default if s.suggested is None else s.suggested)
