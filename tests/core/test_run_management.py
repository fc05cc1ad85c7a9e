"""vae_core.run_management (issue 20, "runs a user cannot manage"): delete, clean up, resume, evaluate, ETA, presets."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vae_core import jobs
from vae_core import run_management as rm
from vae_core.config import ModelConfig, TrainConfig, configs_with
from vae_core.runs import read_metrics, read_status, write_status

TINY_MODEL = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4)


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """(runs folder, shipped models folder), the app's env pointed at them."""
    runs, models = tmp_path / "runs", tmp_path / "models"
    runs.mkdir()
    models.mkdir()
    monkeypatch.setenv("VAE_RUNS_DIR", str(runs))
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_MAX_TRAININGS", "1")
    return runs, models


def _run(root: Path, name: str, state: str | None = "stopped", files: tuple[str, ...] = (), **status) -> Path:
    d = root / name
    d.mkdir()
    if state is not None:
        write_status(d, state, **status)
    for f in files:
        p = d / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{}", encoding="utf-8")
    return d


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def synthetic():
    from vae_core.corpus import load_corpus

    return load_corpus("synthetic")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- delete


def test_delete_removes_a_finished_run_and_its_evaluation_record(roots):
    runs, _ = roots
    d = _run(runs, "done", "finished", files=("config.json", "model.safetensors", "checkpoint/manifest.json"))
    meta = jobs.evaluation_file(d)
    meta.parent.mkdir()
    meta.write_text("{}", encoding="utf-8")
    meta.with_suffix(".log").write_text("log", encoding="utf-8")
    assert rm.delete_run(d, runs) == d.resolve()
    assert not d.exists() and not meta.exists() and not meta.with_suffix(".log").exists()
    assert runs.is_dir()


def test_delete_refuses_a_running_or_queued_run(roots):
    runs, _ = roots
    running = _run(runs, "busy", "running", pid=os.getpid())  # this process: alive, same identity
    with pytest.raises(rm.ManageError, match="stop it first"):
        rm.delete_run(running, runs)
    queued = _run(runs, "waiting", "queued", pid=None)
    with pytest.raises(rm.ManageError, match="stop it first"):
        rm.delete_run(queued, runs)
    assert running.is_dir() and queued.is_dir()


def test_delete_refuses_outside_the_runs_folder_and_links(roots, tmp_path):
    runs, _ = roots
    elsewhere = _run(tmp_path, "elsewhere", "stopped")
    with pytest.raises(rm.ManageError, match="not a run folder directly inside"):
        rm.delete_run(elsewhere, runs)
    with pytest.raises(rm.ManageError):
        rm.delete_run(runs / ".." / "elsewhere", runs)
    (runs / "link").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(rm.ManageError, match="symbolic link"):
        rm.delete_run(runs / "link", runs)
    nested = _run(runs, "outer", "stopped")
    inner = _run(nested, "inner", "stopped")
    with pytest.raises(rm.ManageError):
        rm.delete_run(inner, runs)
    assert elsewhere.is_dir() and (runs / "link").is_symlink() and inner.is_dir()


def test_delete_never_follows_a_link_inside_the_run(roots, tmp_path):
    runs, _ = roots
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep", encoding="utf-8")
    d = _run(runs, "linky", "stopped")
    (d / "data").symlink_to(outside, target_is_directory=True)
    (d / "file").symlink_to(outside / "keep.txt")
    rm.delete_run(d, runs)
    assert not d.exists()
    assert (outside / "keep.txt").read_text(encoding="utf-8") == "keep"


def test_delete_refuses_shipped_models(roots):
    runs, models = roots
    shipped = _run(models, "shipped", "finished", files=("config.json", "model.safetensors"))
    with pytest.raises(rm.ManageError, match="shipped model"):
        rm.delete_run(shipped, runs)
    with pytest.raises(rm.ManageError, match="shipped model"):
        rm.delete_run(shipped, models)  # even when the models folder is passed as the runs folder
    assert rm.leftover_runs(models) == []
    assert shipped.is_dir()


# ----------------------------------------------------------------------------- clean up


