"""Training loop: callbacks and files only (no printing), checkpoints, resume, NaN guard, stop flag."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae_core import checkpoint as ckpt
from vae_core import distributed as ddp
from vae_core import tracking
from vae_core.config import NON_AUTOREGRESSIVE, ModelConfig, TrainConfig
from vae_core.corpus import Corpus, TextSet, bucket_batches, collate, encode_sentences
from vae_core.model import SentenceVAE, VAEOutput
from vae_core.objective import PosteriorBank, beta_vae_loss, gaussian_kl
from vae_core.runs import (
    RunError,
    append_jsonl,
    read_config,
    read_json_object,
    save_tensors,
    write_json,
    write_new_config,
    write_status,
)
from vae_core.text import Vocab, tokenize
from vae_core.tokcache import BatchPlan, TokenCorpus, TokenStore, split_stores

StepCallback = Callable[[dict], None]


@dataclass
class Callbacks:
    """Hooks a UI attaches to training: each gets the same dict that goes to metrics.jsonl."""

    on_step: StepCallback | None = None
    on_eval: StepCallback | None = None


class TrainingDiverged(RuntimeError):
    """The loss or gradients became NaN/inf; the last good checkpoint (if any was written) is kept."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_vocab(corpus: Corpus | TokenCorpus, tcfg: TrainConfig) -> Vocab:
    """Vocabulary of the training split under the run's tokenisation settings."""
    if isinstance(corpus, TokenCorpus):
        return corpus.build_vocab(tcfg)  # streamed word counts: no sentence list in memory
    return Vocab.build(
        (tokenize(s, tcfg.lowercase, tcfg.tokenization) for s in corpus.train.sentences),
        min_freq=tcfg.min_freq,
        max_size=tcfg.max_vocab,
        tokenization=tcfg.tokenization,
    )


def total_steps_for(n_batches: int, tcfg: TrainConfig) -> int:
    total = n_batches * tcfg.epochs
    return min(total, tcfg.max_steps) if tcfg.max_steps else total


@torch.no_grad()
def evaluate_elbo(
    model: SentenceVAE, data: list[list[int]] | TokenStore, batch_size: int = 128,
    device: str | torch.device = "cpu", seed: int = 0,
) -> dict[str, Any]:
    """Single-sample ELBO parts on encoded sentences, z sampled with a fixed seed; weights untouched.

    Returns per-sentence means (recon, kl, elbo), nll_per_token bound, kl_per_dim (D,), active
    units (Cov_x mu_d > 0.01), and teacher-forced token accuracy at z = mu.
    """
    was_training = model.training
    model.eval()
    n_sent = n_tok = correct = 0
    recon_sum = 0.0
    kl_dim_sum = None
    mus = []
    dev = torch.device(device)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    lengths = data.lengths if isinstance(data, TokenStore) else [len(x) for x in data]
    with torch.random.fork_rng(devices=cuda):  # validation never moves the training noise stream
        torch.manual_seed(seed)
        for idx in bucket_batches(lengths, batch_size, seed=None):
            tokens, lengths = collate([data[i] for i in idx])
            tokens, lengths = tokens.to(device), lengths.to(device)
            mu, logvar = model.encode(tokens, lengths)
            z = model.reparameterize(mu, logvar)
            nll, _ = model.reconstruction_nll(z, tokens, lengths)
            _, c = model.reconstruction_nll(mu, tokens, lengths, count_correct=True)
            kl_bd = gaussian_kl(mu, logvar)  # (B, D)
            kl_dim_sum = kl_bd.sum(0) if kl_dim_sum is None else kl_dim_sum + kl_bd.sum(0)
            recon_sum += float(nll.sum())
            n_sent += len(idx)
            n_tok += int(lengths.sum())
            correct += int(c or 0)
            mus.append(mu.cpu())
    model.train(was_training)
    if n_sent == 0:
        return {}
    kl_per_dim = (kl_dim_sum / n_sent).cpu()
    mu_all = torch.cat(mus)
    var = mu_all.var(0, unbiased=True) if len(mu_all) > 1 else torch.zeros(mu_all.size(1))
    recon = recon_sum / n_sent
    kl = float(kl_per_dim.sum())
    return {
        "recon": recon,
        "kl": kl,
        "elbo": -(recon + kl),
        "nll_bound": recon + kl,
        "nll_per_token_bound": (recon + kl) * n_sent / n_tok,
        "ppl_bound": math.exp(min(50.0, (recon + kl) * n_sent / n_tok)),
        "token_acc": correct / n_tok,
        "kl_per_dim": [round(float(x), 5) for x in kl_per_dim],
        "active_units": int((var > 0.01).sum()),
        "n_sentences": n_sent,
        "n_tokens": n_tok,
    }


