"""CLI subcommands that explore a trained run: generate, interpolate, encode, reconstruct.

`vae_core.cli.build_parser` calls `register(sub)`. Every command loads the run from its directory
alone (`load_run`); bad runs and corpora raise ValueError, which `cli.main` turns into one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vae_core.config import DecodeConfig, declared


def _add_decode_args(p: argparse.ArgumentParser, strategy: bool = True) -> None:
    """The DecodeConfig flags, from its declarations (vae_core.config); without `strategy` only --max-len (greedy)."""
    for s in declared(DecodeConfig):
        if s.name == "seed" or (not strategy and s.name != "max_len"):  # each command has its own --seed
            continue
        p.add_argument("--" + s.name.replace("_", "-"), type={"int": int, "float": float}.get(s.kind),
                       choices=s.choices or None, default=s.default, help=s.help)
    p.add_argument("--json", action="store_true", help="print one JSON value instead of lines")


def _decode_config(a: argparse.Namespace, seed: int = 0) -> DecodeConfig:
    if not hasattr(a, "strategy"):
        return DecodeConfig(strategy="greedy", max_len=a.max_len)
    return DecodeConfig(
        strategy=a.strategy, beam_width=a.beam_width, length_penalty=a.length_penalty, temperature=a.temperature,
        top_k=a.top_k, top_p=a.top_p, max_len=a.max_len, seed=seed,
    )


def _warn_oov(sentences: list[str], oov: list[list[str]]) -> None:
    for s, words in zip(sentences, oov, strict=True):
        if words:
            print(f"warning: unknown words in {s!r} become <unk>: {', '.join(words)}", file=sys.stderr)


def _interpolate(a, b, steps: int, slerp: bool):
    """Path (steps, D) from a (D,) to b (D,), both ends included."""
    from vae_core.latent import interpolate

    return interpolate(a, b, steps, method="slerp" if slerp else "lerp")


# ----------------------------------------------------------------------------- commands


def cmd_generate(a: argparse.Namespace) -> int:
    import torch

    from vae_core.decode import decode
    from vae_core.runs import load_run

    if a.n < 1:
        raise ValueError(f"--n must be >= 1, got {a.n}")
    cfg = _decode_config(a, seed=a.seed)  # validates the options before the run is loaded
    run = load_run(a.run)
    gen = torch.Generator().manual_seed(a.seed)
    z = torch.randn(a.n, run.model_config.latent_dim, generator=gen)  # (n, D) from the prior N(0, I)
    texts = decode(run.model, z, run.vocab, cfg).texts
    print(json.dumps(texts, ensure_ascii=False) if a.json else "\n".join(texts))
    return 0


def cmd_interpolate(a: argparse.Namespace) -> int:
    from vae_core.decode import decode
    from vae_core.encoding import posterior_means
    from vae_core.runs import load_run

    cfg = _decode_config(a)
    run = load_run(a.run)
    sentences = [a.sentence_a, a.sentence_b]
    mu, _, oov = posterior_means(run.model, run.vocab, sentences, lowercase=run.train_config.lowercase)
    _warn_oov(sentences, oov)
    path = _interpolate(mu[0], mu[1], a.steps, a.slerp)  # (steps, D)
    texts = decode(run.model, path, run.vocab, cfg).texts
    print(json.dumps(texts, ensure_ascii=False) if a.json else "\n".join(texts))
    return 0


def cmd_encode(a: argparse.Namespace) -> int:
    import numpy as np

    from vae_core.corpus import read_file
    from vae_core.encoding import posterior_means
    from vae_core.runs import load_run, temp_beside, write_error_message

    run = load_run(a.run)
    data = read_file(a.file, a.text_column)
    t0 = time.perf_counter()
    mu, logvar, oov = posterior_means(
        run.model, run.vocab, list(data.sentences), lowercase=run.train_config.lowercase,
        batch_size=a.batch_size, max_len=run.train_config.max_len,
    )
    seconds = time.perf_counter() - t0
    outputs = [(Path(a.out), mu)] + ([(Path(a.logvar_out), logvar)] if a.logvar_out else [])
    for path, tensor in outputs:
        try:  # atomic: a full disk leaves no truncated .npy behind
            with temp_beside(path) as tmp, open(tmp, "wb") as f:  # np.save on a file object keeps the name
                np.save(f, tensor.numpy())
        except OSError as e:
            raise ValueError(write_error_message(e, path)) from e
    n_oov = sum(1 for words in oov if words)
    print(f"encoded {len(mu)} sentences in {seconds:.2f} s ({len(mu) / max(seconds, 1e-9):,.0f}/s) -> {a.out}"
          + (f"; {n_oov} had unknown words" if n_oov else ""))
    return 0


def cmd_reconstruct(a: argparse.Namespace) -> int:
    from vae_core.decode import reconstruct
    from vae_core.runs import load_run

    cfg = _decode_config(a, seed=a.seed)
    run = load_run(a.run)
    result, oov = reconstruct(run.model, run.vocab, a.sentences, cfg, lowercase=run.train_config.lowercase)
    _warn_oov(a.sentences, oov)
    if a.json:
        rows = [{"input": s, "output": t, "oov": w} for s, t, w in zip(a.sentences, result.texts, oov, strict=True)]
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for s, t in zip(a.sentences, result.texts, strict=True):
            print(f"{s} → {t}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add generate / interpolate / encode / reconstruct to the `python -m vae_core` parser."""
    p = sub.add_parser("generate", help="decode sentences from z ~ N(0, I)")
    p.add_argument("run", help="run directory")
    p.add_argument("--n", type=int, default=10, help="how many sentences")
    p.add_argument("--seed", type=int, default=0, help="seeds z and sampling")
    _add_decode_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("interpolate", help="greedy-decode the path between two sentences' posterior means")
    p.add_argument("run", help="run directory")
    p.add_argument("sentence_a")
    p.add_argument("sentence_b")
    p.add_argument("--steps", type=int, default=8, help="points on the path, both ends included")
    p.add_argument("--slerp", action="store_true", help="spherical instead of straight-line interpolation")
    _add_decode_args(p, strategy=False)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("encode", help="save the posterior means of a corpus file as a .npy array (N, D)")
    p.add_argument("run", help="run directory")
    p.add_argument("file", help="corpus file: .txt (one sentence a line), .csv/.tsv, .jsonl")
    p.add_argument("--out", required=True, help="where to write the means (.npy)")
    p.add_argument("--logvar-out", default=None, help="also write the log-variances here (.npy)")
    p.add_argument("--text-column", default=None, help="CSV/JSONL column holding the sentence")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("reconstruct", help="encode sentences to their posterior means and decode them")
    p.add_argument("run", help="run directory")
    p.add_argument("sentences", nargs="+")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    _add_decode_args(p)
    p.set_defaults(func=cmd_reconstruct)


__all__ = ["register"]
