"""Model-quality metrics: importance-sampled NLL and PPL, KL per dimension, active units, I(x;z),
reconstruction accuracy and BLEU. Pure functions of a model and token batches; nothing prints.

Shapes: B batch, T time (tokens incl. <eos>), D latent, K importance samples, N sentences.
Randomness comes only from an optional `torch.Generator`; `evaluate_model` seeds its own and runs
inside `torch.random.fork_rng`, so the global RNG state is never changed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from vae_core.corpus import bucket_batches, collate, encode_sentences
from vae_core.model import SentenceVAE, additive_width
from vae_core.objective import LOG_2PI, gaussian_kl, gaussian_log_density
from vae_core.text import BOS_ID, EOS_ID, PAD_ID

AU_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x E_q[z_d] > 0.01
BLEU_EPSILON = 0.1  # smoothing method 1 (Chen & Cherry 2014; NLTK's default epsilon)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Evaluation mode (no dropout, no word dropout) and no autograd; the old mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _randn(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


# ----------------------------------------------------------------------------- likelihood


NLL_MEMORY_MB = 256.0  # default bound on the decoder outputs one IS-NLL chunk holds: k = 500 fits a laptop
PPL_RULE = ("exp(total NLL / n_tokens); n_tokens counts each word token as the run's tokenization cuts the text, "
            "plus one <eos> per sentence (the PTB convention of Mikolov et al. 2010 and Li et al. 2019)")


def perplexity(total_nll: float, n_tokens: int) -> float:
    """exp(total NLL in nats / number of tokens counted); the caller states what the count includes (PPL_RULE)."""
    if n_tokens <= 0:
        raise ValueError(f"perplexity needs a positive token count, got {n_tokens}")
    return math.exp(min(700.0, total_nll / n_tokens))


def ppl_count_text(figures: dict[str, Any]) -> str:
    """What a PPL in `evaluate_model`'s figures is counted over, in words: "82,430 tokens = 78,669 words
    (whitespace tokenization) + 3,761 <eos>"."""
    n_tokens, n_words = figures.get("n_tokens"), figures.get("n_words")
    if not isinstance(n_tokens, int) or not isinstance(n_words, int):
        return "unknown (figures from before token counts were recorded)"
    return (f"{n_tokens:,} tokens = {n_words:,} words ({figures.get('tokenization', 'lab')} tokenization) "
            f"+ {n_tokens - n_words:,} <eos>")


def decoded_token_bytes(model: SentenceVAE) -> int:
    """Bytes one decoded token (of one z sample) holds at once in `reconstruction_nll`: its logits and their
    log-softmax (2·V), the decoder's input and states (embedding, z, hidden per layer; the additive decoder's
    per-dimension features, D·W before and after the activation), in the model's dtype."""
    cfg = model.cfg
    elem = next(model.parameters()).element_size()
    values = 2 * cfg.vocab_size + cfg.embed_dim + cfg.latent_dim + 4 * cfg.hidden_dim * cfg.decoder_layers
    if cfg.decoder == "additive":
        values += 2 * cfg.latent_dim * additive_width(cfg.hidden_dim)
    return elem * values


