"""metrics: importance-sampled NLL against exact quadrature, MI/AU/KL bounds, BLEU and accuracy by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tests.core.helpers import TOY, tiny_model_config
from vae_core.corpus import collate
from vae_core.metrics import (
    active_units,
    corpus_bleu,
    evaluate_model,
    exact_match,
    importance_sampled_nll,
    kl_per_dim,
    mutual_information,
    mutual_information_from_posteriors,
    token_accuracy,
)
from vae_core.model import SentenceVAE
from vae_core.objective import gaussian_kl
from vae_core.text import Vocab, tokenize


def _one_dim_model() -> tuple[SentenceVAE, torch.Tensor, torch.Tensor]:
    """A float64 model with latent_dim=1 over 8 words whose p(x|z) clearly depends on z, and 3 sentences."""
    torch.manual_seed(0)
    model = SentenceVAE(tiny_model_config(vocab_size=8, latent_dim=1)).double().eval()
    with torch.no_grad():
        model.decoder.z_to_hidden.weight.mul_(8.0)  # make the likelihood vary with z
        # q narrower than the prior gives a visible ELBO gap; variance e^-0.5 > 1/2 keeps the
        # importance weights' variance finite (narrower proposals make k=500 unreliable)
        model.to_logvar.bias.fill_(-0.5)
    tokens, lengths = collate([[4, 5, 6, 3], [7, 3], [5, 5, 4, 7, 6, 3]])
    return model, tokens, lengths


def _exact_nll(model: SentenceVAE, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """−log ∫ p(x|z) N(z; 0, 1) dz by the rectangle rule on 4000 points of [-8, 8]: (B,)."""
    grid = torch.linspace(-8.0, 8.0, 4000, dtype=torch.float64)  # (G,)
    step = float(grid[1] - grid[0])
    B, G = tokens.size(0), grid.numel()
    with torch.no_grad():
        z = grid.repeat_interleave(B).unsqueeze(1)  # (G*B, 1): row g*B + b
        nll, _ = model.reconstruction_nll(z, tokens.repeat(G, 1), lengths.repeat(G))
    log_joint = -nll.view(G, B) - 0.5 * (math.log(2 * math.pi) + grid.pow(2)).unsqueeze(1)  # (G, B)
    return -(torch.logsumexp(log_joint, dim=0) + math.log(step))


def _mc_neg_elbo(model, tokens, lengths, n: int = 4000) -> torch.Tensor:
    """−ELBO = E_q[−log p(x|z)] + KL(q || p), the expectation by Monte Carlo with n samples: (B,)."""
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        mu, logvar = model.encode(tokens, lengths)  # (B, 1)
        B = mu.size(0)
        z = mu + torch.randn(n, B, 1, generator=g, dtype=mu.dtype) * torch.exp(0.5 * logvar)  # (n, B, 1)
        nll, _ = model.reconstruction_nll(z.reshape(n * B, 1), tokens.repeat(n, 1), lengths.repeat(n))
    return nll.view(n, B).mean(0) + gaussian_kl(mu, logvar).sum(-1)


@pytest.fixture(scope="module")
def one_dim():
    model, tokens, lengths = _one_dim_model()
    return model, tokens, lengths, _exact_nll(model, tokens, lengths), _mc_neg_elbo(model, tokens, lengths)


def test_importance_sampled_nll_between_exact_nll_and_neg_elbo(one_dim):
    model, tokens, lengths, exact, neg_elbo = one_dim
    assert torch.all(neg_elbo > exact + 0.05)  # the set-up has a real gap to measure
    g = torch.Generator().manual_seed(0)
    is_nll = importance_sampled_nll(model, tokens, lengths, k=500, chunk=64, generator=g)
    assert is_nll.shape == (3,)
    assert torch.all(is_nll >= exact - 0.05)
    assert torch.all(is_nll <= neg_elbo + 0.05)
    assert torch.all(is_nll - exact < 0.5 * (neg_elbo - exact))  # k=500 closes most of the gap


def test_importance_sampled_nll_with_one_sample_estimates_neg_elbo(one_dim):
    model, tokens, lengths, _, neg_elbo = one_dim
    g = torch.Generator().manual_seed(1)
    # k=1 repeated: one big batch of 2000 copies of each sentence, one sample each
    reps = 2000
    est = importance_sampled_nll(model, tokens.repeat(reps, 1), lengths.repeat(reps), k=1, generator=g)
    est = est.view(reps, 3)
    stderr = est.std(0) / math.sqrt(reps)
    assert torch.all((est.mean(0) - neg_elbo).abs() < 4 * stderr + 0.02)


def test_importance_sampled_nll_chunking_and_generator(one_dim):
    model, tokens, lengths, _, _ = one_dim
    a = importance_sampled_nll(model, tokens, lengths, k=30, chunk=7, generator=torch.Generator().manual_seed(5))
    b = importance_sampled_nll(model, tokens, lengths, k=30, chunk=7, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.all(a > 0)
    with pytest.raises(ValueError):
        importance_sampled_nll(model, tokens, lengths, k=0)


def test_mutual_information_limits():
    g = torch.Generator().manual_seed(0)
    N, D = 200, 4
    separated = torch.arange(N, dtype=torch.float64).unsqueeze(1).repeat(1, D) * 10.0
    tiny_var = torch.full((N, D), -10.0, dtype=torch.float64)
    # the closed-form entropy against one sampled z per x leaves noise of sd ~ sqrt(D/2N) = 0.1
    assert mutual_information_from_posteriors(separated, tiny_var, g) == pytest.approx(math.log(N), abs=0.3)
    same = torch.zeros(N, D, dtype=torch.float64)
    assert abs(mutual_information_from_posteriors(same, same, g)) < 0.3


def test_mutual_information_of_a_batch_is_between_zero_and_log_batch():
    torch.manual_seed(0)
    vocab = Vocab.build(tokenize(s) for s in TOY)
    model = SentenceVAE(tiny_model_config(vocab_size=len(vocab)))
    with torch.no_grad():
        model.to_mu.weight.mul_(5.0)
    tokens, lengths = collate([vocab.encode(tokenize(s)) for s in TOY])
    mi = mutual_information(model, tokens, lengths, generator=torch.Generator().manual_seed(0))
    assert -0.1 <= mi <= math.log(len(TOY)) + 0.1
    assert mi > 0.1  # posteriors differ, so some information is carried
    assert model.training  # mode restored


def test_active_units_counts_varying_dims():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 4, generator=g) * torch.tensor([1.0, 0.5, 1e-3, 0.0])
    count, var = active_units(mu)
    assert count == 2
    assert var.shape == (4,)
    assert var[0] > 0.5 and var[3] == 0
    assert active_units(mu[:1])[0] == 0


def test_kl_per_dim_is_mean_over_sentences():
    mu = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    logvar = torch.zeros(2, 2)
    assert torch.allclose(kl_per_dim(mu, logvar), torch.tensor([0.0, (0.5 + 4.5) / 2]))


def test_exact_match_and_token_accuracy_by_hand():
    refs = [[1, 2, 3], [4, 5]]
    hyps = [[1, 2, 3], [4, 6, 7]]
    assert exact_match(refs, hyps) == 0.5
    assert token_accuracy(refs, hyps) == pytest.approx(4 / 6)  # 3 + 1 matches over 3 + max(2, 3)
    assert token_accuracy([["a", "b"]], [["a"]]) == 0.5  # missing tokens count as errors
    with pytest.raises(ValueError):
        exact_match(refs, hyps[:1])


def test_bleu_identical_disjoint_and_hand_example():
    refs = [s.split() for s in ("the cat sat on the mat", "a dog ran in the park today")]
    assert corpus_bleu(refs, refs) == pytest.approx(1.0)
    assert corpus_bleu(refs, [["x", "y", "z", "w", "v", "u"]] * 2) == 0.0
    # hyp "the cat the mat" vs ref "the cat is on the mat": p1 = 4/4, p2 = 2/3, p3 = 0/2 -> 0.1/2,
    # p4 = 0/1 -> 0.1/1 (smoothing method 1); BP = exp(1 - 6/4).
    expected = math.exp(1 - 6 / 4) * (1.0 * (2 / 3) * 0.05 * 0.1) ** 0.25
    got = corpus_bleu([["the", "cat", "is", "on", "the", "mat"]], [["the", "cat", "the", "mat"]])
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(0.1457379, abs=1e-7)


def test_bleu_is_corpus_level_and_clips_counts():
    # "the the the the" against "the cat": unigram matches clipped to 1 of 4
    one = corpus_bleu([["the", "cat"]], [["the", "the", "the", "the"]], max_n=1)
    assert one == pytest.approx(0.25)
    # corpus level: the counts are pooled, not the per-sentence scores averaged
    pooled = corpus_bleu([["a", "b"], ["c", "d"]], [["a", "b"], ["c", "x"]], max_n=1)
    assert pooled == pytest.approx(3 / 4)


@pytest.fixture(scope="module")
def toy_model():
    torch.manual_seed(0)
    vocab = Vocab.build(tokenize(s) for s in TOY)
    return SentenceVAE(tiny_model_config(vocab_size=len(vocab))), vocab


def test_evaluate_model_is_deterministic_and_leaves_global_rng(toy_model):
    model, vocab = toy_model
    sentences = list(TOY) + ["an unseen zebra sat ."]
    state = torch.get_rng_state()
    a = evaluate_model(model, vocab, sentences, nll_samples=7, batch_size=3, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = evaluate_model(model, vocab, sentences, nll_samples=7, batch_size=3, seed=4)
    a.pop("timing"), b.pop("timing")
    assert a == b
    c = evaluate_model(model, vocab, sentences, nll_samples=7, batch_size=3, seed=5)
    assert c["recon"] != a["recon"]
    assert model.training  # mode restored


def test_evaluate_model_keys_and_relations(toy_model):
    model, vocab = toy_model
    r = evaluate_model(model, vocab, list(TOY), nll_samples=20, batch_size=4)
    for key in ("recon", "kl", "elbo", "nll", "ppl", "nll_per_token", "kl_per_dim", "active_units",
                "au_variances", "mi", "exact_match", "token_accuracy", "bleu", "n_sentences", "n_tokens"):
        assert key in r
    assert r["ppl_counts_eos"] is True
    n_tokens = sum(len(tokenize(s)) + 1 for s in TOY)
    assert r["n_sentences"] == len(TOY) and r["n_tokens"] == n_tokens
    assert r["elbo"] == pytest.approx(-(r["recon"] + r["kl"]))
    assert r["ppl"] == pytest.approx(math.exp(r["nll"] * len(TOY) / n_tokens))
    assert r["nll"] <= r["nll_bound"] + 0.5  # importance sampling tightens the bound (noisy, small k)
    assert len(r["kl_per_dim"]) == 4 and sum(r["kl_per_dim"]) == pytest.approx(r["kl"], rel=1e-5)
    assert 0.0 <= r["token_accuracy"] <= 1.0 and 0.0 <= r["bleu"] <= 1.0
    assert "nll" not in evaluate_model(model, vocab, list(TOY))
