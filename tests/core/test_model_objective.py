import math

import pytest
import torch

from tests.core.helpers import TOY, tiny_model_config, tiny_train_config
from vae_core.corpus import collate, encode_sentences
from vae_core.model import SentenceVAE, parameter_count
from vae_core.objective import (
    PosteriorBank,
    beta_vae_loss,
    capacity,
    gaussian_kl,
    kl_weight,
    tc_weight,
    total_correlation,
)
from vae_core.synthetic import FACTORS
from vae_core.text import Vocab, tokenize

FACTOR_SIZES = [len(v) for v in FACTORS.values()]  # 6, 6, 6, 4, 3, 2, 2, 2: the built-in corpus
N_TRAIN = 18_662  # its training split


@pytest.fixture
def vocab():
    return Vocab.build(tokenize(s) for s in TOY)


DECODER_KINDS = ["rnn", "positional", "additive"]  # every entry of vae_core.model.DECODERS


def decoder_config(vocab, decoder, **kw):
    """A tiny config with this decoder (the position-wise ones get room for TOY's sentences)."""
    positions = {} if decoder == "rnn" else {"max_positions": 20}
    return tiny_model_config(vocab_size=len(vocab), decoder=decoder, **positions, **kw)


def batch(vocab, sents=TOY):
    ids, _ = encode_sentences(sents, vocab, 50)
    return collate(ids)


@pytest.mark.parametrize("decoder", DECODER_KINDS)
@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("bidir,layers", [(False, 1), (True, 2)])
def test_shapes_and_param_count(vocab, decoder, rnn, bidir, layers):
    cfg = decoder_config(vocab, decoder, rnn_type=rnn, bidirectional=bidir, encoder_layers=layers,
                         decoder_layers=layers)
    m = SentenceVAE(cfg)
    assert parameter_count(cfg) == sum(p.numel() for p in m.parameters())
    tokens, lengths = batch(vocab)
    out = m(tokens, lengths)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (len(TOY), 4)
    assert out.recon_nll.shape == (len(TOY),)
    assert out.n_tokens == int(lengths.sum())
    assert m.decode_logits(out.z, tokens, lengths).shape == (*tokens.shape, len(vocab))
    # batch of 1 and length 1
    t1, l1 = collate([[3]])
    o1 = m(t1, l1)
    assert o1.mu.shape == (1, 4) and o1.recon_nll.shape == (1,)
    assert m.decode_logits(o1.z, t1, l1).shape == (1, 1, len(vocab))
    logits, state = m.step(torch.full((1,), 2), o1.z, m.init_state(o1.z))  # one step from <bos>
    assert logits.shape == (1, len(vocab))
    logits, _ = m.step(logits.argmax(-1), o1.z, state)
    assert logits.shape == (1, len(vocab))


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_encoder_does_not_mix_examples(vocab, rnn):
    """Each row's posterior depends only on its own sentence (bidirectional, 2 layers, padded batch)."""
    torch.manual_seed(0)
    m = SentenceVAE(tiny_model_config(vocab_size=len(vocab), rnn_type=rnn, bidirectional=True, encoder_layers=2))
    m.eval()
    tokens, lengths = batch(vocab)
    mu, _ = m.encode(tokens, lengths)
    for i in range(len(TOY)):
        t, l = batch(vocab, [TOY[i]])
        mu_i, _ = m.encode(t, l)
        assert torch.allclose(mu[i], mu_i[0], atol=1e-5)


@pytest.mark.parametrize("decoder", DECODER_KINDS)
def test_padding_does_not_change_nll(vocab, decoder):
    torch.manual_seed(0)
    m = SentenceVAE(decoder_config(vocab, decoder))
    tokens, lengths = batch(vocab)
    z = torch.randn(len(TOY), 4)
    nll, _ = m.reconstruction_nll(z, tokens, lengths)
    padded = torch.cat([tokens, torch.zeros(len(TOY), 5, dtype=torch.long)], 1)
    nll2, _ = m.reconstruction_nll(z, padded, lengths)
    assert torch.allclose(nll, nll2, atol=1e-5)
    # matches a full-softmax computation over the padded logits
    logits = m.decode_logits(z, tokens, lengths)
    lp = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    mask = torch.arange(tokens.size(1))[None] < lengths[:, None]
    assert torch.allclose(-(lp * mask).sum(1), nll, atol=1e-4)