def samples_per_chunk(model: SentenceVAE, n_tokens: int, k: int, memory_mb: float = NLL_MEMORY_MB) -> int:
    """How many of the k importance samples of a batch with `n_tokens` real tokens (<eos> included) to decode at
    once so that chunk × n_tokens × `decoded_token_bytes` stays within `memory_mb` (at least 1, at most k)."""
    per_sample = max(1, n_tokens) * decoded_token_bytes(model)
    return max(1, min(k, int(memory_mb * 2**20 // per_sample)))


def importance_sampled_nll(
    model: SentenceVAE,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    k: int = 500,
    chunk: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    memory_mb: float = NLL_MEMORY_MB,
) -> torch.Tensor:
    """−log p(x) per sentence by importance sampling with q(z|x) as proposal (Burda et al. 2016).

    log p(x) ≈ logsumexp_i [log p(x|z_i) + log p(z_i) − log q(z_i|x)] − log k,  z_i ~ q(z|x).
    tokens (B, T), lengths (B,) → (B,) positive NLL in nats (token NLL summed, <eos> included).
    `noise` (k, B, D) is the reparameterisation noise (z_i = mu + noise_i·sigma); else it is drawn from
    `generator` at once, so the result does not depend on the chunking. Samples are decoded `chunk` at a time
    (None: as many as fit `memory_mb`, see `samples_per_chunk`), the log-weights accumulated by logsumexp
    across chunks. k=1 is an unbiased estimate of −ELBO; the estimate decreases towards −log p(x) as k grows.
    """
    if k < 1 or (chunk is not None and chunk < 1):
        raise ValueError(f"k and chunk must be >= 1, got k={k}, chunk={chunk}")
    with eval_mode(model):
        mu, logvar = model.encode(tokens, lengths)  # (B, D)
        B, D = mu.shape
        if noise is None:
            noise = _randn((k, B, D), mu, generator)
        elif tuple(noise.shape) != (k, B, D):
            raise ValueError(f"noise must have shape {(k, B, D)}, got {tuple(noise.shape)}")
        if chunk is None:
            chunk = samples_per_chunk(model, int(lengths.sum()), k, memory_mb)
        std = torch.exp(0.5 * logvar)
        log_sum: torch.Tensor | None = None  # (B,): logsumexp of the log-weights so far
        for start in range(0, k, chunk):
            eps = noise[start:start + chunk].to(mu)  # (c, B, D)
            c = eps.size(0)
            z = mu + eps * std  # (c, B, D)
            nll, _ = model.reconstruction_nll(
                z.reshape(c * B, D), tokens.repeat(c, 1), lengths.repeat(c)
            )  # (c*B,): row s*B + b is sample s of sentence b
            log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)  # (c, B)
            log_qz_x = gaussian_log_density(z, mu, logvar).sum(-1)  # (c, B)
            part = torch.logsumexp(-nll.view(c, B) + log_pz - log_qz_x, dim=0)  # (B,)
            log_sum = part if log_sum is None else torch.logaddexp(log_sum, part)
        log_px = log_sum - math.log(k)  # (B,)
    return -log_px


# ----------------------------------------------------------------------------- latent usage


def mutual_information_from_posteriors(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 1024
) -> float:
    """I(x;z) under the aggregate posterior of these N posteriors (He et al. 2019, `calc_mi`).

    mu, logvar: (N, D). E_x E_q(z|x)[log q(z|x)] (closed form: the negative entropy) minus
    E_x E_q(z|x)[log q(z)], one z per x, with q(z) ≈ (1/N) Σ_j q(z|x_j). Because q(z) is the
    mixture of these N posteriors only, the estimate is at most ~log N: pass many sentences at
    once (or average over large batches). Rows are processed `chunk` at a time against all N.
    """
    N, D = mu.shape
    if N == 0:
        return float("nan")
    neg_entropy = (-0.5 * D * LOG_2PI - 0.5 * (1.0 + logvar).sum(-1)).mean()  # scalar
    z = mu + _randn((N, D), mu, generator) * torch.exp(0.5 * logvar)  # (N, D): one sample per x
    log_qz = []
    for start in range(0, N, chunk):
        zc = z[start:start + chunk].unsqueeze(1)  # (c, 1, D)
        log_dens = gaussian_log_density(zc, mu.unsqueeze(0), logvar.unsqueeze(0)).sum(-1)  # (c, N)
        log_qz.append(torch.logsumexp(log_dens, dim=1) - math.log(N))  # (c,)
    return float(neg_entropy - torch.cat(log_qz).mean())


def mutual_information(
    model: SentenceVAE, tokens: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None
) -> float:
    """I(x;z) estimated on one batch, tokens (B, T), lengths (B,) (He et al. 2019, `calc_mi`).

    Batch-estimated: q(z) is the mixture of this batch's B posteriors, so the value is bounded by
    about log B and biased low for small B. Use large batches and average over batches.
    """
    with eval_mode(model):
        mu, logvar = model.encode(tokens, lengths)  # (B, D)
    return mutual_information_from_posteriors(mu, logvar, generator)


def active_units(mu: torch.Tensor, threshold: float = AU_THRESHOLD) -> tuple[int, torch.Tensor]:
    """Active units (Burda et al. 2016): dims whose Cov_x E_q[z_d] exceeds `threshold`.

    mu: (N, D) posterior means → (count, variances (D,)); unbiased variance over sentences.
    """
    if mu.dim() != 2:
        raise ValueError(f"mu must have shape (N, D), got {tuple(mu.shape)}")
    if mu.size(0) < 2:
        variances = torch.zeros(mu.size(1), dtype=mu.dtype, device=mu.device)
    else:
        variances = mu.var(0, unbiased=True)  # (D,)
    return int((variances > threshold).sum()), variances


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_d|x) || N(0, 1)) per dimension, mean over sentences: (N, D), (N, D) → (D,)."""
    return gaussian_kl(mu, logvar).mean(0)


# ----------------------------------------------------------------------------- reconstruction


def strip_specials(ids: Sequence[int]) -> list[int]:
    """Word ids only: cut at the first <eos>, drop <pad> and <bos>."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            out.append(i)
    return out


