"""The run status contract (issue 19 items 2, 6, 12): status.json and metrics.jsonl are untrusted input read
through one typed reader each, and a run's process is known by its PID *and* start time, so a reused PID,
a killed process or a SIGSTOPped one is reported as what it is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_core import jobs
from vae_core.runs import (
    Status,
    clean_metric,
    effective_state,
    process_identity,
    process_state,
    read_metrics,
    read_status,
    write_status,
)

LINUX = Path("/proc/self/stat").is_file()


def _sleeper(seconds: int = 60) -> subprocess.Popen:
    """An unrelated live process (not vae_core), to stand for a stranger that got a dead run's PID."""
    return subprocess.Popen(["sleep", str(seconds)])


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# ----------------------------------------------------------------------------- 19.6: typed status.json


BAD_STATUS = {"state": "running", "pid": "12", "started": "yesterday", "updated": [1], "queued_at": {"a": 1},
              "step": "x", "total_steps": 2.5, "message": 5, "stop_requested": "yes", "args": "--beta 1",
              "proc_start": "soon", "boot_id": 7, "ended": float("nan")}


def test_ill_typed_status_reads_as_defaults_and_breaks_no_reader(tmp_path):
    run = tmp_path / "runs" / "bad"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps(BAD_STATUS), encoding="utf-8")
    s = read_status(run)
    assert s == Status(state="running")  # every ill-typed value is its default
    assert effective_state(run) == "killed"  # 'running' with no usable pid: nothing runs it
    p = jobs.training_progress(run)
    assert (p["state"], p["step"], p["started"], p["message"]) == ("killed", 0, None, "")
    good = tmp_path / "runs" / "good"
    good.mkdir()
    write_status(good, "finished", step=3, total_steps=3)
    assert jobs.watchable_runs(tmp_path / "runs")[0] == good  # 'started': 'yesterday' used to raise here
    assert jobs.running_trainings(tmp_path / "runs") == [] and jobs.queued_trainings(tmp_path / "runs") == []


@pytest.mark.parametrize("text", ["[1, 2]", '"running"', "{", "null", '{"state": "dancing"}', '{"state": 3}'])
def test_unreadable_or_unknown_status_is_unknown(tmp_path, text):
    (tmp_path / "status.json").write_text(text, encoding="utf-8")
    assert read_status(tmp_path) == Status() and read_status(tmp_path).state == "unknown"
    assert jobs.training_progress(tmp_path)["state"] == "unknown"


def test_status_round_trip_keeps_every_field(tmp_path):
    write_status(tmp_path, "queued", pid=None, queued_at=123.5, limit=2, message="waiting", args=["--beta", "2"])
    s = read_status(tmp_path)
    assert (s.state, s.pid, s.queued_at, s.limit, s.message, s.args) == ("queued", None, 123.5, 2, "waiting",
                                                                         ("--beta", "2"))
    assert isinstance(s.updated, float) and s.identity is None


# ----------------------------------------------------------------------------- 19.6: typed metrics.jsonl


