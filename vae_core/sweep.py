"""Hyperparameter sweeps (grid, random, TPE) on Optuna; every trial is a normal run directory.

Storage is a local SQLite file by default (`sqlite:///<out_root>/sweeps.db`); any database URL
Optuna takes (e.g. postgresql://user:pw@host/db) lets workers on several machines share one
study: start `python -m vae_core sweep --name S --storage URL ...` on each. `n_trials` is the
study's total across workers; a grid never has a cell trained twice (each trial number maps
to one cell, trials past the grid are pruned unrun).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vae_core.config import ModelConfig, Setting, TrainConfig, check_value, configs_with, training_settings

Sampler = Literal["grid", "random", "tpe"]
SAMPLERS = ("grid", "random", "tpe")
OBJECTIVES = ("nll", "mig")
DIRECTIONS = {"nll": "minimize", "mig": "maximize"}
HEARTBEAT_S = 60  # a trial whose worker stops beating for GRACE_S is marked failed by another worker
GRACE_S = 180
MAX_RETRIES = 3  # a trial whose worker died is run again (same cell) up to this many times
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class SweepError(ValueError):
    """A sweep cannot run as asked; the message says why."""


def _shown(name: str) -> str:
    return "β" if name == "beta" else name


@dataclass(frozen=True, slots=True, init=False)
class SweepSpace:
    """What a sweep varies: any model/training setting, by its declared name (vae_core.config).

    `values`: (name, candidate values) pairs, searched by every sampler. `ranges`: (name, lo, hi, log)
    of numeric settings, drawn by random/TPE (a grid needs values). The keywords beta_values, beta_range,
    beta_log, latent_dims, schedules and free_bits are shorthands for the same. A setting left out keeps
    the base config's value.
    """

    values: tuple[tuple[str, tuple[Any, ...]], ...]
    ranges: tuple[tuple[str, float, float, bool], ...]

    def __init__(
        self,
        values: Mapping[str, Sequence[Any]] | Sequence[tuple[str, Sequence[Any]]] = (),
        ranges: Mapping[str, tuple] | Sequence[tuple] = (),
        *,
        beta_values: Sequence[float] = (),
        beta_range: tuple[float, float] | None = None,
        beta_log: bool = True,
        latent_dims: Sequence[int] = (),
        schedules: Sequence[str] = (),
        free_bits: Sequence[float] = (),
    ) -> None:
        vals = list(values.items() if isinstance(values, Mapping) else values)
        rngs = [(k, *v) for k, v in ranges.items()] if isinstance(ranges, Mapping) else [tuple(r) for r in ranges]
        for name, given in (("beta", beta_values), ("latent_dim", latent_dims), ("schedule", schedules),
                            ("free_bits", free_bits)):
            if given:
                vals.append((name, given))
        if beta_range is not None:
            rngs.append(("beta", *beta_range, beta_log))
        known = training_settings()
        seen: set[str] = set()
        out_vals: list[tuple[str, tuple[Any, ...]]] = []
        out_rngs: list[tuple[str, float, float, bool]] = []
        for name, candidates in vals:
            if name in seen:
                raise SweepError(f"{_shown(name)} is given twice (values or a range, not both)")
            seen.add(name)
            s = _setting(known, name)
            candidates = tuple(candidates)
            if not candidates:
                raise SweepError(f"{_shown(name)}: no values to try")
            for v in candidates:
                try:
                    check_value(s, v)
                except ValueError as e:
                    raise SweepError(str(e)) from e
            out_vals.append((name, candidates))
        for r in rngs:
            if len(r) == 3:
                r = (*r, known[r[0]].log if r[0] in known else False)
            name, lo, hi, log = r
            if name in seen:
                raise SweepError(f"give {_shown(name)} values or a {_shown(name)} range, not both")
            seen.add(name)
            s = _setting(known, name)
            if s.kind not in ("int", "float"):
                raise SweepError(f"{_shown(name)} is not a number: give its values, not a range")
            ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lo, hi)) and lo < hi
            try:
                check_value(s, lo)
                check_value(s, hi)
            except ValueError:
                ok = False
            if not ok or (s.kind == "int" and not (float(lo).is_integer() and float(hi).is_integer())):
                raise SweepError(f"{_shown(name)} range must satisfy {s.lo:g} <= lo < hi <= {s.hi:g}"
                                 f"{' (integers)' if s.kind == 'int' else ''}, got {lo}:{hi}")
            if log and lo <= 0:
                raise SweepError(f"a log-scale {_shown(name)} range needs lo > 0")
            out_rngs.append((name, lo, hi, bool(log)))
        object.__setattr__(self, "values", tuple(out_vals))
        object.__setattr__(self, "ranges", tuple(out_rngs))

    # shorthands of the four settings the first sweeps varied
    @property
    def beta_values(self) -> tuple[float, ...]:
        return tuple(dict(self.values).get("beta", ()))

    @property
    def beta_range(self) -> tuple[float, float] | None:
        r = {n: (lo, hi) for n, lo, hi, _ in self.ranges}
        return r.get("beta")

    @property
    def beta_log(self) -> bool:
        return next((log for n, _, _, log in self.ranges if n == "beta"), True)

    @property
    def latent_dims(self) -> tuple[int, ...]:
        return tuple(dict(self.values).get("latent_dim", ()))

    @property
    def schedules(self) -> tuple[str, ...]:
        return tuple(dict(self.values).get("schedule", ()))

    @property
    def free_bits(self) -> tuple[float, ...]:
        return tuple(dict(self.values).get("free_bits", ()))

    @property
    def names(self) -> tuple[str, ...]:
        """The settings this space varies."""
        return tuple(n for n, _ in self.values) + tuple(r[0] for r in self.ranges)

    def empty(self) -> bool:
        return not self.values and not self.ranges

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"values": {name: [..]}, "ranges": {name: [lo, hi, log]}}."""
        return {"values": {n: list(v) for n, v in self.values},
                "ranges": {n: [lo, hi, log] for n, lo, hi, log in self.ranges}}

    def grid(self) -> dict[str, list]:
        """The search space as value lists (GridSampler's input); SweepError if a setting has a range."""
        for name, *_ in self.ranges:
            flag = training_settings()[name].cli_flag
            raise SweepError(f"a grid sweep needs {_shown(name)} values (e.g. {flag} V1,V2), not a range")
        if not self.values:
            raise SweepError("the sweep varies nothing: give values (V1,V2,…) or a range (LO:HI) of a setting, "
                             "e.g. --beta 0.5,1,2")
        return {name: list(vals) for name, vals in self.values}

    def n_cells(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's values for everything this space varies."""
        out: dict[str, Any] = {}
        for name, vals in self.values:
            out[name] = trial.suggest_categorical(name, list(vals))
        known = training_settings()
        for name, lo, hi, log in self.ranges:
            if known[name].kind == "int":
                out[name] = int(trial.suggest_int(name, int(lo), int(hi), log=log))
            else:
                out[name] = float(trial.suggest_float(name, float(lo), float(hi), log=log))
        return out

    def check(self, model: ModelConfig, train: TrainConfig, sampler: str, max_cells: int = 10_000) -> None:
        """SweepError when a combination cannot be trained with these base configs (e.g. Fourier features
        searched with the RNN decoder): every grid cell up to max_cells, else each value on its own."""
        cells: list[dict[str, Any]]
        if sampler == "grid" and self.n_cells() <= max_cells:
            names = [n for n, _ in self.values]
            cells = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in self.values))]
        else:
            cells = [{n: v} for n, vals in self.values for v in vals]
            cells += [{n: x} for n, lo, hi, _ in self.ranges for x in (lo, hi)]
        for cell in cells:
            try:
                configs_with(model, train, cell)
            except ValueError as e:
                shown = ", ".join(f"{k}={v}" for k, v in cell.items())
                raise SweepError(f"the trial {shown} cannot be trained: {e}") from e