def _check_pairs(references: Sequence, hypotheses: Sequence) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")


def exact_match(references: Sequence[Sequence[Hashable]], hypotheses: Sequence[Sequence[Hashable]]) -> float:
    """Share of hypotheses equal to their reference, token for token (ids or words)."""
    _check_pairs(references, hypotheses)
    if not references:
        return float("nan")
    return sum(list(r) == list(h) for r, h in zip(references, hypotheses, strict=True)) / len(references)


def token_accuracy(references: Sequence[Sequence[Hashable]], hypotheses: Sequence[Sequence[Hashable]]) -> float:
    """Position-wise token accuracy: matches at equal positions / Σ max(len(ref), len(hyp)).

    Taking the longer length makes missing and extra tokens both count as errors.
    """
    _check_pairs(references, hypotheses)
    correct = total = 0
    for r, h in zip(references, hypotheses, strict=True):
        correct += sum(a == b for a, b in zip(r, h, strict=False))  # up to the shorter
        total += max(len(r), len(h))
    return correct / total if total else float("nan")


def _ngrams(tokens: Sequence[Hashable], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]], max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002), one reference per hypothesis, uniform weights up to max_n.

    Clipped n-gram matches and lengths are summed over the corpus; brevity penalty
    exp(1 − r/c) when c < r. Smoothing method 1 (Chen & Cherry 2014, as NLTK's `method1`): an
    n-gram order with no match gets precision 0.1 / count. No unigram match at all gives 0.
    """
    _check_pairs(references, hypotheses)
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    matches = [0] * max_n
    counts = [0] * max_n
    ref_len = hyp_len = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        ref_len += len(ref)
        hyp_len += len(hyp)
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            counts[n - 1] += max(0, len(hyp) - n + 1)
    return bleu_from_counts(matches, counts, hyp_len, ref_len)


def bleu_from_counts(matches: Sequence[int], counts: Sequence[int], hyp_len: int, ref_len: int) -> float:
    """BLEU from clipped n-gram matches and n-gram counts per order (1..max_n), hypothesis and reference
    lengths: the one BLEU formula (corpus BLEU here, Self-BLEU in vae_core.generation_metrics). Uniform
    weights, brevity penalty exp(1 − r/c) when c < r, smoothing method 1; no unigram match gives 0."""
    if hyp_len == 0 or matches[0] == 0:
        return 0.0
    log_p = 0.0
    for m, c in zip(matches, counts, strict=True):
        c = max(1, c)
        log_p += math.log(m / c if m > 0 else BLEU_EPSILON / c)
    bp = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return bp * math.exp(log_p / len(matches))


def greedy_reconstructions(
    model: SentenceVAE, vocab, mu: torch.Tensor, max_len: int, batch_size: int = 256
) -> list[list[int]]:
    """Greedy decodes of posterior means mu (N, D): word ids per sentence (<eos> and specials removed)."""
    from vae_core.config import DecodeConfig
    from vae_core.decode import decode

    cfg = DecodeConfig(strategy="greedy", max_len=max(1, min(1000, max_len)))
    out: list[list[int]] = []
    with eval_mode(model):
        for start in range(0, mu.size(0), batch_size):
            res = decode(model, mu[start:start + batch_size], vocab, cfg)
            out.extend(strip_specials(ids) for ids in res.ids)
    return out


# ----------------------------------------------------------------------------- everything


def _fork_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


def _elbo_pass(
    model: SentenceVAE, ids: Sequence[Sequence[int]], batch_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One z ~ q(z|x) per sentence (noise from a generator seeded with `seed`), in input order: the
    reconstruction NLL (N,) and KL (N,) in float64, and the posterior parameters mu, logvar (N, D)."""
    device = _device(model)
    n, D = len(ids), model.cfg.latent_dim
    recon = torch.zeros(n, dtype=torch.float64)
    kl = torch.zeros(n, dtype=torch.float64)
    mu_all, logvar_all = torch.zeros(n, D), torch.zeros(n, D)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    for idx in bucket_batches([len(x) for x in ids], batch_size, seed=None):  # sorted by length: little padding
        tokens, lengths = collate([ids[i] for i in idx])
        tokens, lengths = tokens.to(device), lengths.to(device)
        mu, logvar = model.encode(tokens, lengths)  # (B, D)
        z = mu + _randn(tuple(mu.shape), mu, gen) * torch.exp(0.5 * logvar)
        rec, _ = model.reconstruction_nll(z, tokens, lengths)  # (B,)
        where = torch.tensor(idx)
        recon[where] = rec.double().cpu()
        kl[where] = gaussian_kl(mu, logvar).sum(-1).double().cpu()
        mu_all[where] = mu.float().cpu()
        logvar_all[where] = logvar.float().cpu()
    return recon, kl, mu_all, logvar_all


def _sentence_noise(seed: int, index: int, k: int, D: int) -> np.ndarray:
    """(k, D) float64 reparameterisation noise of sentence `index`: its own stream of `seed` (numpy's
    SeedSequence of both, so streams never overlap; torch's CPU generator keeps only 32 bits of a seed), so a
    sentence's estimate does not depend on which batch or chunk it is decoded in."""
    return np.random.default_rng([seed, index]).standard_normal((k, D))


def nll_batches(model: SentenceVAE, lengths: Sequence[int], batch_size: int, memory_mb: float) -> list[list[int]]:
    """Sentence indices for the IS-NLL pass: sorted by length, at most `batch_size` a batch, and as many as keep
    one sample of the batch (Σ lengths × `decoded_token_bytes`) within `memory_mb` (a longer one goes alone)."""
    budget = memory_mb * 2**20 / decoded_token_bytes(model)  # tokens one sample of a batch may have
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if current and (len(current) >= batch_size or used + lengths[i] > budget):
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        batches.append(current)
    return batches


def _is_nll_pass(
    model: SentenceVAE, ids: Sequence[Sequence[int]], batch_size: int, k: int, chunk: int | None, seed: int,
    progress: Callable[[int, int], None] | None, memory_mb: float = NLL_MEMORY_MB,
) -> torch.Tensor:
    """Importance-sampled NLL (N,) of each sentence with k samples, in input order (float64); batches and
    chunks sized by `memory_mb` (`nll_batches`, `samples_per_chunk`) unless `chunk` is given."""
    device = _device(model)
    dtype = next(model.parameters()).dtype
    D = model.cfg.latent_dim
    nll = torch.zeros(len(ids), dtype=torch.float64)
    batches = nll_batches(model, [len(x) for x in ids], batch_size, memory_mb)
    if progress is not None:
        progress(0, len(batches))
    for b, idx in enumerate(batches):
        tokens, lengths = collate([ids[i] for i in idx])
        tokens, lengths = tokens.to(device), lengths.to(device)
        noise = np.stack([_sentence_noise(seed, i, k, D) for i in idx], axis=1)  # (k, B, D)
        noise = torch.from_numpy(noise).to(device=device, dtype=dtype)
        nll[torch.tensor(idx)] = importance_sampled_nll(model, tokens, lengths, k=k, chunk=chunk, noise=noise,
                                                        memory_mb=memory_mb).double().cpu()
        if progress is not None:
            progress(b + 1, len(batches))
    return nll


def evaluate_model(
    model: SentenceVAE,
    vocab,
    sentences: Sequence[str],
    *,
    nll_samples: int = 0,
    batch_size: int = 64,
    seed: int = 0,
    lowercase: bool = False,
    max_len: int = 50,
    nll_chunk: int | None = None,
    nll_memory_mb: float = NLL_MEMORY_MB,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """All model-quality figures of one set of sentences, as plain JSON-ready python.

    Keys: recon, kl, elbo (per-sentence means, one z ~ q(z|x) each); nll_bound, nll_per_token_bound,
    ppl_bound (from −ELBO); with nll_samples > 0 also nll (importance-sampled, per sentence),
    nll_per_token and ppl = exp(Σ NLL / n_tokens) ('ppl_rule': n_tokens = n_words word tokens under the
    vocabulary's 'tokenization' + one <eos> per sentence, 'ppl_counts_eos'), the samples decoded within
    `nll_memory_mb` (or `nll_chunk` at a time when given);
    kl_per_dim (D), active_units, au_variances (D), mi (aggregate posterior over all the
    sentences, 'mi_n' of them); exact_match, token_accuracy, bleu of greedy decodes from posterior
    means against the input with OOV words as <unk>; n_sentences, n_tokens, truncated; timing (s).
    Same seed → same numbers; the global RNG is left as it was. `progress(done, total)` is called
    before the first and after each NLL batch.
    """
    ids, truncated = encode_sentences(sentences, vocab, max_len, lowercase)
    n = len(ids)
    if n == 0:
        raise ValueError("no sentences to evaluate")
    device = _device(model)
    timing: dict[str, float] = {}
    nll = torch.zeros(n, dtype=torch.float64)
    with torch.random.fork_rng(devices=_fork_devices(device)), eval_mode(model):
        torch.default_generator.manual_seed(seed)  # anything drawing from the global CPU RNG is seeded too
        t0 = time.perf_counter()
        recon, kl, mu_all, logvar_all = _elbo_pass(model, ids, batch_size, seed)
        timing["elbo_s"] = time.perf_counter() - t0
        if nll_samples > 0:
            t0 = time.perf_counter()
            nll = _is_nll_pass(model, ids, batch_size, nll_samples, nll_chunk, seed + 1, progress, nll_memory_mb)
            timing["nll_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mi_gen = torch.Generator(device="cpu")
        mi_gen.manual_seed(seed + 2)
        mi = mutual_information_from_posteriors(mu_all, logvar_all, mi_gen)
        timing["mi_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        refs = [strip_specials(x) for x in ids]
        hyps = greedy_reconstructions(model, vocab, mu_all.to(device), max_len=max(len(r) for r in refs) + 2)
        timing["reconstruction_s"] = time.perf_counter() - t0

    n_tokens = sum(len(x) for x in ids)  # <eos> included
    au, au_var = active_units(mu_all)
    kl_dim = kl_per_dim(mu_all, logvar_all)
    recon_mean, kl_mean = float(recon.mean()), float(kl.mean())
    bound_total = float((recon + kl).sum())
    out: dict[str, Any] = {
        "recon": recon_mean,
        "kl": kl_mean,
        "elbo": -(recon_mean + kl_mean),
        "nll_bound": recon_mean + kl_mean,
        "nll_per_token_bound": bound_total / n_tokens,
        "ppl_bound": perplexity(bound_total, n_tokens),
    }
    if nll_samples > 0:
        total = float(nll.sum())
        out.update({
            "nll": total / n,
            "nll_per_token": total / n_tokens,
            "ppl": perplexity(total, n_tokens),
            "ppl_counts_eos": True,
            "nll_samples": nll_samples,
            "nll_memory_mb": nll_memory_mb,
        })
    words = [[vocab.itos[i] for i in r] for r in refs]
    hyp_words = [[vocab.itos[i] if 0 <= i < len(vocab) else "<unk>" for i in h] for h in hyps]
    out.update({
        "kl_per_dim": [float(x) for x in kl_dim],
        "active_units": au,
        "au_threshold": AU_THRESHOLD,
        "au_variances": [float(x) for x in au_var],
        "mi": mi,
        "mi_n": n,
        "exact_match": exact_match(refs, hyps),
        "token_accuracy": token_accuracy(refs, hyps),
        "bleu": corpus_bleu(words, hyp_words),
        "n_sentences": n,
        "n_tokens": n_tokens,
        "n_words": n_tokens - n,
        "tokenization": vocab.tokenization,
        "ppl_rule": PPL_RULE,
        "truncated": truncated,
        "seed": seed,
        "timing": timing,
    })
    return out


__all__ = [
    "importance_sampled_nll",
    "perplexity",
    "ppl_count_text",
    "samples_per_chunk",
    "decoded_token_bytes",
    "nll_batches",
    "NLL_MEMORY_MB",
    "PPL_RULE",
    "mutual_information",
    "mutual_information_from_posteriors",
    "active_units",
    "kl_per_dim",
    "exact_match",
    "token_accuracy",
    "corpus_bleu",
    "greedy_reconstructions",
    "evaluate_model",
    "eval_mode",
    "strip_specials",
]
