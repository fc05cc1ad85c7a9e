"""The run directory: atomic writes, listing, and load_run(path) from the directory alone.

<run>/config.json         model + train config, vocab size, corpus spec, format version, versions
<run>/vocab.json          the vocabulary
<run>/model.safetensors   weights of the last good checkpoint (what load_run opens by default)
<run>/best.safetensors    weights with the best validation ELBO so far
<run>/checkpoint/          what resume needs, as one atomic unit: weights, optimizer, RNG, trainer state,
                          manifest (vae_core.checkpoint); checkpoint.prev/ the one before, the fallback
                          (runs from before it hold optimizer.safetensors + trainer.json, which still resume)
<run>/metrics.jsonl       one JSON object a line
<run>/summary.json        final evaluation
<run>/status.json         running / finished / failed / stopped, pid, timestamps

A run directory may come from someone else, so its files are untrusted input: a run file that is a
symlink to somewhere outside its folder is never read (`check_inside`), weights must hold finite numbers
and match the content hash and vocabulary hash recorded in their safetensors header when saved
(`save_tensors`, checked by `load_run`; runs saved before the hashes existed load unchecked).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_core import __version__
from vae_core.config import ModelConfig, TrainConfig, from_dict, to_dict
from vae_core.model import MAX_PARAMS, SentenceVAE, parameter_count
from vae_core.summary import Summary, finite_number, whole_number
from vae_core.text import Vocab

FORMAT_VERSION = 1
REQUIRED = ("config.json", "vocab.json", "model.safetensors")
MAX_JSON_BYTES = 50 * 1024 * 1024


class RunError(ValueError):
    """A run directory cannot be used; the message says why."""


# ----------------------------------------------------------------------------- atomic writes


def _file_mode() -> int:
    """The mode a plain open() would give a new file (0o666 less the umask), not mkstemp's 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def temp_beside(path: Path) -> Iterator[str]:
    """A temporary file name beside `path` to write into; on success it is renamed over `path` in one step
    (with the usual file mode), on any error it is removed. The one home of the lab's atomic file writes."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over the target.

    An OSError that names no file (a full disk in write()) is raised again naming `path`."""
    try:
        with temp_beside(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if e.filename is not None or e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


_TEMP_NAME = re.compile(r"^\.(.+)\.[^.]+\.tmp$")  # temp_beside's ".<name>.<random>.tmp"
_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or write somewhere else",
    errno.EDQUOT: "the disk quota is used up; free some space or write somewhere else",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.EACCES: "no permission to write there; choose a folder you may write to",
    errno.EPERM: "no permission to write there; choose a folder you may write to",
}


def write_error_message(e: OSError, target: str | os.PathLike | None = None) -> str:
    """One line a user can act on for a failed write: what could not be written, why, and what to do.

    `target` names what was being written when the error itself carries no file name.
    """
    where = target if target is not None else e.filename
    if where is not None and (temp := _TEMP_NAME.match(Path(where).name)):  # temp_beside's name: say the real one
        where = Path(where).parent / temp.group(1)
    what = f"cannot write {where}" if where is not None else "a file could not be written"
    hint = _WRITE_HINTS.get(e.errno or -1)
    return f"{what}: {e.strerror or e}" + (f" ({hint})" if hint else "")


def check_inside(path: Path) -> Path:
    """`path` itself, if its real location (symlinks followed) is inside its own folder; else RunError.

    A run file that links to /etc/passwd or another user's file must not be a way to read the machine.
    """
    path = Path(path)
    try:
        inside = path.resolve().is_relative_to(path.parent.resolve())
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise RunError(f"{path.name} cannot be resolved ({e})") from e
    if not inside:
        raise RunError(f"{path.name} is a link to a file outside its folder; run files must lie in the run directory")
    return path


def read_json(path: Path) -> Any:
    path = check_inside(Path(path))
    if path.stat().st_size > MAX_JSON_BYTES:
        raise RunError(f"{path.name} is too large to be a run file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path.name} is not valid JSON: {e}") from e
    except RecursionError as e:  # e.g. "[[[[…": deeper than any file we write
        raise RunError(f"{path.name} is not a run file (nested too deeply)") from e