def test_leftover_runs_lists_exactly_the_ended_runs_without_weights_or_checkpoint(roots, tmp_path):
    runs, _ = roots
    expected = {
        _run(runs, "only-status", "stopped").name,
        _run(runs, "cancelled", "stopped", pid=None, message="cancelled while queued").name,
        _run(runs, "failed-early", "failed", files=("config.json", "vocab.json", "train.log"),
             message="ValueError: bad corpus").name,
        _run(runs, "killed", "running", pid=_dead_pid()).name,
    }
    _run(runs, "stopped-with-checkpoint", "stopped", files=("config.json", "checkpoint/manifest.json"))
    _run(runs, "stopped-with-prev-checkpoint", "stopped", files=("checkpoint.prev/manifest.json",))
    _run(runs, "failed-with-weights", "failed", files=("config.json", "model.safetensors"))
    _run(runs, "finished", "finished")
    _run(runs, "running", "running", pid=os.getpid())
    _run(runs, "queued", "queued", pid=None)
    _run(runs, "no-status", None, files=("notes.txt",))
    _run(runs, ".hidden", "stopped")
    outside = _run(tmp_path, "outside-leftover", "stopped")
    (runs / "link-to-leftover").symlink_to(outside, target_is_directory=True)

    found = rm.leftover_runs(runs)
    assert {p.name for p, _ in found} == expected
    why = dict((p.name, w) for p, w in found)
    assert "only status.json" in why["only-status"]
    assert "cancelled while queued" in why["cancelled"]
    assert why["killed"].startswith("killed")

    assert sorted(rm.delete_leftovers(runs, ["only-status"])) == ["only-status"]
    assert not (runs / "only-status").exists() and (runs / "cancelled").is_dir()
    assert sorted(rm.delete_leftovers(runs)) == sorted(expected - {"only-status"})
    assert rm.leftover_runs(runs) == []
    assert (runs / "stopped-with-checkpoint").is_dir() and (runs / "running").is_dir() and outside.is_dir()
    assert (runs / "link-to-leftover").is_symlink()


# ----------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_resume_continues_a_stopped_run_from_its_checkpoint_through_the_scheduler(roots, synthetic):
    from vae_core.train import Callbacks, train

    runs, _ = roots
    run = runs / "resumable"
    seen: list[int] = []
    summary = train(run, synthetic, TINY_MODEL, TrainConfig(max_steps=40, batch_size=32, log_every=5),
                    callbacks=Callbacks(on_step=lambda r: seen.append(r["step"])),
                    should_stop=lambda: bool(seen) and seen[-1] >= 15)
    assert summary["state"] == "stopped" and read_status(run).state == "stopped"
    stopped_at = read_status(run).step
    assert 15 <= stopped_at < 40 and rm.has_checkpoint(run)

    slot = jobs.try_slot(runs)  # the only slot (VAE_MAX_TRAININGS=1) is held: the resume must wait
    assert slot is not None
    try:
        assert rm.resume_run(run, runs) is None  # queued
        _wait(lambda: read_status(run).state == "queued", 60, "the resumed run to say queued")
        time.sleep(1.0)
        assert rm.run_state(run) == "queued"
        assert max(r["step"] for r in read_metrics(run) if r["kind"] == "train") <= stopped_at
    finally:
        slot.release()
    _wait(lambda: rm.run_state(run) not in jobs.ACTIVE_STATES, 300, "the resumed training to end")
    assert rm.run_state(run) == "finished", jobs.log_tail(run / jobs.LOG_NAME)
    steps = [r["step"] for r in read_metrics(run) if r["kind"] == "train"]
    assert steps == sorted(set(steps)), "no step logged twice"
    assert steps[-1] == 40 and read_status(run).step == 40
    assert any(s > stopped_at for s in steps)
    with pytest.raises(rm.ManageError, match="only a stopped, killed or failed run"):
        rm.resume_run(run, runs)  # finished: nothing to resume


def test_resume_refuses_a_run_without_checkpoint_and_an_active_one(roots):
    runs, models = roots
    bare = _run(runs, "bare", "stopped", files=("config.json",))
    with pytest.raises(rm.ManageError, match="no checkpoint"):
        rm.resume_run(bare, runs)
    busy = _run(runs, "busy", "running", pid=os.getpid(), files=("config.json", "checkpoint/manifest.json"))
    with pytest.raises(rm.ManageError, match="stop it first"):
        rm.resume_run(busy, runs)
    shipped = _run(models, "shipped", "stopped", files=("config.json", "model.safetensors"))
    with pytest.raises(rm.ManageError, match="shipped"):
        rm.resume_run(shipped, runs)
    assert read_status(bare).state == "stopped" and read_status(shipped).state == "stopped"


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.slow
def test_evaluation_is_a_background_job_that_waits_for_a_slot_and_writes_summary(roots, synthetic):
    from vae_core.train import train

    runs, _ = roots
    run = runs / "to-evaluate"
    train(run, synthetic, TINY_MODEL, TrainConfig(max_steps=20, batch_size=32, log_every=10))
    before = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert "eval" not in before

    slot = jobs.try_slot(runs)
    assert slot is not None
    try:
        pid = rm.evaluate_run_job(run, runs, ("--max-sentences", "100", "--no-disentanglement"))
        assert isinstance(pid, int)
        time.sleep(1.5)
        assert jobs.evaluation_status(run)["state"] == "queued"  # the slot is held: it waits
        with pytest.raises(rm.ManageError, match="being evaluated"):
            rm.delete_run(run, runs)
        with pytest.raises(ValueError, match="already"):
            jobs.start_evaluation(run)
    finally:
        slot.release()
    _wait(lambda: jobs.evaluation_status(run)["state"] not in ("queued", "running"), 300, "the evaluation")
    status = jobs.evaluation_status(run)
    assert status["state"] == "finished", status["log_tail"]
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["eval"]["n_sentences"] == 100 and "training" in summary
    labels = dict(rm.evaluation_figures(run))
    assert labels["ELBO (nats a sentence)"] == pytest.approx(summary["eval"]["elbo"])
    assert jobs.slots_in_use(runs) == 0  # the job's slot went with its process


