"""A full disk or a read-only folder (issue 19.9): the CLI shows what it computed and one clear error line (no
traceback, a non-zero exit), and the Train page's Start shows one st.error and leaves no run directory behind.

A full disk is simulated by making the lab's one atomic writer (vae_core.runs.temp_beside) raise ENOSPC, a read-only
file system by making it raise EROFS: both work when the tests run as root, where chmod restricts nothing. The
chmod 0o555 cases run only as a normal user.
"""

from __future__ import annotations

import contextlib
import errno
import html
import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from vae_core import jobs, runs
from vae_core.cli import main
from vae_core.config import TrainConfig

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_non_root = pytest.mark.skipif(AS_ROOT, reason="chmod 0o555 does not stop root from writing")

TRAIN_ARGS = ["--corpus", "synthetic", "--quiet", "--embed-dim", "8", "--hidden-dim", "16", "--latent-dim", "4",
              "--batch-size", "16", "--max-steps", "2", "--log-every", "1"]


def _failing_writer(code: int):
    """A stand-in for runs.temp_beside whose every write fails with OSError(code) (ENOSPC: a full disk)."""

    @contextlib.contextmanager
    def writer(path):
        raise OSError(code, os.strerror(code))
        yield  # pragma: no cover - never reached

    return writer


@pytest.fixture
def run_copy(tiny_run_dir, tmp_path) -> Path:
    """A private copy of the tiny trained run (eval may write into it)."""
    dst = tmp_path / "copy" / tiny_run_dir.name
    shutil.copytree(tiny_run_dir, dst, ignore=shutil.ignore_patterns("cache"))
    return dst


@contextlib.contextmanager
def read_only(path: Path):
    mode = path.stat().st_mode
    path.chmod(0o555)
    try:
        yield
    finally:
        path.chmod(mode)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]


# --------------------------------------------------------------------------- the CLI


EVAL_ARGS = ["--max-sentences", "40", "--no-disentanglement"]


