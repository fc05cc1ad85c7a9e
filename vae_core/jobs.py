"""Training and sweep subprocesses: start, queue, stop, progress; upload and path checks (app and CLI share them).

No model logic and no Streamlit: a training is `python -m vae_core train ... --out <run>` in its own
session (it outlives the browser tab and the server), watched through the run directory's
status.json, metrics.jsonl and train.log.

One scheduler for every training (the app's, a shell's, a sweep trial): a training holds a slot, an
exclusive `flock` on <runs>/.slot-<k>.lock, for its whole life, and waits as 'queued' while
$VAE_MAX_TRAININGS (default 1; 0 = no limit) slots are held. The operating system drops the lock
when the process dies, so no slot is ever stale, and a queued run starts when a slot frees whether
or not anyone has a page open. A run's process is identified by its PID and start time
(`vae_core.runs.effective_state`), so a reused PID never passes for a training.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vae_core.config import ModelConfig, TrainConfig, to_dict
from vae_core.corpus import MAX_COLUMNS, CorpusError, TextSet, cache_dir, decode_head, parse_text
from vae_core.runs import (
    ProcessIdentity,
    RunError,
    atomic_write_bytes,
    check_inside,
    effective_state,
    identity_matches,
    metric_records,
    pid_alive,
    process_identity,
    read_json_object,
    read_status,
    request_stop,
    write_error_message,
    write_json,
    write_status,
)
from vae_core.units import format_bytes

REPO = Path(__file__).resolve().parents[1]
LOG_NAME = "train.log"
TRAIN_CONFIG_NAME = "train_config.json"  # what the app launches a training with (`train --config`)
LOCK_NAME = ".jobs.lock"
SWEEP_DIR = ".sweeps"  # <runs>/.sweeps/<name>.json + .log: sweeps launched from the app
UPLOAD_FORMATS = ("txt", "csv", "jsonl")
DEFAULT_UPLOAD_MB = 50  # same as server.maxUploadSize in .streamlit/config.toml
MIN_SENTENCES = 50  # fewer cannot be split into train/valid/test and learn anything
MAX_UPLOAD_ROWS = 1_000_000  # an uploaded corpus is held in server memory; larger ones: a path on the server
MAX_RUN_NAME = 64
ACTIVE_STATES = ("running", "queued", "paused")  # effective states a Stop applies to ('paused': SIGSTOPped)
SLOT_GLOB = ".slot-*.lock"  # <runs>/.slot-<k>.lock: training slots (files, so listings of run folders skip them)
SLOTS_MUTEX = ".slots.lock"  # held while slots are counted and taken
SLOT_POLL_S = 0.5  # how often a queued training tries for a slot

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
    """Column names of an uploaded CSV (header) or JSONL (keys of the first rows); [] otherwise.

    [] too when there are more than corpus.MAX_COLUMNS (validate_upload then says why), so a page
    never offers a picker of a million options.
    """
    cols = _upload_columns(name, data, max_rows)
    return cols if len(cols) <= MAX_COLUMNS else []


def _upload_columns(name: str, data: bytes, max_rows: int) -> list[str]:
    try:
        fmt = upload_format(name)
        text = decode_head(data, 1 << 20)  # UTF-8, or UTF-16/32 with a byte-order mark, as parse_text reads it
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
                cols.extend(k for k in dict.fromkeys(map(str, obj)) if k not in cols)
                if len(cols) > MAX_COLUMNS:
                    break
        return cols
    return []


def validate_upload(
    name: str, data: bytes, text_column: str | None = None, max_bytes: int = DEFAULT_UPLOAD_MB * 1024 * 1024,
    min_sentences: int = MIN_SENTENCES,
) -> tuple[TextSet | None, str | None]:
    """Parse an uploaded corpus: (TextSet, None) when usable, else (None, a message a person can act on).

    Checks the extension, the size cap, emptiness, binary and non-UTF-8 content, the text column
    (CSV/JSONL), at most corpus.MAX_COLUMNS columns, MAX_UPLOAD_ROWS rows and
    corpus.MAX_LABEL_CHARS characters a label (refused as soon as seen), and that there are at
    least `min_sentences` sentences.
    """
    try:
        fmt = upload_format(name)
        if data is None or len(data) == 0:
            return None, f"{name} is empty"
        if len(data) > max_bytes:
            return None, f"{name} is {format_bytes(len(data))}; the upload limit is {format_bytes(max_bytes)}"
        texts = parse_text(bytes(data), fmt, name, text_column or None, max_bytes=max_bytes,
                           max_rows=MAX_UPLOAD_ROWS)
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
    if s.state in ("running", "queued") and s.pid == pid:
        if rc < 0 and s.stop_requested:
            why = "cancelled while queued" if s.state == "queued" else "stopped before training began"
            write_status(path, "stopped", pid=pid, message=why)
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


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # torch's CPU pools read these


def _env_int(name: str, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(os.environ.get(name, default))))
    except ValueError:
        return default


def train_threads() -> int:
    """CPU threads a launched job may use: $VAE_TRAIN_THREADS, default all cores but one (kept for the app)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return _env_int("VAE_TRAIN_THREADS", max(1, cores - 1), 1, 1024)


