"""Training and sweep subprocesses: start, queue, stop, progress; upload and path checks (the app and the CLI share them).

No model logic and no Streamlit: a training is `python -m vae_core train ... --out <run>` in its own
session (it outlives the browser tab and the server), watched through the run directory's
status.json, metrics.jsonl and train.log. Several trainings at once are capped by
$VAE_MAX_TRAININGS (default 1); the rest wait as 'queued' and start when a page polls
`start_queued`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vae_core.corpus import CorpusError, TextSet, cache_dir, parse_text
from vae_core.runs import effective_state, pid_alive, read_status, write_json, write_status

REPO = Path(__file__).resolve().parents[1]
LOG_NAME = "train.log"
LOCK_NAME = ".jobs.lock"
SWEEP_DIR = ".sweeps"  # <runs>/.sweeps/<name>.json + .log: sweeps launched from the app
UPLOAD_FORMATS = ("txt", "csv", "jsonl")
DEFAULT_UPLOAD_MB = 50  # same as server.maxUploadSize in .streamlit/config.toml
MIN_SENTENCES = 50  # fewer cannot be split into train/valid/test and learn anything
MAX_RUN_NAME = 64
ACTIVE_STATES = ("running", "queued")

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


# ----------------------------------------------------------------------------- names and paths


def sanitize_run_name(name: str) -> str:
    """The name itself if it is a safe directory name (letters, digits, - _ .), else ValueError.

    Refused: empty, longer than 64 characters, separators or other characters, a leading dot, '..'.
    """
    if not isinstance(name, str):
        raise ValueError("a run name must be text")
    name = name.strip()
    if not name:
        raise ValueError("give the run a name")
    if len(name) > MAX_RUN_NAME:
        raise ValueError(f"a run name has at most {MAX_RUN_NAME} characters (this one has {len(name)})")
    if not _NAME_RE.match(name):
        bad = sorted({c for c in name if not re.match(r"[A-Za-z0-9_.-]", c)})
        raise ValueError(
            f"a run name may hold only letters, digits, '-', '_' and '.'; not {' '.join(repr(c) for c in bad)}"
        )
    if name.startswith("."):
        raise ValueError("a run name cannot start with a dot")
    if ".." in name:
        raise ValueError("a run name cannot contain '..'")
    return name


def default_run_name(beta: float, now: float | None = None) -> str:
    """E.g. 'beta1-20261126-1530': β and the start time, to the minute."""
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(now))
    return sanitize_run_name(f"beta{beta:g}-{stamp}".replace("+", ""))


def run_path(runs_root: str | os.PathLike, name: str) -> Path:
    """<runs_root>/<name> for a sanitised name (never outside runs_root)."""
    root = Path(runs_root).resolve()
    path = (root / sanitize_run_name(name)).resolve()
    if path.parent != root:
        raise ValueError(f"run {name!r} would be outside the runs folder")
    return path


def data_dirs() -> list[Path]:
    """Folders a corpus path typed in the app may lie in: $VAE_DATA_DIRS (os.pathsep-separated),
    else <repo>/data and the download cache (~/.cache/vae_text_lab or $VAE_CACHE_DIR)."""
    env = os.environ.get("VAE_DATA_DIRS", "")
    dirs = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()] if env.strip() else [
        REPO / "data",
        cache_dir(),
    ]
    return [d.resolve() for d in dirs]


def resolve_data_path(text: str) -> Path:
    """A typed corpus path, resolved, if it exists inside one of data_dirs(); else ValueError."""
    text = (text or "").strip()
    if not text:
        raise ValueError("type the path of a corpus file or folder")
    if "\x00" in text:
        raise ValueError("the path contains a NUL character")
    allowed = data_dirs()
    p = Path(text).expanduser()
    if not p.is_absolute():  # a relative path is looked up in each data folder in turn
        candidates = [d / p for d in allowed]
        p = next((c for c in candidates if c.exists()), candidates[0] if candidates else p)
    p = p.resolve()
    if not any(p == d or p.is_relative_to(d) for d in allowed):
        raise ValueError(
            f"corpus paths must lie inside {', '.join(str(d) for d in allowed) or '(none configured)'}; "
            f"{p} does not (set VAE_DATA_DIRS to allow other folders)"
        )
    if not p.exists():
        raise ValueError(f"no such file or folder: {p}")
    return p


# ----------------------------------------------------------------------------- uploads


def upload_format(name: str) -> str:
    """'txt', 'csv' or 'jsonl' from a file name, else ValueError."""
    ext = Path(name or "").suffix.lower().lstrip(".")
    if ext not in UPLOAD_FORMATS:
        raise ValueError(f"{name or 'the file'}: upload a .txt, .csv or .jsonl file (got {ext or 'no extension'!r})")
    return ext


def upload_columns(name: str, data: bytes, max_rows: int = 1000) -> list[str]:
    """Column names of an uploaded CSV (header) or JSONL (keys of the first rows); [] otherwise."""
    try:
        fmt = upload_format(name)
        text = data[: 1 << 20].decode("utf-8-sig", errors="replace")
    except ValueError:
        return []
    if fmt == "csv":
        import csv
        import io

        try:
            for row in csv.reader(io.StringIO(text, newline="")):
                if any(c.strip() for c in row):
                    return [c.strip() for c in row]
        except csv.Error:  # e.g. a header field over csv's size limit: validate_upload says why
            return []
        return []
    if fmt == "jsonl":
        cols: list[str] = []
        for line in text.splitlines()[:max_rows]:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                cols.extend(str(k) for k in obj if str(k) not in cols)
        return cols
    return []


def validate_upload(
    name: str, data: bytes, text_column: str | None = None, max_bytes: int = DEFAULT_UPLOAD_MB * 1024 * 1024,
    min_sentences: int = MIN_SENTENCES,
) -> tuple[TextSet | None, str | None]:
    """Parse an uploaded corpus: (TextSet, None) when usable, else (None, a message a person can act on).

    Checks the extension, the size cap, emptiness, binary and non-UTF-8 content, the text column
    (CSV/JSONL) and that there are at least `min_sentences` sentences.
    """
    try:
        fmt = upload_format(name)
        if data is None or len(data) == 0:
            return None, f"{name} is empty"
        if len(data) > max_bytes:
            return None, f"{name} is {len(data) / 1e6:.1f} MB; the upload limit is {max_bytes / 1e6:.0f} MB"
        texts = parse_text(bytes(data), fmt, name, text_column or None, max_bytes=max_bytes)
    except (CorpusError, ValueError) as e:
        return None, str(e)
    if len(texts) < min_sentences:
        return None, f"{name} has {len(texts)} sentences; at least {min_sentences} are needed to train"
    return texts, None


# ----------------------------------------------------------------------------- process registry

_PROCS: dict[int, tuple[subprocess.Popen, Path, str]] = {}  # pid -> (process, run dir or log, kind)
_PROCS_LOCK = threading.Lock()


def _finish(pid: int) -> None:
    """After a child exited: forget it, and mark a training that died without saying so."""
    with _PROCS_LOCK:
        entry = _PROCS.pop(pid, None)
    if entry is None:
        return
    proc, path, kind = entry
    rc = proc.returncode
    if kind != "train" or rc is None or rc == 0:
        return
    s = read_status(path)
    if s.get("state") == "running" and s.get("pid") == pid:
        if rc < 0 and s.get("stop_requested"):
            write_status(path, "stopped", pid=pid, message="stopped before training began")
        elif rc > 0:
            write_status(path, "failed", pid=pid, message=log_tail(path / LOG_NAME, 5) or f"exit code {rc}")


def reap() -> None:
    """Collect exited children (no zombies); a training that died without saying so is marked failed."""
    with _PROCS_LOCK:
        items = list(_PROCS.items())
    for pid, (proc, _path, _kind) in items:
        if proc.poll() is not None:
            _finish(pid)


def _register(proc: subprocess.Popen, path: Path, kind: str) -> None:
    """Keep the child, and wait for it in a daemon thread so it is reaped even if no page polls."""
    with _PROCS_LOCK:
        _PROCS[proc.pid] = (proc, Path(path), kind)

    def waiter() -> None:
        proc.wait()
        _finish(proc.pid)

    threading.Thread(target=waiter, name=f"reap-{proc.pid}", daemon=True).start()


def _wait_pid(pid: int, timeout: float) -> bool:
    """Wait until the process is gone (reaping it when it is our child); True if it ended."""
    deadline = time.monotonic() + timeout
    with _PROCS_LOCK:
        entry = _PROCS.get(pid)
    while time.monotonic() < deadline:
        if entry is not None:
            if entry[0].poll() is not None:
                return True
        elif not pid_alive(pid):
            return True
        time.sleep(0.1)
    return entry[0].poll() is not None if entry is not None else not pid_alive(pid)


@contextlib.contextmanager
def _jobs_lock(runs_root: Path) -> Iterator[None]:
    """An exclusive lock over starting trainings in one runs folder (across sessions and processes)."""
    runs_root.mkdir(parents=True, exist_ok=True)
    with open(runs_root / LOCK_NAME, "a+") as f:
        try:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        except ImportError:  # not POSIX: the thread lock below still serialises this server
            pass
        with _START_LOCK:
            yield


_START_LOCK = threading.RLock()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            return f.read().replace(b"\x00", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def _is_vae_process(pid: int) -> bool:
    """True if pid runs `python -m vae_core ...` (or /proc cannot tell): never signal a stranger."""
    if not pid or not pid_alive(pid):
        return False
    cmd = _cmdline(pid)
    return cmd is None or "vae_core" in cmd


# ----------------------------------------------------------------------------- trainings


def max_concurrent() -> int:
    """How many trainings may run at once: $VAE_MAX_TRAININGS, default 1."""
    try:
        return max(1, int(os.environ.get("VAE_MAX_TRAININGS", "1")))
    except ValueError:
        return 1


def running_trainings(runs_root: str | os.PathLike) -> list[Path]:
    """Run directories under runs_root whose status is 'running' with a live process."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and effective_state(p) == "running")


