"""The non-autoregressive decoders (positional and additive): likelihood, decoding, training and run round trip.

Every test taking the `decoder` fixture runs for both."""

import json
import math

import pytest
import torch

from tests.core.helpers import TOY, tiny_model_config, tiny_train_config, toy_corpus
from vae_core.config import DecodeConfig, ModelConfig
from vae_core.corpus import collate, encode_sentences
from vae_core.decode import _NEVER, _result, beam_decode, decode, greedy_decode, sample_decode
from vae_core.metrics import importance_sampled_nll
from vae_core.model import PositionwiseDecoder, SentenceDecoder, SentenceVAE, parameter_count
from vae_core.runs import load_run
from vae_core.text import BOS_ID, EOS_ID, PAD_ID, Vocab, tokenize
from vae_core.train import train


@pytest.fixture
def vocab():
    return Vocab.build(tokenize(s) for s in TOY)


@pytest.fixture(params=["positional", "additive"])
def decoder(request):
    return request.param


def _model(vocab, decoder, positions=12, **kw) -> SentenceVAE:
    torch.manual_seed(0)
    m = SentenceVAE(tiny_model_config(vocab_size=len(vocab), decoder=decoder, max_positions=positions, **kw))
    return m.eval()


def test_config_validation_and_param_count(vocab, decoder):
    with pytest.raises(ValueError, match="decoder must be one of"):
        ModelConfig(decoder="transformer")
    with pytest.raises(ValueError, match="max_positions"):
        SentenceVAE(tiny_model_config(vocab_size=len(vocab), decoder=decoder))
    for layers, fourier in ((1, 0), (3, 0), (2, 4)):
        extra = {"fourier_features": fourier} if decoder == "additive" else {}
        cfg = tiny_model_config(vocab_size=len(vocab), decoder=decoder, max_positions=9, decoder_layers=layers, **extra)
        m = SentenceVAE(cfg)
        assert parameter_count(cfg) == sum(p.numel() for p in m.parameters())
        assert isinstance(m.decoder, PositionwiseDecoder)
        assert not any(isinstance(x, torch.nn.RNNBase) for x in m.decoder.modules())  # no RNN is built


def test_nll_is_sum_of_independent_position_log_probs(vocab, decoder):
    """recon NLL of a sentence = −Σ_t log softmax(out(h_t(z)))[x_t] over its real tokens (<eos> included)."""
    m = _model(vocab, decoder)
    ids, _ = encode_sentences(TOY, vocab, 50)
    tokens, lengths = collate(ids)
    z = torch.randn(len(TOY), 4)
    nll, correct = m.reconstruction_nll(z, tokens, lengths, count_correct=True)
    logp = torch.log_softmax(m.decoder.position_logits(z, tokens.size(1)), dim=-1).detach()  # (B, T, V)
    n_right = 0
    for b, row in enumerate(ids):
        expected = -sum(float(logp[b, t, tok]) for t, tok in enumerate(row))
        assert nll[b].item() == pytest.approx(expected, rel=1e-5)
        n_right += sum(int(logp[b, t].argmax()) == tok for t, tok in enumerate(row))
    assert correct == n_right
    # the word at a position does not depend on the words before it (teacher forcing is irrelevant)
    shuffled = tokens.clone()
    shuffled[:, 0] = tokens[:, 0].flip(0)
    logits_a = m.decode_logits(z, tokens, lengths)
    logits_b = m.decode_logits(z, shuffled, lengths)
    assert torch.allclose(logits_a, logits_b)


def test_sentence_probabilities_sum_to_at_most_one(decoder):
    """Over every sequence that ends at its first <eos>, the probabilities sum to ≤ 1 (a proper model)."""
    vocab = Vocab.build([["a", "b"]])  # 4 specials + 2 words
    torch.manual_seed(1)
    m = SentenceVAE(ModelConfig(vocab_size=len(vocab), embed_dim=4, hidden_dim=8, latent_dim=2,
                                decoder=decoder, max_positions=3)).eval()
    z = torch.randn(1, 2)
    words = [i for i in range(len(vocab)) if i != EOS_ID]  # every id, specials included
    seqs = [[EOS_ID]] + [[w, EOS_ID] for w in words] + [[w, v, EOS_ID] for w in words for v in words]
    total = 0.0
    for s in seqs:
        tokens, lengths = collate([s])
        nll, _ = m.reconstruction_nll(z, tokens, lengths)
        total += math.exp(-nll.item())
    logp = torch.log_softmax(m.decoder.position_logits(z, 3), dim=-1)[0].detach()  # (3, V)
    never_ends = float((1 - logp[:, EOS_ID].exp()).prod())  # 3 positions, none of them <eos>
    assert total + never_ends == pytest.approx(1.0, abs=1e-5)  # the rest is sequences cut at 3 positions


