"""A training checkpoint as one atomic unit, and how resume finds the last complete one.

<run>/checkpoint/         the latest checkpoint; <run>/checkpoint.prev/ the one before it (the fallback)
    weights.safetensors   model weights                       (metadata: step)
    optimizer.safetensors optimizer state, `param::key` names  (metadata: step)
    rng.safetensors       torch CPU (and CUDA) generator state (metadata: step)
    trainer.json          step, epoch, batch_in_epoch, best_elbo, elapsed
    manifest.json         written last: the step, and each part's size and sha256

A checkpoint is built in a fresh `.checkpoint-tmp-*` directory, every file fsynced, and only then
renamed into place (the current one becomes checkpoint.prev first), so a kill or a full disk at any
moment leaves either the new checkpoint or the previous one complete. `load_latest` verifies a
checkpoint (all parts, sizes, hashes, the same step in every part) before anything is used, falls
back to checkpoint.prev (the trainer then moves the refused one to checkpoint.damaged/), and refuses
a run with no complete checkpoint with a message. Runs written before this layout
(model.safetensors + optimizer.safetensors + trainer.json) still resume.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from vae_core.runs import RunError, atomic_write_bytes, read_json

CURRENT, PREVIOUS, DAMAGED, TMP_PREFIX = "checkpoint", "checkpoint.prev", "checkpoint.damaged", ".checkpoint-tmp-"
TENSOR_PARTS = ("weights.safetensors", "optimizer.safetensors", "rng.safetensors")
PARTS = (*TENSOR_PARTS, "trainer.json")
LEGACY = ("optimizer.safetensors", "trainer.json")  # the old layout's resume files, beside model.safetensors


@dataclass
class Checkpoint:
    """What resume needs: weights, optimizer tensors, generator state (None in the old layout), trainer state."""

    step: int
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    rng: dict[str, torch.Tensor] | None
    state: dict[str, Any]
    source: str  # the directory or files it came from, for messages
    note: str = ""  # why a newer checkpoint was passed over, if one was


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, ±inf: not JSON) replaced by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _write_part(directory: Path, name: str, data: bytes) -> None:
    """One file of a checkpoint, flushed to disk."""
    with open(directory / name, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(run_dir: Path, step: int, weights: dict[str, torch.Tensor], optimizer: dict[str, torch.Tensor],
         rng: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Write a complete checkpoint of `step` and make it the current one (the old one becomes checkpoint.prev)."""
    run_dir = Path(run_dir)
    meta = {"step": str(step)}
    data = {name: save_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=meta)
            for name, tensors in zip(TENSOR_PARTS, (weights, optimizer, rng), strict=True)}
    data["trainer.json"] = json.dumps(json_safe({**state, "step": step}), indent=2, allow_nan=False).encode()
    tmp = run_dir / f"{TMP_PREFIX}{os.getpid()}-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name in PARTS:
            _write_part(tmp, name, data[name])
        manifest = {"step": step, "parts": {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                                            for n, d in data.items()}}
        _write_part(tmp, "manifest.json", json.dumps(manifest, indent=2).encode())
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    current, previous = run_dir / CURRENT, run_dir / PREVIOUS
    if current.is_dir():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(current, previous)  # a kill here leaves checkpoint.prev complete (and the tmp dir)
    os.replace(tmp, current)
    _fsync_dir(run_dir)
    for name in LEGACY:  # the old layout's files would now be stale
        (run_dir / name).unlink(missing_ok=True)


