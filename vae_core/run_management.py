"""The user's runs managed from the app: delete, clean up leftovers, resume, evaluate; a training's time before Start.

Only a run folder directly inside the runs folder is managed: never a shipped model (models/), never a
path outside the runs folder, never through a symbolic link. Launches go through vae_core.jobs, so
resumed trainings and evaluations hold a training slot ($VAE_MAX_TRAININGS) like any training.

`python -m vae_core.run_management evaluate RUN [eval flags]` is the evaluation job: it waits for a slot,
then runs `python -m vae_core eval RUN --json` while it holds the slot.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vae_core import checkpoint as ckpt
from vae_core import jobs
from vae_core.config import NON_AUTOREGRESSIVE, ModelConfig, TrainConfig
from vae_core.run_folders import is_shipped, models_dir
from vae_core.runs import effective_state, read_status, read_summary

ENDED_STATES = ("stopped", "killed", "failed")  # effective states of a run that can be resumed or cleaned up


class ManageError(ValueError):
    """A run cannot be deleted, resumed or evaluated; the message says why and what to do."""


# ----------------------------------------------------------------------------- which runs may be managed


def managed_run(run_dir: str | os.PathLike, runs_root: str | os.PathLike) -> Path:
    """`run_dir` as <runs_root resolved>/<name> if it is a run folder the app may change, else ManageError.

    Refused: a shipped model (or a runs folder that is the models folder), a folder that is not
    directly inside runs_root, a symbolic link, a name a run cannot have, a missing folder.
    """
    root, run = Path(runs_root), Path(run_dir)
    try:
        root_real = root.resolve()
        if root_real == models_dir().resolve() or is_shipped(run):
            raise ManageError(f"{run.name} is a shipped model; the app deletes, resumes and evaluates only runs "
                              f"in the runs folder ({root})")
        if run.is_symlink():
            raise ManageError(f"{run.name} is a symbolic link; the app never follows one (remove it by hand)")
        if run.parent.resolve() != root_real:
            raise ManageError(f"{run} is not a run folder directly inside the runs folder {root}")
        jobs.sanitize_run_name(run.name)
    except ValueError as e:
        raise e if isinstance(e, ManageError) else ManageError(f"{run.name}: {e}") from e
    except OSError as e:
        raise ManageError(f"{run.name} cannot be resolved ({e})") from e
    path = root_real / run.name
    if not path.is_dir() or path.is_symlink():
        raise ManageError(f"no run {run.name} in {root}")
    return path


def has_weights(run_dir: Path) -> bool:
    """Whether the run has model.safetensors (a plain file, not a link): it can be opened and evaluated."""
    p = Path(run_dir) / "model.safetensors"
    return p.is_file() and not p.is_symlink()


def has_checkpoint(run_dir: Path) -> bool:
    """Whether `train --resume` has something to start from: a checkpoint with its manifest, or the old layout."""
    run_dir = Path(run_dir)
    return any((run_dir / d / "manifest.json").is_file() for d in (ckpt.CURRENT, ckpt.PREVIOUS)) or has_weights(
        run_dir)


def run_state(run_dir: Path) -> str:
    """The run's state as the watch panel shows it (jobs.training_progress: 'killed' with an error log is 'failed')."""
    return jobs.training_progress(run_dir)["state"]


def _refuse_busy(run: Path, doing: str) -> None:
    state = effective_state(run)
    if state in jobs.ACTIVE_STATES:
        raise ManageError(f"run {run.name} is {state}; stop it first, then {doing} it")
    if jobs.evaluation_status(run)["state"] in ("queued", "running"):
        raise ManageError(f"run {run.name} is being evaluated; wait until the evaluation ends, then {doing} it")


# ----------------------------------------------------------------------------- delete and clean up