def queued_trainings(runs_root: str | os.PathLike) -> list[Path]:
    """Queued run directories, oldest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    queued = [(read_status(p), p) for p in root.iterdir() if p.is_dir()]
    queued = [(s, p) for s, p in queued if s.get("state") == "queued"]
    return [p for s, p in sorted(queued, key=lambda sp: (float(sp[0].get("queued_at") or 0), sp[1].name))]


def build_train_args(**options: Any) -> list[str]:
    """CLI flags of `python -m vae_core train` from keyword options (None or False left out).

    Keys are TrainConfig/ModelConfig-like names: beta, schedule, embed_dim, rnn_type, corpus, ...
    """
    flag = {"rnn_type": "--rnn"}
    args: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        name = flag.get(key, "--" + key.replace("_", "-"))
        if value is True:
            args.append(name)
        else:
            args += [name, f"{value:g}" if isinstance(value, float) else str(value)]
    return args


def start_training(
    run_dir: str | os.PathLike,
    args: Sequence[str],
    *,
    overwrite: bool = False,
    files: dict[str, bytes] | None = None,
    limit: int | None = None,
) -> int | None:
    """Launch `python -m vae_core train *args --out run_dir --quiet` detached; return its pid.

    Returns None when `limit` (default $VAE_MAX_TRAININGS) trainings already run: the run is then
    written as 'queued' and started by a later `start_queued`. `files` (name -> bytes, e.g. an
    uploaded corpus) are written into the run directory first. An existing non-empty directory
    is refused unless `overwrite` (never while it is running or queued).
    """
    run_dir = Path(run_dir).resolve()
    sanitize_run_name(run_dir.name)
    root = run_dir.parent
    with _jobs_lock(root):
        if run_dir.exists() and any(run_dir.iterdir()):
            state = effective_state(run_dir)
            if state in ACTIVE_STATES:
                raise ValueError(f"run {run_dir.name} is {state}; stop it before replacing it")
            if not overwrite:
                raise ValueError(f"run {run_dir.name} already exists; pick another name or confirm overwriting it")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        for fname, data in (files or {}).items():
            if Path(fname).name != fname or fname.startswith("."):
                raise ValueError(f"bad file name {fname!r}")
            (run_dir / fname).write_bytes(data)
        limit = max_concurrent() if limit is None else limit
        if len(running_trainings(root)) >= limit:
            write_status(run_dir, "queued", pid=None, args=list(args), queued_at=time.time(), limit=limit,
                         message=f"waiting: {limit} training(s) already running")
            return None
        return _launch(run_dir, list(args))


def _launch(run_dir: Path, args: list[str]) -> int:
    """Popen the training (caller holds the jobs lock) and mark the run 'running' with its pid."""
    cmd = [sys.executable, "-m", "vae_core", "train", *args, "--out", str(run_dir), "--quiet", "--overwrite"]
    with open(run_dir / LOG_NAME, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _register(proc, run_dir, "train")
    if read_status(run_dir).get("pid") != proc.pid:  # the child has not written its own status yet
        write_status(run_dir, "running", pid=proc.pid, args=args, step=0)
    return proc.pid


def start_queued(runs_root: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Start queued runs while fewer than `limit` trainings run; return the runs started."""
    reap()
    root = Path(runs_root)
    if not root.is_dir():
        return []
    started: list[Path] = []
    if not queued_trainings(root):
        return started
    limit = max_concurrent() if limit is None else limit
    with _jobs_lock(root):
        for run_dir in queued_trainings(root):
            if len(running_trainings(root)) >= limit:
                break
            args = read_status(run_dir).get("args") or []
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                write_status(run_dir, "failed", pid=None, message="queued run has no valid arguments")
                continue
            _launch(run_dir, args)
            started.append(run_dir)
    return started


