"""`python -m vae_core sweep` and `sweep-status`: hyperparameter sweeps on Optuna from the shell.

Every model/training setting has a sweep flag (generated from vae_core.config's declarations, the same
name as the train flag): one value fixes it for every trial (`--decoder additive`; a single --beta value is
the sweep's one-cell β axis, as it always was), comma-separated
values search it (`--beta 0.3,0.6,1`, any sampler), and a range LO:HI[:log|linear] draws it (random/TPE:
`--lr 1e-4:1e-2:log`). `--config FILE` (a run's config.json) sets the base of every trial.

Several workers (processes or machines) join one study by running the same command with the
same --name, --storage and --seed; each trial is a run directory <out-root>/<name>-trial<N>.
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

from vae_core.cli_flags import add_sweep_flags, configs_from_file, read_config_file, resolve_device
from vae_core.config import ModelConfig, Setting, TrainConfig, configs_with, parse_value, training_settings

# A sweep flag's value: ("fixed", v), ("values", (v1, v2, …)) or ("range", (lo, hi, log)).
Search = tuple[str, Any]


def parse_beta_range(text: str) -> tuple[tuple[float, float], bool]:
    """'LO:HI' or 'LO:HI:log' / 'LO:HI:linear' → ((lo, hi), log scale?) (log by default, as β spans decades)."""
    lo, hi, log = _parse_range(training_settings()["beta"], text, "--beta-range")
    return (lo, hi), log


def _parse_range(s: Setting, text: str, flag: str) -> tuple[float, float, bool]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
        raise ValueError(f"{flag} range must look like 0.1:8 or 0.1:8:log or 0:4:linear, got {text!r}")
    try:
        lo, hi = (int(parts[0]), int(parts[1])) if s.kind == "int" else (float(parts[0]), float(parts[1]))
    except ValueError as e:
        kind = "integers" if s.kind == "int" else "numbers"
        raise ValueError(f"{flag} range needs {kind}, got {text!r}") from e
    return lo, hi, (parts[2] == "log" if len(parts) == 3 else s.log)


def parse_search(s: Setting, text: str, flag: str | None = None) -> Search:
    """A sweep flag's text as ("fixed", value), ("values", values) or ("range", (lo, hi, log)); ValueError if bad."""
    flag = flag or s.cli_flag
    if s.kind in ("int", "float") and ":" in text:
        return "range", _parse_range(s, text, flag)
    words = [w for w in text.split(",") if w.strip()]
    if not words:
        raise ValueError(f"{flag}: no value given")
    try:
        values = tuple(parse_value(s, w) for w in words)
    except ValueError as e:
        kind = {"int": "comma-separated integers", "float": "comma-separated numbers",
                "bool": "true, false or true,false"}.get(s.kind, "comma-separated choices")
        raise ValueError(f"{flag} must be {kind} (or a range LO:HI for random/TPE), got {text!r}: {e}") from e
    if s.kind == "bool" and s.default is True:  # --unidirectional true: bidirectional false
        values = tuple(not v for v in values)
    if len(set(values)) != len(values):
        raise ValueError(f"{flag} lists a value twice: {text!r}")
    return ("fixed", values[0]) if len(values) == 1 else ("values", values)


def _add_sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="study name; trials are <out-root>/<name>-trial<N>")
    p.add_argument("--storage", default=None, help="Optuna database URL (default sqlite:///<out-root>/sweeps.db)")
    p.add_argument("--sampler", choices=("grid", "random", "tpe"), default="grid")
    p.add_argument("--trials", type=int, default=None, help="total trials of the study (default: grid size, or 10)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="base configs of every trial: JSON with \"model\" and \"train\" (e.g. a run's config.json)")
    p.add_argument("--beta-range", nargs="+", default=None, metavar="LO:HI [log|linear]",
                   help="random/TPE: β range, e.g. 0.1:8 log (default log scale); same as --beta 0.1:8:log")
    p.add_argument("--objectives", default="nll", help="nll or nll,mig (MIG needs factors or labels)")
    p.add_argument("--out-root", default="runs", help="where the trial run directories go")
    p.add_argument("--corpus", default="synthetic",
                   help="synthetic | ptb | grammar:NAME (a shipped factor grammar) | GRAMMAR.json | PATH")
    p.add_argument("--text-column", default=None)
    p.add_argument("--seed", type=int, default=None,
                   help="sampler and training seed, same in every worker of one study (default: the base config's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--quiet", action="store_true", help="print only the final JSON")
    add_sweep_flags(p, skip=("seed",))  # every other setting: fixed (one value) or searched (V1,V2 or LO:HI)


