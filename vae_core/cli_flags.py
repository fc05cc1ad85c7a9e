"""Command-line flags generated from the setting declarations (vae_core.config), and --device.

`add_train_flags` gives `python -m vae_core train` one flag per setting (typed, with the declared help
and default); `add_sweep_flags` gives `python -m vae_core sweep` the same flags taking a value to fix, a
comma-separated list or a range LO:HI[:log|linear] to search. Shared by vae_core.cli and vae_core.cli_sweep
(neither imports the other).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vae_core.config import (
    ModelConfig,
    Setting,
    TrainConfig,
    configs_with,
    declared,
    from_dict,
    parse_value,
    training_settings,
)
from vae_core.units import format_bytes

GIVEN = "given_settings"  # Namespace attribute: the setting names set explicitly on the command line
MAX_CONFIG_BYTES = 1024 * 1024  # 1 MiB: a config file is a few KiB


class RecordGiven(argparse.Action):
    """Store the (typed) value and remember that the flag was given (so it overrides a --config file)."""

    def __init__(self, *args: Any, setting: Setting | None = None, invert: bool = False, **kw: Any) -> None:
        self.setting, self.invert = setting, invert
        super().__init__(*args, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ARG002
        value = self.const if self.nargs == 0 else values
        if self.setting is not None and self.nargs != 0 and isinstance(value, str) and self.type is None:
            try:
                value = parse_value(self.setting, value)
            except ValueError as e:
                parser.error(f"{option_string}: {e}")
        setattr(namespace, self.dest, value)
        given = set(getattr(namespace, GIVEN, None) or ())
        given.add(self.dest)
        setattr(namespace, GIVEN, given)


def _help(s: Setting, extra: str = "") -> str:
    bounds = ""
    if s.kind in ("int", "float") and (s.lo is not None or s.hi is not None):
        bounds = f" [{s.lo:g} … {s.hi:g}]" if s.lo is not None and s.hi is not None else ""
    return (s.help + bounds + extra).replace("%", "%%")


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per user-settable model/training setting; its default is the declared one."""
    for s in training_settings().values():
        if s.kind == "bool":  # a flag that flips the default: --lowercase, --unidirectional, --no-z-inputs
            p.add_argument(s.cli_flag, dest=s.name, action=RecordGiven, nargs=0, const=not s.default, default=s.default,
                           help=_help(s) if s.default is False else f"sets {s.name} false. " + _help(s))
        else:
            choices = s.choices or None
            p.add_argument(s.cli_flag, dest=s.name, action=RecordGiven, setting=s, default=s.default, choices=choices,
                           metavar=None if choices else s.kind.upper(), help=_help(s, f" (default: {s.default})"))


def add_sweep_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """Every setting as a sweep flag: one value fixes it, V1,V2,… or LO:HI[:log|linear] searches it."""
    for s in training_settings().values():
        if s.name in skip:
            continue
        if s.kind == "bool":
            what = "true" if s.default is False else "turns it off; 'true,false' searches both"
            p.add_argument(s.cli_flag, dest=s.name, nargs="?", const="true", default=None, metavar="true,false",
                           help=_help(s, f" (given alone: {what})"))
            continue
        if s.kind == "choice":
            search = f" One of {', '.join(map(str, s.choices))} fixes it; several, comma-separated, are searched."
        else:
            scale = "log" if s.log else "linear"
            search = f" One value fixes it; V1,V2,… or a range LO:HI[:log|linear] (default {scale}) is searched."
        p.add_argument(s.cli_flag, dest=s.name, default=None, metavar="VALUE", help=_help(s, search))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON object with "model" and/or "train" objects (a run's config.json qualifies); ValueError if not."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"config file {path} is larger than {format_bytes(MAX_CONFIG_BYTES)}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read config file {path}: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"config file {path} is not JSON: {e}") from e
    if not isinstance(data, dict) or not ({"model", "train"} & set(data)):
        raise ValueError(f"config file {path} must be a JSON object with \"model\" and \"train\" objects "
                         "(like a run's config.json)")
    return data


def configs_from_file(data: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs of a config file; sizes set from the corpus (vocab_size, …) are reset."""
    model = dict(data.get("model") or {})
    for s in declared(ModelConfig):
        if s.internal:
            model.pop(s.name, None)
    return from_dict(ModelConfig, model), from_dict(TrainConfig, dict(data.get("train") or {}))


def given(a: argparse.Namespace) -> dict[str, Any]:
    """The settings given explicitly on the command line, by name."""
    return {name: getattr(a, name) for name in sorted(getattr(a, GIVEN, None) or ()) if name in training_settings()}


def configs_from_args(a: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """--config FILE (or the declared defaults), with every setting flag given on the command line applied."""
    base = (ModelConfig(), TrainConfig())
    if getattr(a, "config", None):
        base = configs_from_file(read_config_file(a.config))
    return configs_with(*base, given(a))


def resolve_device(name: str) -> str:
    """cpu, cuda, cuda:N or mps, checked to exist here; 'auto' picks CUDA, else MPS, else CPU."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device {name!r} (use cpu, cuda, cuda:N, mps or auto)")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is visible to PyTorch here (try --device auto or cpu)")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if kind == "mps" and not mps:
        raise ValueError("--device mps: the Apple MPS backend is not available here (try --device auto or cpu)")
    return name


__all__ = ["add_train_flags", "add_sweep_flags", "read_config_file", "configs_from_file", "configs_from_args",
           "given", "resolve_device"]
