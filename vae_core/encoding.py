"""Sentences → posterior parameters q(z|x), fast and in input order (length-sorted packed batches)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vae_core.corpus import collate
from vae_core.model import SentenceVAE
from vae_core.text import Vocab


def sentence_ids(
    vocab: Vocab, sentences: Sequence[str], lowercase: bool = False, max_len: int | None = None
) -> tuple[list[list[int]], list[list[str]]]:
    """Token ids of each sentence, as `corpus.encode_sentences` gives them (<eos> appended, cut to max_len words,
    None = all), and the words of each that the vocabulary does not know (they are <unk> in the ids)."""
    tokens = [vocab.tokens(s, lowercase, max_len)[0] for s in sentences]  # tokenised once for both
    return [vocab.encode(t) for t in tokens], [vocab.oov(t) for t in tokens]


def posterior_params(
    model: SentenceVAE, ids: Sequence[Sequence[int]], batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """mu, logvar (N, D) each, for token-id lists (each ending with <eos>), in the order given.

    Batches are cut from the sentences sorted by length, so each packed batch has little padding.
    Runs under inference_mode and never changes the model's mode or weights.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    param = next(model.parameters())
    n, d = len(ids), model.cfg.latent_dim
    mu = torch.empty(n, d, dtype=param.dtype)  # (N, D), filled batch by batch in input order
    logvar = torch.empty(n, d, dtype=param.dtype)
    if n == 0:
        return mu, logvar
    order = sorted(range(n), key=lambda i: len(ids[i]))
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            tokens, lengths = collate([ids[i] for i in idx])  # (b, T), (b,)
            m, lv = model.encode(tokens.to(param.device), lengths)  # (b, D) each
            where = torch.tensor(idx, dtype=torch.long)
            mu[where] = m.cpu()
            logvar[where] = lv.cpu()
    return mu, logvar


def posterior_means(
    model: SentenceVAE,
    vocab: Vocab,
    sentences: Sequence[str],
    lowercase: bool = False,
    batch_size: int = 256,
    max_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Posterior means and log-variances (N, D) of sentences, in input order, with each one's OOV words.

    `lowercase` should be the run's TrainConfig.lowercase (the tokenisation the vocabulary was built
    with). Empty or whitespace-only sentences are encoded as just <eos>. Tensors are on the CPU.
    """
    ids, oov = sentence_ids(vocab, sentences, lowercase, max_len)
    mu, logvar = posterior_params(model, ids, batch_size)
    return mu, logvar, oov


__all__ = ["posterior_means", "posterior_params", "sentence_ids"]