def _setting(known: Mapping[str, Setting], name: str) -> Setting:
    if name not in known:
        raise SweepError(f"{name!r} is not a model or training setting")
    return known[name]


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
    if heartbeat:  # a dead worker's trial is failed by the next worker and re-queued with the same parameters
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna >= 4.9
        callback_kw = "heartbeat_stale_trial_callback" if retry is not None else "failed_trial_callback"
        retry = retry or optuna.storages.RetryFailedTrialCallback
        with warnings.catch_warnings():  # marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = retry(MAX_RETRIES)
        kwargs.update(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, **{callback_kw: callback})
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


def _counted_trials(trials: Sequence) -> list:
    """The trials that count towards the study's target: a dead worker's trial that was retried does not."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    return [t for t in trials if t.number not in retried]


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

    from vae_core.corpus import load_corpus

    study_name = check_study_name(study_name)
    objectives = _check_objectives(objectives, sampler, space)
    n_cells = space.n_cells() if sampler == "grid" else None
    n_trials = _trial_budget(n_trials, n_cells)
    base_model_cfg = base_model_cfg or ModelConfig()
    base_train_cfg = base_train_cfg or TrainConfig()
    space.check(base_model_cfg, base_train_cfg, sampler)
    out_root = Path(out_root).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    should_stop = should_stop or (lambda: False)

    corpus = load_corpus(corpus_spec, text_column, seed=base_train_cfg.seed)
    if "mig" in objectives and _factors_for(corpus, corpus.valid) is None:
        raise SweepError(f"corpus {corpus.name!r} has no factors or label columns; drop the 'mig' objective")
    study = _open_study(study_name, storage_url or default_storage(out_root), objectives, sampler, space, seed,
                        {"n_cells": n_cells, "corpus": corpus_spec, "out_root": str(out_root)}, n_trials)
    target = int(study.user_attrs.get("target_trials", n_trials))
    trial_fn = _Trial(study, target, space, base_model_cfg, base_train_cfg, corpus, out_root, objectives, seed,
                      device, should_stop)

    def enough(st: optuna.Study, _trial) -> None:
        if len(_counted_trials(st.get_trials(deepcopy=False))) >= target or should_stop():
            st.stop()

    def report(st: optuna.Study, t) -> None:
        if on_trial is not None:
            on_trial(trial_record(t))

    with warnings.catch_warnings():  # a dead worker's trial: failed, and re-queued as WAITING
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    waiting = any(t.state == optuna.trial.TrialState.WAITING for t in trials)
    if (len(_counted_trials(trials)) < target or waiting) and not should_stop():
        study.optimize(trial_fn, n_trials=target, callbacks=[enough, report], catch=(TrialFailed, ValueError),
                       gc_after_trial=True)
    return study


def _check_objectives(objectives: Sequence[str], sampler: str, space: SweepSpace) -> tuple[str, ...]:
    """The objectives as a tuple, after checking them, the sampler and that a non-grid sweep varies something."""
    objectives = tuple(objectives)
    if not objectives or any(o not in OBJECTIVES for o in objectives) or len(set(objectives)) != len(objectives):
        raise SweepError(f"objectives must be 'nll' or 'nll,mig'; got {','.join(objectives)!r}")
    if objectives[0] != "nll":
        raise SweepError("the first objective must be nll")
    if sampler not in SAMPLERS:
        raise SweepError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if sampler != "grid" and space.empty():
        raise SweepError("the sweep varies nothing: give values (V1,V2,…) or a range (LO:HI) of a setting, "
                         "e.g. --beta 0.1:8")
    return objectives


def _trial_budget(n_trials: int | None, n_cells: int | None) -> int:
    """The study's total trials: as asked (default the grid size, or 10), never more than the grid's cells."""
    if n_trials is None:
        n_trials = n_cells or 10
    if n_trials < 1:
        raise SweepError(f"trials must be at least 1, got {n_trials}")
    return min(n_trials, n_cells) if n_cells is not None else n_trials


def _open_study(study_name: str, storage_url: str, objectives: tuple[str, ...], sampler: str, space: SweepSpace,
                seed: int, attrs: dict[str, Any], n_trials: int):
    """Create or join the study, refusing one made with other objectives or another sampler; record its setup."""
    import optuna

    storage = make_storage(storage_url)
    directions = [DIRECTIONS[o] for o in objectives]
    probe = optuna.create_study(study_name=study_name, storage=storage, directions=directions, load_if_exists=True)
    if [d.name.lower() for d in probe.directions] != directions:
        raise SweepError(f"study {study_name!r} exists with other objectives ({len(probe.directions)} direction(s))")
    old = probe.user_attrs
    if old.get("sampler") not in (None, sampler):
        raise SweepError(f"study {study_name!r} uses the {old['sampler']} sampler, not {sampler}")
    probe.set_user_attr("sampler", sampler)
    probe.set_user_attr("objectives", list(objectives))
    probe.set_user_attr("target_trials", max(int(old.get("target_trials") or 0), n_trials))
    probe.set_user_attr("space", space.to_dict())
    for key, value in attrs.items():
        probe.set_user_attr(key, value)
    n_existing = len(probe.get_trials(deepcopy=False))
    return optuna.load_study(study_name=study_name, storage=storage,
                             sampler=_make_sampler(sampler, space, seed, n_existing))


@dataclass
class _Trial:
    """The objective of one trial: suggest settings, train a run in a training slot, score it on the valid split."""

    study: Any
    target: int
    space: SweepSpace
    base_model_cfg: ModelConfig
    base_train_cfg: TrainConfig
    corpus: Any
    out_root: Path
    objectives: tuple[str, ...]
    seed: int
    device: str
    should_stop: Callable[[], bool]

    def __call__(self, trial) -> float | tuple[float, ...]:
        import optuna

        from vae_core.jobs import wait_for_slot
        from vae_core.train import train

        if self._study_full(trial):  # another worker took the last trial (and, for a grid, the last cell)
            trial.set_user_attr("state", "skipped")
            raise optuna.TrialPruned(f"the study already has {self.target} trials")
        params = self.space.suggest(trial)
        mcfg, tcfg = configs_with(self.base_model_cfg, self.base_train_cfg, params)
        run_dir = _free_run_dir(self.out_root, self.study.study_name, trial.number)
        for key, value in (("run_dir", str(run_dir)), ("beta", tcfg.beta), ("schedule", tcfg.schedule),
                           ("latent_dim", mcfg.latent_dim)):
            trial.set_user_attr(key, value)
        slot = wait_for_slot(run_dir, should_stop=self.should_stop)  # $VAE_MAX_TRAININGS holds for trials too
        if slot is None:
            trial.set_user_attr("state", "stopped")
            self.study.stop()
            raise optuna.TrialPruned("stopped while waiting for a training slot")
        with slot:
            summary = train(run_dir, self.corpus, mcfg, tcfg, should_stop=self.should_stop, device=self.device)
        trial.set_user_attr("state", summary["state"])
        if summary["state"] == "stopped":
            self.study.stop()
            raise optuna.TrialPruned("stopped")
        if summary["state"] != "finished":
            raise TrialFailed(f"training {summary['state']} at step {summary['step']}")
        record = self._score(run_dir, tcfg, summary.get("valid") or {})
        for k, v in record.items():
            trial.set_user_attr(k, v)
        _record_in_summary(run_dir, {"study": self.study.study_name, "trial": trial.number, "params": params,
                                     **record})
        values = [record[o] for o in self.objectives]
        return values[0] if len(values) == 1 else tuple(values)

    def _study_full(self, trial) -> bool:
        trials = self.study.get_trials(deepcopy=False)
        retry = any(t.number == trial.number and "retry_history" in t.system_attrs for t in trials)
        return not retry and len([t for t in _counted_trials(trials) if t.number < trial.number]) >= self.target

    def _score(self, run_dir: Path, tcfg: TrainConfig, val: dict) -> dict[str, float]:
        """The trial's figures: the valid-split ELBO parts (re-measured when training logged none), and MIG."""
        from vae_core.corpus import encode_sentences
        from vae_core.runs import load_run
        from vae_core.train import evaluate_elbo

        if not val:  # training ended without a validation pass: score the saved checkpoint
            run = load_run(run_dir)
            ids, _ = encode_sentences(self.corpus.valid.sentences, run.vocab, tcfg.max_len, tcfg.lowercase)
            val = evaluate_elbo(run.model, ids, device="cpu", seed=tcfg.seed)
        if not val:
            raise TrialFailed("the valid split is empty; nothing to score")
        record = {"nll": float(val["nll_bound"]), "elbo": float(val["elbo"]), "kl": float(val["kl"]),
                  "recon": float(val["recon"]), "active_units": int(val.get("active_units", 0))}
        if "mig" in self.objectives:
            record["mig"] = _mig_of_run(run_dir, self.corpus, seed=self.seed)
        return record


def _record_in_summary(run_dir: Path, sweep: dict[str, Any]) -> None:
    """Add the 'sweep' block (which study and trial made the run, and its figures) to the run's summary.json."""
    from vae_core.runs import read_json, write_json

    try:
        summary = read_json(run_dir / "summary.json")
        summary = summary if isinstance(summary, dict) else {}
    except (OSError, ValueError):
        summary = {}
    summary["sweep"] = sweep
    write_json(run_dir / "summary.json", summary)


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
