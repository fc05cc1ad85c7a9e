"""Importance-sampled NLL in memory-sized chunks: the same figure as one pass, within a bound on what is decoded."""

from __future__ import annotations

import pytest
import torch

from tests.core.helpers import TOY, tiny_model_config
from vae_core.corpus import collate
from vae_core.metrics import (
    _is_nll_pass,
    decoded_token_bytes,
    evaluate_model,
    importance_sampled_nll,
    nll_batches,
    samples_per_chunk,
)
from vae_core.model import SentenceVAE
from vae_core.text import Vocab, tokenize

K = 40


@pytest.fixture(scope="module")
def model64() -> SentenceVAE:
    torch.manual_seed(0)
    model = SentenceVAE(tiny_model_config(vocab_size=12, latent_dim=3)).double().eval()
    with torch.no_grad():
        model.decoder.z_to_hidden.weight.mul_(8.0)  # p(x|z) clearly depends on z, so the noise matters
    return model


def _ids() -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(4, 12, (n,), generator=g).tolist() + [3] for n in (1, 5, 2, 9, 3, 7, 4, 6)]


def test_chunked_equals_unchunked_with_the_same_noise(model64: SentenceVAE) -> None:
    tokens, lengths = collate(_ids())
    noise = torch.randn(K, tokens.size(0), 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    whole = importance_sampled_nll(model64, tokens, lengths, k=K, chunk=K, noise=noise)  # (B,)
    for chunk in (1, 3, 7, K - 1):
        part = importance_sampled_nll(model64, tokens, lengths, k=K, chunk=chunk, noise=noise)
        assert torch.allclose(part, whole, rtol=0, atol=1e-9), chunk
    # the chunk picked by memory: a budget so small that one sample is decoded at a time
    tiny = importance_sampled_nll(model64, tokens, lengths, k=K, noise=noise, memory_mb=1e-6)
    assert torch.allclose(tiny, whole, rtol=0, atol=1e-9)


def test_drawn_noise_does_not_depend_on_the_chunk(model64: SentenceVAE) -> None:
    tokens, lengths = collate(_ids())
    a = importance_sampled_nll(model64, tokens, lengths, k=K, chunk=K, generator=torch.Generator().manual_seed(5))
    b = importance_sampled_nll(model64, tokens, lengths, k=K, chunk=4, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(a, b, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="noise must have shape"):
        importance_sampled_nll(model64, tokens, lengths, k=K, noise=torch.zeros(K, 1, 3, dtype=torch.float64))


def test_pass_is_the_same_for_any_memory_budget_and_seeded(model64: SentenceVAE) -> None:
    ids = _ids()
    big = _is_nll_pass(model64, ids, batch_size=64, k=K, chunk=None, seed=11, progress=None, memory_mb=1e4)
    small = _is_nll_pass(model64, ids, batch_size=64, k=K, chunk=None, seed=11, progress=None, memory_mb=1e-6)
    assert torch.allclose(small, big, rtol=0, atol=1e-9)
    again = _is_nll_pass(model64, ids, batch_size=2, k=K, chunk=None, seed=11, progress=None, memory_mb=0.01)
    assert torch.allclose(again, big, rtol=0, atol=1e-9)  # batch of 2, chunks of a few samples
    other = _is_nll_pass(model64, ids, batch_size=64, k=K, chunk=None, seed=12, progress=None, memory_mb=1e4)
    assert (other - big).abs().max() > 1e-4  # another seed, other samples


def test_decoder_is_never_asked_for_more_than_the_budget(model64: SentenceVAE, monkeypatch) -> None:
    ids = _ids()
    per_token = decoded_token_bytes(model64)
    budget_tokens = 20  # one decoder call may hold at most 20 tokens' outputs
    memory_mb = budget_tokens * per_token / 2**20
    decoded: list[int] = []
    real = model64.reconstruction_nll

    def counting(z, tokens, lengths, count_correct=False):
        decoded.append(int(lengths.sum()))
        return real(z, tokens, lengths, count_correct)

    monkeypatch.setattr(model64, "reconstruction_nll", counting)
    _is_nll_pass(model64, ids, batch_size=64, k=K, chunk=None, seed=0, progress=None, memory_mb=memory_mb)
    longest = max(len(x) for x in ids)  # a sentence longer than the budget is decoded alone, one sample at a time
    assert decoded and max(decoded) <= max(budget_tokens, longest)
    assert sum(decoded) == K * sum(len(x) for x in ids)  # every sample of every sentence, once


def test_chunk_and_batch_sizes_follow_the_tensor_sizes(model64: SentenceVAE) -> None:
    per_token = decoded_token_bytes(model64)
    assert per_token == 8 * (2 * 12 + 8 + 3 + 4 * 16)  # float64: logits, log-softmax, embedding, z, states
    mb = 1000 * per_token / 2**20  # room for 1000 decoded tokens
    assert samples_per_chunk(model64, n_tokens=100, k=500, memory_mb=mb) == 10
    assert samples_per_chunk(model64, n_tokens=100, k=4, memory_mb=mb) == 4
    assert samples_per_chunk(model64, n_tokens=10**6, k=500, memory_mb=mb) == 1
    batches = nll_batches(model64, [30, 10, 40, 20, 5000], batch_size=64, memory_mb=mb * 0.06)  # 60 tokens
    assert batches == [[1, 3, 0], [2], [4]]  # sorted by length, ≤ 60 tokens a batch, the long one alone
    assert nll_batches(model64, [1] * 5, batch_size=2, memory_mb=mb) == [[0, 1], [2, 3], [4]]


def test_evaluate_model_same_figures_under_any_budget() -> None:
    torch.manual_seed(0)
    vocab = Vocab.build(tokenize(s) for s in TOY)
    model = SentenceVAE(tiny_model_config(vocab_size=len(vocab))).double().eval()
    a = evaluate_model(model, vocab, TOY, nll_samples=25, seed=3, nll_memory_mb=1e3)
    b = evaluate_model(model, vocab, TOY, nll_samples=25, seed=3, nll_memory_mb=1e-6)
    assert a["nll"] == pytest.approx(b["nll"], abs=1e-9) and a["ppl"] == pytest.approx(b["ppl"], rel=1e-12)
    assert b["nll_memory_mb"] == 1e-6