def test_greedy_is_positionwise_argmax_and_beam_agrees(vocab, decoder):
    m = _model(vocab, decoder, positions=6)
    z = torch.randn(5, 4) * 3
    res = greedy_decode(m, z, vocab, max_len=40)
    with torch.no_grad():
        logp = torch.log_softmax(m.decoder.position_logits(z, 6), dim=-1)  # (B, 6, V)
    logp[:, :, [PAD_ID, BOS_ID]] = -math.inf  # never emitted
    for b in range(5):
        expected = []
        for t in range(6):
            tok = int(logp[b, t].argmax())
            if tok == EOS_ID:
                break
            expected.append(tok)
        assert res.ids[b] == expected
        assert len(res.ids[b]) <= 6  # past its last position the decoder emits only <eos>
    beam1 = beam_decode(m, z, vocab, beam_width=1)
    assert beam1.ids == res.ids
    wide = beam_decode(m, z, vocab, beam_width=4, length_penalty=0.0)
    assert all(w >= g - 1e-4 for w, g in zip(wide.scores, res.scores, strict=True))


@pytest.mark.parametrize("max_len", [1, 3, 6, 40])
def test_one_pass_greedy_equals_step_by_step(vocab, decoder, max_len):
    """The batched greedy path of the position-wise decoders gives the step loop's ids and scores exactly,
    for codes near the prior and far outside it (which rarely emit <eos>), and max_len below, at and
    above the decoder's 6 positions."""
    m = _model(vocab, decoder, positions=6)
    with torch.no_grad():
        m.decoder.out.bias[EOS_ID] += 0.5  # so that some untrained rows end early and others run to the end
    torch.manual_seed(1)
    z = torch.cat([torch.randn(8, 4), torch.randn(8, 4) * 6])
    fast = greedy_decode(m, z, vocab, max_len=max_len)
    with torch.inference_mode():
        slow = _result(vocab, *(x.tolist() for x in SentenceDecoder.greedy(m.decoder, z, max_len, _NEVER)))
    assert fast.ids == slow.ids
    assert fast.texts == slow.texts
    assert fast.scores == pytest.approx(slow.scores, abs=1e-5)
    for chunk in (1, 2, 5):  # several passes, stopping once every row has its <eos>
        with torch.inference_mode():
            chunked = _result(vocab, *(x.tolist() for x in m.decoder.greedy(z, max_len, _NEVER, chunk=chunk)))
        assert chunked.ids == slow.ids
        assert chunked.scores == pytest.approx(slow.scores, abs=1e-5)
    assert any(len(r) == min(max_len, 6) for r in fast.ids)  # some rows ran to the end without <eos>
    assert any(len(r) < min(max_len, 6) for r in fast.ids) or max_len == 1


def test_sampling_is_seeded_and_scores_match_nll(vocab, decoder):
    m = _model(vocab, decoder)
    z = torch.randn(4, 4)
    a = sample_decode(m, z, vocab, seed=3)
    b = sample_decode(m, z, vocab, seed=3)
    assert a.ids == b.ids
    with torch.no_grad():
        logits = m.decoder.position_logits(z, 12)  # (B, 12, V)
    logits[:, :, [PAD_ID, BOS_ID]] = -math.inf  # decoding renormalises without the never-emitted ids
    logp = torch.log_softmax(logits, dim=-1)
    for i, row in enumerate(a.ids):
        # past the 12th position <eos> is certain (log-probability 0)
        expected = sum(float(logp[i, t, tok]) for t, tok in enumerate(row + [EOS_ID]) if t < 12)
        assert a.scores[i] == pytest.approx(expected, abs=1e-4)
    assert decode(m, z, vocab, DecodeConfig(strategy="sample", seed=3)).ids == a.ids


def test_too_long_sentence_is_refused(vocab, decoder):
    m = _model(vocab, decoder, positions=3)
    tokens, lengths = collate([[5, 6, 7, 8, EOS_ID]])
    with pytest.raises(ValueError, match="at most 3 positions"):
        m.reconstruction_nll(torch.zeros(1, 4), tokens, lengths)