def delete_run(run_dir: str | os.PathLike, runs_root: str | os.PathLike) -> Path:
    """Remove a run folder of the runs folder (and the record of its app evaluation); returns what was removed.

    Refused (ManageError) for a shipped model, a path outside the runs folder, a symbolic link, and a run
    that is running, queued, paused or being evaluated (stop it first). Links inside the run are removed
    as links, never followed (shutil.rmtree on a descriptor-based walk).
    """
    run = managed_run(run_dir, runs_root)
    with jobs._jobs_lock(run.parent):  # noqa: SLF001 - no training starts into this folder meanwhile
        _refuse_busy(run, "delete")
        if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - every Linux and macOS Python has it
            raise ManageError("this platform cannot remove folders without following links; delete by hand")
        shutil.rmtree(run)  # refuses a link itself (checked above too)
        meta = jobs.evaluation_file(run)
        for p in (meta, meta.with_suffix(".log"), meta.with_suffix(".running")):
            if p.is_file() or p.is_symlink():
                p.unlink(missing_ok=True)
    return run


def _leftover_reason(run: Path) -> str | None:
    """Why `run` is a leftover (ended without anything to open or resume), or None when it is not one."""
    state = effective_state(run)
    if state not in ENDED_STATES or has_checkpoint(run):
        return None
    try:
        names = sorted(p.name for p in run.iterdir())
    except OSError:
        names = []
    message = read_status(run).message
    what = "only " + ", ".join(names) if names else "nothing"
    return f"{state}{f' ({message.splitlines()[0][:80]})' if message else ''}: no weights or checkpoint; holds {what}"


def leftover_runs(runs_root: str | os.PathLike) -> list[tuple[Path, str]]:
    """Runs of the runs folder that ended (stopped, cancelled, killed, failed) with no weights and no checkpoint.

    Each with why; nothing is opened but status.json and the folder listing. Links and dot-folders are skipped.
    """
    root = Path(runs_root)
    if not root.is_dir() or root.resolve() == models_dir().resolve():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or p.is_symlink() or not p.is_dir():
            continue
        why = _leftover_reason(p)
        if why is not None:
            out.append((p, why))
    return out


def delete_leftovers(runs_root: str | os.PathLike, names: list[str] | None = None) -> list[str]:
    """Delete the leftover runs (those named in `names`, or all); each is checked again first. Returns the deleted."""
    deleted = []
    for run, _ in leftover_runs(runs_root):
        if names is not None and run.name not in names:
            continue
        if _leftover_reason(run) is None:  # it changed meanwhile (resumed, or a checkpoint appeared)
            continue
        delete_run(run, runs_root)
        deleted.append(run.name)
    return deleted


# ----------------------------------------------------------------------------- resume and evaluate


def resume_run(run_dir: str | os.PathLike, runs_root: str | os.PathLike, device: str = "cpu") -> int | None:
    """Relaunch a stopped, killed or failed run from its last checkpoint (`train --resume`) through the scheduler.

    Returns the pid, or None when it waits as 'queued'. ManageError when the run cannot be resumed.
    """
    run = managed_run(run_dir, runs_root)
    _refuse_busy(run, "resume")
    state = run_state(run)
    if state not in ENDED_STATES:
        raise ManageError(f"run {run.name} is {state}; only a stopped, killed or failed run can be resumed")
    if not (run / "config.json").is_file() or not has_checkpoint(run):
        raise ManageError(f"run {run.name} has no checkpoint to resume from; start a new training instead")
    return jobs.resume_training(run, ["--device", device])


def evaluate_run_job(run_dir: str | os.PathLike, runs_root: str | os.PathLike, args: tuple[str, ...] = ()) -> int:
    """Launch `python -m vae_core eval <run>` as a background job holding a training slot; returns its pid.

    Its figures go to summary.json ('eval'); jobs.evaluation_status says how it went.
    """
    run = managed_run(run_dir, runs_root)
    _refuse_busy(run, "evaluate")
    if not has_weights(run) or not (run / "config.json").is_file():
        raise ManageError(f"run {run.name} has no weights to evaluate yet")
    return jobs.start_evaluation(run, args)