def _read(directory: Path) -> Checkpoint:
    """A verified checkpoint directory; RunError saying what is wrong with it otherwise."""
    if not (directory / "manifest.json").is_file():
        raise RunError("no manifest.json (the checkpoint was never completed)")
    manifest = read_json(directory / "manifest.json")
    step = manifest.get("step") if isinstance(manifest, dict) else None
    parts = manifest.get("parts") if isinstance(manifest, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(parts, dict):
        raise RunError("manifest.json is not a checkpoint manifest")
    data = {}
    for name in PARTS:
        entry, path = parts.get(name), directory / name
        if not isinstance(entry, dict) or not path.is_file():
            raise RunError(f"{name} is missing")
        data[name] = path.read_bytes()
        if len(data[name]) != entry.get("bytes") or hashlib.sha256(data[name]).hexdigest() != entry.get("sha256"):
            raise RunError(f"{name} does not match its hash in manifest.json (corrupted or replaced)")
    tensors, steps = {}, {}
    for name in TENSOR_PARTS:
        try:
            tensors[name] = load_bytes(data[name])
            with_meta = json.loads(data[name][8:8 + int.from_bytes(data[name][:8], "little")])
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same refusal
            raise RunError(f"{name} cannot be read: {e}") from e
        steps[name] = with_meta.get("__metadata__", {}).get("step")
    state = json.loads(data["trainer.json"])
    steps["trainer.json"] = str(state.get("step")) if isinstance(state, dict) else None
    wrong = {n: s for n, s in steps.items() if s != str(step)}
    if wrong:
        raise RunError(f"parts of different steps (manifest says {step}: {wrong})")
    return Checkpoint(step, tensors["weights.safetensors"], tensors["optimizer.safetensors"],
                      tensors["rng.safetensors"], state, source=directory.name)  # CURRENT or PREVIOUS


def _read_legacy(run_dir: Path) -> Checkpoint | None:
    """The old layout: model.safetensors (+ optimizer.safetensors, trainer.json); None when there are no weights."""
    if not (run_dir / "model.safetensors").is_file():
        return None
    state = read_json(run_dir / "trainer.json") if (run_dir / "trainer.json").is_file() else {}
    if not isinstance(state, dict):
        raise RunError("cannot resume: trainer.json is not a trainer state")
    opt = run_dir / "optimizer.safetensors"
    step = state.get("step", 0)
    return Checkpoint(int(step) if isinstance(step, int) else 0, load_file(str(run_dir / "model.safetensors")),
                      load_file(str(opt)) if opt.is_file() else {}, None, state, source="model.safetensors")


def clean_leftovers(run_dir: Path) -> None:
    """Remove temporary checkpoint directories a kill or a full disk left behind."""
    for p in Path(run_dir).glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)


def remove_all(run_dir: Path) -> None:
    """Every checkpoint of a run (a new run in a reused directory starts without them)."""
    clean_leftovers(run_dir)
    for name in (CURRENT, PREVIOUS, DAMAGED):
        shutil.rmtree(Path(run_dir) / name, ignore_errors=True)
    for name in LEGACY:
        (Path(run_dir) / name).unlink(missing_ok=True)


def load_latest(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run (checkpoint/, else checkpoint.prev/, else the old layout).

    None when the run has none (a run killed before its first checkpoint starts again at step 0).
    A checkpoint directory that exists but fails verification is never used: the previous one is
    taken (with a `note` saying why), or RunError when none is complete.
    """
    run_dir = Path(run_dir)
    found = [run_dir / n for n in (CURRENT, PREVIOUS) if (run_dir / n).is_dir()]
    if not found:
        return _read_legacy(run_dir)
    problems = []
    for d in found:
        try:
            ck = _read(d)
        except (RunError, OSError, ValueError) as e:
            problems.append(f"{d.name}/: {e}")
            continue
        if problems:
            ck.note = f"resumed from {d.name}/ (step {ck.step}); skipped {'; '.join(problems)}"
        return ck
    raise RunError(f"cannot resume {run_dir.name}: no complete checkpoint ({'; '.join(problems)}). "
                   "model.safetensors still loads for analysis; train a new run to go on")


def set_aside_damaged(run_dir: Path, resumed: Checkpoint) -> None:
    """After a fallback to checkpoint.prev/, move the refused checkpoint/ to checkpoint.damaged/ (kept to inspect),
    so that the next save does not rotate it into checkpoint.prev/ over the good one."""
    run_dir = Path(run_dir)
    if resumed.source != PREVIOUS or not (run_dir / CURRENT).is_dir():
        return
    shutil.rmtree(run_dir / DAMAGED, ignore_errors=True)
    os.replace(run_dir / CURRENT, run_dir / DAMAGED)
    resumed.note += f"; kept aside as {DAMAGED}/"


def drop_records_after(run_dir: Path, step: int) -> None:
    """Rewrite metrics.jsonl without the records logged after `step` (they are trained again on resume)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue  # a half-written line of the killed session
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] <= step:
            kept.append(line + "\n")
    atomic_write_bytes(path, "".join(kept).encode("utf-8"))


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The torch generators that draw training noise and dropout: CPU, and the CUDA device's."""
    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def restore_rng(rng: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(rng["cpu"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


__all__ = ["Checkpoint", "save", "load_latest", "clean_leftovers", "remove_all", "set_aside_damaged",
           "drop_records_after",
           "rng_state", "restore_rng", "json_safe"]