@pytest.mark.parametrize("decoder", DECODER_KINDS)
def test_loss_at_init_is_about_log_v_per_token(vocab, decoder):
    torch.manual_seed(0)
    m = SentenceVAE(decoder_config(vocab, decoder))
    tokens, lengths = batch(vocab)
    nll, _ = m.reconstruction_nll(torch.zeros(len(TOY), 4), tokens, lengths)
    per_token = float(nll.detach().sum() / lengths.sum())
    assert abs(per_token - math.log(len(vocab))) < 0.3


def test_decoder_is_causal(vocab):
    """Changing a later token never changes the loss of earlier positions (no peeking)."""
    torch.manual_seed(0)
    m = SentenceVAE(tiny_model_config(vocab_size=len(vocab)))
    m.eval()
    tokens, lengths = batch(vocab, [TOY[0]])
    z = torch.randn(1, 4)
    a = m.decode_logits(z, tokens, lengths)
    t2 = tokens.clone()
    t2[0, 4] = 5 if t2[0, 4] != 5 else 6
    b = m.decode_logits(z, t2, lengths)
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6)
    assert not torch.allclose(a[0, 5:], b[0, 5:])


def test_overfit_one_batch(vocab):
    torch.manual_seed(0)
    m = SentenceVAE(tiny_model_config(vocab_size=len(vocab), hidden_dim=32))
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    tokens, lengths = batch(vocab)
    for _ in range(150):
        out = m(tokens, lengths, sample=False)
        loss = out.recon_nll.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) / float(lengths.float().mean()) < 0.05


def test_word_dropout_only_in_training(vocab):
    torch.manual_seed(0)
    m = SentenceVAE(tiny_model_config(vocab_size=len(vocab), word_dropout=1.0))
    tokens, lengths = batch(vocab)
    z = torch.zeros(len(TOY), 4)
    m.train()
    inputs_train = m.decoder.input_embeddings(tokens, z)
    m.eval()
    inputs_eval = m.decoder.input_embeddings(tokens, z)
    assert not torch.equal(inputs_train, inputs_eval)


def test_gaussian_kl_closed_form_vs_monte_carlo():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 0.0]])
    logvar = torch.tensor([[0.2, -0.5, 1.0]])
    closed = gaussian_kl(mu, logvar)
    z = mu + torch.randn(200_000, 3) * (0.5 * logvar).exp()
    logq = -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())
    logp = -0.5 * (math.log(2 * math.pi) + z**2)
    mc = (logq - logp).mean(0)
    assert torch.allclose(closed[0], mc, atol=0.02)
    assert torch.all(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)) == 0)


def test_gaussian_kl_gradcheck():
    mu = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gaussian_kl, (mu, logvar))


def test_schedules_at_known_steps():
    lin = tiny_train_config(schedule="linear", beta=2.0, warmup_steps=100)
    assert kl_weight(0, lin, 1000) == 0.0
    assert kl_weight(50, lin, 1000) == pytest.approx(1.0)
    assert kl_weight(100, lin, 1000) == 2.0 == kl_weight(5000, lin, 1000)
    sig = tiny_train_config(schedule="sigmoid", beta=1.0, warmup_steps=100)
    assert kl_weight(50, sig, 1000) == pytest.approx(0.5)
    assert kl_weight(0, sig, 1000) < 0.01 and kl_weight(100, sig, 1000) > 0.99
    cyc = tiny_train_config(schedule="cyclical", beta=1.0, cycles=4, cycle_ratio=0.5)
    assert kl_weight(0, cyc, 1000) == 0.0
    assert kl_weight(125, cyc, 1000) == pytest.approx(1.0)
    assert kl_weight(200, cyc, 1000) == 1.0
    assert kl_weight(250, cyc, 1000) == 0.0  # next cycle restarts
    assert kl_weight(62, cyc, 1000) == pytest.approx(62 / 125)
    const = tiny_train_config(schedule="constant", beta=3.0)
    assert kl_weight(0, const, 10) == 3.0
    cap = tiny_train_config(schedule="capacity", capacity_max=10.0, capacity_steps=100)
    assert capacity(0, cap) == 0 and capacity(50, cap) == 5.0 and capacity(1000, cap) == 10.0


