"""Command line: python -m vae_core train | eval | generate | interpolate | encode | sweep | data.

The only module of vae_core that prints.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from vae_core.config import DECODERS, SCHEDULES, ModelConfig, TrainConfig


def _add_train_args(p: argparse.ArgumentParser) -> None:
    m, t = ModelConfig(), TrainConfig()
    p.add_argument("--corpus", default="synthetic", help="synthetic | ptb | PATH (file or directory)")
    p.add_argument("--text-column", default=None, help="CSV/JSONL column holding the sentence")
    p.add_argument("--out", required=True, help="run directory to create (or resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--device", default="cpu",
                   help="cpu | cuda | cuda:N | mps | auto (CUDA, else MPS, else CPU); torchrun: cuda = cuda:LOCAL_RANK")
    p.add_argument("--amp", nargs="?", const="auto", default=None, choices=("auto", "bf16", "fp16"),
                   help="mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)")
    p.add_argument("--mmap", choices=("auto", "on", "off"), default="auto",
                   help="stream a .txt corpus from memory-mapped token ids (auto: above "
                        "200,000 lines or 200 MB)")
    # model
    p.add_argument("--embed-dim", type=int, default=m.embed_dim)
    p.add_argument("--hidden-dim", type=int, default=m.hidden_dim)
    p.add_argument("--latent-dim", type=int, default=m.latent_dim)
    p.add_argument("--rnn", dest="rnn_type", choices=("gru", "lstm"), default=m.rnn_type)
    p.add_argument("--encoder-layers", type=int, default=m.encoder_layers)
    p.add_argument("--decoder-layers", type=int, default=m.decoder_layers)
    p.add_argument("--fourier-features", type=int, default=m.fourier_features,
                   help="additive decoder: K Fourier features sin/cos(k·π/3·z_d), k = 1…K, per latent dimension")
    p.add_argument("--unidirectional", action="store_true", help="one-directional encoder")
    p.add_argument("--word-dropout", type=float, default=m.word_dropout)
    p.add_argument("--embed-dropout", type=float, default=m.embed_dropout)
    p.add_argument("--no-z-inputs", action="store_true", help="z only sets the decoder's initial state")
    p.add_argument("--decoder", choices=DECODERS, default=m.decoder,
                   help="rnn: autoregressive; positional: non-autoregressive, each word from z and its position; "
                        "additive: non-autoregressive with word logits a sum of one term per latent dimension")
    # objective and optimisation
    p.add_argument("--beta", type=float, default=t.beta)
    p.add_argument("--schedule", choices=SCHEDULES, default=t.schedule)
    p.add_argument("--warmup-steps", type=int, default=t.warmup_steps)
    p.add_argument("--cycles", type=int, default=t.cycles)
    p.add_argument("--cycle-ratio", type=float, default=t.cycle_ratio)
    p.add_argument("--capacity-max", type=float, default=t.capacity_max)
    p.add_argument("--capacity-steps", type=int, default=t.capacity_steps)
    p.add_argument("--gamma", type=float, default=t.gamma)
    p.add_argument("--free-bits", type=float, default=t.free_bits)
    p.add_argument("--tc-weight", type=float, default=t.tc_weight)
    p.add_argument("--tc-start", type=int, default=t.tc_start, help="step at which the TC penalty starts")
    p.add_argument("--tc-warmup-steps", type=int, default=t.tc_warmup_steps,
                   help="steps for the TC weight to rise linearly after --tc-start (0 = at once)")
    p.add_argument("--tc-bank", type=int, default=t.tc_bank,
                   help="recent posteriors kept to estimate q(z) for the TC term besides the batch (0 = batch only)")
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument("--max-steps", type=int, default=t.max_steps)
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--lr", type=float, default=t.lr)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=t.optimizer)
    p.add_argument("--grad-clip", type=float, default=t.grad_clip)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--max-len", type=int, default=t.max_len)
    p.add_argument("--min-freq", type=int, default=t.min_freq)
    p.add_argument("--max-vocab", type=int, default=t.max_vocab)
    p.add_argument("--lowercase", action="store_true")
    p.add_argument("--eval-every", type=int, default=t.eval_every)
    p.add_argument("--log-every", type=int, default=t.log_every)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def configs_from_args(a: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    mcfg = ModelConfig(
        embed_dim=a.embed_dim, hidden_dim=a.hidden_dim, latent_dim=a.latent_dim, rnn_type=a.rnn_type,
        encoder_layers=a.encoder_layers, decoder_layers=a.decoder_layers, bidirectional=not a.unidirectional,
        word_dropout=a.word_dropout, embed_dropout=a.embed_dropout, z_to_inputs=not a.no_z_inputs,
        decoder=a.decoder, fourier_features=a.fourier_features,
    )
    tcfg = TrainConfig(
        beta=a.beta, schedule=a.schedule, warmup_steps=a.warmup_steps, cycles=a.cycles, cycle_ratio=a.cycle_ratio,
        capacity_max=a.capacity_max, capacity_steps=a.capacity_steps, gamma=a.gamma, free_bits=a.free_bits,
        tc_weight=a.tc_weight, tc_start=a.tc_start, tc_warmup_steps=a.tc_warmup_steps, tc_bank=a.tc_bank,
        epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size, lr=a.lr,
        optimizer=a.optimizer, grad_clip=a.grad_clip, seed=a.seed, max_len=a.max_len, min_freq=a.min_freq,
        max_vocab=a.max_vocab, lowercase=a.lowercase, eval_every=a.eval_every, log_every=a.log_every,
    )
    return mcfg, tcfg


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


def load_train_corpus(spec: str, text_column: str | None, seed: int, mmap: str = "auto"):
    """The corpus to train on: streamed from memory-mapped token ids (`--mmap on`, or auto for big .txt files)."""
    from vae_core.corpus import download_ptb, load_corpus
    from vae_core.tokcache import TokenCorpus, wants_stream

    if mmap == "on" or (mmap == "auto" and wants_stream(spec)):
        if text_column:
            raise ValueError("--text-column applies to .csv/.jsonl corpora; streamed corpora are .txt files")
        if spec == "synthetic":
            raise ValueError("--mmap on needs a .txt corpus (a file or a directory), or ptb; not synthetic")
        if spec == "ptb":
            return TokenCorpus.from_path(download_ptb(), seed=seed, spec="ptb", name="ptb")
        return TokenCorpus.from_path(spec, seed=seed)
    return load_corpus(spec, text_column, seed=seed)


def cmd_train(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vae_core.runs import read_config
    from vae_core.train import Callbacks, resolve_amp, train

    stop = {"flag": False}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    device = resolve_device(a.device)
    resolve_amp(a.amp, device)  # refuse --amp off CUDA before reading any corpus
    quiet = a.quiet or os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 talks
    out = Path(a.out)
    if a.resume:
        cfg, _, saved_tcfg = read_config(out)
        corpus = load_train_corpus(cfg["corpus"]["spec"], a.text_column, saved_tcfg.seed, a.mmap)
        mcfg = tcfg = None
    else:
        mcfg, tcfg = configs_from_args(a)
        corpus = load_train_corpus(a.corpus, a.text_column, tcfg.seed, a.mmap)
    bar = None

    def on_step(rec: dict) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=rec["total_steps"], initial=rec["step"], unit="step", dynamic_ncols=True, file=sys.stderr)
        bar.n = rec["step"]
        bar.set_postfix_str(
            f"ep {rec['epoch']} loss {rec['loss']:.2f} rec {rec['recon']:.2f} kl {rec['kl']:.2f} "
            f"w {rec['weight']:.2f} {rec['tokens_per_s']:,.0f} tok/s eta {rec['eta_s'] / 60:.1f} min"
        )
        bar.refresh()

    def on_eval(rec: dict) -> None:
        if not quiet and rec.get("recon") is not None:
            msg = (f"valid @ step {rec['step']}: recon {rec['recon']:.3f} kl {rec['kl']:.3f} "
                   f"elbo {rec['elbo']:.3f} token_acc {rec['token_acc']:.3f} AU {rec['active_units']}")
            (bar.write if bar else print)(msg)

    summary = train(out, corpus, mcfg, tcfg, resume=a.resume, callbacks=Callbacks(on_step, on_eval),
                    should_stop=lambda: stop["flag"], device=device, overwrite=a.overwrite, amp=a.amp)
    if bar:
        bar.close()
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({k: v for k, v in summary.items() if k != "valid"}, indent=None))
    return 0 if summary["state"] in ("finished", "stopped") else 1


def cmd_eval(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vae_core.evaluate import evaluate_run

    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:  # the importance-sampled NLL takes a while
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="batch", dynamic_ncols=True, file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    try:
        result = evaluate_run(
            a.run, corpus_spec=a.corpus, split=a.split, nll_samples=a.nll_samples, max_sentences=a.max_sentences,
            disentanglement=not a.no_disentanglement, write_summary=not a.no_write, seed=a.seed,
            progress=progress,
        )
    finally:
        for bar in bars.values():
            bar.close()
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            if isinstance(v, (int, float, str)):
                print(f"{k:>28}: {v}")
    return 0


def cmd_data(a: argparse.Namespace) -> int:
    from vae_core.corpus import download_ptb, load_corpus

    if a.action == "download-ptb":
        print(download_ptb())
        return 0
    c = load_corpus(a.corpus)
    print(json.dumps({"name": c.name, "train": len(c.train), "valid": len(c.valid), "test": len(c.test),
                      "labels": list(c.label_columns), "factors": list(c.factors)}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m vae_core", description="β-VAE Text Lab command line")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a sentence β-VAE into a run directory")
    _add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="evaluate a run (ELBO, NLL, PPL, KL, MI, AU, disentanglement)")
    p.add_argument("run")
    p.add_argument("--corpus", default=None, help="defaults to the run's own corpus")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--nll-samples", type=int, default=0, help="importance samples for NLL (500 for reported numbers)")
    p.add_argument("--max-sentences", type=int, default=0, help="evaluate on at most this many (0 = all)")
    p.add_argument("--no-disentanglement", action="store_true")
    p.add_argument("--no-write", action="store_true", help="do not update summary.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("data", help="corpus information, or download PTB")
    p.add_argument("action", choices=("info", "download-ptb"))
    p.add_argument("--corpus", default="synthetic")
    p.set_defaults(func=cmd_data)
    try:
        from vae_core import cli_extra

        cli_extra.register(sub)
    except ImportError:
        pass
    try:
        from vae_core import cli_sweep

        cli_sweep.register(sub)
    except ImportError:
        pass
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        return a.func(a)
    except ValueError as e:  # configuration and data errors: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