def stop_training(run_dir: str | os.PathLike, timeout: float = 15.0) -> str:
    """Stop a training: SIGTERM (the CLI saves a checkpoint, status 'stopped'), SIGKILL after `timeout`.

    A queued run is simply cancelled. Returns the state afterwards.
    """
    run_dir = Path(run_dir)
    s = read_status(run_dir)
    if s.get("state") == "queued":
        write_status(run_dir, "stopped", pid=None, message="cancelled while queued")
        return "stopped"
    pid = s.get("pid")
    if s.get("state") != "running" or not isinstance(pid, int) or not _is_vae_process(pid):
        reap()
        return effective_state(run_dir)
    write_status(run_dir, "running", **{k: v for k, v in s.items() if k not in ("state",)}, stop_requested=True)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_pid(pid, timeout):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        _wait_pid(pid, 5.0)
    reap()
    state = effective_state(run_dir)
    if state == "killed" and read_status(run_dir).get("stop_requested"):
        write_status(run_dir, "stopped", pid=pid, message="stopped (process ended before saving)")
        state = "stopped"
    return state


# ----------------------------------------------------------------------------- progress


def log_tail(path: str | os.PathLike, lines: int = 20, max_bytes: int = 16384) -> str:
    """The last lines of a log file ('' if missing)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").replace("\r", "\n")
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def _tail_records(path: Path, max_bytes: int = 65536) -> list[dict]:
    """Whole JSON lines at the end of metrics.jsonl (a half-written last line is skipped)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line is probably cut
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _looks_failed(log: str) -> bool:
    return any(k in log for k in ("Traceback (most recent call last)", "error:", "Error:"))