def _loss_inputs(b: int, d: int, scale: float):
    """recon (b,) = 5 nats, posteriors N(mu, 1) with mu ~ N(0, scale²), and z drawn from them."""
    mu, logvar = torch.randn(b, d) * scale, torch.zeros(b, d)
    z = mu + torch.randn(b, d)
    return torch.full((b,), 5.0), mu, logvar, z


def _factorised_code(n: int, sigma: float, gen: torch.Generator):
    """n codes of the 8 synthetic factors, one per dimension: each value at the centre of an equal-mass
    slice of N(0, 1), posterior s.d. sigma. Returns mu (n, 8), logvar (n, 8) and noise eps ~ N(0, sigma²)."""
    values = torch.stack([torch.randint(k, (n,), generator=gen) for k in FACTOR_SIZES], 1).float()  # (n, 8)
    normal = torch.distributions.Normal(0.0, 1.0)
    mu = torch.stack([normal.icdf((values[:, i] + 0.5) / k) for i, k in enumerate(FACTOR_SIZES)], 1)
    return mu, torch.full_like(mu, 2 * math.log(sigma)), torch.randn(mu.shape, generator=gen) * sigma


def test_loss_parts_free_bits_capacity_and_tc():
    torch.manual_seed(0)
    recon, mu, logvar, z = _loss_inputs(8, 4, 0.1)
    parts = beta_vae_loss(recon, mu, logvar, z, 0, tiny_train_config(beta=2.0), 100, 1000)
    assert parts.total.item() == pytest.approx(5.0 + 2.0 * parts.kl.item(), rel=1e-5)
    assert parts.kl_per_dim.shape == (4,)
    fb = beta_vae_loss(recon, mu, logvar, z, 0, tiny_train_config(beta=1.0, free_bits=0.5), 100, 1000)
    assert fb.weighted_kl.item() == pytest.approx(4 * 0.5)  # every dim below the floor
    cap = beta_vae_loss(recon, mu, logvar, z, 50, tiny_train_config(schedule="capacity", gamma=10.0,
                                                                    capacity_max=4.0, capacity_steps=100), 100, 1000)
    assert cap.capacity == 2.0
    assert cap.total.item() == pytest.approx(5.0 + 10.0 * abs(cap.kl.item() - 2.0), rel=1e-5)
    tc = beta_vae_loss(recon, mu, logvar, z, 0, tiny_train_config(tc_weight=1.0), 100, 1000)
    assert tc.tc is not None and torch.isfinite(tc.tc)
    assert tc.total.item() == pytest.approx(5.0 + parts.kl.item() + max(0.0, tc.tc.item()), rel=1e-5)


def test_a_negative_tc_estimate_is_not_rewarded():
    """Broad, overlapping posteriors make the batch estimate negative; the loss must not go down for it."""
    torch.manual_seed(0)
    recon, mu, logvar, z = _loss_inputs(64, 4, 0.3)
    parts = beta_vae_loss(recon, mu, logvar, z, 0, tiny_train_config(tc_weight=5.0), 100, 100_000)
    assert parts.tc.item() < 0  # the estimate is below zero here
    assert parts.total.item() == pytest.approx(5.0 + parts.weighted_kl.item(), rel=1e-6)