EVAL_FIGURES = (("elbo", "ELBO (nats a sentence)"), ("recon", "Reconstruction (nats)"), ("kl", "KL (nats)"),
                ("ppl_bound", "Perplexity (bound)"), ("nll", "NLL (importance-sampled)"), ("mi", "Mutual information"),
                ("active_units", "Active units"), ("token_accuracy", "Token accuracy"), ("exact_match", "Exact match"))
DISENTANGLEMENT_FIGURES = (("mig", "MIG"), ("dci_disentanglement", "DCI disentanglement"), ("sap", "SAP"),
                           ("modularity", "Modularity"))


def evaluation_figures(run_dir: str | os.PathLike) -> list[tuple[str, float]]:
    """(label, value) of the headline figures of summary.json's 'eval' block (read typed; [] when there is none)."""
    ev = read_summary(Path(run_dir)).evaluation
    if ev is None:
        return []
    out = [(label, float(v)) for key, label in EVAL_FIGURES if (v := getattr(ev, key)) is not None]
    if ev.disentanglement is not None:
        out += [(label, float(v)) for key, label in DISENTANGLEMENT_FIGURES
                if (v := getattr(ev.disentanglement, key)) is not None]
    return out


def _launch_evaluation(argv: list[str]) -> int:
    """The evaluation job: wait for a training slot, mark the job running, run the eval CLI while holding the slot.

    The eval CLI runs as a child that does not inherit the slot's lock (a helper process it leaves behind
    must not keep the slot); SIGTERM ends the wait, or the evaluation. Returns the eval CLI's exit code.
    """
    import subprocess

    run, rest = Path(argv[0]), argv[1:]
    stop: dict = {"flag": False, "child": None}

    def on_term(*_: object) -> None:
        stop["flag"] = True
        if stop["child"] is not None:
            stop["child"].terminate()

    signal.signal(signal.SIGTERM, on_term)
    slot = jobs.wait_for_slot(run, should_stop=lambda: stop["flag"])
    if slot is None:
        return 0
    with slot:
        jobs.evaluation_file(run).with_suffix(".running").write_text(str(time.time()), encoding="utf-8")
        cmd = [sys.executable, "-m", "vae_core", "eval", str(run), "--json", *rest]
        stop["child"] = child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)  # output: this job's log
        if stop["flag"]:
            child.terminate()
        return child.wait()


# ----------------------------------------------------------------------------- how long a training will take

TIMING_BUDGET_S = 0.5  # the app times steps of one configuration for this long (idle CPU: well under 1 s)
MIN_TIMED = 3  # ... but at least this many steps: on a busy CPU single steps vary tenfold, their fastest does not
MAX_TIMED_PARAMETERS = 30_000_000  # larger models are not built in the app: their step cost is scaled instead
LOW, HIGH = 0.85, 1.6  # the range around the estimate (README: "The Train page's runs", how it was calibrated)
OVERHEAD = 1.05  # validation and checkpoints, in proportion to the steps (calibrated on two trainings here)
STEP_OVERHEAD_S = 0.015  # batching, collation and logging, a step, whatever the model (calibrated likewise)
STARTUP_S = 8.0  # the training process's start: imports, the corpus, the vocabulary (measured: 7–11 s here)


@dataclass(frozen=True, slots=True)
class TrainingEstimate:
    """How long a training will take on this machine: steps × a measured step time, with a range."""

    steps: int
    step_s: float  # seconds of the fastest timed optimisation step here (the least contended)
    method: str  # "timed": steps of this model timed in this process; "scaled": from a timed smaller model
    low_s: float
    high_s: float

    @property
    def expected_s(self) -> float:
        return STARTUP_S + self.steps * (self.step_s * OVERHEAD + STEP_OVERHEAD_S)


def rough_parameters(model: ModelConfig) -> int:
    """The parameter count's dominant terms (embeddings, output layer, RNN weights), without building the model."""
    e, h, d, v = model.embed_dim, model.hidden_dim, model.latent_dim, max(1, model.vocab_size)
    enc = 4 * (e + h) * h * model.encoder_layers * (2 if model.bidirectional else 1)
    if model.decoder == "rnn":
        dec = 4 * (e + h + d) * h * model.decoder_layers
    else:
        dec = (d if model.decoder == "additive" else 1) * (h * h * model.decoder_layers + h * 32)
    return v * (2 * e + h) + enc + dec + 4 * h * d