def training_progress(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What the watch panel shows: state, step/total_steps, progress 0..1, eta_s, tokens_per_s, ...

    state is the status state with 'running' turned into 'killed' when the process is gone (or
    'failed' when its log ends in an error); 'error' holds the message and log tail of a failed run.
    """
    reap()
    run_dir = Path(run_dir)
    s = read_status(run_dir)
    state = effective_state(run_dir)
    recs = _tail_records(run_dir / "metrics.jsonl")
    train_recs = [r for r in recs if r.get("kind") == "train"]
    valid_recs = [r for r in recs if r.get("kind") == "valid"]
    last = train_recs[-1] if train_recs else {}
    tail = log_tail(run_dir / LOG_NAME, 15)
    if state == "killed" and _looks_failed(tail):
        state = "failed"
    step = int(last.get("step", s.get("step", 0)) or 0)
    if isinstance(s.get("step"), int) and state != "running":
        step = max(step, s["step"])
    total = int(last.get("total_steps") or s.get("total_steps") or 0)
    eta = last.get("eta_s")
    if state == "running" and eta is not None and last.get("time"):
        eta = max(0.0, float(eta) - (time.time() - float(last["time"])))
    elif state != "running":
        eta = None
    error = ""
    if state in ("failed", "killed"):
        error = "\n".join(x for x in (str(s.get("message") or ""), tail) if x)
    return {
        "name": run_dir.name,
        "state": state,
        "pid": s.get("pid"),
        "step": step,
        "total_steps": total,
        "progress": min(1.0, step / total) if total else (1.0 if state == "finished" else 0.0),
        "eta_s": eta,
        "tokens_per_s": last.get("tokens_per_s"),
        "elapsed_s": last.get("elapsed"),
        "epoch": last.get("epoch"),
        "last_train": last,
        "last_valid": valid_recs[-1] if valid_recs else {},
        "message": str(s.get("message") or ""),
        "error": error,
        "started": s.get("started"),
        "updated": s.get("updated"),
    }


def watchable_runs(runs_root: str | os.PathLike) -> list[Path]:
    """Directories under runs_root that look like runs (status.json or config.json), newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
            and ((p / "status.json").is_file() or (p / "config.json").is_file())]

    def started(p: Path) -> float:
        s = read_status(p)
        return float(s.get("started") or s.get("queued_at") or p.stat().st_mtime)

    return sorted(runs, key=started, reverse=True)