def make_optimizer(model: SentenceVAE, tcfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (fused kernel on CPU/CUDA: one pass over all parameters, ~4× faster steps here) or SGD."""
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tcfg.lr)
    device = next(model.parameters()).device.type
    return torch.optim.Adam(model.parameters(), lr=tcfg.lr, fused=device in ("cpu", "cuda"))


def _optimizer_tensors(opt: torch.optim.Optimizer, model: SentenceVAE) -> dict[str, torch.Tensor]:
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for p, st in opt.state.items():
        for k, v in st.items():
            if torch.is_tensor(v):
                out[f"{names[id(p)]}::{k}"] = v if v.dim() else v.reshape(1)
    return out


def _load_optimizer(opt: torch.optim.Optimizer, model: SentenceVAE, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for key, v in tensors.items():
        name, k = key.split("::")
        if name not in params:
            raise RunError(f"optimizer state names unknown parameter {name}")
        p = params[name]
        opt.state[p][k] = v.reshape(()) if k == "step" else v.reshape(p.shape)


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(amp: str | None, device: str | torch.device) -> torch.dtype | None:
    """Autocast dtype for `amp` (None/"off", "auto", "bf16", "fp16"); ValueError on anything but CUDA.

    "auto" picks bf16 where the GPU supports it (no loss scaling needed), else fp16 with a GradScaler.
    """
    if amp in (None, "", "off"):
        return None
    if amp not in ("auto", *AMP_DTYPES):
        raise ValueError(f"amp must be off, auto, bf16 or fp16, got {amp!r}")
    dev = torch.device(device)
    if dev.type != "cuda":
        raise ValueError(
            f"mixed precision (--amp) runs on CUDA only; this run is on {dev.type}. "
            "Drop --amp, or train with --device cuda"
        )
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return AMP_DTYPES[amp]


def _autocast(dtype: torch.dtype | None):
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _loss_figures(parts) -> dict[str, Any]:
    """The logged numbers of one batch's LossParts (per-sentence means)."""
    return {
        "loss": float(parts.total.detach()),
        "recon": float(parts.recon.detach()),
        "kl": float(parts.kl.detach()),
        "weighted_kl": float(parts.weighted_kl.detach()),
        "tc": None if parts.tc is None else float(parts.tc.detach()),
        "kl_per_dim": [float(x) for x in parts.kl_per_dim.detach()],
    }


@dataclass
class _Prepared:
    """What every rank needs before the first step: configs, vocabulary, encoded splits, trainer state."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    vocab: Vocab
    train_data: list[list[int]] | TokenStore
    valid_data: list[list[int]] | TokenStore
    truncated: int
    state: dict
    resumed: ckpt.Checkpoint | None  # the verified checkpoint a resume starts from (None: from step 0)


def _prepare(run_dir: Path, corpus: Corpus | TokenCorpus, model_cfg: ModelConfig | None,
             train_cfg: TrainConfig | None, resume: bool, overwrite: bool, writes: bool) -> _Prepared:
    """Read (resume) or create (new run) the configs and vocabulary, and encode the splits.

    Only a process with `writes` (rank 0, or the single process) checks and writes the directory.
    """
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_elbo": None, "elapsed": 0.0}
    if resume:
        if not (run_dir / "config.json").is_file():
            raise RunError(f"cannot resume: {run_dir} has no config.json")
        _, model_cfg, train_cfg = read_config(run_dir)
        vocab = Vocab.from_json((run_dir / "vocab.json").read_text(encoding="utf-8"))
        if writes:
            ckpt.clean_leftovers(run_dir)
        resumed = ckpt.load_latest(run_dir)
        if resumed is not None:
            state.update(resumed.state, step=resumed.step)
            if writes:
                ckpt.set_aside_damaged(run_dir, resumed)
        if writes:  # what was logged after the checkpoint is trained again: no step appears twice
            ckpt.drop_records_after(run_dir, int(state["step"]))
    else:
        model_cfg = model_cfg or ModelConfig()
        train_cfg = train_cfg or TrainConfig()
        if writes:
            if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
                raise RunError(f"run directory {run_dir} already exists and is not empty")
            run_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("model.safetensors", "best.safetensors", "metrics.jsonl", "summary.json"):
                (run_dir / stale).unlink(missing_ok=True)
            ckpt.remove_all(run_dir)
        resumed = None
        vocab = build_vocab(corpus, train_cfg)
        model_cfg = dataclasses.replace(model_cfg, vocab_size=len(vocab))
        if model_cfg.decoder in NON_AUTOREGRESSIVE:  # one position per word kept, plus <eos>
            model_cfg = dataclasses.replace(model_cfg, max_positions=train_cfg.max_len + 1)
        if writes:
            write_new_config(run_dir, model_cfg, train_cfg, corpus)  # a grammar file is copied into the run
            (run_dir / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    assert model_cfg is not None and train_cfg is not None
    if isinstance(corpus, TokenCorpus):  # memory-mapped ids, tokenised once per source and vocabulary
        splits = split_stores(corpus.token_store(vocab, train_cfg))
        train_data, valid_data, cut_train = splits["train"], splits["valid"], splits["train"].truncated
    else:
        train_data, cut_train = encode_sentences(corpus.train.sentences, vocab, train_cfg.max_len, train_cfg.lowercase)
        valid_data, _ = encode_sentences(corpus.valid.sentences, vocab, train_cfg.max_len, train_cfg.lowercase)
    if not len(train_data):
        raise RunError("the training split is empty")
    return _Prepared(model_cfg, train_cfg, vocab, train_data, valid_data, cut_train, state, resumed)


def train(
    run_dir: str | Path,
    corpus: Corpus | TokenCorpus,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    *,
    resume: bool = False,
    callbacks: Callbacks | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
    amp: str | None = None,
    distributed: bool | None = None,
) -> dict[str, Any]:
    """Train a sentence β-VAE into `run_dir` and return the final record.

    A new run refuses a non-empty directory unless `overwrite`. `resume=True` reads the configs,
    vocabulary and the last complete checkpoint (weights, optimizer, trainer and generator state,
    verified: see `vae_core.checkpoint`) from `run_dir` and continues at the saved step (mid-epoch
    included, in the same batch order and with the same noise). Writes status.json (running →
    finished / stopped / failed), metrics.jsonl, checkpoint/, model and best safetensors, summary.json.

    `corpus` may be a `tokcache.TokenCorpus` (a large .txt corpus streamed from memory-mapped token
    ids). `amp` ("auto", "bf16", "fp16") turns on mixed precision, CUDA only. Under torchrun
    (WORLD_SIZE > 1; `distributed=False` ignores it) the run is data-parallel over the ranks with
    the same global batch, and only rank 0 writes: see `vae_core.distributed`.
    """
    amp_dtype = resolve_amp(amp, device)
    use_ddp = ddp.env_world_size() > 1 if distributed is None else distributed
    ctx, dev = ddp.setup(device) if use_ddp else (ddp.SINGLE, device)
    finished = False
    try:
        prep = ctx.main_first(lambda: _prepare(Path(run_dir), corpus, model_cfg, train_cfg, resume, overwrite,
                                               writes=ctx.is_main))
        with tracking.tracked(Path(run_dir), prep.train_cfg, callbacks or Callbacks(), ctx.is_main) as hooks:
            trainer = _Trainer(Path(run_dir), prep, hooks, should_stop or (lambda: False), torch.device(dev),
                               amp_dtype, ctx)
            summary = trainer.run()
            del trainer  # its DistributedDataParallel wrapper must go before the process group (see ddp.teardown)
        finished = True
        return summary
    finally:
        ddp.teardown(ctx, finished)


class _Trainer:
    """One training session of a run: model, optimizer, data and the named pieces of the loop.

    The loop (`_loop`) reads in one screen; everything it calls is a method here, and every
    data-parallel difference is a method of `ddp.DistContext` (the identity in a single process).
    """

    def __init__(self, run_dir: Path, prep: _Prepared, callbacks: Callbacks, should_stop: Callable[[], bool],
                 device: torch.device, amp_dtype: torch.dtype | None, ctx: ddp.DistContext) -> None:
        self.run_dir, self.callbacks, self.should_stop, self.device, self.ctx = (
            run_dir, callbacks, should_stop, device, ctx)
        self.model_cfg, self.config, self.state = prep.model_cfg, prep.train_cfg, prep.state
        self.train_data, self.valid_data, self.truncated = prep.train_data, prep.valid_data, prep.truncated
        seed_everything(self.config.seed)
        self.model = SentenceVAE(self.model_cfg).to(device)
        self.opt = make_optimizer(self.model, self.config)
        self.last_checkpoint: int | None = None  # step of the newest checkpoint on disk
        if prep.resumed is not None:
            self._restore(prep.resumed)
        self.net = ctx.wrap(self.model, device)
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        self.amp_name = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
        self.store = self.train_data if isinstance(self.train_data, TokenStore) else None
        self.lengths = self.store.lengths if self.store is not None else [len(x) for x in self.train_data]
        n_batches = ddp.usable_batches(len(self.train_data), self.config.batch_size, ctx.world_size)
        self.total_steps = total_steps_for(n_batches, self.config)  # ceil(n / B) batches in one process
        # recent posteriors for the TC estimate (per process; empty again after a resume)
        self.bank = (PosteriorBank(self.config.tc_bank, self.model_cfg.latent_dim, device)
                     if self.config.tc_weight > 0 and self.config.tc_bank > 0 else None)
        self.t_start = self.t_window = time.time()
        self.start_step, self.elapsed0 = int(self.state["step"]), float(self.state["elapsed"])
        self.tokens_window = self.tokens_session = 0
        self.first_record = True
        self.note = prep.resumed.note if prep.resumed is not None else ""

    def _restore(self, ck: ckpt.Checkpoint) -> None:
        """Weights, optimizer state and the noise stream of a checkpoint."""
        self.model.load_state_dict(ck.weights)
        _load_optimizer(self.opt, self.model, ck.optimizer)
        if ck.rng is not None:
            ckpt.restore_rng(ck.rng, self.device)  # the noise the uninterrupted run would have drawn
        else:  # a run of the old layout kept no generator state: fresh but reproducible noise
            torch.manual_seed(self.config.seed + 7919 * ck.step)
        self.last_checkpoint = ck.step

    def run(self) -> dict[str, Any]:
        """The session: status 'running', the loop, then the summary and the final status."""
        self._write_status("running", truncated=self.truncated, n_train=len(self.train_data), message=self.note)
        message = ""
        try:
            final_state, last_val = _loop(self)
        except TrainingDiverged as e:
            kept = (f"kept the last good checkpoint (step {self.last_checkpoint})" if self.last_checkpoint is not None
                    else "no checkpoint had been written yet, so the run has no weights")
            final_state, message, last_val = "failed", f"{e}; {kept}", {}
        except Exception as e:  # noqa: BLE001 - recorded in status.json, then re-raised
            self._write_status("failed", message=f"{type(e).__name__}: {e}")
            raise
        return self._finish(final_state, message, last_val)

    def epoch_batches(self, epoch: int):
        """Global batches of this epoch, the same on every rank (a batch smaller than the world is dropped)."""
        seed = self.config.seed * 1000 + epoch
        if self.store is not None:
            return BatchPlan(self.lengths, self.config.batch_size, seed, min_size=self.ctx.world_size)
        return [bt for bt in bucket_batches(self.lengths, self.config.batch_size, seed=seed) if self.ctx.keep_batch(bt)]

    def _fetch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded tokens (b, T) and lengths (b,) of sentences `idx`, on the device."""
        tokens, lengths = (self.store.collate(idx) if self.store is not None
                           else collate([self.train_data[i] for i in idx]))
        return tokens.to(self.device), lengths.to(self.device)

    def step(self, batch) -> tuple[Any, int]:
        """Forward, loss and one optimisation step on this rank's rows of a global batch: (LossParts, rows)."""
        noise = self.ctx.noise(len(batch), self.model_cfg.latent_dim, self.device)  # (b, D) or None
        rows = self.ctx.shard(batch)
        tokens, lengths = self._fetch(rows)
        with _autocast(self.amp_dtype):
            out = self.net(tokens, lengths, noise=noise)
        if self.amp_dtype is not None:  # the objective in float32
            out = VAEOutput(out.mu.float(), out.logvar.float(), out.z.float(), out.recon_nll.float(), out.n_tokens)
        parts = beta_vae_loss(out.recon_nll, out.mu, out.logvar, out.z, int(self.state["step"]), self.config,
                              self.total_steps, len(self.train_data), self.bank.get() if self.bank else None)
        if self.bank is not None:
            self.bank.add(out.mu, out.logvar)
        if self.ctx.any(self.device, not bool(torch.isfinite(parts.total))):  # every rank fails at the same step
            raise TrainingDiverged(f"loss became {float(parts.total.detach())} at step {self.state['step']}")
        _optimization_step(self.ctx.scale_loss(parts.total, len(rows), len(batch)), self.model, self.opt,
                           self.scaler, self.config.grad_clip, int(self.state["step"]))
        self.tokens_window += out.n_tokens
        self.tokens_session += out.n_tokens
        return parts, len(rows)

    def log(self, parts, local: int, global_: int) -> None:
        """The metrics record of this step (figures reduced over ranks), to metrics.jsonl and on_step."""
        fig = _loss_figures(parts)
        keys = ("loss", "recon", "kl", "weighted_kl", "tc")
        means = self.ctx.global_mean([fig[k] or 0.0 for k in keys] + fig["kl_per_dim"], local, global_, self.device)
        tokens = self.ctx.total(self.tokens_window, self.device)
        now = time.time()
        rate = tokens / max(now - self.t_window, 1e-9)
        self.tokens_window, self.t_window = 0, now
        session = now - self.t_start
        sec_per_step = session / max(1, self.state["step"] - self.start_step)
        m = dict(zip(keys, means, strict=False))
        rec = {
            "kind": "train",
            "step": self.state["step"],
            "epoch": self.state["epoch"],
            "total_steps": self.total_steps,
            "loss": m["loss"],
            "recon": m["recon"],
            "kl": m["kl"],
            "weight": float(parts.weight),
            "weighted_kl": m["weighted_kl"],
            "capacity": parts.capacity,
            "tc": None if fig["tc"] is None else m["tc"],
            "kl_per_dim": [round(x, 5) for x in means[len(keys):]],
            "tokens_per_s": rate,
            "elapsed": self.elapsed0 + session,
            "eta_s": (self.total_steps - self.state["step"]) * sec_per_step,
            "time": now,
        }
        if self.first_record:  # where this session runs, once
            rec.update(device=str(self.device), world_size=self.ctx.world_size, amp=self.amp_name)
            self.first_record = False
        if self.ctx.is_main:
            append_jsonl(self.run_dir / "metrics.jsonl", rec)
            if self.callbacks.on_step:
                self.callbacks.on_step(rec)

    def validate(self) -> dict:
        """Validation ELBO parts on rank 0 (the others go on to the next collective and wait there)."""
        if not self.ctx.is_main:
            return {}
        val = (evaluate_elbo(self.model, self.valid_data, device=self.device, seed=self.config.seed)
               if len(self.valid_data) else {})
        rec = {"kind": "valid", "step": self.state["step"], "epoch": self.state["epoch"], "time": time.time(), **val}
        append_jsonl(self.run_dir / "metrics.jsonl", rec)
        if self.callbacks.on_eval:
            self.callbacks.on_eval(rec)
        return val

    def checkpoint(self, val: dict | None) -> None:
        """best.safetensors if `val` improved, then the atomic checkpoint, then model.safetensors (rank 0 writes)."""
        self.state["elapsed"] = self.elapsed0 + time.time() - self.t_start
        step = int(self.state["step"])
        if step == self.last_checkpoint:  # e.g. eval_every at an epoch's end: these weights are saved already
            return
        self.last_checkpoint = step
        if not self.ctx.is_main:
            return
        weights = self.model.state_dict()
        if val:
            best = self.state["best_elbo"]
            if best is None or val["elbo"] > best:
                self.state["best_elbo"] = val["elbo"]
                save_tensors(self.run_dir / "best.safetensors", weights)
        elif not (self.run_dir / "best.safetensors").is_file():
            save_tensors(self.run_dir / "best.safetensors", weights)
        ckpt.save(self.run_dir, step, weights, _optimizer_tensors(self.opt, self.model),
                  ckpt.rng_state(self.device), self.state)
        save_tensors(self.run_dir / "model.safetensors", weights)  # what load_run opens

    def _write_status(self, state: str, **extra: Any) -> None:
        if self.ctx.is_main:
            write_status(self.run_dir, state, step=int(self.state["step"]), total_steps=self.total_steps,
                         device=str(self.device), world_size=self.ctx.world_size, amp=self.amp_name, **extra)

    def _finish(self, final_state: str, message: str, last_val: dict) -> dict[str, Any]:
        """The returned summary; rank 0 also writes summary.json's 'training' block and the final status."""
        tokens = self.ctx.total(self.tokens_session, self.device)
        summary = {
            "state": final_state,
            "step": self.state["step"],
            "epoch": self.state["epoch"],
            "total_steps": self.total_steps,
            "elapsed_s": self.state["elapsed"],
            "tokens_per_s": tokens / max(time.time() - self.t_start, 1e-9),
            "valid": last_val,
            "truncated_train": self.truncated,
        }
        if self.ctx.is_main:
            old = read_json_object(self.run_dir, "summary.json")
            write_json(self.run_dir / "summary.json", {**old, "training": summary})
            self._write_status(final_state, message=message)
        return summary


def _optimization_step(loss: torch.Tensor, model: SentenceVAE, opt: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler | None, grad_clip: float, step: int) -> None:
    """Backward (scaled under fp16), gradient clipping, optimizer step; TrainingDiverged on a non-finite norm."""
    opt.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if not torch.isfinite(norm) and scaler is None:  # fp16: the scaler skips this step
            raise TrainingDiverged(f"gradient norm became {float(norm)} at step {step}")
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()


def _loop(t: _Trainer) -> tuple[str, dict]:
    """Epochs of steps until total_steps or the last epoch, or a stop request: (final state, last validation).

    Validates and checkpoints every eval_every steps and at each epoch's end, resumes mid-epoch at
    batch_in_epoch, and leaves a final checkpoint. A divergence raises TrainingDiverged (no checkpoint).
    """
    state, config = t.state, t.config
    last_val: dict = {}
    while state["step"] < t.total_steps and state["epoch"] < config.epochs:
        order = t.epoch_batches(int(state["epoch"]))
        for b in range(int(state["batch_in_epoch"]), len(order)):
            if state["step"] >= t.total_steps:
                break
            if t.ctx.any(t.device, bool(t.should_stop())):  # every rank stops at the same step
                t.checkpoint(last_val or None)
                return "stopped", last_val
            parts, rows = t.step(order[b])
            state["step"] += 1
            state["batch_in_epoch"] = b + 1
            if state["step"] % config.log_every == 0 or state["step"] == t.total_steps:
                t.log(parts, rows, len(order[b]))
            if config.eval_every and state["step"] % config.eval_every == 0:
                last_val = t.validate()
                t.checkpoint(last_val)
        if state["batch_in_epoch"] >= len(order):
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            last_val = t.validate()
            t.checkpoint(last_val)
    if state["batch_in_epoch"] != 0:  # stopped by max_steps mid-epoch
        last_val = t.validate()
    t.checkpoint(last_val or None)
    return "finished", last_val


__all__ = ["train", "Callbacks", "evaluate_elbo", "TrainingDiverged", "build_vocab", "TextSet", "make_optimizer"]
