"""The run directory: atomic writes, listing, and load_run(path) from the directory alone.

<run>/config.json         model + train config, vocab size, corpus spec, format version, versions
<run>/vocab.json          the vocabulary
<run>/model.safetensors   weights of the last good checkpoint (what load_run opens by default)
<run>/best.safetensors    weights with the best validation ELBO so far
<run>/optimizer.safetensors + trainer.json   what resume needs (optimizer moments, step, epoch)
<run>/metrics.jsonl       one JSON object a line
<run>/summary.json        final evaluation
<run>/status.json         running / finished / failed / stopped, pid, timestamps
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_core import __version__
from vae_core.config import ModelConfig, TrainConfig, from_dict, to_dict
from vae_core.model import MAX_PARAMS, SentenceVAE, parameter_count
from vae_core.text import Vocab

FORMAT_VERSION = 1
REQUIRED = ("config.json", "vocab.json", "model.safetensors")
MAX_JSON_BYTES = 50 * 1024 * 1024


class RunError(ValueError):
    """A run directory cannot be used; the message says why."""


# ----------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


def read_json(path: Path) -> Any:
    path = Path(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise RunError(f"{path.name} is too large to be a run file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path.name} is not valid JSON: {e}") from e
    except RecursionError as e:  # e.g. "[[[[…": deeper than any file we write
        raise RunError(f"{path.name} is not a run file (nested too deeply)") from e


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors file written atomically (tensors made contiguous, on CPU)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, obj: dict) -> None:
    """Append one JSON line (a single write call, so readers see whole lines or a partial last one)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        f.flush()


def read_metrics(path: Path) -> list[dict]:
    """All complete JSON lines of metrics.jsonl; a half-written or garbled line is skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


# ----------------------------------------------------------------------------- status


def write_status(run_dir: Path, state: str, **extra: Any) -> None:
    """status.json: state (running/finished/failed/stopped/queued), pid, timestamps, message."""
    run_dir = Path(run_dir)
    old = read_status(run_dir)
    now = time.time()
    status = {
        "state": state,
        "pid": os.getpid(),
        "started": old.get("started", now) if old.get("state") == "running" or state != "running" else now,
        "updated": now,
    }
    if state in ("finished", "failed", "stopped"):
        status["ended"] = now
    status.update(extra)
    write_json(run_dir / "status.json", status)


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


def read_status(run_dir: Path) -> dict:
    return read_json_object(run_dir, "status.json")


def read_summary(run_dir: Path) -> dict:
    """summary.json of a run, read now (an evaluation may have been written after the model loaded)."""
    return read_json_object(run_dir, "summary.json")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    try:  # a zombie child counts as dead
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def effective_state(run_dir: Path) -> str:
    """The status state, with 'running' turned into 'killed' when its process is gone."""
    s = read_status(run_dir)
    state = s.get("state", "unknown")
    if state == "running" and not pid_alive(s.get("pid", -1)):
        return "killed"
    return state


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
        return str(self.config.get("corpus", {}).get("spec", ""))


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
    return cfg, mcfg, tcfg


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
    # Check names and shapes from the header before building anything.
    expected = _expected_shapes(mcfg)
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
    except SafetensorError as e:
        raise RunError(f"run {run_dir.name}: {weights.name} is corrupted or truncated ({e})") from e
    except (OSError, ValueError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"run {run_dir.name}: cannot read {weights.name} ({e})") from e
    model = SentenceVAE(mcfg)
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


def _expected_shapes(mcfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of a SentenceVAE of this config, built on the meta device."""
    with torch.device("meta"):
        m = SentenceVAE(mcfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def make_config(mcfg: ModelConfig, tcfg: TrainConfig, corpus_spec: str, corpus_name: str,
                factors: tuple[str, ...] = (), extra: dict | None = None) -> dict:
    """The config.json object of a new run."""
    return {
        "format_version": FORMAT_VERSION,
        "model": to_dict(mcfg),
        "train": to_dict(tcfg),
        "corpus": {"spec": corpus_spec, "name": corpus_name, "factors": list(factors)},
        "versions": {"vae_core": __version__, "torch": torch.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
