"""vae_core.jobs: run names, upload and path checks, the training queue, stop and progress (no Streamlit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_core import jobs
from vae_core.runs import read_status, write_status

TINY = ["--corpus", "synthetic", "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4",
        "--batch-size", "16", "--log-every", "5"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["../x", "a/b", "", "   ", ".hidden", "a..b", "x" * 65, "a b", "a\\b", "é", "a\x00"])
def test_sanitize_run_name_refuses_unsafe_names(name):
    with pytest.raises(ValueError):
        jobs.sanitize_run_name(name)


@pytest.mark.parametrize("name", ["beta1-20261126-1530", "run_2.v1", "A", "x" * 64])
def test_sanitize_run_name_keeps_safe_names(name):
    assert jobs.sanitize_run_name(name) == name


def test_default_run_name_is_safe():
    assert jobs.default_run_name(0.5, now=0).startswith("beta0.5-")
    assert jobs.sanitize_run_name(jobs.default_run_name(1e-7))


def test_run_path_stays_inside_runs_root(tmp_path):
    assert jobs.run_path(tmp_path, "ok") == (tmp_path / "ok").resolve()
    with pytest.raises(ValueError):
        jobs.run_path(tmp_path, "../escape")


def test_write_train_config_is_what_train_reads(tmp_path):
    from vae_core.cli import build_parser
    from vae_core.cli_flags import configs_from_args
    from vae_core.config import ModelConfig, TrainConfig

    m, t = ModelConfig(rnn_type="lstm"), TrainConfig(beta=2.0, max_steps=30, lowercase=True, lr=0.001)
    path = jobs.write_train_config(tmp_path, m, t, "synthetic")
    assert configs_from_args(build_parser().parse_args(["train", "--config", str(path), "--out", "x"])) == (m, t)


# ----------------------------------------------------------------------------- paths


def test_resolve_data_path_only_inside_data_dirs(tmp_path, monkeypatch):
    data, other = tmp_path / "data", tmp_path / "other"
    data.mkdir()
    other.mkdir()
    (data / "c.txt").write_text("a b\n", encoding="utf-8")
    (other / "secret.txt").write_text("x\n", encoding="utf-8")
    monkeypatch.setenv("VAE_DATA_DIRS", str(data))
    assert jobs.resolve_data_path(str(data / "c.txt")) == (data / "c.txt").resolve()
    assert jobs.resolve_data_path("c.txt") == (data / "c.txt").resolve()
    for bad in (str(other / "secret.txt"), "../other/secret.txt", "/etc/passwd", ""):
        with pytest.raises(ValueError):
            jobs.resolve_data_path(bad)
    with pytest.raises(ValueError, match="no such"):
        jobs.resolve_data_path("missing.txt")
    (data / "link.txt").symlink_to(other / "secret.txt")
    with pytest.raises(ValueError, match="inside"):
        jobs.resolve_data_path("link.txt")


# ----------------------------------------------------------------------------- uploads

GOOD_LINES = "\n".join(f"the cat {i} sat on the mat ." for i in range(60)).encode()


@pytest.mark.parametrize(
    ("name", "data", "column", "message"),
    [
        ("empty.txt", b"", None, "empty"),
        ("blank.txt", b"\n \n\n", None, "no non-empty lines"),
        ("bin.txt", b"\x00\x01\x02PK" * 100, None, "binary"),
        ("latin.txt", "café au lait\n".encode("latin-1") * 60, None, "not UTF-8"),
        ("nocol.csv", b"a,b\n1,2\n3,4\n", None, "no text column"),
        ("wrongcol.csv", b"text,b\nx y,2\n", "nope", "no column 'nope'"),
        ("ragged.csv", b"text,b\nx y,2\nz,1,9\n", None, "fields"),
        ("few.txt", b"one sentence .\ntwo sentences .\n", None, "at least 50"),
        ("bad.jsonl", b'{"text": "a"}\nnot json\n', None, "not valid JSON"),
        ("doc.pdf", b"%PDF-1.4", None, ".txt, .csv or .jsonl"),
        ("huge.txt", ("x" * 200_000 + "\n").encode(), None, "characters"),
    ],
)
def test_validate_upload_errors(name, data, column, message):
    texts, err = jobs.validate_upload(name, data, column)
    assert texts is None
    assert err and message in err


def test_validate_upload_over_cap():
    texts, err = jobs.validate_upload("big.txt", GOOD_LINES, max_bytes=100)
    assert texts is None and "limit" in err


def test_validate_upload_accepts_txt_csv_jsonl():
    texts, err = jobs.validate_upload("ok.txt", GOOD_LINES)
    assert err is None and len(texts) == 60
    csv_data = ("sentence,label\n" + "\n".join(f"the dog {i} ran .,{'ab'[i % 2]}" for i in range(55))).encode()
    texts, err = jobs.validate_upload("ok.csv", csv_data)
    assert err is None and len(texts) == 55 and set(texts.labels) == {"label"}
    assert jobs.upload_columns("ok.csv", csv_data) == ["sentence", "label"]
    jl = "\n".join(f'{{"body": "a bird {i} sang .", "mood": "happy"}}' for i in range(50)).encode()
    assert jobs.upload_columns("ok.jsonl", jl) == ["body", "mood"]
    texts, err = jobs.validate_upload("ok.jsonl", jl, "body")
    assert err is None and texts.labels["mood"][0] == "happy"


# ----------------------------------------------------------------------------- queue, stop, progress


def test_stop_queued_run_cancels_it(tmp_path):
    run = tmp_path / "q"
    run.mkdir()
    write_status(run, "queued", pid=None, args=["--corpus", "synthetic"], queued_at=time.time())
    assert jobs.stop_training(run) == "stopped"
    assert read_status(run).state == "stopped"


def test_start_refuses_existing_run_without_overwrite(tmp_path):
    run = tmp_path / "exists"
    run.mkdir()
    (run / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="already exists"):
        jobs.start_training(run, TINY)
    write_status(run, "running", pid=os.getpid())
    with pytest.raises(ValueError, match="running"):
        jobs.start_training(run, TINY, overwrite=True)


def test_progress_of_a_failed_process_shows_the_error(tmp_path):
    run = tmp_path / "bad"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    write_status(run, "running", pid=proc.pid)
    (run / "train.log").write_text("loading\nerror: corpus 'x.csv' has no column 'text'\n", encoding="utf-8")
    p = jobs.training_progress(run)
    assert p["state"] == "failed"
    assert "no column 'text'" in p["error"]


def test_progress_reads_metrics_tail(tmp_path):
    run = tmp_path / "m"
    run.mkdir()
    write_status(run, "finished", step=20, total_steps=20)
    with open(run / "metrics.jsonl", "w", encoding="utf-8") as f:
        f.write('{"kind": "train", "step": 10, "total_steps": 20, "tokens_per_s": 100.0, "eta_s": 5}\n')
        f.write('{"kind": "train", "step": 20, "total_steps": 20, "tokens_per_s": 120.0, "eta_s": 0}\n')
        f.write('{"kind": "valid", "step": 20, "elbo": -3.0}\n{"kind": "tr')  # half-written last line
    p = jobs.training_progress(run)
    assert (p["state"], p["step"], p["total_steps"], p["progress"]) == ("finished", 20, 20, 1.0)
    assert p["tokens_per_s"] == 120.0 and p["eta_s"] is None and p["last_valid"]["elbo"] == -3.0


@pytest.mark.slow
def test_concurrency_limit_queues_the_second_training_then_it_starts_by_itself_and_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_MAX_TRAININGS", "1")
    root = tmp_path / "runs"
    root.mkdir()
    held = jobs.try_slot(root)  # a live training (here: this test) holds the only slot
    assert held is not None
    second = root / "second"
    assert jobs.start_training(second, [*TINY, "--max-steps", "5000"]) is None
    s = read_status(second)
    assert s.state == "queued" and "already running" in s.message
    pid = s.pid
    assert isinstance(pid, int) and not _gone(pid)  # a queued run is a launched process waiting for its slot
    _wait_for(lambda: "waiting for a training slot" in read_status(second).message)
    assert jobs.training_progress(second)["state"] == "queued" and not (second / "metrics.jsonl").exists()
    held.release()  # the slot frees: the queued training starts on its own (nobody polls)
    _wait_for(lambda: (second / "metrics.jsonl").is_file())
    assert jobs.training_progress(second)["state"] == "running" and read_status(second).pid == pid
    third = root / "third"
    assert jobs.start_training(third, TINY) is None  # 'second' now holds the slot
    third_pid = read_status(third).pid
    _wait_for(lambda: "waiting for a training slot" in read_status(third).message)
    assert jobs.stop_training(third) == "stopped"  # cancelled while queued: the waiting process ends
    assert read_status(third).message == "cancelled while queued" and _wait_gone(third_pid)
    state = jobs.stop_training(second, timeout=20)
    assert state in ("stopped", "killed")
    assert _gone(pid), "the training process is still alive after Stop"
    assert (second / "train.log").is_file()


def _wait_for(cond, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid) and time.monotonic() < deadline:
        jobs.reap()
        time.sleep(0.1)
    return _gone(pid)


def test_a_queued_record_from_before_slots_is_launched_once(tmp_path):
    """A 'queued' status with no process (written by an older version) is launched by start_queued; nothing else is."""
    root = tmp_path / "runs"
    old = root / "old"
    old.mkdir(parents=True)
    write_status(old, "queued", pid=None, args=[*TINY, "--max-steps", "5000"], queued_at=time.time())
    assert jobs.start_queued(root) == [old]
    pid = read_status(old).pid
    assert isinstance(pid, int) and not _gone(pid)
    assert jobs.start_queued(root) == []  # it has a process now
    assert jobs.stop_training(old, timeout=20) in ("stopped", "killed")
    assert _wait_gone(pid)
    assert jobs.start_queued(tmp_path / "empty") == [] and not (tmp_path / "empty").exists()


def test_sweep_launch_records_pid_and_log(tmp_path):
    root = tmp_path / "runs"
    pid = jobs.start_sweep(root, "sw", ["--beta", "oops"])  # bad arguments: exits at once with an error
    deadline = time.time() + 60
    while time.time() < deadline and jobs.read_sweep(root, "sw").get("alive"):
        time.sleep(0.2)
    rec = jobs.read_sweep(root, "sw")
    assert rec["pid"] == pid and not rec["alive"]
    assert "error" in rec["log_tail"]
    assert jobs.list_sweeps(root) == ["sw"]
    assert _gone(pid)
    assert not Path(root / "sw-trial0").exists()


def test_evaluation_file_for_a_folder_the_app_did_not_name(tmp_path):
    """A run folder with a name a run name may not be (too long, odd characters) still has a record name."""
    long_dir, odd_dir = tmp_path / ("x" * 81), tmp_path / "<b>x<b> [y](z)"
    names = {jobs.evaluation_file(d).name for d in (long_dir, odd_dir, tmp_path / "plain-run")}
    assert "plain-run.json" in names and len(names) == 3
    for d in (long_dir, odd_dir):
        record = jobs.evaluation_file(d)
        assert record.parent == tmp_path / jobs.EVAL_DIR and record.name.startswith("run-")
