"""Where runs live: the shipped runs ($VAE_MODELS_DIR, else <repo>/models) and the user's ($VAE_RUNS_DIR,
else <repo>/runs), which of them can be loaded, the default one, and how a picker names them."""

from __future__ import annotations

import os
from pathlib import Path

from vae_core.runs import effective_state, list_runs

REPO_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """Shipped runs: $VAE_MODELS_DIR, else <repo>/models."""
    return Path(os.environ.get("VAE_MODELS_DIR") or REPO_ROOT / "models")


def runs_dir() -> Path:
    """The user's runs: $VAE_RUNS_DIR, else <repo>/runs."""
    return Path(os.environ.get("VAE_RUNS_DIR") or REPO_ROOT / "runs")


def _loadable(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def available_runs() -> list[Path]:
    """Shipped runs first, then the user's; only directories with config.json and model.safetensors."""
    seen: set[Path] = set()
    out: list[Path] = []
    for root in (models_dir(), runs_dir()):
        for p in list_runs(root):
            key = p.resolve()
            if key not in seen and _loadable(p):
                seen.add(key)
                out.append(p)
    return out


RUN_FILES = ("config.json", "status.json", "model.safetensors")  # a folder holding any of these was meant as a run


def unlisted_runs() -> list[tuple[Path, str]]:
    """Run folders the picker leaves out, each with why: no config.json, or no weights yet (with the run's state).

    Folders whose names start with a dot (caches, sweeps) and folders holding no run file at all are ignored.
    """
    listed = {p.resolve() for p in available_runs()}
    out: list[tuple[Path, str]] = []
    for root in (models_dir(), runs_dir()):
        if not root.is_dir():
            continue
        for p in sorted(root.iterdir()):
            if not p.is_dir() or p.name.startswith(".") or p.resolve() in listed:
                continue
            if not any((p / f).exists() for f in RUN_FILES):
                continue
            state = effective_state(p)
            if not (p / "config.json").is_file():
                why = "no config.json"
            elif not (p / "model.safetensors").is_file():
                why = "no weights yet"
            else:
                why = "config.json or model.safetensors is not a plain file"
            out.append((p, why + ("" if state == "unknown" else f" (state: {state})")))
    return out


def is_shipped(path: Path) -> bool:
    """Whether a run directory sits directly in the shipped models folder."""
    try:
        return Path(path).resolve().parent == models_dir().resolve()
    except OSError:
        return False


def default_run_path() -> Path | None:
    """models/DEFAULT (a run directory name) if it names an available run, else the first shipped, else any."""
    runs = available_runs()
    if not runs:
        return None
    default_file = models_dir() / "DEFAULT"
    if default_file.is_file():
        try:
            name = default_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        for p in runs:
            if p.name == name and is_shipped(p):
                return p
    return runs[0]


def run_label(path: Path) -> str:
    """How the picker names a run: its name, where it comes from, and its state when not finished."""
    if is_shipped(path):
        return f"{path.name} · shipped"
    s = effective_state(path)
    return f"{path.name} · {s}" if s not in ("finished", "unknown") else path.name


__all__ = ["available_runs", "default_run_path", "is_shipped", "models_dir", "run_label", "runs_dir",
           "unlisted_runs"]