def test_trains_saves_and_loads(tmp_path, decoder):
    mcfg = tiny_model_config(decoder=decoder, decoder_layers=2)
    train(tmp_path / "r", toy_corpus(4), mcfg,
          tiny_train_config(epochs=3, max_len=12, tc_weight=1.0, tc_start=2, tc_warmup_steps=2, tc_bank=16))
    tcs = [json.loads(line).get("tc") for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert any(t is not None and math.isfinite(t) for t in tcs)  # TC estimated (with the bank) and logged
    run = load_run(tmp_path / "r")
    assert run.model_config.decoder == decoder
    expected = {"positional": "PositionalDecoder", "additive": "AdditiveDecoder"}[decoder]
    assert type(run.model.decoder).__name__ == expected
    assert run.model_config.max_positions == 13  # max_len + <eos>
    ids, _ = encode_sentences(TOY, run.vocab, 12)
    tokens, lengths = collate(ids)
    nll = importance_sampled_nll(run.model, tokens, lengths, k=8)
    assert nll.shape == (len(TOY),) and torch.isfinite(nll).all() and (nll > 0).all()
    texts = decode(run.model, torch.zeros(2, 4), run.vocab).texts
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def _logits(m, code):
    with torch.no_grad():
        return m.decoder.position_logits(code, 6).double()  # (B, 6, V)


def _mixed_difference(m, z, i, j, a, b):
    """logits(z + a·e_i + b·e_j) − logits(z + a·e_i) − logits(z + b·e_j) + logits(z), and the move
    logits(z + a·e_i) − logits(z) alone."""
    zi, zj, zij = z.clone(), z.clone(), z.clone()
    zi[:, i] += a
    zj[:, j] += b
    zij[:, i] += a
    zij[:, j] += b
    return _logits(m, zij) - _logits(m, zi) - _logits(m, zj) + _logits(m, z), _logits(m, zi) - _logits(m, z)


@pytest.mark.parametrize("layers, fourier", [(1, 0), (2, 0), (3, 0), (2, 8)])
def test_additive_decoder_logits_add_up_over_dimensions(vocab, layers, fourier):
    """logits(z) = c + Σ_d f_d(z_d): every mixed difference over two dimensions is zero, so moving
    one dimension changes the logits by an amount that does not depend on any other dimension."""
    m = _model(vocab, "additive", positions=6, decoder_layers=layers, fourier_features=fourier)
    torch.manual_seed(2)
    z = torch.randn(16, 4) * 2  # (B, D)
    a, b = torch.randn(16) * 2, torch.randn(16) * 2
    for i, j in [(0, 1), (1, 3), (2, 0)]:
        mixed, moved = _mixed_difference(m, z, i, j, a, b)
        assert mixed.abs().max().item() < 1e-4 * max(1.0, moved.abs().max().item())
        assert moved.abs().max().item() > 1e-2  # a dimension does move the logits
    # the positional decoder mixes its dimensions (its MLP reads them together)
    mixed, _ = _mixed_difference(_model(vocab, "positional", positions=6), z, 0, 1, a, b)
    assert mixed.abs().max().item() > 1e-3


def test_fourier_features_enter_each_dimension_and_are_checked(vocab):
    """With K Fourier features each z_d is seen through [z_d, sin(ω_k z_d), cos(ω_k z_d)], ω_k = kπ/3:
    the logits are 6-periodic in z_d apart from the raw z_d input (zeroing its weight makes them
    exactly periodic); out-of-range K is refused."""
    m = _model(vocab, "additive", positions=4, fourier_features=3)
    assert m.decoder.omega.tolist() == pytest.approx([math.pi / 3, 2 * math.pi / 3, math.pi])
    with torch.no_grad():
        m.decoder.w_in[:, 0] = 0.0  # drop the raw z_d input
        z = torch.randn(5, 4)
        shifted = z.clone()
        shifted[:, 2] += 6.0  # one full period of every feature
        a, b = m.decoder.position_logits(z, 4), m.decoder.position_logits(shifted, 4)
    assert torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="fourier_features"):
        ModelConfig(decoder="additive", fourier_features=-1)
    with pytest.raises(ValueError, match="fourier_features"):
        ModelConfig(decoder="additive", fourier_features=10_000)
    with pytest.raises(ValueError, match="additive decoder only"):
        ModelConfig(decoder="positional", fourier_features=4)