@pytest.mark.parametrize("code, says", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")])
def test_eval_prints_its_result_when_the_summary_cannot_be_written(run_copy, monkeypatch, capsys, code, says):
    before = _files(run_copy)
    with monkeypatch.context() as m:
        m.setattr(runs, "temp_beside", _failing_writer(code))
        rc = main(["eval", str(run_copy), "--json", *EVAL_ARGS])
    out, err = capsys.readouterr()
    assert rc == 1
    result = json.loads(out)  # the computed evaluation is on stdout, whole
    assert np.isfinite(result["elbo"]) and result["split"] == "test"
    _one_error_line(err, "not saved", "summary.json", says)
    assert _files(run_copy) == before, "nothing half-written in the run"
    # The same evaluation with a working disk is saved and equals what was printed.
    assert main(["eval", str(run_copy), "--json", *EVAL_ARGS]) == 0
    saved = json.loads((run_copy / "summary.json").read_text(encoding="utf-8"))["eval"]
    assert saved["elbo"] == result["elbo"]


def test_eval_plain_output_is_shown_too(run_copy, monkeypatch, capsys):
    monkeypatch.setattr(runs, "temp_beside", _failing_writer(errno.ENOSPC))
    assert main(["eval", str(run_copy), *EVAL_ARGS]) == 1
    out, err = capsys.readouterr()
    assert any(line.strip().startswith("elbo:") for line in out.splitlines()), out
    _one_error_line(err, "disk is full")


@needs_non_root
def test_eval_in_a_read_only_run_directory(run_copy, capsys):
    with read_only(run_copy):
        rc = main(["eval", str(run_copy), "--json", *EVAL_ARGS])
    out, err = capsys.readouterr()
    assert rc == 1 and np.isfinite(json.loads(out)["elbo"])
    _one_error_line(err, "permission")


@pytest.mark.parametrize("code, says", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")])
def test_train_into_a_full_or_read_only_out_gives_a_message(tmp_path, monkeypatch, capsys, code, says):
    monkeypatch.setattr(runs, "temp_beside", _failing_writer(code))
    out = tmp_path / "runs" / "r"
    rc = main(["train", *TRAIN_ARGS, "--out", str(out)])
    assert rc == 1
    _one_error_line(capsys.readouterr().err, "cannot write", says)
    assert not (out / "model.safetensors").exists()


@needs_non_root
def test_train_into_a_read_only_folder(tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    with read_only(parent):
        rc = main(["train", *TRAIN_ARGS, "--out", str(parent / "r")])
    assert rc == 1
    _one_error_line(capsys.readouterr().err, "permission")


def test_data_download_into_a_read_only_cache_gives_a_message(tmp_path, monkeypatch, capsys):
    """`data download-ptb` writes into the cache dir; its mkdir failing is one line, before any download."""
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv("VAE_CACHE_DIR", str(cache))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("no download may start"))
    assert main(["data", "download-ptb"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error:") and "ptb" in err, err


def test_encode_on_a_full_disk_leaves_no_partial_file(run_copy, tmp_path, monkeypatch, capsys):
    sentences = tmp_path / "s.txt"
    sentences.write_text("the doctor sees the cat .\nthe pilots follow .\n", encoding="utf-8")
    out = tmp_path / "mu.npy"
    real_save = np.save

    def save_half(f, arr):  # the disk fills up in the middle of the file
        f.write(b"\x93NUMPY")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", save_half)
    assert main(["encode", str(run_copy), str(sentences), "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, "cannot write", str(out), "disk is full")
    assert not out.exists() and not list(tmp_path.glob(".mu.npy.*")), "no truncated .npy or temp file left"
    monkeypatch.setattr(np, "save", real_save)
    assert main(["encode", str(run_copy), str(sentences), "--out", str(out)]) == 0
    assert np.load(out).shape[0] == 2


def test_write_error_message_names_the_real_file_not_the_temp_file(tmp_path):
    e = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / ".status.json.k3j2x9.tmp"))
    msg = runs.write_error_message(e)
    assert msg.startswith(f"cannot write {tmp_path / 'status.json'}:") and "disk is full" in msg


# --------------------------------------------------------------------------- start_training (no Streamlit)


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_start_training_on_a_full_disk_removes_the_run_and_its_process(tmp_path, monkeypatch):
    """The status write right after the launch fails: the launched process is ended and the directory removed."""
    root = tmp_path / "runs"
    children: list[int] = []
    real_register = jobs._register
    monkeypatch.setattr(jobs, "_register", lambda proc, *a: children.append(proc.pid) or real_register(proc, *a))
    monkeypatch.setattr(jobs, "write_status", _raise_enospc)
    with pytest.raises(jobs.StartError, match="disk is full"):
        jobs.start_training(root / "r", ["--device", "cpu"], train=TrainConfig(max_steps=2))
    assert not (root / "r").exists()
    assert len(children) == 1, "the failure came after the launch"
    deadline = time.time() + 10
    while any(not _dead(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in children if not _dead(pid)]
    for pid in alive:
        os.killpg(pid, signal.SIGKILL)
    assert not alive, "the launched training was left running"


def _raise_enospc(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_start_training_into_an_empty_existing_folder_keeps_the_folder(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    (root / "r").mkdir(parents=True)
    monkeypatch.setattr(runs, "temp_beside", _failing_writer(errno.ENOSPC))
    with pytest.raises(jobs.StartError, match="disk is full"):
        jobs.start_training(root / "r", files={"corpus.txt": b"a b c\n" * 60}, train=TrainConfig(max_steps=2))
    assert (root / "r").is_dir() and not any((root / "r").iterdir())


# --------------------------------------------------------------------------- the Train page


def _start(at, name: str) -> None:
    at.text_input(key="train_run_name").set_value(name)
    at.button(key="train_start").click().run()


def _plain(message: str) -> str:
    """An st.error body as plain text (the page escapes markdown as HTML entities and word joiners)."""
    return html.unescape(message).replace("\u2060", "")


def _run_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


@pytest.mark.parametrize("code, says", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")])
def test_train_page_start_on_a_full_or_read_only_disk(open_app, monkeypatch, code, says):
    root = Path(os.environ["VAE_RUNS_DIR"])
    at = open_app("app_pages/train.py")
    assert not at.exception
    launched = []
    monkeypatch.setattr(jobs, "_launch", lambda *a: launched.append(a) or 4242)  # no real training is started
    with monkeypatch.context() as m:
        m.setattr(runs, "temp_beside", _failing_writer(code))
        _start(at, "full")
    assert not at.exception, [e.value for e in at.exception]
    errors = [_plain(e.value) for e in at.error]
    assert len(errors) == 1 and "could not start the training" in errors[0] and says in errors[0], errors
    assert "train_config.json" in errors[0], errors
    assert _run_dirs(root) == [], "no empty or partial run directory is left"
    assert launched == [] and not at.success
    # With the disk back, Start works on the same page and name.
    _start(at, "full")
    assert not at.error and _run_dirs(root) == ["full"] and len(launched) == 1


@needs_non_root
def test_train_page_start_with_a_read_only_runs_folder(open_app):
    root = Path(os.environ["VAE_RUNS_DIR"])
    at = open_app("app_pages/train.py")
    with read_only(root):
        _start(at, "ro")
    assert not at.exception, [e.value for e in at.exception]
    assert any("could not start the training" in _plain(e.value) for e in at.error)
    assert _run_dirs(root) == []