def searches_from_args(a: argparse.Namespace) -> dict[str, Search]:
    """Each setting flag given, parsed (the --beta-range alias included)."""
    out: dict[str, Search] = {}
    for s in training_settings().values():
        text = getattr(a, s.name, None) if s.name != "seed" else None
        if text is not None:
            out[s.name] = parse_search(s, text)
    if a.beta_range:
        if "beta" in out:
            raise ValueError("give --beta or --beta-range, not both")
        text = a.beta_range if isinstance(a.beta_range, str) else ":".join(a.beta_range)
        out["beta"] = "range", _parse_range(training_settings()["beta"], text, "--beta-range")
    return out


def space_from_args(a: argparse.Namespace):
    """The searched settings (two or more values, or a range) as a SweepSpace."""
    from vae_core.sweep import SweepSpace

    searches = searches_from_args(a)
    if searches.get("beta", ("",))[0] == "fixed":  # as before: --beta lists the β values, one value = one cell
        searches["beta"] = "values", (searches["beta"][1],)
    return SweepSpace(values=[(k, v) for k, (how, v) in searches.items() if how == "values"],
                      ranges=[(k, *v) for k, (how, v) in searches.items() if how == "range"])


def configs_from_args(a: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """Base configs of every trial: --config FILE (or the defaults) with each fixed (one-value) setting applied
    (a single --beta value is the sweep's one β value: it is in the space and also fixed here)."""
    base = configs_from_file(read_config_file(a.config)) if a.config else (ModelConfig(), TrainConfig())
    fixed = {k: v for k, (how, v) in searches_from_args(a).items() if how == "fixed"}
    if a.seed is not None:
        fixed["seed"] = a.seed
    return configs_with(*base, fixed)


def cmd_sweep(a: argparse.Namespace) -> int:
    from vae_core.sweep import run_sweep, sweep_status

    stop = {"flag": False}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    space = space_from_args(a)
    mcfg, tcfg = configs_from_args(a)
    if a.quiet:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = tuple(o.strip() for o in a.objectives.split(",") if o.strip())

    def on_trial(rec: dict) -> None:
        if not a.quiet:
            ua = rec["user_attrs"]
            print(json.dumps({"trial": rec["number"], "state": rec["state"], "params": rec["params"],
                              "values": rec["values"], "run_dir": ua.get("run_dir")}), flush=True)

    study = run_sweep(
        a.name, a.storage, space, a.sampler, a.trials, mcfg, tcfg, a.corpus, a.out_root, objectives, tcfg.seed,
        text_column=a.text_column, device=resolve_device(a.device), should_stop=lambda: stop["flag"],
        on_trial=on_trial,
    )
    status = sweep_status(study.study_name, a.storage or _default_storage(a.out_root))
    print(json.dumps({k: v for k, v in status.items() if k != "trials"}), flush=True)
    return 0


def _default_storage(out_root: str) -> str:
    from vae_core.sweep import default_storage

    return default_storage(out_root)


def cmd_sweep_status(a: argparse.Namespace) -> int:
    from vae_core.sweep import sweep_status

    print(json.dumps(sweep_status(a.name, a.storage or _default_storage(a.out_root)), indent=2))
    return 0


def register(sub) -> None:
    """Add the `sweep` and `sweep-status` subcommands to vae_core.cli's subparsers."""
    p = sub.add_parser("sweep", help="hyperparameter sweep (grid, random, TPE) on Optuna; one run per trial")
    _add_sweep_args(p)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("sweep-status", help="print a sweep's trials as JSON")
    p.add_argument("--name", required=True)
    p.add_argument("--storage", default=None, help="default sqlite:///<out-root>/sweeps.db")
    p.add_argument("--out-root", default="runs")
    p.set_defaults(func=cmd_sweep_status)


__all__ = ["register", "parse_search", "parse_beta_range", "space_from_args", "configs_from_args"]

