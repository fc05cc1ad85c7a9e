"""`python -m vae_core sweep` and `sweep-status`: β sweeps on Optuna from the shell.

Several workers (processes or machines) join one study by running the same command with the
same --name, --storage and --seed; each trial is a run directory <out-root>/<name>-trial<N>.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from vae_core.config import SCHEDULES, ModelConfig, TrainConfig


def _floats(text: str | None, what: str) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from e


def _ints(text: str | None, what: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from e


def parse_beta_range(text: str) -> tuple[tuple[float, float], bool]:
    """'LO:HI' or 'LO:HI:log' / 'LO:HI:linear' → ((lo, hi), log scale?)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
        raise ValueError(f"--beta-range must look like 0.1:8 or 0.1:8:log or 0:4:linear, got {text!r}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError as e:
        raise ValueError(f"--beta-range needs numbers, got {text!r}") from e
    return (lo, hi), (parts[2] == "log" if len(parts) == 3 else True)


def _add_sweep_args(p: argparse.ArgumentParser) -> None:
    m, t = ModelConfig(), TrainConfig()
    p.add_argument("--name", required=True, help="study name; trials are <out-root>/<name>-trial<N>")
    p.add_argument("--storage", default=None, help="Optuna database URL (default sqlite:///<out-root>/sweeps.db)")
    p.add_argument("--sampler", choices=("grid", "random", "tpe"), default="grid")
    p.add_argument("--trials", type=int, default=None, help="total trials of the study (default: grid size, or 10)")
    p.add_argument("--beta", default=None, help="β values, comma-separated (e.g. 0.5,1,2)")
    p.add_argument("--beta-range", nargs="+", default=None, metavar="LO:HI [log|linear]",
                   help="random/TPE: β range, e.g. 0.1:8 log (default log scale)")
    p.add_argument("--latent-dim", default=None, help="latent sizes to try, comma-separated (one = fixed)")
    p.add_argument("--schedule", default=None, help=f"schedules to try, comma-separated ({', '.join(SCHEDULES)})")
    p.add_argument("--free-bits", default=None, help="free-bits values to try, comma-separated")
    p.add_argument("--objectives", default="nll", help="nll or nll,mig (MIG needs factors or labels)")
    p.add_argument("--out-root", default="runs", help="where the trial run directories go")
    p.add_argument("--corpus", default="synthetic", help="synthetic | ptb | PATH")
    p.add_argument("--text-column", default=None)
    p.add_argument("--seed", type=int, default=0, help="same in every worker of one study")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    # fixed model and training options of every trial
    p.add_argument("--embed-dim", type=int, default=m.embed_dim)
    p.add_argument("--hidden-dim", type=int, default=m.hidden_dim)
    p.add_argument("--rnn", dest="rnn_type", choices=("gru", "lstm"), default=m.rnn_type)
    p.add_argument("--word-dropout", type=float, default=m.word_dropout)
    p.add_argument("--warmup-steps", type=int, default=t.warmup_steps)
    p.add_argument("--cycles", type=int, default=t.cycles)
    p.add_argument("--capacity-max", type=float, default=t.capacity_max)
    p.add_argument("--capacity-steps", type=int, default=t.capacity_steps)
    p.add_argument("--gamma", type=float, default=t.gamma)
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument("--max-steps", type=int, default=t.max_steps)
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--lr", type=float, default=t.lr)
    p.add_argument("--max-len", type=int, default=t.max_len)
    p.add_argument("--eval-every", type=int, default=t.eval_every)
    p.add_argument("--log-every", type=int, default=t.log_every)
    p.add_argument("--quiet", action="store_true", help="print only the final JSON")


def space_from_args(a: argparse.Namespace):
    from vae_core.sweep import SweepSpace

    beta_range, beta_log = (None, True)
    if a.beta_range:
        text = a.beta_range if isinstance(a.beta_range, str) else ":".join(a.beta_range)
        beta_range, beta_log = parse_beta_range(text)
    latent = _ints(a.latent_dim, "--latent-dim")
    schedules = tuple(s.strip() for s in (a.schedule or "").split(",") if s.strip())
    free_bits = _floats(a.free_bits, "--free-bits")
    return SweepSpace(
        beta_values=_floats(a.beta, "--beta"), beta_range=beta_range, beta_log=beta_log,
        latent_dims=latent if len(latent) > 1 else (), schedules=schedules if len(schedules) > 1 else (),
        free_bits=free_bits if len(free_bits) > 1 else (),
    )


def configs_from_args(a: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """Base configs of every trial (a single --latent-dim/--schedule/--free-bits value is fixed here)."""
    latent = _ints(a.latent_dim, "--latent-dim")
    schedules = [s.strip() for s in (a.schedule or "").split(",") if s.strip()]
    free_bits = _floats(a.free_bits, "--free-bits")
    m, t = ModelConfig(), TrainConfig()
    mcfg = ModelConfig(embed_dim=a.embed_dim, hidden_dim=a.hidden_dim, rnn_type=a.rnn_type,
                       word_dropout=a.word_dropout, latent_dim=latent[0] if len(latent) == 1 else m.latent_dim)
    tcfg = TrainConfig(
        schedule=schedules[0] if len(schedules) == 1 else t.schedule,
        free_bits=free_bits[0] if len(free_bits) == 1 else t.free_bits,
        warmup_steps=a.warmup_steps, cycles=a.cycles, capacity_max=a.capacity_max, capacity_steps=a.capacity_steps,
        gamma=a.gamma, epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
        max_len=a.max_len, eval_every=a.eval_every, log_every=a.log_every,
    )
    return mcfg, tcfg


def cmd_sweep(a: argparse.Namespace) -> int:
    from vae_core.cli import resolve_device
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
        a.name, a.storage, space, a.sampler, a.trials, mcfg, tcfg, a.corpus, a.out_root, objectives, a.seed,
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


if __name__ == "__main__":  # pragma: no cover
    from vae_core.cli import main

    sys.exit(main(["sweep", *sys.argv[1:]]))
