"""Training loop: callbacks and files only (no printing), checkpoints, resume, NaN guard, stop flag."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae_core import distributed as ddp
from vae_core.config import NON_AUTOREGRESSIVE, ModelConfig, TrainConfig
from vae_core.corpus import Corpus, TextSet, bucket_batches, collate, encode_sentences
from vae_core.model import SentenceVAE, VAEOutput
from vae_core.objective import PosteriorBank, beta_vae_loss, gaussian_kl
from vae_core.runs import (
    RunError,
    append_jsonl,
    make_config,
    read_config,
    read_json,
    save_tensors,
    write_json,
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
    """The loss or gradients became NaN/inf; the last good checkpoint is kept."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_vocab(corpus: Corpus | TokenCorpus, tcfg: TrainConfig) -> Vocab:
    """Vocabulary of the training split under the run's tokenisation settings."""
    if isinstance(corpus, TokenCorpus):
        return corpus.build_vocab(tcfg)  # streamed word counts: no sentence list in memory
    return Vocab.build(
        (tokenize(s, tcfg.lowercase) for s in corpus.train.sentences),
        min_freq=tcfg.min_freq,
        max_size=tcfg.max_vocab,
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


_optimizer = make_optimizer


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
        ref = p if k != "step" else None
        opt.state[p][k] = v.reshape(()) if ref is None else v.reshape(p.shape)


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


def _reduce_figures(fig: dict, local: int, global_: int, tokens: int, device: torch.device) -> tuple[dict, int]:
    """Global-batch means of per-rank figures (each weighted by its sentences) and tokens summed over ranks."""
    keys = ("loss", "recon", "kl", "weighted_kl", "tc")
    vals = [local * (fig[k] or 0.0) for k in keys] + [local * x for x in fig["kl_per_dim"]] + [float(tokens)]
    summed = ddp.sum_over_ranks(vals, device)
    out = {k: summed[i] / global_ for i, k in enumerate(keys)}
    out["tc"] = None if fig["tc"] is None else out["tc"]
    out["kl_per_dim"] = [x / global_ for x in summed[len(keys):-1]]
    return out, int(round(summed[-1]))


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
        if (run_dir / "trainer.json").is_file():
            state.update(read_json(run_dir / "trainer.json"))
    else:
        model_cfg = model_cfg or ModelConfig()
        train_cfg = train_cfg or TrainConfig()
        if writes:
            if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
                raise RunError(f"run directory {run_dir} already exists and is not empty")
            run_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("model.safetensors", "best.safetensors", "optimizer.safetensors", "trainer.json",
                          "metrics.jsonl", "summary.json"):
                (run_dir / stale).unlink(missing_ok=True)
        vocab = build_vocab(corpus, train_cfg)
        model_cfg = dataclasses.replace(model_cfg, vocab_size=len(vocab))
        if model_cfg.decoder in NON_AUTOREGRESSIVE:  # one position per word kept, plus <eos>
            model_cfg = dataclasses.replace(model_cfg, max_positions=train_cfg.max_len + 1)
        if writes:
            write_json(run_dir / "config.json",
                       make_config(model_cfg, train_cfg, corpus.spec, corpus.name, corpus.factors))
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
    return _Prepared(model_cfg, train_cfg, vocab, train_data, valid_data, cut_train, state)


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
    vocabulary, last weights and optimizer state from `run_dir` and continues at the saved step
    (mid-epoch included, in the same batch order). Writes status.json (running → finished /
    stopped / failed), metrics.jsonl, model/best/optimizer safetensors, summary.json.

    `corpus` may be a `tokcache.TokenCorpus` (a large .txt corpus streamed from memory-mapped token
    ids). `amp` ("auto", "bf16", "fp16") turns on mixed precision, CUDA only. Under torchrun
    (WORLD_SIZE > 1; `distributed=False` ignores it) the run is data-parallel over the ranks with
    the same global batch, and only rank 0 writes: see `vae_core.distributed`.
    """
    amp_dtype = resolve_amp(amp, device)
    use_ddp = ddp.env_world_size() > 1 if distributed is None else distributed
    ctx, dev = ddp.setup(device) if use_ddp else (ddp.SINGLE, device)
    try:
        return _train(Path(run_dir), corpus, model_cfg, train_cfg, resume, callbacks or Callbacks(),
                      should_stop or (lambda: False), dev, overwrite, amp_dtype, ctx)
    finally:
        ddp.teardown(ctx)


def _train(
    run_dir: Path,
    corpus: Corpus | TokenCorpus,
    model_cfg: ModelConfig | None,
    train_cfg: TrainConfig | None,
    resume: bool,
    callbacks: Callbacks,
    should_stop: Callable[[], bool],
    device: str | torch.device,
    overwrite: bool,
    amp_dtype: torch.dtype | None,
    ctx: ddp.DistContext,
) -> dict[str, Any]:
    main = ctx.is_main
    if ctx.active and not main:
        ddp.share_error(ctx, None)  # wait until rank 0 has set the run up (and built any token cache)
    try:
        prep = _prepare(run_dir, corpus, model_cfg, train_cfg, resume, overwrite, writes=main)
    except Exception as e:
        if ctx.active and main:
            ddp.share_error(ctx, e)
        raise
    if ctx.active and main:
        ddp.share_error(ctx, None)
    model_cfg, train_cfg, state = prep.model_cfg, prep.train_cfg, prep.state
    train_data, valid_ids, cut_train = prep.train_data, prep.valid_data, prep.truncated

    seed_everything(train_cfg.seed)
    model = SentenceVAE(model_cfg).to(device)
    opt = _optimizer(model, train_cfg)
    if resume and (run_dir / "model.safetensors").is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
        if (run_dir / "optimizer.safetensors").is_file():
            _load_optimizer(opt, model, load_file(str(run_dir / "optimizer.safetensors")))
        torch.manual_seed(train_cfg.seed + 7919 * int(state["step"]))  # fresh but reproducible noise
    net = ddp.wrap_ddp(model, ctx, device) if ctx.active else model
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    amp_name = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]

    store = train_data if isinstance(train_data, TokenStore) else None
    n_train = len(train_data)
    lengths = store.lengths if store is not None else [len(x) for x in train_data]
    n_batches = ddp.usable_batches(n_train, train_cfg.batch_size, ctx.world_size)  # ceil(n / B) in one process
    total_steps = total_steps_for(n_batches, train_cfg)
    if main:
        write_status(run_dir, "running", total_steps=total_steps, step=int(state["step"]),
                     truncated=cut_train, n_train=n_train, device=str(device), world_size=ctx.world_size, amp=amp_name)

    def epoch_batches(epoch: int):
        """Global batches of this epoch, the same on every rank (a batch smaller than the world is dropped)."""
        seed = train_cfg.seed * 1000 + epoch
        if store is not None:
            return BatchPlan(lengths, train_cfg.batch_size, seed, min_size=ctx.world_size)
        order = bucket_batches(lengths, train_cfg.batch_size, seed=seed)
        return [bt for bt in order if len(bt) >= ctx.world_size] if ctx.active else order

    def fetch(idx) -> tuple[torch.Tensor, torch.Tensor]:
        return store.collate(idx) if store is not None else collate([train_data[i] for i in idx])

    def checkpoint(val: dict | None) -> None:
        if not main:
            return
        weights = model.state_dict()
        save_tensors(run_dir / "model.safetensors", weights)
        if val:
            if state["best_elbo"] is None or val["elbo"] > state["best_elbo"]:
                state["best_elbo"] = val["elbo"]
                save_tensors(run_dir / "best.safetensors", weights)
        elif not (run_dir / "best.safetensors").is_file():
            save_tensors(run_dir / "best.safetensors", weights)
        opt_t = _optimizer_tensors(opt, model)
        if opt_t:
            save_tensors(run_dir / "optimizer.safetensors", opt_t)
        write_json(run_dir / "trainer.json", state)

    def validate() -> dict:
        if not main:  # rank 0 validates; the others go on to the next collective and wait there
            return {}
        val = evaluate_elbo(model, valid_ids, device=device, seed=train_cfg.seed) if len(valid_ids) else {}
        rec = {"kind": "valid", "step": state["step"], "epoch": state["epoch"], "time": time.time(), **val}
        append_jsonl(run_dir / "metrics.jsonl", rec)
        if callbacks.on_eval:
            callbacks.on_eval(rec)
        return val

    # recent posteriors for the TC estimate (per process; empty again after a resume)
    bank = (PosteriorBank(train_cfg.tc_bank, model_cfg.latent_dim, device)
            if train_cfg.tc_weight > 0 and train_cfg.tc_bank > 0 else None)
    net.train()
    t_start = time.time()
    start_step = int(state["step"])
    elapsed0 = float(state["elapsed"])
    tokens_window, t_window = 0, time.time()
    tokens_session = 0
    first_record = True
    final_state = "finished"
    message = ""
    last_val: dict = {}
    try:
        while state["step"] < total_steps and state["epoch"] < train_cfg.epochs:
            order = epoch_batches(int(state["epoch"]))
            for b in range(int(state["batch_in_epoch"]), len(order)):
                if state["step"] >= total_steps:
                    break
                stop_now = should_stop()
                if stop_now and not ctx.active:
                    final_state = "stopped"
                    break
                batch = order[b]
                if ctx.active:  # this rank's rows of the global batch, and their rows of the global noise
                    lo, hi = ddp.shard_bounds(len(batch), ctx)
                    eps = torch.randn(len(batch), model_cfg.latent_dim, device=device)[lo:hi]  # (b, D)
                    tokens, lens = fetch(batch[lo:hi])
                else:
                    tokens, lens = fetch(batch)
                tokens, lens = tokens.to(device), lens.to(device)
                with _autocast(amp_dtype):
                    out = VAEOutput(*net(tokens, lens, eps), int(lens.sum())) if ctx.active else net(tokens, lens)
                if amp_dtype is not None:  # the objective in float32
                    out = VAEOutput(out.mu.float(), out.logvar.float(), out.z.float(), out.recon_nll.float(),
                                    out.n_tokens)
                parts = beta_vae_loss(out.recon_nll, out.mu, out.logvar, out.z, int(state["step"]),
                                      train_cfg, total_steps, n_train, bank.get() if bank is not None else None)
                if bank is not None:
                    bank.add(out.mu, out.logvar)
                diverged = not torch.isfinite(parts.total)
                if ctx.active:  # every rank stops or fails at the same step
                    stop_now, diverged = ddp.any_rank(ctx, device, stop_now, diverged)
                    if stop_now:
                        final_state = "stopped"
                        break
                if diverged:
                    raise TrainingDiverged(f"loss became {float(parts.total.detach())} at step {state['step']}")
                loss = parts.total * ddp.loss_scale(hi - lo, len(batch), ctx) if ctx.active else parts.total
                opt.zero_grad(set_to_none=True)
                (scaler.scale(loss) if scaler is not None else loss).backward()
                if train_cfg.grad_clip > 0:
                    if scaler is not None:
                        scaler.unscale_(opt)
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
                    if not torch.isfinite(norm) and scaler is None:  # fp16: the scaler skips this step
                        raise TrainingDiverged(f"gradient norm became {float(norm)} at step {state['step']}")
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                state["step"] += 1
                state["batch_in_epoch"] = b + 1
                tokens_window += out.n_tokens
                tokens_session += out.n_tokens
                if state["step"] % train_cfg.log_every == 0 or state["step"] == total_steps:
                    fig = _loss_figures(parts)
                    if ctx.active:
                        fig, tokens_window = _reduce_figures(fig, hi - lo, len(batch), tokens_window, device)
                    now = time.time()
                    rate = tokens_window / max(now - t_window, 1e-9)
                    tokens_window, t_window = 0, now
                    session_elapsed = now - t_start
                    steps_left = total_steps - state["step"]
                    sec_per_step = session_elapsed / max(1, state["step"] - start_step)
                    rec = {
                        "kind": "train",
                        "step": state["step"],
                        "epoch": state["epoch"],
                        "total_steps": total_steps,
                        "loss": fig["loss"],
                        "recon": fig["recon"],
                        "kl": fig["kl"],
                        "weight": float(parts.weight),
                        "weighted_kl": fig["weighted_kl"],
                        "capacity": parts.capacity,
                        "tc": fig["tc"],
                        "kl_per_dim": [round(x, 5) for x in fig["kl_per_dim"]],
                        "tokens_per_s": rate,
                        "elapsed": elapsed0 + session_elapsed,
                        "eta_s": steps_left * sec_per_step,
                        "time": now,
                    }
                    if first_record:  # where this session runs, once
                        rec.update(device=str(device), world_size=ctx.world_size, amp=amp_name)
                        first_record = False
                    if main:
                        append_jsonl(run_dir / "metrics.jsonl", rec)
                        if callbacks.on_step:
                            callbacks.on_step(rec)
                if train_cfg.eval_every and state["step"] % train_cfg.eval_every == 0:
                    last_val = validate()
                    state["elapsed"] = elapsed0 + time.time() - t_start
                    checkpoint(last_val)
            if final_state == "stopped":
                break
            if state["batch_in_epoch"] >= len(order):
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                last_val = validate()
                state["elapsed"] = elapsed0 + time.time() - t_start
                checkpoint(last_val)
        if final_state == "finished" and state["batch_in_epoch"] != 0:  # stopped by max_steps mid-epoch
            last_val = validate()
        state["elapsed"] = elapsed0 + time.time() - t_start
        checkpoint(last_val or None)
    except TrainingDiverged as e:
        final_state, message = "failed", f"{e}; kept the last good checkpoint"
    except Exception as e:  # noqa: BLE001 - recorded in status.json, then re-raised
        if main:
            write_status(run_dir, "failed", message=f"{type(e).__name__}: {e}", step=state["step"])
        raise
    if ctx.active:
        tokens_session = int(ddp.sum_over_ranks([float(tokens_session)], device)[0])
    summary = {
        "state": final_state,
        "step": state["step"],
        "epoch": state["epoch"],
        "total_steps": total_steps,
        "elapsed_s": state["elapsed"],
        "tokens_per_s": tokens_session / max(time.time() - t_start, 1e-9),
        "valid": last_val,
        "truncated_train": cut_train,
    }
    if not main:
        return summary
    old = {}
    if (run_dir / "summary.json").is_file():
        try:
            old = read_json(run_dir / "summary.json")
        except RunError:
            old = {}
    old.update({"training": summary})
    write_json(run_dir / "summary.json", old)
    write_status(run_dir, final_state, step=state["step"], total_steps=total_steps, message=message,
                 device=str(device), world_size=ctx.world_size, amp=amp_name)
    return summary


def corpus_from_run(run_dir: Path) -> Corpus:
    """The corpus a run was trained on, from its config (synthetic, ptb, or a path)."""
    from vae_core.corpus import load_corpus

    cfg = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    return load_corpus(cfg.get("corpus", {}).get("spec", "synthetic"))


__all__ = ["train", "Callbacks", "evaluate_elbo", "TrainingDiverged", "build_vocab", "TextSet"]
