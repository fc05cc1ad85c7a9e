"""One scheduler for every training (issue 19 items 3 and 4): training slots are flocks under the runs folder,
held by the training process itself, so the limit holds for the app, the CLI and sweeps, a queued run starts
with no page open, a dead process frees its slot, and a sweep trial left RUNNING by a killed worker is retried.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from vae_core import jobs, sweep
from vae_core.config import ModelConfig, TrainConfig
from vae_core.runs import effective_state, load_run, read_status

REPO = Path(__file__).resolve().parents[2]
TINY = ["--corpus", "synthetic", "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4",
        "--batch-size", "16", "--log-every", "5", "--device", "cpu"]
TINY_MODEL = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4)
TINY_TRAIN = TrainConfig(max_steps=10, batch_size=32, log_every=5, warmup_steps=5)
ENV = {**os.environ, "PYTHONPATH": str(REPO), "VAE_MAX_TRAININGS": "1"}

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="slots are POSIX flocks")


def _wait(cond, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# ----------------------------------------------------------------------------- slots


def test_a_slot_is_exclusive_up_to_the_limit_and_freed_on_release(tmp_path):
    a = jobs.try_slot(tmp_path, 2)
    b = jobs.try_slot(tmp_path, 2)
    assert a is not None and b is not None and a.path != b.path
    assert jobs.try_slot(tmp_path, 2) is None and jobs.slots_in_use(tmp_path) == 2
    assert jobs.try_slot(tmp_path, 1) is None  # lowering the limit never lets more run than it says
    b.release()
    assert jobs.slots_in_use(tmp_path) == 1 and jobs.try_slot(tmp_path, 1) is None
    with jobs.try_slot(tmp_path, 2) as c:
        assert c is not None and jobs.slots_in_use(tmp_path) == 2
    a.release()
    assert jobs.slots_in_use(tmp_path) == 0
    assert not any(p.is_dir() for p in tmp_path.iterdir())  # slot files, no folder that looks like a run


def test_no_limit_and_the_limit_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_MAX_TRAININGS", "0")
    assert jobs.max_concurrent() == 0
    held = [jobs.try_slot(tmp_path) for _ in range(5)]
    assert all(s is not None for s in held)  # 0: no limit
    monkeypatch.setenv("VAE_MAX_TRAININGS", "oops")
    assert jobs.max_concurrent() == 1
    monkeypatch.setenv("VAE_MAX_TRAININGS", "3")
    assert jobs.max_concurrent() == 3


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_runs_folder_takes_no_slot_and_raises_nothing(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        slot = jobs.try_slot(ro / "runs", 1)  # the training then reports the folder itself
        assert slot is not None and slot.path is None
    finally:
        ro.chmod(0o700)


def test_a_dead_process_frees_its_slot(tmp_path):
    """The OS drops a flock when its process dies: a SIGKILLed training leaves no stale slot."""
    code = ("import sys, time; from vae_core.jobs import try_slot; s = try_slot(sys.argv[1], 1); "
            "print('held' if s else 'none', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert jobs.try_slot(tmp_path, 1) is None
        proc.kill()
        proc.wait()
        slot = jobs.try_slot(tmp_path, 1)
        assert slot is not None
        slot.release()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_wait_for_slot_waits_then_takes_the_freed_slot_or_is_cancelled(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    from vae_core.runs import write_status

    write_status(run, "running")  # a launcher registered this process for the run
    held = jobs.try_slot(tmp_path, 1)
    waits: list[str] = []
    assert jobs.wait_for_slot(run, 1, should_stop=lambda: True, on_wait=waits.append, poll_s=0.01) is None
    s = read_status(run)
    assert s.state == "stopped" and s.message == "cancelled while queued" and len(waits) == 1
    got: list = []
    t = threading.Thread(target=lambda: got.append(jobs.wait_for_slot(run, 1, poll_s=0.05)))
    t.start()
    _wait(lambda: read_status(run).state == "queued", 10, "queued")
    assert effective_state(run) == "queued" and jobs.queued_trainings(tmp_path) == [run]
    held.release()
    t.join(10)
    assert got and got[0] is not None and read_status(run).state == "running"
    got[0].release()
    fresh = tmp_path / "fresh"  # an --out typed in a shell is not created while it waits
    held = jobs.try_slot(tmp_path, 1)
    assert jobs.wait_for_slot(fresh, 1, should_stop=lambda: True, poll_s=0.01) is None and not fresh.exists()
    held.release()


# ----------------------------------------------------------------------------- the limit for the CLI, app, sweeps


@pytest.mark.slow
def test_a_shell_training_waits_for_the_slot_and_starts_when_it_frees(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    held = jobs.try_slot(root, 1)  # e.g. the app's training holds the only slot
    out = root / "shell"
    proc = subprocess.Popen([sys.executable, "-m", "vae_core", "train", *TINY, "--max-steps", "10", "--quiet",
                             "--out", str(out)], cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stderr.readline()
        assert "waiting for a training slot" in line, line
        time.sleep(1.0)
        assert proc.poll() is None and not out.exists()  # it waits, trains nothing
        held.release()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert read_status(out).state == "finished"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_queued_app_training_starts_by_itself_with_no_page_open(tmp_path, monkeypatch):
    """Issue 19.3: queued runs started only while the Train page polled; now the process waits for its slot."""
    monkeypatch.setenv("VAE_MAX_TRAININGS", "1")
    root = tmp_path / "runs"
    root.mkdir()
    held = jobs.try_slot(root, 1)
    run = root / "waiting"
    assert jobs.start_training(run, [*TINY, "--max-steps", "10"]) is None  # queued ...
    pid = read_status(run).pid
    assert isinstance(pid, int) and effective_state(run) == "queued"  # ... by a live process of its own
    _wait(lambda: "waiting for a training slot" in read_status(run).message, 120, "the child to queue itself")
    held.release()  # nobody calls start_queued or polls a page from here on
    _wait(lambda: read_status(run).state in ("finished", "failed"), 300, "the queued run to finish")
    assert read_status(run).state == "finished", jobs.log_tail(run / jobs.LOG_NAME)
    assert load_run(run).model_config.latent_dim == 4


def test_a_sweep_trial_waits_for_the_training_slot(tmp_path, monkeypatch):
    """Issue 19.3: sweeps ignored VAE_MAX_TRAININGS; a trial now holds a slot of the runs folder."""
    monkeypatch.setenv("VAE_MAX_TRAININGS", "1")
    held = jobs.try_slot(tmp_path, 1)
    result: list = []
    t = threading.Thread(target=lambda: result.append(sweep.run_sweep(
        "slot", None, sweep.SweepSpace(beta_values=(1.0,)), "grid", None, TINY_MODEL, TINY_TRAIN, "synthetic",
        tmp_path)))
    t.start()
    time.sleep(3.0)
    assert not (tmp_path / "slot-trial0").exists(), "a sweep trial trained while the only slot was taken"
    held.release()
    t.join(120)
    assert result and [x.state for x in result[0].get_trials()] == [optuna.trial.TrialState.COMPLETE]


# ----------------------------------------------------------------------------- 19.4: a dead sweep worker's trial


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the dead worker asks outside optimize
def test_a_trial_left_running_by_a_dead_worker_is_retried_by_the_next_worker(tmp_path, monkeypatch):
    """Issue 19.4: a worker killed mid-trial left the trial RUNNING forever and its grid cell was never run."""
    monkeypatch.setattr(sweep, "HEARTBEAT_S", 1)
    monkeypatch.setattr(sweep, "GRACE_S", 1)
    space = sweep.SweepSpace(beta_values=(0.5, 2.0))
    url = sweep.default_storage(tmp_path)
    # The dead worker: it took a grid cell, beat once, and was SIGKILLed (it never beats or reports again).
    dead = optuna.create_study(study_name="retry", storage=sweep.make_storage(url), directions=["minimize"],
                               sampler=optuna.samplers.GridSampler(space.grid(), seed=0))
    trial = dead.ask()
    lost = space.suggest(trial)
    dead._storage.record_heartbeat(trial._trial_id)
    time.sleep(2.5)  # past the grace period
    study = sweep.run_sweep("retry", url, space, "grid", 2, TINY_MODEL, TINY_TRAIN, "synthetic", tmp_path)
    trials = study.get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["beta"] for t in complete) == [0.5, 2.0], [(t.number, t.state, t.params) for t in trials]
    retried = [t for t in complete if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].params["beta"] == lost["beta"]
    status = sweep.sweep_status("retry", url)
    assert status["counts"] == {"FAIL": 1, "COMPLETE": 2}


@pytest.mark.slow
def test_a_sweep_worker_killed_mid_trial_has_its_cell_retried(tmp_path, monkeypatch):
    """The same with a real worker process and SIGKILL."""
    monkeypatch.setattr(sweep, "HEARTBEAT_S", 1)
    monkeypatch.setattr(sweep, "GRACE_S", 2)
    url = sweep.default_storage(tmp_path)
    cmd = [sys.executable, "-m", "vae_core", "sweep", "--name", "kill", "--sampler", "grid", "--beta", "0.5",
           "--out-root", str(tmp_path), "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4",
           "--max-steps", "100000", "--batch-size", "16", "--log-every", "5", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait(lambda: (tmp_path / "kill-trial0" / "metrics.jsonl").is_file(), 180, "the worker's first steps")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert sweep.sweep_status("kill", url)["counts"] == {"RUNNING": 1}
    time.sleep(sweep.HEARTBEAT_S + sweep.GRACE_S + 1)
    short = TrainConfig(max_steps=10, batch_size=16, log_every=5)
    study = sweep.run_sweep("kill", url, sweep.SweepSpace(beta_values=(0.5,)), "grid", None, TINY_MODEL, short,
                            "synthetic", tmp_path)
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE], states