def train_nice() -> int:
    """How much lower than the app a launched job runs (niceness added): $VAE_TRAIN_NICE, default 10; 0..19."""
    return _env_int("VAE_TRAIN_NICE", 10, 0, 19)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(dict.fromkeys(THREAD_VARS, str(train_threads())))  # so a training cannot take every core
    return env


def _lower_priority(pid: int) -> None:
    """Give a launched job (and what it forks later) a niceness `train_nice()` above this process's.

    Set from the parent after Popen (a preexec_fn is unsafe in the threaded server); the job's first
    milliseconds run at the app's priority, which is harmless.
    """
    with contextlib.suppress(AttributeError, OSError):  # not POSIX, or the child has already gone
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, pid, min(19, own + train_nice()))


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
    """How many trainings may run at once in one runs folder: $VAE_MAX_TRAININGS, default 1; 0 = no limit."""
    try:
        return max(0, int(os.environ.get("VAE_MAX_TRAININGS", "1")))
    except ValueError:
        return 1


class TrainingSlot:
    """A held training slot: an open lock file with an exclusive flock, dropped by release() or by the
    process's death. A slot with no file (no limit, a torchrun rank other than 0, no flock) holds nothing."""

    def __init__(self, path: Path | None = None, file: Any = None) -> None:
        self.path, self._file = path, file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the last descriptor drops the flock
            self._file = None

    def __enter__(self) -> TrainingSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _slot_name(k: int) -> str:
    return SLOT_GLOB.replace("*", str(k))


def _flock(f: Any, blocking: bool) -> bool:
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _probe_slots(d: Path, limit: int) -> tuple[int, Any | None, Path | None]:
    """(slots held, an open locked file of a free slot < limit or None, its path); the caller holds the mutex.

    Every existing lock file counts, so lowering the limit never lets more trainings run than it says.
    """
    held, mine, mine_path = 0, None, None
    ours = {_slot_name(k) for k in range(limit)}
    for name in sorted(ours | {p.name for p in d.glob(SLOT_GLOB)}, key=lambda n: (len(n), n)):
        path = d / name
        f = open(path, "a+")  # noqa: SIM115 - kept open while the slot is held
        if not _flock(f, blocking=False):
            held += 1
            f.close()
        elif mine is None and name in ours:
            mine, mine_path = f, path
        else:
            f.close()
    return held, mine, mine_path


