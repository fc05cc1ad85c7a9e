"""Hyperparameter sweeps (grid, random, TPE) on Optuna; every trial is a normal run directory.

Storage is a local SQLite file by default (`sqlite:///<out_root>/sweeps.db`); any database URL
Optuna takes (e.g. postgresql://user:pw@host/db) lets workers on several machines share one
study: start `python -m vae_core sweep --name S --storage URL ...` on each. `n_trials` is the
study's total across workers; a grid never has a cell trained twice (each trial number maps
to one cell, trials past the grid are pruned unrun).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vae_core.config import SCHEDULES, ModelConfig, TrainConfig

Sampler = Literal["grid", "random", "tpe"]
SAMPLERS = ("grid", "random", "tpe")
OBJECTIVES = ("nll", "mig")
DIRECTIONS = {"nll": "minimize", "mig": "maximize"}
HEARTBEAT_S = 60  # a trial whose worker stops beating for GRACE_S is marked failed by another worker
GRACE_S = 180
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class SweepError(ValueError):
    """A sweep cannot run as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class SweepSpace:
    """What a sweep varies. Empty tuples leave that option at the base config's value."""

    beta_values: tuple[float, ...] = ()  # explicit β values (grid needs these)
    beta_range: tuple[float, float] | None = None  # random/TPE: β drawn from [lo, hi]
    beta_log: bool = True  # draw β on a log scale (β spans orders of magnitude)
    latent_dims: tuple[int, ...] = ()
    schedules: tuple[str, ...] = ()
    free_bits: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.beta_values and self.beta_range:
            raise SweepError("give β values or a β range, not both")
        for b in self.beta_values:
            if not (isinstance(b, (int, float)) and 0 <= b <= 1000):
                raise SweepError(f"β must be between 0 and 1000, got {b!r}")
        if self.beta_range is not None:
            lo, hi = self.beta_range
            if not (0 <= lo < hi <= 1000):
                raise SweepError(f"β range must satisfy 0 <= lo < hi <= 1000, got {lo}:{hi}")
            if self.beta_log and lo <= 0:
                raise SweepError("a log-scale β range needs lo > 0")
        for d in self.latent_dims:
            if not (isinstance(d, int) and 1 <= d <= 1024):
                raise SweepError(f"latent size must be an integer in 1..1024, got {d!r}")
        for s in self.schedules:
            if s not in SCHEDULES:
                raise SweepError(f"schedule must be one of {', '.join(SCHEDULES)}; got {s!r}")
        for f in self.free_bits:
            if not (isinstance(f, (int, float)) and 0 <= f <= 100):
                raise SweepError(f"free bits must be between 0 and 100, got {f!r}")

    def grid(self) -> dict[str, list]:
        """The search space as value lists (GridSampler's input); SweepError if β is a range."""
        if self.beta_range is not None:
            raise SweepError("a grid sweep needs β values (e.g. --beta 0.5,1,2), not a range")
        space: dict[str, list] = {}
        if self.beta_values:
            space["beta"] = [float(b) for b in self.beta_values]
        if self.latent_dims:
            space["latent_dim"] = [int(d) for d in self.latent_dims]
        if self.schedules:
            space["schedule"] = list(self.schedules)
        if self.free_bits:
            space["free_bits"] = [float(f) for f in self.free_bits]
        if not space:
            raise SweepError("the sweep varies nothing: give β values, latent sizes, schedules or free bits")
        return space

    def n_cells(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's values for everything this space varies."""
        out: dict[str, Any] = {}
        if self.beta_values:
            out["beta"] = float(trial.suggest_categorical("beta", [float(b) for b in self.beta_values]))
        elif self.beta_range is not None:
            out["beta"] = float(trial.suggest_float("beta", *self.beta_range, log=self.beta_log))
        if self.latent_dims:
            out["latent_dim"] = int(trial.suggest_categorical("latent_dim", [int(d) for d in self.latent_dims]))
        if self.schedules:
            out["schedule"] = str(trial.suggest_categorical("schedule", list(self.schedules)))
        if self.free_bits:
            out["free_bits"] = float(trial.suggest_categorical("free_bits", [float(f) for f in self.free_bits]))
        return out


def check_study_name(name: str) -> str:
    """A study name usable as a run-name prefix: letters, digits, - _ . (no leading dot), ≤ 64 chars."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise SweepError(
            f"study name {name!r} must be 1-64 letters, digits, '-', '_' or '.', not starting with '.' "
            "and without '..'"
        )
    return name


def default_storage(out_root: str | os.PathLike) -> str:
    """sqlite:///<out_root>/sweeps.db (absolute path)."""
    return f"sqlite:///{Path(out_root).resolve() / 'sweeps.db'}"


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def make_storage(url: str, heartbeat: bool = True):
    """An Optuna RDBStorage for the URL (SQLite waits on locks; heartbeats mark dead workers' trials failed)."""
    import optuna

    kwargs: dict[str, Any] = {}
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    last: Exception | None = None
    for attempt in range(5):  # two workers creating the tables of a new SQLite file at once may collide
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as e:  # noqa: BLE001 - retried, then re-raised
            last = e
            time.sleep(0.2 * (attempt + 1))
    assert last is not None
    raise last


def _make_sampler(kind: str, space: SweepSpace, seed: int, n_existing: int):
    import optuna

    if kind == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)  # same seed in every worker: same cell order
    # Workers joining later get other seeds, so two random workers do not draw the same sequence.
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed + n_existing)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed + n_existing)
    raise SweepError(f"sampler must be one of {', '.join(SAMPLERS)}; got {kind!r}")


