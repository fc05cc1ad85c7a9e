"""Latent codes → sentences: greedy, beam search and sampling, batched over many z at once.

Every function runs under `torch.inference_mode()` and only reads the model: it never toggles
train/eval mode or writes to it, so one cached model can serve many threads. The model is
assumed to be in eval mode (as `load_run` leaves it). Shapes: B codes, D latent, V vocabulary,
k beam width, T generated steps (at most `DecodeConfig.max_len`).

Decoding starts from <bos>, never emits <pad> or <bos>, and stops a row at <eos> or after
`max_len` tokens; a row that has finished stops growing while the others go on, and the loop
ends as soon as every row has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vae_core.config import DecodeConfig
from vae_core.model import SentenceVAE
from vae_core.text import BOS_ID, EOS_ID, PAD_ID, Vocab, detokenize

_NEG_INF = float("-inf")
_NEVER = (PAD_ID, BOS_ID)  # ids never emitted


@dataclass
class DecodeResult:
    """Decoded sentences, one per code, in the order of the codes."""

    ids: list[list[int]]  # token ids without <bos>/<eos>/<pad>
    texts: list[str]  # vocab.decode + detokenize
    scores: list[float] | None  # summed model log-probability of the tokens emitted (<eos> included)

    def __len__(self) -> int:
        return len(self.texts)


# ----------------------------------------------------------------------------- helpers


def _check_z(model: SentenceVAE, z: torch.Tensor) -> torch.Tensor:
    """z as (B, D) in the model's dtype and device; a single (D,) code becomes (1, D)."""
    z = torch.as_tensor(z)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if z.dim() != 2 or z.size(1) != model.cfg.latent_dim:
        raise ValueError(f"z must have shape (B, {model.cfg.latent_dim}), got {tuple(z.shape)}")
    param = next(model.parameters())
    return z.to(device=param.device, dtype=param.dtype)


def _mask_never(logits: torch.Tensor) -> torch.Tensor:
    """Logits (..., V) with <pad> and <bos> set to -inf (in place: the tensor is a fresh model output)."""
    logits[..., PAD_ID] = _NEG_INF
    logits[..., BOS_ID] = _NEG_INF
    return logits


def _result(vocab: Vocab, rows: list[list[int]], scores: list[float] | None) -> DecodeResult:
    """Cut each id row at <eos>, drop <pad>/<bos>, and detokenize."""
    ids = []
    for row in rows:
        out = []
        for i in row:
            if i == EOS_ID:
                break
            if i not in _NEVER:
                out.append(i)
        ids.append(out)
    texts = [detokenize(vocab.decode(r)) for r in ids]
    return DecodeResult(ids, texts, scores)


def _empty() -> DecodeResult:
    return DecodeResult([], [], [])


# ----------------------------------------------------------------------------- strategies


def greedy_decode(model: SentenceVAE, z: torch.Tensor, vocab: Vocab, max_len: int = 40) -> DecodeResult:
    """The most likely token at every step, for all B codes z (B, D) at once.

    Each decoder runs its own `greedy` (the non-autoregressive ones decode all positions in batched
    passes); every path gives the step loop's ids and scores.
    """
    z = _check_z(model, z)
    if z.size(0) == 0:
        return _empty()
    with torch.inference_mode():
        ids, score = model.decoder.greedy(z, max_len, forbid=_NEVER)  # (B, T'), (B,)
    return _result(vocab, ids.tolist(), score.tolist())