def _shape(model: ModelConfig, train: TrainConfig) -> tuple[ModelConfig, TrainConfig]:
    """The parts of the configs a step's cost depends on (the rest at defaults: one cache entry per shape)."""
    t = TrainConfig(batch_size=train.batch_size, optimizer=train.optimizer, grad_clip=train.grad_clip,
                    tc_weight=train.tc_weight, tc_bank=train.tc_bank, max_len=train.max_len, schedule="constant")
    if model.decoder in NON_AUTOREGRESSIVE:
        model = dataclasses.replace(model, max_positions=train.max_len + 1)
    return model, t


@functools.lru_cache(maxsize=32)
def _timed_step_s(model_config: ModelConfig, train_config: TrainConfig, length: int,
                  threads: int) -> tuple[float, float]:
    """(fastest, median) seconds of an optimisation step of this model on a random batch (batch_size, length),
    with `threads` CPU threads (what a launched training gets: jobs.train_threads)."""
    import torch

    from vae_core.model import SentenceVAE
    from vae_core.objective import PosteriorBank, beta_vae_loss

    gen_state, own_threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        torch.set_num_threads(threads)  # process-wide for these few steps: other sessions share it briefly
        torch.manual_seed(0)
        model = SentenceVAE(model_config)
        params = [p for p in model.parameters() if p.requires_grad]
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        b = train_config.batch_size
        tokens = torch.randint(4, max(5, model_config.vocab_size), (b, length))  # (B, T)
        lengths = torch.full((b,), length, dtype=torch.long)  # (B,)
        bank = (PosteriorBank(train_config.tc_bank, model_config.latent_dim, "cpu")
                if train_config.tc_weight > 0 and train_config.tc_bank > 0 else None)

        def step() -> float:
            """Forward, loss, backward, clipping and an Adam update written out (torch.optim's constructor
            imports torch._dynamo, seconds the app must not spend); SGD is timed as Adam (a little more)."""
            t0 = time.perf_counter()
            out = model(tokens, lengths)
            parts = beta_vae_loss(out.recon_nll, out.mu, out.logvar, out.z, 0, train_config, 1000, 10_000,
                                  bank.get() if bank else None)
            model.zero_grad(set_to_none=True)
            parts.total.backward()
            with torch.no_grad():
                if train_config.grad_clip > 0:
                    norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None))
                    scale = torch.clamp(train_config.grad_clip / (norm + 1e-6), max=1.0)
                for p, (m, v) in zip(params, moments, strict=True):
                    if p.grad is None:
                        continue
                    g = p.grad * scale if train_config.grad_clip > 0 else p.grad
                    m.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    p.addcdiv_(m, v.sqrt().add_(1e-8), value=-train_config.lr)
            return time.perf_counter() - t0

        deadline = time.perf_counter() + TIMING_BUDGET_S
        step()  # the first step allocates: not timed
        times: list[float] = []
        while len(times) < MIN_TIMED or (len(times) < 7 and time.perf_counter() < deadline):
            times.append(step())
        times.sort()
        return times[0], times[len(times) // 2]
    finally:
        torch.set_num_threads(own_threads)
        torch.random.set_rng_state(gen_state)


REFERENCE = ModelConfig(embed_dim=64, hidden_dim=128, latent_dim=8)  # what a too-large model is scaled from


def step_seconds(model_config: ModelConfig, train_config: TrainConfig, length: int) -> tuple[float, float, str]:
    """(fastest, median) seconds of an optimisation step here, and "timed" or "scaled"; cached per config shape.

    Models up to MAX_TIMED_PARAMETERS are built and timed in this process (a warm-up step, then up to
    7 steps while TIMING_BUDGET_S lasts, at least MIN_TIMED); larger ones are scaled from the reference
    model by parameters × batch.
    """
    length = max(1, int(length))
    if rough_parameters(model_config) <= MAX_TIMED_PARAMETERS:
        return (*_timed_step_s(*_shape(model_config, train_config), length, jobs.train_threads()), "timed")
    small_batch = min(train_config.batch_size, 32)
    ref = dataclasses.replace(REFERENCE, vocab_size=model_config.vocab_size)
    ref_t = dataclasses.replace(train_config, batch_size=small_batch)
    fastest, median = _timed_step_s(*_shape(ref, ref_t), length, jobs.train_threads())
    ratio = (rough_parameters(model_config) * train_config.batch_size) / (rough_parameters(ref) * small_batch)
    return fastest * ratio, median * ratio, "scaled"


def estimate_training(model_config: ModelConfig, train_config: TrainConfig, steps: int, vocab_size: int,
                      mean_words: float) -> TrainingEstimate:
    """How long `steps` optimisation steps of these configs take here, for a corpus of this vocabulary and length.

    vocab_size: words in the vocabulary (capped at the config's max_vocab, plus the special tokens);
    mean_words: mean words a sentence (one more, <eos>, is added; capped at max_len). The estimate is
    STARTUP_S + steps × (the fastest timed step × OVERHEAD + STEP_OVERHEAD_S); the range runs from LOW
    times that to HIGH times it, or to the same with the median timed step when the CPU was busy while
    timing (other programs slow a training the same way).
    """
    vocab = min(max(1, int(vocab_size)), train_config.max_vocab) + 4  # <pad> <unk> <bos> <eos>
    length = min(train_config.max_len, max(1, math.ceil(mean_words))) + 1
    model = dataclasses.replace(model_config, vocab_size=vocab)
    fastest, median, method = step_seconds(model, train_config, length)
    estimate = TrainingEstimate(steps, fastest, method, 0.0, 0.0)
    busy = STARTUP_S + steps * (median * OVERHEAD + STEP_OVERHEAD_S)
    return dataclasses.replace(estimate, low_s=estimate.expected_s * LOW,
                               high_s=max(estimate.expected_s * HIGH, busy))


def format_duration(seconds: float) -> str:
    """'45 s', '3 min', '2.5 h': how long, rounded the way a person says it."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def describe_estimate(e: TrainingEstimate) -> str:
    """'About 2 min (584 steps): between … and … on this machine's CPU, …': what the Train page shows before Start."""
    how = ("timed on this model here" if e.method == "timed"
           else "scaled from a smaller model timed here (this one is too large to build in the app)")
    return (f"Estimated training time: about {format_duration(e.expected_s)} ({e.steps:,} steps), between "
            f"{format_duration(e.low_s)} and {format_duration(e.high_s)} on this machine's CPU "
            f"({e.step_s * 1000:,.0f} ms a step, {how}; more while other programs use the CPU).")


def corpus_shape(sentences: list[str], train_config: TrainConfig, limit: int = 5000) -> tuple[int, float]:
    """(distinct words, mean words a sentence) of up to `limit` sentences under the run's tokenisation."""
    from vae_core.text import tokenize

    words: set[str] = set()
    total = n = 0
    for s in sentences[:limit]:
        toks = tokenize(s, train_config.lowercase, train_config.tokenization)
        words.update(toks)
        total += len(toks)
        n += 1
    return len(words), (total / n if n else 1.0)


def main(argv: list[str] | None = None) -> int:
    """`evaluate RUN [eval flags]`: the evaluation job started by jobs.start_evaluation."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] != "evaluate":
        return 2
    return _launch_evaluation(argv[1:])


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ENDED_STATES",
    "ManageError",
    "TrainingEstimate",
    "corpus_shape",
    "delete_leftovers",
    "delete_run",
    "describe_estimate",
    "estimate_training",
    "evaluate_run_job",
    "evaluation_figures",
    "format_duration",
    "has_checkpoint",
    "has_weights",
    "leftover_runs",
    "managed_run",
    "resume_run",
    "rough_parameters",
    "run_state",
    "step_seconds",
]