def _factors_for(corpus, data):
    """(factors (N, K), names) of a split for MIG, or None when the corpus has no labels."""
    from vae_core.evaluate import _label_factors

    labelled = _label_factors(corpus, data)
    return None if labelled is None else (labelled[0], labelled[1])


def _free_run_dir(out_root: Path, study: str, number: int) -> Path:
    base = out_root / f"{study}-trial{number}"
    path, k = base, 1
    while path.exists() and any(path.iterdir()):
        k += 1
        path = out_root / f"{base.name}-{k}"
    return path


def _mig_of_run(run_dir: Path, corpus, max_sentences: int = 2000, seed: int = 0) -> float:
    """MIG of a run's posterior means on (up to max_sentences of) the valid split, active units only."""
    from vae_core.disentanglement import mig
    from vae_core.encoding import posterior_means
    from vae_core.metrics import AU_THRESHOLD
    from vae_core.runs import load_run

    data = corpus.valid
    if max_sentences and len(data) > max_sentences:
        data = data.select(sorted(np.random.default_rng(seed).permutation(len(data))[:max_sentences].tolist()))
    labelled = _factors_for(corpus, data)
    if labelled is None:
        raise SweepError(f"corpus {corpus.name!r} has no factors or label columns; MIG cannot be measured")
    run = load_run(run_dir)
    mu, _, _ = posterior_means(run.model, run.vocab, data.sentences, lowercase=run.train_config.lowercase,
                               max_len=run.train_config.max_len)
    mu_np = mu.numpy()  # (N, D)
    active = mu_np.var(0, ddof=1) > AU_THRESHOLD if len(mu_np) > 1 else np.zeros(mu_np.shape[1], bool)
    value = mig(mu_np, labelled[0], active=active)["mig"]
    return float(value) if math.isfinite(value) else 0.0