def test_ill_typed_metric_records_are_skipped_or_cleaned(tmp_path):
    write_status(tmp_path, "finished", step=20, total_steps=20)
    lines = [
        {"kind": "train", "step": 10, "total_steps": 20, "loss": 3.0, "tokens_per_s": 100.0, "eta_s": 5},
        {"kind": "train", "step": "x", "loss": 1.0},  # no usable step: skipped
        {"kind": 5, "step": 11},  # no usable kind: skipped
        {"kind": "train", "step": True},  # a bool is not a step
        {"kind": "train", "step": 20, "total_steps": "all", "loss": "low", "tokens_per_s": "fast", "eta_s": [0],
         "kl_per_dim": [0.1, "x"], "epoch": 1.5, "time": None, "device": 3},
        {"kind": "valid", "step": 20, "elbo": -3.0, "recon": "?"},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    recs = read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [10, 20, 20]
    assert recs[1] == {"kind": "train", "step": 20, "time": None}  # every ill-typed field dropped
    assert recs[2] == {"kind": "valid", "step": 20, "elbo": -3.0}
    p = jobs.training_progress(tmp_path)  # used to raise on int("x") / float("fast")
    assert (p["step"], p["total_steps"], p["tokens_per_s"], p["eta_s"]) == (20, 20, None, None)
    assert p["last_valid"] == {"kind": "valid", "step": 20, "elbo": -3.0}


def test_clean_metric_keeps_a_well_typed_record_unchanged():
    rec = {"kind": "train", "step": 5, "epoch": 0, "total_steps": 9, "loss": 2.5, "kl_per_dim": [0.1, 2],
           "capacity": None, "device": "cpu", "amp": "off", "world_size": 1, "time": 1.0}
    assert clean_metric(rec) == rec
    assert clean_metric([rec]) is None and clean_metric({"kind": "train", "step": -1}) is None


# ----------------------------------------------------------------------------- 19.2 / 19.12: process identity


@pytest.mark.skipif(not LINUX, reason="process start times come from /proc")
def test_write_status_records_the_process_start_time_and_boot():
    ident = process_identity(os.getpid())
    with open(f"/proc/{os.getpid()}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    assert ident is not None and ident.start == start
    assert ident.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


@pytest.mark.skipif(not LINUX, reason="process start times come from /proc")
def test_a_run_whose_pid_now_belongs_to_another_process_is_killed_and_holds_no_slot(tmp_path):
    """Issue 19.2: the PID of a killed run, reused by an unrelated live process, no longer counts as running."""
    root = tmp_path / "runs"
    run = root / "stale"
    run.mkdir(parents=True)
    stranger = _sleeper()
    try:
        write_status(run, "running", pid=stranger.pid)
        assert effective_state(run) == "running"  # the recorded process itself: running
        raw = json.loads((run / "status.json").read_text())
        raw["proc_start"] -= 1  # the training had this PID before: another start time
        (run / "status.json").write_text(json.dumps(raw))
        assert effective_state(run) == "killed"
        assert jobs.running_trainings(root) == [] and jobs.trainings_busy(root) == 0
        assert jobs.training_progress(run)["state"] == "killed"
        assert jobs.stop_training(run, timeout=1) == "killed"
        assert stranger.poll() is None, "Stop signalled a process that is not the training"
        raw["proc_start"] += 1
        raw["boot_id"] = "0" * 36  # same start time, but in an earlier boot
        (run / "status.json").write_text(json.dumps(raw))
        assert effective_state(run) == "killed"
        # A record from before identities (no start time): a live non-vae_core process is not the training.
        del raw["proc_start"], raw["boot_id"]
        (run / "status.json").write_text(json.dumps(raw))
        assert effective_state(run) == "killed"
    finally:
        _end(stranger)
    assert effective_state(run) == "killed"  # and gone altogether: killed


@pytest.mark.skipif(not LINUX, reason="process states come from /proc")
def test_a_sigstopped_run_is_paused_and_stop_still_ends_it(tmp_path):
    """Issue 19.12: a stopped (SIGSTOP) training looked healthy; it is 'paused' and Stop ends it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_status(tmp_path, "running", pid=proc.pid, step=3, total_steps=10)
        assert effective_state(tmp_path) == "running"
        os.kill(proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while process_state(proc.pid) not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert effective_state(tmp_path) == "paused"
        p = jobs.training_progress(tmp_path)
        assert p["state"] == "paused" and "not responding" in p["message"] and "paused" in jobs.ACTIVE_STATES
        assert jobs.stop_training(tmp_path, timeout=5) == "stopped"
        assert proc.wait(timeout=10) is not None
        assert read_status(tmp_path).state == "stopped"
    finally:
        _end(proc)


def test_a_running_status_whose_process_died_reads_killed(tmp_path):
    """Issue 19.12: status.json keeps 'running' after a SIGKILL; every reader reports 'killed'."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    write_status(tmp_path, "running", pid=proc.pid)
    proc.kill()
    proc.wait()
    assert read_status(tmp_path).state == "running"  # the file still says so ...
    assert effective_state(tmp_path) == "killed"  # ... the readers do not
    assert jobs.training_progress(tmp_path)["state"] == "killed"