def try_slot(runs_root: str | os.PathLike, limit: int | None = None) -> TrainingSlot | None:
    """Take a free training slot of runs_root now (a TrainingSlot to keep while training), or None if all are held."""
    limit = max_concurrent() if limit is None else limit
    try:
        import fcntl  # noqa: F401
    except ImportError:  # not POSIX: no slots (the limit is not enforced)
        return TrainingSlot()
    if limit <= 0:
        return TrainingSlot()
    d = Path(runs_root)
    try:
        d.mkdir(parents=True, exist_ok=True)
        mutex = open(d / SLOTS_MUTEX, "a+")  # noqa: SIM115 - closed below
    except OSError:  # a read-only or missing folder: no slot to take (the training reports its own error)
        return TrainingSlot()
    with mutex:  # one prober at a time: count and take as one step
        _flock(mutex, blocking=True)
        held, f, path = _probe_slots(d, limit)
        if f is not None and held < limit:
            return TrainingSlot(path, f)
        if f is not None:
            f.close()
    return None


def slots_in_use(runs_root: str | os.PathLike) -> int:
    """How many training slots of runs_root are held now (by live processes: a dead one's lock is gone)."""
    d = Path(runs_root)
    if not (d / SLOTS_MUTEX).is_file():
        return 0
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return 0
    with open(d / SLOTS_MUTEX, "a+") as mutex:
        _flock(mutex, blocking=True)
        held, f, _ = _probe_slots(d, 0)
        if f is not None:
            f.close()
    return held


def wait_for_slot(
    run_dir: str | os.PathLike,
    limit: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = SLOT_POLL_S,
) -> TrainingSlot | None:
    """Block until a training slot of run_dir's runs folder is free and return it (hold it while training).

    Returns None when `should_stop()` turns true first (Stop on a queued run). While waiting, the run's
    status.json says 'queued' (and 'stopped' if cancelled) when it already names this process (a
    launcher such as start_training registered it); a new --out typed in a shell is not created
    before its training starts. `on_wait(message)` is called once when the wait begins (the CLI
    prints it). Under torchrun only rank 0 takes a slot, for the whole job.
    """
    run_dir = Path(run_dir).resolve()
    limit = max_concurrent() if limit is None else limit
    should_stop = should_stop or (lambda: False)
    if os.environ.get("RANK", "0") != "0":
        return TrainingSlot()
    root = run_dir.parent
    slot = try_slot(root, limit)
    if slot is not None:
        return slot
    announce = read_status(run_dir).pid == os.getpid()
    message = f"waiting for a training slot: {limit} training(s) may run at once in {root}"
    if announce:
        write_status(run_dir, "queued", queued_at=time.time(), limit=limit, message=message)
    if on_wait is not None:
        on_wait(message)
    while slot is None:
        if should_stop():
            if announce:
                write_status(run_dir, "stopped", message="cancelled while queued")
            return None
        time.sleep(poll_s)
        slot = try_slot(root, limit)
    if announce:
        write_status(run_dir, "running", step=0, message="")
    return slot


def running_trainings(runs_root: str | os.PathLike) -> list[Path]:
    """Run directories under runs_root whose training process runs now ('running' or 'paused')."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and effective_state(p) in ("running", "paused"))


def queued_trainings(runs_root: str | os.PathLike) -> list[Path]:
    """Queued run directories (waiting for a slot), oldest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    queued = [(read_status(p), p) for p in root.iterdir() if p.is_dir()]
    queued = [(s, p) for s, p in queued if effective_state(p, s) == "queued"]
    return [p for s, p in sorted(queued, key=lambda sp: (sp[0].queued_at or 0.0, sp[1].name))]


def trainings_busy(runs_root: str | os.PathLike) -> int:
    """Trainings that hold or are about to hold a slot: held slots, or runs whose live process says 'running'."""
    return max(slots_in_use(runs_root), len(running_trainings(runs_root)))