def run_sweep(
    study_name: str,
    storage_url: str | None,
    space: SweepSpace,
    sampler: Sampler = "grid",
    n_trials: int | None = None,
    base_model_cfg: ModelConfig | None = None,
    base_train_cfg: TrainConfig | None = None,
    corpus_spec: str = "synthetic",
    out_root: str | os.PathLike = "runs",
    objectives: Sequence[str] = ("nll",),
    seed: int = 0,
    *,
    text_column: str | None = None,
    device: str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    on_trial: Callable[[dict], None] | None = None,
):
    """Run (or join) a study: each trial trains out_root/<study>-trial<N> and is scored on the valid split.

    Objectives: 'nll' (−ELBO bound per sentence, minimised) and optionally 'mig' (maximised; needs
    a corpus with factors or labels). n_trials is the study's total (default: the grid size, or
    10). Trial user attrs: run_dir, beta, kl, recon, nll, elbo, active_units, state (and mig).
    Returns the Optuna study.
    """
    import optuna

    from vae_core.corpus import encode_sentences, load_corpus
    from vae_core.runs import load_run, read_json, write_json
    from vae_core.train import evaluate_elbo, train

    study_name = check_study_name(study_name)
    objectives = tuple(objectives)
    if not objectives or any(o not in OBJECTIVES for o in objectives) or len(set(objectives)) != len(objectives):
        raise SweepError(f"objectives must be 'nll' or 'nll,mig'; got {','.join(objectives)!r}")
    if objectives[0] != "nll":
        raise SweepError("the first objective must be nll")
    if sampler not in SAMPLERS:
        raise SweepError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if sampler != "grid" and not (space.beta_values or space.beta_range or space.latent_dims or space.schedules
                                  or space.free_bits):
        raise SweepError("the sweep varies nothing: give β values or a range, latent sizes, schedules or free bits")
    n_cells = space.n_cells() if sampler == "grid" else None
    if n_trials is None:
        n_trials = n_cells or 10
    if n_trials < 1:
        raise SweepError(f"trials must be at least 1, got {n_trials}")
    if n_cells is not None:
        n_trials = min(n_trials, n_cells)
    base_model_cfg = base_model_cfg or ModelConfig()
    base_train_cfg = base_train_cfg or TrainConfig()
    out_root = Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    storage_url = storage_url or default_storage(out_root)
    should_stop = should_stop or (lambda: False)

    corpus = load_corpus(corpus_spec, text_column, seed=base_train_cfg.seed)
    if "mig" in objectives and _factors_for(corpus, corpus.valid) is None:
        raise SweepError(f"corpus {corpus.name!r} has no factors or label columns; drop the 'mig' objective")

    storage = make_storage(storage_url)
    directions = [DIRECTIONS[o] for o in objectives]
    probe = optuna.create_study(study_name=study_name, storage=storage, directions=directions, load_if_exists=True)
    if [d.name.lower() for d in probe.directions] != directions:
        raise SweepError(f"study {study_name!r} exists with other objectives ({len(probe.directions)} direction(s))")
    attrs = probe.user_attrs
    if attrs.get("sampler") not in (None, sampler):
        raise SweepError(f"study {study_name!r} uses the {attrs['sampler']} sampler, not {sampler}")
    probe.set_user_attr("sampler", sampler)
    probe.set_user_attr("objectives", list(objectives))
    probe.set_user_attr("target_trials", max(int(attrs.get("target_trials") or 0), n_trials))
    probe.set_user_attr("n_cells", n_cells)
    probe.set_user_attr("space", dataclasses.asdict(space))
    probe.set_user_attr("corpus", corpus_spec)
    probe.set_user_attr("out_root", str(out_root))
    n_existing = len(probe.get_trials(deepcopy=False))
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=_make_sampler(sampler, space, seed, n_existing))
    target = int(study.user_attrs.get("target_trials", n_trials))

    def objective(trial: optuna.Trial):
        if trial.number >= target:  # another worker took the last trial (and, for a grid, the last cell)
            trial.set_user_attr("state", "skipped")
            raise optuna.TrialPruned(f"the study already has {target} trials")
        params = space.suggest(trial)
        mcfg = base_model_cfg
        if "latent_dim" in params:
            mcfg = dataclasses.replace(mcfg, latent_dim=params["latent_dim"])
        tcfg = dataclasses.replace(base_train_cfg, **{k: v for k, v in params.items() if k != "latent_dim"})
        run_dir = _free_run_dir(out_root, study_name, trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("beta", tcfg.beta)
        trial.set_user_attr("schedule", tcfg.schedule)
        trial.set_user_attr("latent_dim", mcfg.latent_dim)
        summary = train(run_dir, corpus, mcfg, tcfg, should_stop=should_stop, device=device)
        trial.set_user_attr("state", summary["state"])
        if summary["state"] == "stopped":
            study.stop()
            raise optuna.TrialPruned("stopped")
        if summary["state"] != "finished":
            raise TrialFailed(f"training {summary['state']} at step {summary['step']}")
        val = summary.get("valid") or {}
        if not val:  # training ended without a validation pass: score the saved checkpoint
            run = load_run(run_dir)
            ids, _ = encode_sentences(corpus.valid.sentences, run.vocab, tcfg.max_len, tcfg.lowercase)
            val = evaluate_elbo(run.model, ids, device="cpu", seed=tcfg.seed)
        if not val:
            raise TrialFailed("the valid split is empty; nothing to score")
        record = {"nll": float(val["nll_bound"]), "elbo": float(val["elbo"]), "kl": float(val["kl"]),
                  "recon": float(val["recon"]), "active_units": int(val.get("active_units", 0))}
        values: list[float] = [record["nll"]]
        if "mig" in objectives:
            record["mig"] = _mig_of_run(run_dir, corpus, seed=seed)
            values.append(record["mig"])
        for k, v in record.items():
            trial.set_user_attr(k, v)
        try:  # the run's own summary says which sweep made it
            summ = read_json(run_dir / "summary.json")
            summ = summ if isinstance(summ, dict) else {}
        except (OSError, ValueError):
            summ = {}
        summ["sweep"] = {"study": study_name, "trial": trial.number, "params": params, **record}
        write_json(run_dir / "summary.json", summ)
        return values[0] if len(values) == 1 else tuple(values)

    def enough(st: optuna.Study, _trial) -> None:
        if len(st.get_trials(deepcopy=False)) >= target or should_stop():
            st.stop()

    def report(st: optuna.Study, t) -> None:
        if on_trial is not None:
            on_trial(trial_record(t))

    if len(study.get_trials(deepcopy=False)) < target and not should_stop():
        study.optimize(objective, n_trials=target, callbacks=[enough, report], catch=(TrialFailed, ValueError),
                       gc_after_trial=True)
    return study


class TrialFailed(RuntimeError):
    """A trial's training did not finish (diverged or failed); the trial is marked failed."""


def trial_record(t) -> dict[str, Any]:
    """A JSON-ready dict of a FrozenTrial: number, state, params, values, user attrs, times."""
    start, end = t.datetime_start, t.datetime_complete
    return {
        "number": t.number,
        "state": t.state.name,
        "params": dict(t.params),
        "values": list(t.values) if t.values is not None else None,
        "user_attrs": dict(t.user_attrs),
        "started": start.isoformat() if start else None,
        "completed": end.isoformat() if end else None,
        "duration_s": (end - start).total_seconds() if start and end else None,
    }


def sweep_status(study_name: str, storage_url: str) -> dict[str, Any]:
    """A study's state as plain JSON: target, counts per state, trials, best trial(s)."""
    import optuna

    path = _sqlite_path(storage_url)
    if path is not None and not path.is_file():
        raise SweepError(f"no sweep database at {path}")
    storage = make_storage(storage_url, heartbeat=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as e:
        raise SweepError(f"no study named {study_name!r} in {storage_url}") from e
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    attrs = study.user_attrs
    done = sum(1 for t in trials if t.state.is_finished() and t.user_attrs.get("state") != "skipped")
    if len(study.directions) == 1:
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = [min(complete, key=lambda t: t.value).number] if complete else []
    else:
        best = [t.number for t in study.best_trials]
    return {
        "study": study_name,
        "storage": storage_url,
        "directions": [d.name.lower() for d in study.directions],
        "sampler": attrs.get("sampler"),
        "objectives": attrs.get("objectives"),
        "target_trials": attrs.get("target_trials"),
        "n_cells": attrs.get("n_cells"),
        "done": done,
        "counts": counts,
        "best": best,
        "trials": [trial_record(t) for t in trials],
    }


def list_studies(storage_url: str) -> list[str]:
    """Names of the studies in a storage ([] when a SQLite file does not exist yet)."""
    import optuna

    path = _sqlite_path(storage_url)
    if path is not None and not path.is_file():
        return []
    storage = make_storage(storage_url, heartbeat=False)
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


__all__ = ["SweepSpace", "SweepError", "run_sweep", "sweep_status", "list_studies", "default_storage",
           "check_study_name", "make_storage", "trial_record"]