def test_evaluate_refuses_a_run_without_weights_and_shipped_models(roots):
    runs, models = roots
    with pytest.raises(rm.ManageError, match="no weights"):
        rm.evaluate_run_job(_run(runs, "empty", "stopped"), runs)
    with pytest.raises(rm.ManageError, match="shipped"):
        rm.evaluate_run_job(_run(models, "shipped", "finished", files=("config.json", "model.safetensors")), runs)
    assert not (runs / jobs.EVAL_DIR).exists()


# ----------------------------------------------------------------------------- ETA before Start


def test_estimate_is_proportional_to_steps_and_cached_per_shape():
    config = TrainConfig(batch_size=16)
    start = time.perf_counter()
    short = rm.estimate_training(TINY_MODEL, config, 100, vocab_size=40, mean_words=8)
    first = time.perf_counter() - start
    start = time.perf_counter()
    long = rm.estimate_training(TINY_MODEL, TrainConfig(batch_size=16, epochs=50, beta=4.0), 1000, 40, 8)
    assert time.perf_counter() - start < 0.05  # same shape (epochs and β do not change a step): cached
    assert first < rm.TIMING_BUDGET_S + 5  # a warm-up step, then timed steps while the budget lasts (tiny model)
    assert short.method == "timed" and short.step_s > 0
    assert long.expected_s - rm.STARTUP_S == pytest.approx(10 * (short.expected_s - rm.STARTUP_S))
    assert short.low_s < short.expected_s < short.high_s
    text = rm.describe_estimate(long)
    assert "(1,000 steps)" in text and "about" in text


def test_a_model_too_large_to_build_is_scaled_from_a_timed_one():
    huge = ModelConfig(embed_dim=4096, hidden_dim=4096, latent_dim=16)
    e = rm.estimate_training(huge, TrainConfig(batch_size=8), 10, vocab_size=20000, mean_words=10)
    small = rm.estimate_training(rm.REFERENCE, TrainConfig(batch_size=8), 10, vocab_size=20000, mean_words=10)
    assert e.method == "scaled" and e.step_s > 10 * small.step_s


def test_format_duration():
    assert rm.format_duration(42) == "42 s"
    assert rm.format_duration(150) == "2 min" or rm.format_duration(150) == "3 min"
    assert rm.format_duration(3 * 3600) == "3.0 h"


# ----------------------------------------------------------------------------- presets


def test_quick_demo_preset_gives_valid_settings_whose_schedule_completes(synthetic):
    from ui.settings import planned_steps, warmup_warning
    from vae_core.presets import PRESETS, preset_values

    values = preset_values("quick-demo")
    model, train_config = configs_with(ModelConfig(), TrainConfig(), values)
    assert PRESETS["quick-demo"].corpus == "synthetic"
    steps = planned_steps(train_config, len(synthetic.train))
    assert 200 <= steps <= 1000  # a couple of minutes, not the default's 5,840 steps
    assert warmup_warning(train_config, len(synthetic.train)) is None
    assert model.decoder == "additive" and train_config.schedule == "constant"


def test_presets_are_checked_against_the_declarations(monkeypatch):
    from vae_core import presets

    with pytest.raises(ValueError, match="no preset"):
        presets.preset_values("nope")
    bad = presets.Preset("x", "x", "synthetic", (("epochs", 0),))
    monkeypatch.setitem(presets.PRESETS, "bad", bad)
    with pytest.raises(ValueError, match="epochs must be between"):
        presets.preset_values("bad")
    unknown = presets.Preset("x", "x", "synthetic", (("warp_speed", 9),))
    monkeypatch.setitem(presets.PRESETS, "unknown", unknown)
    with pytest.raises(ValueError, match="not a training setting"):
        presets.preset_values("unknown")