def test_tc_weight_starts_late_and_ramps():
    cfg = tiny_train_config(tc_weight=4.0, tc_start=100, tc_warmup_steps=200)
    assert [tc_weight(s, cfg) for s in (0, 99, 100, 200, 300, 10_000)] == [0.0, 0.0, 0.0, 2.0, 4.0, 4.0]
    assert tc_weight(0, tiny_train_config(tc_weight=3.0)) == 3.0  # defaults: on from the first step
    assert tc_weight(50, tiny_train_config(tc_weight=3.0, tc_start=50)) == 3.0  # no ramp: a step at tc_start
    assert tc_weight(500, tiny_train_config(tc_weight=0.0, tc_start=1)) == 0.0
    torch.manual_seed(0)
    recon, mu, logvar, z = _loss_inputs(8, 4, 1.0)
    before = beta_vae_loss(recon, mu, logvar, z, 50, cfg, 1000, 1000)
    mid = beta_vae_loss(recon, mu, logvar, z, 200, cfg, 1000, 1000)
    assert before.tc is not None  # still estimated (and logged) before it counts
    assert before.total.item() == pytest.approx(5.0 + before.weighted_kl.item(), rel=1e-6)
    assert mid.total.item() == pytest.approx(5.0 + mid.weighted_kl.item() + 2.0 * max(0.0, mid.tc.item()), rel=1e-5)
    with pytest.raises(ValueError, match="tc_start"):
        tiny_train_config(tc_start=-1)


def test_total_correlation_near_zero_for_independent_and_large_for_dependent():
    torch.manual_seed(0)
    n = 512
    mu = torch.randn(n, 2)
    logvar = torch.full((n, 2), -4.0)
    z = mu + torch.randn(n, 2) * 0.135
    tc_ind = total_correlation(z, mu, logvar, n)
    mu_dep = torch.randn(n, 1).repeat(1, 2)
    z_dep = mu_dep + torch.randn(n, 2) * 0.135
    tc_dep = total_correlation(z_dep, mu_dep, logvar, n)
    assert tc_dep > tc_ind + 1.0


def test_total_correlation_of_a_factorised_discrete_code_is_near_zero():
    """8 independent discrete factors, one per dimension, sharp posteriors: TC ≈ 0; rotated: large.

    (The stratified weights of the β-TCVAE reference code, which put 1/N on column 0 instead of
    the diagonal, give ~5 nats here.)
    """
    gen = torch.Generator().manual_seed(0)
    rot, _ = torch.linalg.qr(torch.randn(8, 8, generator=gen))
    fac, mixed = [], []
    for _ in range(10):
        mu, logvar, eps = _factorised_code(64, 0.05, gen)
        fac.append(float(total_correlation(mu + eps, mu, logvar, N_TRAIN)))
        mixed.append(float(total_correlation(mu @ rot + eps, mu @ rot, logvar, N_TRAIN)))
    assert abs(sum(fac) / 10) < 1.0
    assert sum(mixed) / 10 > 8.0


def test_posterior_bank_keeps_the_most_recent_rows():
    bank = PosteriorBank(5, 2)
    assert bank.get()[0].shape == (0, 2)
    for start in (0, 3, 6):
        rows = torch.arange(start, start + 3, dtype=torch.float32).unsqueeze(1).repeat(1, 2)  # (3, 2)
        bank.add(rows, -rows)
    mu, logvar = bank.get()
    assert sorted(mu[:, 0].tolist()) == [4.0, 5.0, 6.0, 7.0, 8.0]  # the oldest four were overwritten
    assert torch.equal(logvar, -mu)
    bank.add(torch.arange(20.0).unsqueeze(1).repeat(1, 2), torch.zeros(20, 2))  # a batch larger than the bank
    assert sorted(bank.get()[0][:, 0].tolist()) == [15.0, 16.0, 17.0, 18.0, 19.0]
    x = torch.ones(1, 2, requires_grad=True)
    bank.add(x * 2, x)
    assert not bank.get()[0].requires_grad  # stored detached


def test_a_bank_of_posteriors_shrinks_the_bias_of_overlapping_codes():
    """Broad posteriors of a factorised code: the batch-only estimate is biased low; a bank of 4096 fixes most of it."""
    gen = torch.Generator().manual_seed(1)
    alone, banked = [], []
    for _ in range(5):
        mu, logvar, eps = _factorised_code(64 + 4096, 0.3, gen)
        z = mu + eps
        alone.append(float(total_correlation(z[:64], mu[:64], logvar[:64], N_TRAIN)))
        banked.append(float(total_correlation(z[:64], mu[:64], logvar[:64], N_TRAIN, (mu[64:], logvar[64:]))))
    assert sum(alone) / 5 < -1.0  # well below the true TC of 0
    assert abs(sum(banked) / 5) < 0.5