def beam_decode(
    model: SentenceVAE, z: torch.Tensor, vocab: Vocab, beam_width: int = 4, length_penalty: float = 1.0,
    max_len: int = 40,
) -> DecodeResult:
    """Beam search of width k for all B codes at once (B·k decoder rows), length-normalised.

    Hypotheses are ranked by score / length**length_penalty, length counting the tokens emitted
    (<eos> included). A finished hypothesis stays in its beam as one frozen candidate and competes
    with the extensions of the unfinished ones, so width 1 is exactly greedy decoding. The best
    hypothesis of each code is returned, with its raw summed log-probability as the score.
    """
    z = _check_z(model, z)
    B, k = z.size(0), beam_width
    if k < 1:
        raise ValueError(f"beam_width must be >= 1, got {k}")
    if B == 0:
        return _empty()
    dev = z.device
    with torch.inference_mode():
        state = model.decoder.repeat_state(model.init_state(z), k)  # rows b·k .. b·k+k-1 belong to code b
        zk = z.repeat_interleave(k, dim=0)  # (B·k, D)
        inputs = torch.full((B * k,), BOS_ID, dtype=torch.long, device=dev)
        score = torch.zeros(B, k, dtype=z.dtype, device=dev)
        score[:, 1:] = _NEG_INF  # all beams start identical: only beam 0 is live at first
        score = score.view(-1)  # (B·k,)
        length = torch.zeros(B * k, dtype=z.dtype, device=dev)  # tokens emitted per hypothesis
        finished = torch.zeros(B * k, dtype=torch.bool, device=dev)
        history = torch.empty(B * k, 0, dtype=torch.long, device=dev)  # (B·k, t)
        base = (torch.arange(B, device=dev) * k).unsqueeze(1)  # (B, 1) first row of each code
        for _ in range(max_len):
            logits, state = model.step(inputs, zk, state)  # (B·k, V)
            V = logits.size(1)
            logp = torch.log_softmax(_mask_never(logits), dim=-1)  # (B·k, V)
            # A finished (or dead) hypothesis offers one candidate: itself, extended by <pad> at no cost.
            frozen = finished | torch.isinf(score)
            logp = logp.masked_fill(frozen.unsqueeze(1), _NEG_INF)
            logp[:, PAD_ID] = torch.where(frozen, 0.0, _NEG_INF)
            new_length = length + (~frozen).to(length.dtype)  # (B·k,)
            cand = score.unsqueeze(1) + logp  # (B·k, V) raw scores
            norm = cand / new_length.clamp_min(1.0).pow(length_penalty).unsqueeze(1)
            top = norm.view(B, k * V).topk(k, dim=1).indices  # (B, k)
            parent = (base + top // V).view(-1)  # (B·k,) rows the new beams come from
            token = (top % V).view(-1)  # (B·k,)
            score = cand.view(-1).index_select(0, parent * V + token)
            length = new_length.index_select(0, parent)
            finished = finished.index_select(0, parent) | (token == EOS_ID)
            history = torch.cat([history.index_select(0, parent), token.unsqueeze(1)], dim=1)
            state = model.decoder.select_state(state, parent)
            if bool((finished | torch.isinf(score)).all()):
                break
            inputs = token
        final = (score / length.clamp_min(1.0).pow(length_penalty)).view(B, k)
        best = base.squeeze(1) + final.argmax(dim=1)  # (B,)
        rows = history.index_select(0, best).tolist()
        scores = score.index_select(0, best).tolist()
    return _result(vocab, rows, scores)


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Logits (B, V) with everything outside the top-k and the top-p nucleus set to -inf."""
    V = logits.size(1)
    if 0 < top_k < V:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, _NEG_INF)
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass strictly before each token
        drop_sorted = before >= top_p  # keep the smallest prefix reaching top_p (the first always kept)
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, _NEG_INF)
    return logits


def sample_decode(
    model: SentenceVAE, z: torch.Tensor, vocab: Vocab, temperature: float = 1.0, top_k: int = 0,
    top_p: float = 1.0, max_len: int = 40, seed: int = 0,
) -> DecodeResult:
    """Ancestral sampling for all B codes at once, with temperature, top-k and nucleus (top-p) cuts.

    Uses its own torch.Generator seeded with `seed` (the global RNG is untouched): the same seed
    and batch give the same sentences. The score is the untempered model log-probability.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    z = _check_z(model, z)
    B = z.size(0)
    if B == 0:
        return _empty()
    gen = torch.Generator(device=z.device).manual_seed(int(seed))

    def draw(logits: torch.Tensor) -> torch.Tensor:  # (B, V) → (B,)
        probs = torch.softmax(_filter_logits(logits / temperature, top_k, top_p), dim=-1)
        return torch.multinomial(probs, 1, generator=gen).squeeze(1)

    with torch.inference_mode():
        ids, score = model.decoder.step_loop(z, max_len, draw, forbid=_NEVER)  # (B, T'), (B,)
        rows = ids.tolist()
    return _result(vocab, rows, score.tolist())


# ----------------------------------------------------------------------------- entry points


def decode(model: SentenceVAE, z: torch.Tensor, vocab: Vocab, cfg: DecodeConfig = DecodeConfig()) -> DecodeResult:
    """Sentences for codes z (B, D) (or one code (D,)) with the strategy and options of cfg."""
    if cfg.strategy == "greedy":
        return greedy_decode(model, z, vocab, cfg.max_len)
    if cfg.strategy == "beam":
        return beam_decode(model, z, vocab, cfg.beam_width, cfg.length_penalty, cfg.max_len)
    if cfg.strategy == "sample":
        return sample_decode(model, z, vocab, cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_len, cfg.seed)
    raise ValueError(f"unknown decoding strategy {cfg.strategy!r}")


def reconstruct(
    model: SentenceVAE, vocab: Vocab, sentences: Sequence[str], cfg: DecodeConfig = DecodeConfig(),
    lowercase: bool = False,
) -> tuple[DecodeResult, list[list[str]]]:
    """Decode each sentence's posterior mean; also return each sentence's out-of-vocabulary words."""
    from vae_core.encoding import posterior_means

    mu, _, oov = posterior_means(model, vocab, sentences, lowercase=lowercase)  # (N, D)
    return decode(model, mu, vocab, cfg), oov


__all__ = ["DecodeResult", "decode", "greedy_decode", "beam_decode", "sample_decode", "reconstruct"]