def write_train_config(
    run_dir: str | os.PathLike,
    model: ModelConfig,
    train: TrainConfig,
    corpus: str = "synthetic",
    text_column: str | None = None,
) -> Path:
    """Write <run_dir>/train_config.json, the file `python -m vae_core train --config` reads; return its path.

    It holds the validated configs as a run's config.json does ({"model", "train", "corpus": {"spec",
    "text_column"}}), so a launch passes the configuration itself, never flags to be parsed back.
    """
    path = Path(run_dir) / TRAIN_CONFIG_NAME
    data = {"model": to_dict(model), "train": to_dict(train), "corpus": {"spec": corpus, "text_column": text_column}}
    atomic_write_bytes(path, json.dumps(data, indent=1).encode("utf-8"))
    return path


def start_training(
    run_dir: str | os.PathLike,
    args: Sequence[str] = (),
    *,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    corpus: str = "synthetic",
    text_column: str | None = None,
    overwrite: bool = False,
    files: dict[str, bytes] | None = None,
) -> int | None:
    """Launch `python -m vae_core train --config <run_dir>/train_config.json *args --out run_dir` detached.

    With `model`/`train` the configuration is written to the run's train_config.json (with the corpus)
    and passed as --config; `args` then holds only what describes the machine (e.g. --device). Returns
    the pid.

    Returns None when $VAE_MAX_TRAININGS trainings already run: the process is launched all the
    same and waits for a slot as 'queued' (its pid is in status.json). `files` (name -> bytes, e.g. an
    uploaded corpus) are written into the run directory first. An existing non-empty directory
    is refused unless `overwrite` (never while it is running or queued).
    """
    run_dir = Path(run_dir).resolve()
    sanitize_run_name(run_dir.name)
    root = run_dir.parent
    for fname in files or {}:
        if Path(fname).name != fname or fname.startswith("."):
            raise ValueError(f"bad file name {fname!r}")
    existed_empty = created = False
    try:
        existed_empty = run_dir.is_dir() and not any(run_dir.iterdir())
        with _jobs_lock(root):
            if run_dir.exists() and any(run_dir.iterdir()):
                state = effective_state(run_dir)
                if state in ACTIVE_STATES:
                    raise ValueError(f"run {run_dir.name} is {state}; stop it before replacing it")
                if not overwrite:
                    raise ValueError(f"run {run_dir.name} already exists; pick another name or confirm overwriting it")
                shutil.rmtree(run_dir)
            created = True  # from here on a failure removes what this call wrote
            run_dir.mkdir(parents=True, exist_ok=True)
            for fname, data in (files or {}).items():
                atomic_write_bytes(run_dir / fname, data)
            limit = max_concurrent()
            busy = trainings_busy(root)
            if model is not None or train is not None:
                config = write_train_config(run_dir, model or ModelConfig(), train or TrainConfig(), corpus,
                                            text_column)
                args = ["--config", str(config), *args]
            pid = _launch(run_dir, list(args))  # the training waits for its slot itself (wait_for_slot)
            if limit and busy >= limit:
                try:
                    write_status(run_dir, "queued", pid=pid, queued_at=time.time(), limit=limit,
                                 message=f"waiting: {limit} training(s) already running")
                except OSError:
                    _kill_launched(pid)
                    raise
                return None
            return pid
    except OSError as e:  # a full disk or a read-only runs folder: a message, and no half-made run left behind
        if created:
            _remove_partial_run(run_dir, keep_dir=existed_empty)
        raise StartError(f"could not start the training: {write_error_message(e)}") from e


class StartError(ValueError):
    """A training could not be started because its files could not be written (full disk, read-only folder)."""


def _remove_partial_run(run_dir: Path, keep_dir: bool) -> None:
    """Remove what a failed start wrote into `run_dir` (the folder too, unless it was there, empty, before)."""
    if keep_dir:
        with contextlib.suppress(OSError):
            for p in list(run_dir.iterdir()):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


