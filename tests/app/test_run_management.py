"""Train page (issue 20, "runs a user cannot manage from the app"): Delete, Clean up, Evaluate, Resume, the ETA
before Start and the quick-demo preset, through AppTest on runs built from the tiny fixture run."""

from __future__ import annotations

import html
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.app.conftest import markdown_bodies
from vae_core import jobs
from vae_core.runs import read_status, write_status

TRAIN = "app_pages/train.py"


def _runs() -> Path:
    return Path(os.environ["VAE_RUNS_DIR"])


def _copy_run(tiny_run_dir: Path, name: str, state: str = "finished", **status) -> Path:
    d = _runs() / name
    shutil.copytree(tiny_run_dir, d)
    write_status(d, state, **status)
    return d


def _text(at) -> list[str]:
    return [html.unescape(t.replace("\\", "")) for t in markdown_bodies(at)]


def _estimate(at) -> str:
    found = [t for t in _text(at) if t.startswith("Estimated training time")]
    assert len(found) == 1, _text(at)
    return found[0]


def _seconds(text: str) -> float:
    """The 'about N s|min|h' of an estimate, in seconds."""
    m = re.search(r"about ([\d.]+) (s|min|h) ", text)
    assert m, text
    return float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- before Start


def test_train_page_says_how_long_a_training_will_take_before_start(open_app):
    at = open_app(TRAIN)
    default = _estimate(at)
    assert "(5,840 steps)" in default and "between" in default  # the built-in corpus, default settings
    at.number_input(key="train_max_steps").set_value(584).run()
    short = _estimate(at)
    assert "(584 steps)" in short
    ratio = _seconds(default) / _seconds(short)
    assert 5 < ratio < 20, (default, short)  # proportional to the steps (up to the rounding of "about")


def test_quick_demo_preset_fills_valid_settings_for_a_short_run(open_app):
    at = open_app(TRAIN)
    at.number_input(key="train_tc_weight").set_value(5.0).run()  # something the preset must put back
    at.button(key="train_preset_quick-demo").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="train_corpus_source").value == "synthetic"
    assert at.selectbox(key="train_decoder").value == "additive"
    assert at.number_input(key="train_embed_dim").value == 32
    assert at.number_input(key="train_epochs").value == 2
    assert at.number_input(key="train_tc_weight").value == 0.0
    assert "(584 steps)" in _estimate(at)
    assert not any("KL warm-up" in w.value for w in at.warning)  # its β schedule completes
    assert not at.button(key="train_start").disabled


# ----------------------------------------------------------------------------- delete and clean up


def test_delete_asks_first_then_removes_the_run(open_app, tiny_run_dir):
    run = _copy_run(tiny_run_dir, "to-delete")
    at = open_app(TRAIN)
    at.button(key="train_delete").click().run()
    assert run.is_dir()  # not yet: a confirmation first
    assert any("Delete run to-delete" in w for w in _text(at))
    at.button(key="train_delete_cancel").click().run()
    assert run.is_dir() and not any(b.key == "train_delete_confirm" for b in at.button)
    at.button(key="train_delete").click().run()
    at.button(key="train_delete_confirm").click().run()
    assert not run.exists()
    assert "Deleted run to-delete." in _text(at)
    assert tiny_run_dir.is_dir()  # the shipped run is untouched


def test_a_running_run_offers_stop_and_no_delete(open_app, tiny_run_dir):
    _copy_run(tiny_run_dir, "busy", "running", pid=os.getpid())  # this process: a live training
    at = open_app(TRAIN)
    keys = {b.key for b in at.button}
    assert "train_stop" in keys and not keys & {"train_delete", "train_resume", "train_evaluate"}


def test_clean_up_lists_exactly_the_leftovers_and_deletes_them_after_confirmation(open_app, tiny_run_dir):
    keep = _copy_run(tiny_run_dir, "good", "stopped")  # has weights and a checkpoint
    leftover = _runs() / "only-status"
    leftover.mkdir()
    write_status(leftover, "stopped", pid=None, message="cancelled while queued")
    at = open_app(TRAIN)
    at.button(key="train_cleanup").click().run()
    table = at.dataframe[-1].value
    assert list(table["run"]) == ["only-status"]
    assert leftover.is_dir()
    at.button(key="train_cleanup_confirm").click().run()
    assert not leftover.exists() and keep.is_dir()
    assert "Deleted 1 leftover run(s): only-status." in _text(at)
    at.button(key="train_cleanup").click().run()
    assert any(t.startswith("Nothing to clean up") for t in _text(at))


# ----------------------------------------------------------------------------- evaluate and resume


@pytest.mark.slow
def test_evaluate_runs_a_background_job_and_shows_its_figures(open_app, tiny_run_dir):
    run = _copy_run(tiny_run_dir, "to-evaluate")
    (run / "summary.json").unlink(missing_ok=True)
    at = open_app(TRAIN)
    at.button(key="train_evaluate").click().run()
    assert "Evaluation started for run to-evaluate." in _text(at)
    assert jobs.evaluation_status(run)["state"] in ("queued", "running", "finished")
    _wait(lambda: jobs.evaluation_status(run)["state"] not in ("queued", "running"), 400, "the evaluation")
    assert jobs.evaluation_status(run)["state"] == "finished", jobs.evaluation_status(run)["log_tail"]
    at.run()
    figures = dict(zip(at.dataframe[0].value["figure"], at.dataframe[0].value["value"], strict=True))
    assert "ELBO (nats a sentence)" in figures and "Active units" in figures
    assert (run / "summary.json").is_file()


@pytest.mark.slow
def test_resume_relaunches_a_stopped_run_with_a_checkpoint(open_app, tiny_run_dir):
    run = _copy_run(tiny_run_dir, "to-resume", "stopped", step=60)
    bare = _runs() / "no-checkpoint"
    bare.mkdir()
    write_status(bare, "stopped", pid=None)
    at = open_app(TRAIN, session={"train_watch_run": "no-checkpoint"})
    assert at.button(key="train_resume").disabled
    at.selectbox(key="train_watch_run").set_value("to-resume").run()
    assert not at.button(key="train_resume").disabled
    clicked = time.time()
    at.button(key="train_resume").click().run()
    assert "Resumed run to-resume." in _text(at)
    _wait(lambda: jobs.training_progress(run)["state"] not in jobs.ACTIVE_STATES, 300, "the resumed run")
    after = read_status(run)
    assert after.state == "finished" and after.step == 60, jobs.log_tail(run / jobs.LOG_NAME)
    assert after.ended is not None and after.ended > clicked  # a new process finished it, from step 60