TENSORS_SHA_KEY = "vae_core.tensors_sha256"  # safetensors metadata: tensors_sha256 of the file's tensors
VOCAB_SHA_KEY = "vae_core.vocab_sha256"  # ... and Vocab.sha256 of the run's vocab.json when it was saved


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over each tensor's name, dtype, shape and bytes, in name order (tensors of any shape, CPU)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _vocab_sha(run_dir: Path) -> str | None:
    """Vocab.sha256 of run_dir/vocab.json, or None when there is none (or it is not a vocabulary)."""
    p = Path(run_dir) / "vocab.json"
    try:
        return Vocab.from_json(check_inside(p).read_text(encoding="utf-8")).sha256() if p.is_file() else None
    except (OSError, ValueError, RecursionError):
        return None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors file written atomically (tensors made contiguous, on CPU), carrying its own hashes.

    The header's metadata records `tensors_sha256` of the tensors and, when the folder holds a
    vocab.json (a run directory), that vocabulary's sha256: `load_run` refuses weights whose bytes
    changed or whose vocabulary was replaced (e.g. the same words shuffled).
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {**(metadata or {}), TENSORS_SHA_KEY: tensors_sha256(tensors)}
    if (vocab_sha := _vocab_sha(path.parent)) is not None:
        meta[VOCAB_SHA_KEY] = vocab_sha
    with temp_beside(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def append_jsonl(path: Path, obj: dict) -> None:
    """Append one JSON line (a single write call, so readers see whole lines or a partial last one)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        f.flush()


METRIC_INTS = ("step", "epoch", "total_steps", "active_units", "world_size")  # int-valued fields of a record
METRIC_STRS = ("kind", "device", "amp")


def clean_metric(obj: Any) -> dict | None:
    """One metrics.jsonl record with its types checked, or None when it is not a record.

    A record is a JSON object with a string 'kind' and a non-negative integer 'step'. Ill-typed fields
    are dropped: integer fields must be integers, string fields strings, 'kl_per_dim' a list of numbers,
    and every other field a number (int or float, not bool) or null, as the training loop writes them.
    """
    if not isinstance(obj, dict):
        return None
    step, kind = obj.get("step"), obj.get("kind")
    if not isinstance(kind, str) or isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return None
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if value is None:  # a figure not computed this time (e.g. no capacity schedule)
            ok = True
        elif key in METRIC_INTS:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif key in METRIC_STRS:
            ok = isinstance(value, str)
        elif key == "kl_per_dim":
            ok = isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                  for x in value)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            out[key] = value
    return out


def read_metrics(path: Path) -> list[dict]:
    """All complete, well-typed records of metrics.jsonl (see clean_metric); other lines are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        check_inside(path)
    except RunError:
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        return metric_records(f)


def metric_records(lines: Iterable[str]) -> list[dict]:
    """The well-typed records (clean_metric) among lines of metrics.jsonl; blank, cut or ill-typed lines skipped."""
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        rec = clean_metric(obj)
        if rec is not None:
            out.append(rec)
    return out


# ----------------------------------------------------------------------------- status

STATES = ("queued", "running", "finished", "failed", "stopped")  # what status.json may say
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Who a PID is: the PID plus its start time and the boot it belongs to (a reused PID has another start)."""

    pid: int
    start: int | None = None  # start time in clock ticks since boot (/proc/<pid>/stat field 22); None off Linux
    boot_id: str | None = None  # /proc/sys/kernel/random/boot_id: a PID of an earlier boot is never the same process


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from field 3 (state) on, or None (no such process, or no /proc)."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except (OSError, ValueError, TypeError):
        return None
    return text[text.rfind(")") + 1:].split()  # the command name may hold spaces and ')'


def _boot_id() -> str | None:
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def process_identity(pid: int) -> ProcessIdentity | None:
    """The identity of a live process (start time and boot id where /proc has them), or None if it is gone."""
    if not pid_alive(pid):
        return None
    fields = _proc_stat(pid)
    start = int(fields[19]) if fields and len(fields) > 19 and fields[19].isdigit() else None  # field 22
    return ProcessIdentity(int(pid), start, _boot_id() if start is not None else None)


def process_state(pid: int) -> str | None:
    """The one-letter state of /proc/<pid>/stat (R, S, D, T stopped, t traced, Z zombie, ...), or None."""
    fields = _proc_stat(pid)
    return fields[0] if fields else None


@dataclass(frozen=True, slots=True)
class Status:
    """status.json, typed. Every value of the wrong type reads as its default: the file is untrusted input."""

    state: str = "unknown"  # one of STATES; 'unknown' when the file is missing, unreadable or says something else
    pid: int | None = None  # the training process (or None for a queued run nobody has launched)
    proc_start: int | None = None  # ProcessIdentity.start of pid, written with it
    boot_id: str | None = None  # ProcessIdentity.boot_id of pid
    started: float | None = None  # time.time() when training began
    updated: float | None = None  # last write
    ended: float | None = None  # set on finished/failed/stopped
    queued_at: float | None = None  # when it began to wait for a training slot
    step: int | None = None
    total_steps: int | None = None
    message: str = ""  # why it failed / what it waits for
    stop_requested: bool = False  # Stop was pressed: a process that ends now was stopped, not killed
    args: tuple[str, ...] = ()  # CLI flags of a queued run recorded before slots existed (see jobs.start_queued)
    limit: int | None = None  # the training limit it was queued under
    device: str = ""
    world_size: int | None = None
    amp: str = ""  # mixed precision of the training: off, bf16, fp16

    @property
    def identity(self) -> ProcessIdentity | None:
        return None if self.pid is None else ProcessIdentity(self.pid, self.proc_start, self.boot_id)


def _status_from_dict(d: dict) -> Status:
    args = d.get("args")
    state = d.get("state")
    return Status(
        state=state if isinstance(state, str) and state in STATES else "unknown",
        pid=(pid if (pid := whole_number(d.get("pid"))) is not None and pid > 0 else None),
        proc_start=whole_number(d.get("proc_start")),
        boot_id=d["boot_id"] if isinstance(d.get("boot_id"), str) else None,
        started=finite_number(d.get("started")),
        updated=finite_number(d.get("updated")),
        ended=finite_number(d.get("ended")),
        queued_at=finite_number(d.get("queued_at")),
        step=whole_number(d.get("step")),
        total_steps=whole_number(d.get("total_steps")),
        message=d["message"] if isinstance(d.get("message"), str) else "",
        stop_requested=d.get("stop_requested") is True,
        args=tuple(args) if isinstance(args, list) and all(isinstance(a, str) for a in args) else (),
        limit=whole_number(d.get("limit")),
        device=d["device"] if isinstance(d.get("device"), str) else "",
        world_size=whole_number(d.get("world_size")),
        amp=d["amp"] if isinstance(d.get("amp"), str) else "",
    )


def write_status(run_dir: Path, state: str, **extra: Any) -> None:
    """status.json: state (running/finished/failed/stopped/queued), pid with its identity, timestamps, message.

    pid defaults to this process; its start time and boot id are recorded with it (when the process
    lives), so a reader can tell the training from an unrelated process that later got the same PID.
    """
    run_dir = Path(run_dir)
    old = read_status(run_dir)
    now = time.time()
    pid = extra.pop("pid", os.getpid())
    ident = process_identity(pid) if isinstance(pid, int) else None
    status: dict[str, Any] = {
        "state": state,
        "pid": pid,
        "proc_start": ident.start if ident else None,
        "boot_id": ident.boot_id if ident else None,
        "started": (old.started or now) if old.state == "running" or state != "running" else now,
        "updated": now,
    }
    if state in ("finished", "failed", "stopped"):
        status["ended"] = now
    status.update(extra)
    write_json(run_dir / "status.json", status)


def request_stop(run_dir: Path) -> None:
    """Mark status.json stop_requested (before the process is signalled), keeping everything else."""
    p = Path(run_dir) / "status.json"
    raw = read_json_object(run_dir, "status.json")
    if raw:
        write_json(p, {**raw, "stop_requested": True, "updated": time.time()})


def read_json_object(run_dir: Path, name: str) -> dict:
    """A run file holding a JSON object (status.json, summary.json), or {} if missing or unreadable."""
    p = Path(run_dir) / name
    if not p.is_file():
        return {}
    try:
        obj = read_json(p)
    except (RunError, OSError):
        return {}
    return obj if isinstance(obj, dict) else {}


def read_status(run_dir: Path) -> Status:
    """status.json of a run as a Status (Status() when missing or unreadable; never raises)."""
    return _status_from_dict(read_json_object(run_dir, "status.json"))


def read_summary(run_dir: Path) -> Summary:
    """summary.json of a run, read now and typed (an evaluation may have been written after the model loaded).

    Missing, unreadable or ill-typed parts are None in the result; this never raises.
    """
    return Summary.from_json(read_json_object(run_dir, "summary.json"))


def update_summary(run_dir: Path, block: str, value: Any) -> None:
    """Set one block of summary.json ("eval", "training", …), keeping the others; one atomic write."""
    write_json(Path(run_dir) / "summary.json", {**read_json_object(run_dir, "summary.json"), block: value})


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists and is not a zombie (it may be someone else's: see identity_matches)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists, under another user
        pass
    except OSError:
        return False
    return process_state(pid) != "Z"  # a zombie child counts as dead (None: no /proc to ask)


def identity_matches(ident: ProcessIdentity | None) -> bool:
    """True if ident's process still runs: same PID alive, with the same start time and boot where recorded.

    A record without a start time (written before identities, or off Linux) falls back to the PID
    alone, and, where /proc shows the command line, to it running vae_core.
    """
    if ident is None or not pid_alive(ident.pid):
        return False
    now = process_identity(ident.pid)
    if now is None:
        return False
    if ident.start is not None and now.start is not None:
        return ident.start == now.start and (ident.boot_id is None or ident.boot_id == now.boot_id)
    try:
        with open(f"/proc/{ident.pid}/cmdline", "rb") as f:
            return b"vae_core" in f.read()
    except OSError:
        return True  # nothing else to go by


def effective_state(run_dir: Path, status: Status | None = None) -> str:
    """The status state, as it really is now.

    'running'/'queued' whose process is gone, or whose PID now belongs to another process (another
    start time or boot), is 'killed'; one whose process is stopped (SIGSTOP, state T) is 'paused'.
    A queued run without a process (recorded before slots existed) stays 'queued'.
    """
    s = read_status(run_dir) if status is None else status
    if s.state not in ("running", "queued") or (s.state == "queued" and s.pid is None):
        return s.state
    if not identity_matches(s.identity):
        return "killed"
    if process_state(s.pid) in ("T", "t"):
        return "paused"
    return s.state


# ----------------------------------------------------------------------------- listing and loading


@dataclass
class Run:
    """A loaded run: model in eval mode, vocabulary, configs, and where it came from."""

    path: Path
    model: SentenceVAE
    vocab: Vocab
    model_config: ModelConfig
    train_config: TrainConfig
    config: dict  # the whole config.json
    summary: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def corpus_spec(self) -> str:
        """The corpus spec config.json records ('' when none; read_config checked its type)."""
        corpus = self.config.get("corpus")
        return str(corpus.get("spec") or "") if isinstance(corpus, dict) else ""


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.json").is_file()


def list_runs(*roots: Path) -> list[Path]:
    """Run directories directly under the given roots (sorted by name), missing roots ignored."""
    out: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_dir():
            out.extend(sorted(p for p in root.iterdir() if p.is_dir() and is_run_dir(p)))
    return out


def read_config(run_dir: Path) -> tuple[dict, ModelConfig, TrainConfig]:
    """config.json checked for format version and validated into the two config dataclasses."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise RunError(f"{run_dir} has no config.json: it is not a run directory (a new run is started "
                       "without --resume)")
    cfg = read_json(run_dir / "config.json")
    if not isinstance(cfg, dict):
        raise RunError("config.json must hold a JSON object")
    version = cfg.get("format_version")
    if version != FORMAT_VERSION:
        raise RunError(
            f"run {run_dir.name} has format version {version!r}; this vae_core reads version {FORMAT_VERSION}"
        )
    try:
        mcfg = from_dict(ModelConfig, cfg.get("model", {}))
        tcfg = from_dict(TrainConfig, cfg.get("train", {}))
    except (TypeError, ValueError) as e:
        raise RunError(f"run {run_dir.name} has an invalid config: {e}") from e
    _check_corpus_entry(run_dir.name, cfg.get("corpus"))
    return cfg, mcfg, tcfg


def _check_corpus_entry(name: str, corpus: Any) -> None:
    """config.json's "corpus" (optional): an object with a string spec, a string or null text_column, a list of
    string factors; RunError otherwise."""
    if corpus is None:
        return
    if not isinstance(corpus, dict):
        raise RunError(f'run {name}: config.json "corpus" must be an object such as {{"spec": "synthetic"}}, '
                       f"not a {type(corpus).__name__}")
    for key in ("spec", "name"):
        if key in corpus and not isinstance(corpus[key], str):
            raise RunError(f'run {name}: config.json "corpus.{key}" must be a string')
    if corpus.get("text_column") is not None and not isinstance(corpus["text_column"], str):
        raise RunError(f'run {name}: config.json "corpus.text_column" must be a string or null')
    factors = corpus.get("factors", [])
    if not isinstance(factors, list) or not all(isinstance(f, str) for f in factors):
        raise RunError(f'run {name}: config.json "corpus.factors" must be a list of strings')


def load_run(path: str | os.PathLike, checkpoint: str = "model", device: str | torch.device = "cpu") -> Run:
    """Rebuild model + vocab + configs from a run directory alone; refuse bad directories clearly.

    checkpoint: "model" (last good) or "best". Nothing is unpickled: weights are safetensors,
    everything else JSON. Sizes are checked before any allocation.
    """
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError(f"no run directory at {run_dir}")
    missing = [f for f in REQUIRED if not (run_dir / f).is_file()]
    if missing:
        raise RunError(f"run {run_dir.name} is incomplete: missing {', '.join(missing)}")
    for f in REQUIRED:
        try:
            check_inside(run_dir / f)
        except RunError as e:
            raise RunError(f"run {run_dir.name}: {e}") from e
    cfg, mcfg, tcfg = read_config(run_dir)
    try:
        if (run_dir / "vocab.json").stat().st_size > MAX_JSON_BYTES:
            raise ValueError("the file is too large")
        vocab = Vocab.from_json((run_dir / "vocab.json").read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, not a vocabulary
        raise RunError(f"run {run_dir.name}: vocab.json is not a valid vocabulary ({e})") from e
    if len(vocab) != mcfg.vocab_size:
        raise RunError(
            f"run {run_dir.name}: vocab.json has {len(vocab)} words but the config says {mcfg.vocab_size}"
        )
    n_params = parameter_count(mcfg)
    if n_params > MAX_PARAMS:
        raise RunError(f"run {run_dir.name} would have {n_params:,} parameters (limit {MAX_PARAMS:,})")
    weights = run_dir / ("best.safetensors" if checkpoint == "best" else "model.safetensors")
    if not weights.is_file():
        raise RunError(f"run {run_dir.name} has no {weights.name}")
    try:
        check_inside(weights)
    except RunError as e:
        raise RunError(f"run {run_dir.name}: {e}") from e
    # The model is built (on the CPU: its size was bounded above) before the file is read, and names and
    # shapes are checked from the file's header against it before any weight is. Building it on the meta
    # device instead imported torch._dynamo (nn.Embedding's init on meta goes through torch._refs): 1.4 s of
    # every cold load (issue 20, "Waits").
    model = SentenceVAE(mcfg)
    expected = _shapes(model)
    try:
        with safe_open(str(weights), framework="pt") as f:
            keys = set(f.keys())
            if keys != set(expected):
                extra, lack = sorted(keys - set(expected)), sorted(set(expected) - keys)
                raise RunError(
                    f"run {run_dir.name}: weights do not match the config"
                    + (f"; unexpected {', '.join(extra[:3])}" if extra else "")
                    + (f"; missing {', '.join(lack[:3])}" if lack else "")
                )
            for k in keys:
                shape = tuple(f.get_slice(k).get_shape())
                if shape != expected[k]:
                    raise RunError(
                        f"run {run_dir.name}: weight {k} has shape {shape}, the config needs {expected[k]}"
                    )
            state = {k: f.get_tensor(k) for k in keys}
            recorded = f.metadata() or {}
    except SafetensorError as e:
        raise RunError(f"run {run_dir.name}: {weights.name} is corrupted or truncated ({e})") from e
    except (OSError, ValueError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"run {run_dir.name}: cannot read {weights.name} ({e})") from e
    _check_weights(run_dir.name, weights.name, state, recorded, vocab)
    model.load_state_dict(state)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    summary = {}
    if (run_dir / "summary.json").is_file():
        try:
            s = read_json(run_dir / "summary.json")
            summary = s if isinstance(s, dict) else {}
        except RunError:
            summary = {}
    return Run(run_dir, model, vocab, mcfg, tcfg, cfg, summary)


def _check_weights(run: str, file: str, state: Mapping[str, torch.Tensor], recorded: Mapping[str, str],
                   vocab: Vocab) -> None:
    """Refuse (RunError) weights that are not finite, whose bytes differ from the hash recorded at save, or
    that were saved with another vocabulary. Files without recorded hashes (older runs) skip those two checks."""
    for name in sorted(state):
        t = state[name]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise RunError(f"run {run}: {file} holds {bad:,} NaN or infinite values in {name}; the weights are "
                           "corrupt (or were saved after training diverged): retrain or restore the file")
    want = recorded.get(TENSORS_SHA_KEY)
    if want is not None and tensors_sha256(state) != want:
        raise RunError(f"run {run}: {file} does not match the content hash recorded when it was saved "
                       "(the file was modified or damaged); restore it from a copy or retrain")
    want = recorded.get(VOCAB_SHA_KEY)
    if want is not None and vocab.sha256() != want:
        raise RunError(f"run {run}: vocab.json is not the vocabulary {file} was trained with (its words or their "
                       "order changed); restore the run's own vocab.json")


def _shapes(model: SentenceVAE) -> dict[str, tuple[int, ...]]:
    """Names (as run files store them) and shapes of a model's weights."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def make_config(mcfg: ModelConfig, tcfg: TrainConfig, corpus_spec: str, corpus_name: str,
                factors: tuple[str, ...] = (), extra: dict | None = None, grammar_sha256: str | None = None) -> dict:
    """The config.json object of a new run (`grammar_sha256`: of the run's grammar copy, see write_new_config)."""
    corpus: dict[str, Any] = {"spec": corpus_spec, "name": corpus_name, "factors": list(factors)}
    if grammar_sha256 is not None:
        from vae_core.grammar import SHA256_KEY

        corpus[SHA256_KEY] = grammar_sha256
    return {
        "format_version": FORMAT_VERSION,
        "model": to_dict(mcfg),
        "train": to_dict(tcfg),
        "corpus": corpus,
        "versions": {"vae_core": __version__, "torch": torch.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }


def write_new_config(run_dir: Path, mcfg: ModelConfig, tcfg: TrainConfig, corpus: Any) -> None:
    """Write a new run's config.json for `corpus` (a Corpus or TokenCorpus: its spec, name and factors).

    A corpus generated from a grammar .json file is tied to the run: the file is copied (atomically) to
    `<run>/grammar.json` and its sha256 recorded as corpus.grammar_sha256, and every later reader
    (`grammar.grammar_for_corpus`, `grammar.run_corpus_spec`) takes the copy, so moving or editing the
    original changes nothing. A copy left by an earlier run of the same name is removed otherwise.
    """
    from vae_core.grammar import RUN_COPY, GrammarError, grammar_snapshot

    run_dir = Path(run_dir)
    snapshot = grammar_snapshot(corpus.spec)
    sha256 = None
    if snapshot is None:
        (run_dir / RUN_COPY).unlink(missing_ok=True)
    else:
        data, sha256, grammar = snapshot
        n_sentences = sum(len(corpus.split(s)) for s in ("train", "valid", "test"))
        if tuple(grammar.factors) != tuple(corpus.factors) or grammar.size != n_sentences:
            raise GrammarError(f"the grammar file {corpus.spec} changed while the run was being set up; start again")
        atomic_write_bytes(run_dir / RUN_COPY, data)
    write_json(run_dir / "config.json",
               make_config(mcfg, tcfg, corpus.spec, corpus.name, corpus.factors, grammar_sha256=sha256))