def _kill_launched(pid: int) -> None:
    """End a training launched a moment ago whose run files could not be written (its own session)."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    _wait_pid(pid, 5.0)


def _launch(run_dir: Path, args: list[str]) -> int:
    """Popen the training (caller holds the jobs lock) and mark the run 'running' with its pid."""
    cmd = [sys.executable, "-m", "vae_core", "train", *args, "--out", str(run_dir), "--quiet", "--overwrite"]
    with open(run_dir / LOG_NAME, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _lower_priority(proc.pid)
    _register(proc, run_dir, "train")
    if read_status(run_dir).pid != proc.pid:  # the child has not written its own status yet
        try:
            write_status(run_dir, "running", pid=proc.pid, args=args, step=0)
        except OSError:  # nothing on disk would tell anyone this process exists
            _kill_launched(proc.pid)
            raise
    return proc.pid


def start_queued(runs_root: str | os.PathLike) -> list[Path]:
    """Launch queued runs that have no process: records written before trainings waited for slots themselves.

    A run queued now is a launched process waiting in `wait_for_slot`, so nothing needs to poll for
    it; this only picks up an older record (state 'queued', no pid, its CLI flags in 'args'). The
    launched process waits for its slot like any other. Returns the runs launched.
    """
    reap()
    root = Path(runs_root)
    started: list[Path] = []
    if not root.is_dir() or not any(read_status(p).pid is None for p in queued_trainings(root)):
        return started  # the usual case: no lock taken, nothing written
    with _jobs_lock(root):
        for run_dir in queued_trainings(root):
            s = read_status(run_dir)
            if s.pid is not None:
                continue
            if not s.args:
                write_status(run_dir, "failed", pid=None, message="queued run has no valid arguments")
                continue
            _launch(run_dir, list(s.args))
            started.append(run_dir)
    return started


def stop_training(run_dir: str | os.PathLike, timeout: float = 15.0) -> str:
    """Stop a training: SIGTERM (the CLI saves a checkpoint, status 'stopped'), SIGKILL after `timeout`.

    A queued run is cancelled (its waiting process ends at once); a paused (SIGSTOPped) one is
    continued so it can act on the SIGTERM. A run whose process is gone or whose PID now belongs to
    another process is never signalled. Returns the state afterwards.
    """
    run_dir = Path(run_dir)
    s = read_status(run_dir)
    state = effective_state(run_dir, s)
    if state == "queued" and s.pid is None:
        write_status(run_dir, "stopped", pid=None, message="cancelled while queued")
        return "stopped"
    if state not in ACTIVE_STATES or s.pid is None:
        reap()
        return effective_state(run_dir)
    pid = s.pid
    request_stop(run_dir)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        if state == "paused":
            os.kill(pid, signal.SIGCONT)
    if not _wait_pid(pid, timeout):
        if identity_matches(s.identity):  # still the same process: kill it and its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
        _wait_pid(pid, 5.0)
    reap()
    after = read_status(run_dir)
    state = effective_state(run_dir, after)
    if state == "killed" and after.stop_requested:
        why = "cancelled while queued" if after.state == "queued" else "stopped (process ended before saving)"
        write_status(run_dir, "stopped", pid=pid, message=why)
        state = "stopped"
    return state


# ----------------------------------------------------------------------------- resume and evaluation jobs

EVAL_DIR = ".evals"  # <runs>/.evals/<run>.json + .log: evaluations launched from the app
EVAL_LAUNCHER = "vae_core.run_management"  # waits for a slot, then runs `python -m vae_core eval <run>` in it


def resume_training(run_dir: str | os.PathLike, args: Sequence[str] = ()) -> int | None:
    """Relaunch `python -m vae_core train --resume --out run_dir *args` through the scheduler.

    Returns the pid, or None when it waits as 'queued' for a slot ($VAE_MAX_TRAININGS). Refused
    (ValueError) while the run is running, queued or paused. Checks of what may be resumed are the
    caller's (vae_core.run_management.resume_run).
    """
    run_dir = Path(run_dir).resolve()
    root = run_dir.parent
    with _jobs_lock(root):
        state = effective_state(run_dir)
        if state in ACTIVE_STATES:
            raise ValueError(f"run {run_dir.name} is {state}; it cannot be resumed now")
        limit, busy = max_concurrent(), trainings_busy(root)
        pid = _launch(run_dir, ["--resume", *args])
        if limit and busy >= limit:
            write_status(run_dir, "queued", pid=pid, queued_at=time.time(), limit=limit,
                         message=f"waiting: {limit} training(s) already running")
            return None
        return pid


def evaluation_file(run_dir: str | os.PathLike) -> Path:
    """<runs>/.evals/<run>.json: the record of the app's evaluation of a run (its log beside it, .log).

    A run folder the app did not name (too long, or characters a run name may not hold) is recorded
    under a digest of its name instead, so any folder in the runs folder has a record name.
    """
    run_dir = Path(run_dir)
    try:
        stem = sanitize_run_name(run_dir.name)
    except ValueError:
        stem = "run-" + hashlib.sha256(run_dir.name.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return run_dir.parent / EVAL_DIR / f"{stem}.json"


def start_evaluation(run_dir: str | os.PathLike, args: Sequence[str] = ()) -> int:
    """Launch `python -m vae_core eval run_dir --json *args` in the background, holding a training slot.

    The launched process waits for a slot like a training (so $VAE_MAX_TRAININGS counts evaluations
    too), then runs the eval CLI while it holds the slot; the CLI writes summary.json's 'eval' block
    (<runs>/.evals/<run>.running says the slot was taken). Returns its pid;
    ValueError when an evaluation of this run is still going.
    """
    run_dir = Path(run_dir).resolve()
    meta = evaluation_file(run_dir)
    with _jobs_lock(run_dir.parent):
        if evaluation_status(run_dir)["state"] in ("queued", "running"):
            raise ValueError(f"run {run_dir.name} is being evaluated already")
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.with_suffix(".running").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", EVAL_LAUNCHER, "evaluate", str(run_dir), *args]
        with open(meta.with_suffix(".log"), "wb") as log:
            proc = subprocess.Popen(cmd, cwd=str(REPO), env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        _lower_priority(proc.pid)
        _register(proc, meta.with_suffix(".log"), "eval")
        ident = process_identity(proc.pid)
        write_json(meta, {"run": run_dir.name, "pid": proc.pid, "proc_start": ident.start if ident else None,
                          "boot_id": ident.boot_id if ident else None, "args": list(args),
                          "launched": time.time()})
    return proc.pid


def evaluation_status(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The app's evaluation of a run: state none | queued | running | finished | failed, with 'log_tail'.

    'queued' while the job waits for a slot, 'running' once it holds one (it wrote <run>.running);
    'finished' when the process is gone and summary.json was written after the launch, else 'failed'.
    """
    reap()
    run_dir = Path(run_dir)
    meta = evaluation_file(run_dir)
    try:
        rec = json.loads(check_inside(meta).read_text(encoding="utf-8"))
    except (OSError, RunError, json.JSONDecodeError, UnicodeDecodeError):
        return {"state": "none", "log_tail": ""}
    rec = rec if isinstance(rec, dict) else {}
    pid, start, boot, launched = (rec.get(k) for k in ("pid", "proc_start", "boot_id", "launched"))
    launched = _number(launched) or 0.0
    alive = (isinstance(pid, int) and not isinstance(pid, bool) and _is_vae_process(pid)
             and identity_matches(ProcessIdentity(pid, start if isinstance(start, int) else None,
                                                  boot if isinstance(boot, str) else None)))
    if alive:
        running = meta.with_suffix(".running")
        state = "running" if running.is_file() and running.stat().st_mtime >= launched - 1 else "queued"
    else:
        summary = run_dir / "summary.json"
        written = summary.is_file() and summary.stat().st_mtime >= launched
        state = "finished" if written and read_json_object(run_dir, "summary.json").get("eval") else "failed"
    return {"state": state, "pid": pid if alive else None, "launched": launched,
            "log_tail": log_tail(meta.with_suffix(".log"), 15)}


