"""Launched trainings, evaluations and sweeps run below the app: higher niceness, bounded CPU threads (issue 20)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vae_core import jobs

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

TINY = ["--corpus", "synthetic", "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4",
        "--batch-size", "16", "--log-every", "5", "--max-steps", "100000"]


def _niceness(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])  # field 19 of proc(5), counted after "(comm) "


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _stop(run: Path) -> None:
    assert jobs.stop_training(run, timeout=30) in ("stopped", "not running")


def test_child_env_bounds_the_threads(monkeypatch):
    monkeypatch.setenv("VAE_TRAIN_THREADS", "3")
    env = jobs._child_env()
    assert all(env[v] == "3" for v in jobs.THREAD_VARS)
    monkeypatch.delenv("VAE_TRAIN_THREADS")
    cores = len(os.sched_getaffinity(0))
    assert jobs.train_threads() == max(1, cores - 1)  # one core left to the app
    monkeypatch.setenv("VAE_TRAIN_THREADS", "lots")
    assert jobs.train_threads() == max(1, cores - 1)
    monkeypatch.setenv("VAE_TRAIN_NICE", "99")
    assert jobs.train_nice() == 19


@pytest.mark.skipif(os.getpriority(os.PRIO_PROCESS, 0) >= 19, reason="already at the lowest priority")
def test_launched_training_runs_nicer_than_the_app_with_bounded_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TRAIN_THREADS", "1")
    monkeypatch.setenv("VAE_TRAIN_NICE", "5")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    run = tmp_path / "nice-run"
    pid = jobs.start_training(run, TINY)
    assert pid
    try:
        assert _niceness(pid) == min(19, own + 5) > own
        env = _environ(pid)
        assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
        deadline = time.time() + 60  # the training itself (the Python process) then uses one intra-op thread
        while time.time() < deadline and jobs.read_status(run).state != "running":
            time.sleep(0.2)
        assert _niceness(pid) > own  # still lowered once it is training
    finally:
        _stop(run)


@pytest.mark.skipif(os.getpriority(os.PRIO_PROCESS, 0) >= 19, reason="already at the lowest priority")
def test_launched_sweep_runs_nicer_than_the_app(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_TRAIN_NICE", raising=False)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    root = tmp_path / "runs"
    pid = jobs.start_sweep(root, "sw", ["--beta", "oops"])  # exits soon with an error; niceness is set at launch
    try:
        assert _niceness(pid) == min(19, own + 10)
    except FileNotFoundError:
        pytest.fail("the sweep exited before its priority could be read")
    finally:
        deadline = time.time() + 60
        while time.time() < deadline and jobs.read_sweep(root, "sw").get("alive"):
            time.sleep(0.2)