# ----------------------------------------------------------------------------- sweeps


def sweep_file(runs_root: str | os.PathLike, name: str) -> Path:
    return Path(runs_root) / SWEEP_DIR / f"{sanitize_run_name(name)}.json"


def start_sweep(runs_root: str | os.PathLike, name: str, args: Sequence[str]) -> int:
    """Launch `python -m vae_core sweep --name name --out-root runs_root *args` detached; return its pid.

    Its log and a small record (pid, args, start time) go to <runs_root>/.sweeps/.
    """
    name = sanitize_run_name(name)
    root = Path(runs_root).resolve()
    meta = sweep_file(root, name)
    meta.parent.mkdir(parents=True, exist_ok=True)
    old = read_sweep(root, name)
    if old.get("pid") and old.get("alive"):
        raise ValueError(f"sweep {name} is already running (pid {old['pid']})")
    cmd = [sys.executable, "-m", "vae_core", "sweep", "--name", name, "--out-root", str(root), *args]
    log_path = meta.with_suffix(".log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _register(proc, log_path, "sweep")
    write_json(meta, {"name": name, "pid": proc.pid, "args": list(args), "started": time.time(),
                      "log": str(log_path)})
    return proc.pid


def read_sweep(runs_root: str | os.PathLike, name: str) -> dict[str, Any]:
    """The record of a sweep launched from the app, with 'alive' and 'log_tail' added ({} if none)."""
    reap()
    meta = sweep_file(runs_root, name)
    try:
        rec = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(rec, dict):
        return {}
    pid = rec.get("pid")
    rec["alive"] = isinstance(pid, int) and pid_alive(pid) and _is_vae_process(pid)
    rec["log_tail"] = log_tail(meta.with_suffix(".log"), 15)
    return rec


def list_sweeps(runs_root: str | os.PathLike) -> list[str]:
    """Names of sweeps launched from the app into runs_root, newest first."""
    d = Path(runs_root) / SWEEP_DIR
    if not d.is_dir():
        return []
    return [p.stem for p in sorted(d.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)]


def stop_sweep(runs_root: str | os.PathLike, name: str, timeout: float = 15.0) -> bool:
    """SIGTERM the sweep worker (it finishes the current trial as 'stopped'), SIGKILL after timeout."""
    rec = read_sweep(runs_root, name)
    pid = rec.get("pid")
    if not rec.get("alive") or not isinstance(pid, int):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_pid(pid, timeout):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _wait_pid(pid, 5.0)
    reap()
    return True