# ----------------------------------------------------------------------------- progress


def _read_tail(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """The last `max_bytes` of a run file and the file's size; OSError, or RunError for a link out of its folder."""
    with open(check_inside(path), "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        return f.read(), size


def log_tail(path: str | os.PathLike, lines: int = 20, max_bytes: int = 16384) -> str:
    """The last lines of a log file ('' if missing, or a link to a file outside its folder)."""
    try:
        data, _ = _read_tail(Path(path), max_bytes)
    except (OSError, RunError):
        return ""
    text = data.decode("utf-8", "replace").replace("\r", "\n")
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def _tail_records(path: Path, max_bytes: int = 65536) -> list[dict]:
    """Well-typed records at the end of metrics.jsonl (runs.clean_metric); a half-written last line is skipped."""
    try:
        data, size = _read_tail(path, max_bytes)
    except (OSError, RunError):  # a link out of the run directory is not followed
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line is probably cut
    return metric_records(lines)


def _looks_failed(log: str) -> bool:
    return any(k in log for k in ("Traceback (most recent call last)", "error:", "Error:"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def training_progress(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What the watch panel shows: state, step/total_steps, progress 0..1, eta_s, tokens_per_s, ...

    state is effective_state (a 'running' run whose process is gone is 'killed', or 'failed' when its
    log ends in an error; a SIGSTOPped one 'paused'); 'error' holds the message and log tail of a
    failed run. status.json and metrics.jsonl are read through their typed readers, so an ill-typed
    value shows as missing, never as an exception.
    """
    reap()
    run_dir = Path(run_dir)
    s = read_status(run_dir)
    state = effective_state(run_dir, s)
    recs = _tail_records(run_dir / "metrics.jsonl")
    train_recs = [r for r in recs if r["kind"] == "train"]
    valid_recs = [r for r in recs if r["kind"] == "valid"]
    last = train_recs[-1] if train_recs else {}
    tail = log_tail(run_dir / LOG_NAME, 15)
    if state == "killed" and _looks_failed(tail):
        state = "failed"
    step = int(last.get("step", s.step or 0))
    if s.step is not None and state != "running":
        step = max(step, s.step)
    total = int(last.get("total_steps") or s.total_steps or 0)
    eta = _number(last.get("eta_s"))
    last_time = _number(last.get("time"))
    if state == "running" and eta is not None and last_time:
        eta = max(0.0, eta - (time.time() - last_time))
    elif state != "running":
        eta = None
    error = ""
    if state in ("failed", "killed"):
        error = "\n".join(x for x in (s.message, tail) if x)
    if state == "paused" and not s.message:
        message = f"process {s.pid} is stopped (SIGSTOP) and not responding; Stop ends it"
    else:
        message = s.message
    return {
        "name": run_dir.name,
        "state": state,
        "pid": s.pid,
        "step": step,
        "total_steps": total,
        "progress": min(1.0, step / total) if total else (1.0 if state == "finished" else 0.0),
        "eta_s": eta,
        "tokens_per_s": _number(last.get("tokens_per_s")),
        "elapsed_s": _number(last.get("elapsed")),
        "epoch": last.get("epoch"),
        "last_train": last,
        "last_valid": valid_recs[-1] if valid_recs else {},
        "message": message,
        "error": error,
        "started": s.started,
        "updated": s.updated,
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
        return s.started or s.queued_at or p.stat().st_mtime

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
    _lower_priority(proc.pid)
    _register(proc, log_path, "sweep")
    ident = process_identity(proc.pid)
    write_json(meta, {"name": name, "pid": proc.pid, "proc_start": ident.start if ident else None,
                      "boot_id": ident.boot_id if ident else None, "args": list(args), "started": time.time(),
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
    pid, start, boot = rec.get("pid"), rec.get("proc_start"), rec.get("boot_id")
    rec["alive"] = (isinstance(pid, int) and not isinstance(pid, bool) and _is_vae_process(pid)
                    and identity_matches(ProcessIdentity(pid, start if isinstance(start, int) else None,
                                                         boot if isinstance(boot, str) else None)))
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
