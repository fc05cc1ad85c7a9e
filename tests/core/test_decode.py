"""Decoding z → sentences (greedy, beam, sampling) and sentences → posterior means, on tiny models."""

from __future__ import annotations

import copy
from typing import get_args

import pytest
import torch

from tests.core.helpers import MIXED
from vae_core import latent
from vae_core.config import DecodeConfig, Decoder, ModelConfig, TrainConfig
from vae_core.corpus import Corpus, TextSet
from vae_core.decode import (
    _NEVER,
    DecodeResult,
    _result,
    beam_decode,
    decode,
    greedy_decode,
    reconstruct,
    sample_decode,
)
from vae_core.encoding import posterior_means, sentence_ids
from vae_core.model import DECODERS, SentenceDecoder, SentenceVAE
from vae_core.text import BOS_ID, EOS_ID, PAD_ID, Vocab, tokenize

SENTENCES = list(MIXED)


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab.build(tokenize(s) for s in SENTENCES)


def _model(vocab: Vocab, kind: str, seed: int = 0) -> SentenceVAE:
    """kind: "gru" or "lstm" (the RNN decoder), or a position-wise decoder ("positional", "additive")."""
    torch.manual_seed(seed)
    dec = {"rnn_type": kind} if kind in ("gru", "lstm") else {"decoder": kind, "max_positions": 12}
    cfg = ModelConfig(vocab_size=len(vocab), embed_dim=8, hidden_dim=16, latent_dim=4, **dec)
    return SentenceVAE(cfg).eval()


@pytest.fixture(scope="module", params=["gru", "lstm", "positional", "additive"])
def model(request, vocab: Vocab) -> SentenceVAE:
    return _model(vocab, request.param)


@pytest.fixture
def z() -> torch.Tensor:
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(1)) * 2  # (6, D)


def _assert_same(a: DecodeResult, b: DecodeResult) -> None:
    assert a.ids == b.ids
    assert a.texts == b.texts
    assert a.scores is not None and b.scores is not None
    assert torch.allclose(torch.tensor(a.scores), torch.tensor(b.scores), atol=1e-5)


# ----------------------------------------------------------------------------- greedy and beam


def test_result_shapes_and_texts(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    r = greedy_decode(model, z, vocab, max_len=10)
    assert len(r) == len(r.ids) == len(r.scores) == 6
    assert all(t == " ".join(vocab.itos[i] for i in ids) for t, ids in zip(r.texts, r.ids, strict=True))
    assert all(s <= 0 for s in r.scores)
    one = greedy_decode(model, z[0], vocab, max_len=10)  # a single (D,) code is a batch of one
    assert one.ids == r.ids[:1]
    assert greedy_decode(model, z[:0], vocab).texts == []


def test_beam_width_one_equals_greedy(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    for alpha in (0.0, 1.0):
        _assert_same(beam_decode(model, z, vocab, beam_width=1, length_penalty=alpha, max_len=12),
                     greedy_decode(model, z, vocab, max_len=12))


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_batch_equals_one_by_one(model: SentenceVAE, vocab: Vocab, z: torch.Tensor, strategy: str) -> None:
    cfg = DecodeConfig(strategy=strategy, beam_width=3, max_len=12)
    batch = decode(model, z, vocab, cfg)
    singles = [decode(model, z[i : i + 1], vocab, cfg) for i in range(z.size(0))]
    _assert_same(batch, DecodeResult(
        [s.ids[0] for s in singles], [s.texts[0] for s in singles], [s.scores[0] for s in singles]
    ))


def test_beam_finds_at_least_the_greedy_score(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    greedy = greedy_decode(model, z, vocab, max_len=12)
    beam = beam_decode(model, z, vocab, beam_width=5, length_penalty=1.0, max_len=12)

    def norm(r: DecodeResult, i: int) -> float:
        n = min(len(r.ids[i]) + 1, 12)  # + <eos>, unless cut at max_len
        return r.scores[i] / n

    # Width 5 keeps the greedy path among its candidates until something better replaces it.
    assert all(norm(beam, i) >= norm(greedy, i) - 1e-5 for i in range(z.size(0)))


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
@pytest.mark.parametrize("max_len", [1, 3])
def test_stops_at_max_len(model: SentenceVAE, vocab: Vocab, z: torch.Tensor, strategy: str, max_len: int) -> None:
    r = decode(model, z, vocab, DecodeConfig(strategy=strategy, max_len=max_len))
    assert all(len(ids) <= max_len for ids in r.ids)


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_never_emits_pad_or_bos(model: SentenceVAE, vocab: Vocab, z: torch.Tensor, strategy: str) -> None:
    # A model that would love to say <pad> or <bos> and never <eos>: every step must still give a word.
    biased = copy.deepcopy(model)
    with torch.no_grad():
        biased.decoder.out.bias[PAD_ID] += 100.0
        biased.decoder.out.bias[BOS_ID] += 100.0
        biased.decoder.out.bias[EOS_ID] -= 100.0
    r = decode(biased, z, vocab, DecodeConfig(strategy=strategy, max_len=5, beam_width=3))
    assert all(len(ids) == 5 for ids in r.ids)
    assert all(i not in (PAD_ID, BOS_ID, EOS_ID) for ids in r.ids for i in ids)
    assert all(torch.isfinite(torch.tensor(s)) for s in r.scores)


def test_stops_at_eos(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    eager = copy.deepcopy(model)
    with torch.no_grad():
        eager.decoder.out.bias[EOS_ID] += 100.0
    for strategy in ("greedy", "beam", "sample"):
        r = decode(eager, z, vocab, DecodeConfig(strategy=strategy))
        assert r.ids == [[]] * 6 and r.texts == [""] * 6


# ----------------------------------------------------------------------------- the decoder interface


def test_every_decoder_kind_is_registered_once() -> None:
    assert set(DECODERS) == set(get_args(Decoder))
    assert all(issubclass(cls, SentenceDecoder) for cls in DECODERS.values())


@pytest.mark.parametrize("max_len", [1, 4, 40])
def test_each_decoders_greedy_equals_the_step_loop(model: SentenceVAE, vocab: Vocab, max_len: int) -> None:
    """A decoder's own greedy (batched for the position-wise ones) gives the base step loop's ids and scores."""
    z = torch.cat([torch.randn(5, 4), torch.randn(5, 4) * 6])  # near the prior and far outside it
    with torch.inference_mode():
        own = _result(vocab, *(x.tolist() for x in model.decoder.greedy(z, max_len, _NEVER)))
        loop = _result(vocab, *(x.tolist() for x in SentenceDecoder.greedy(model.decoder, z, max_len, _NEVER)))
    _assert_same(own, loop)
    _assert_same(greedy_decode(model, z, vocab, max_len=max_len), loop)


def test_step_likelihood_equals_teacher_forced_nll(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    """Feeding a sentence through init_state/step gives the NLL that reconstruction_nll computes."""
    ids, _ = sentence_ids(vocab, SENTENCES)
    for i, row in enumerate(ids):
        code = z[i : i + 1]  # (1, D)
        with torch.inference_mode():
            nll, _ = model.reconstruction_nll(code, torch.tensor([row]), torch.tensor([len(row)]))
            state, inputs, total = model.init_state(code), torch.full((1,), BOS_ID), 0.0
            for tok in row:
                logits, state = model.step(inputs, code, state)  # (1, V)
                total -= float(torch.log_softmax(logits, dim=-1)[0, tok])
                inputs = torch.tensor([tok])
        assert nll.item() == pytest.approx(total, rel=1e-5)


def test_select_and_repeat_state_move_whole_rows(model: SentenceVAE, z: torch.Tensor) -> None:
    """Repeating rows k times then selecting row b·k of each gives back the state and the same next step."""
    dec = model.decoder
    with torch.inference_mode():
        state = dec.init_state(z)  # 6 rows
        _, state = dec.step(torch.full((6,), BOS_ID), z, state)
        picked = dec.select_state(dec.repeat_state(state, 3), torch.arange(6) * 3)
        inputs = torch.full((6,), EOS_ID + 2)
        a, _ = dec.step(inputs, z, state)
        b, _ = dec.step(inputs, z, picked)
        reversed_rows = dec.select_state(state, torch.arange(5, -1, -1))
        c, _ = dec.step(inputs.flip(0), z.flip(0), reversed_rows)
    assert torch.allclose(a, b)
    assert torch.allclose(a.flip(0), c, atol=1e-6)


def test_run_files_keep_the_names_runs_were_saved_under(vocab: Vocab) -> None:
    """The state dict uses the parameter names of runs saved before the decoder interface, and loads back."""
    stored = {
        "gru": {"z_to_hidden.weight", "decoder.weight_ih_l0", "out.weight", "embedding.weight"},
        "positional": {"pos_decoder.z_in.0.weight", "pos_decoder.position.weight", "out.weight"},
        "additive": {"pos_decoder.w_in", "pos_decoder.bias", "out.bias"},
    }
    for kind, names in stored.items():
        m = _model(vocab, kind)
        state = m.state_dict()
        assert names <= set(state), kind
        assert not any(k.startswith(("decoder.rnn.", "decoder.out.", "decoder.z_")) for k in state), kind
        other = _model(vocab, kind, seed=1)
        other.load_state_dict(state)
        assert all(torch.equal(v, other.state_dict()[k]) for k, v in state.items())
        assert len(state) == len(list(m.parameters())) + len(list(m.buffers(recurse=True))) - (kind == "additive")


# ----------------------------------------------------------------------------- sampling


def test_sampling_is_seeded_and_leaves_global_rng(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    cfg = DecodeConfig(strategy="sample", temperature=1.5, seed=3)
    state = torch.random.get_rng_state()
    a, b = decode(model, z, vocab, cfg), decode(model, z, vocab, cfg)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.ids == b.ids
    others = [decode(model, z, vocab, DecodeConfig(strategy="sample", temperature=1.5, seed=s)).ids
              for s in (4, 5, 6)]
    assert any(o != a.ids for o in others)


def test_top_k_one_is_greedy(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    greedy = greedy_decode(model, z, vocab, max_len=12)
    for temperature in (0.5, 2.0):
        cfg = DecodeConfig(strategy="sample", top_k=1, temperature=temperature, max_len=12, seed=7)
        _assert_same(decode(model, z, vocab, cfg), greedy)


def test_tiny_top_p_is_greedy(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    cfg = DecodeConfig(strategy="sample", top_p=1e-6, max_len=12, seed=7)
    assert decode(model, z, vocab, cfg).ids == greedy_decode(model, z, vocab, max_len=12).ids


def test_top_k_and_top_p_restrict_the_words(model: SentenceVAE, vocab: Vocab, z: torch.Tensor) -> None:
    """Sampled first words come from the top-k set (k=2) of each code's first-step distribution."""
    with torch.inference_mode():
        logits, _ = model.step(torch.full((6,), BOS_ID), z, model.init_state(z))
        logits[:, [PAD_ID, BOS_ID]] = float("-inf")
        allowed = logits.topk(2, dim=-1).indices.tolist()
    for seed in range(5):
        r = sample_decode(model, z, vocab, temperature=5.0, top_k=2, max_len=1, seed=seed)
        for ids, ok in zip(r.ids, allowed, strict=True):
            assert not ids or ids[0] in ok  # empty: <eos> was one of the two


# ----------------------------------------------------------------------------- model untouched


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_decoding_leaves_the_model_alone(vocab: Vocab, z: torch.Tensor, mode: str) -> None:
    model = _model(vocab, "gru")
    model.train(mode == "train")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for strategy in ("greedy", "beam", "sample"):
        decode(model, z, vocab, DecodeConfig(strategy=strategy))
    reconstruct(model, vocab, SENTENCES[:2])
    assert model.training == (mode == "train")
    assert all(m.training == (mode == "train") for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_concurrent_decoding_from_threads_agrees(vocab: Vocab, z: torch.Tensor) -> None:
    from concurrent.futures import ThreadPoolExecutor

    model = _model(vocab, "lstm")
    cfgs = [DecodeConfig(strategy=s, seed=1) for s in ("greedy", "beam", "sample")] * 3
    expected = [decode(model, z, vocab, c).ids for c in cfgs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda c: decode(model, z, vocab, c).ids, cfgs))
    assert got == expected


def test_bad_inputs_raise_value_errors(model: SentenceVAE, vocab: Vocab) -> None:
    with pytest.raises(ValueError, match="shape"):
        greedy_decode(model, torch.zeros(2, 5), vocab)
    with pytest.raises(ValueError, match="temperature"):
        sample_decode(model, torch.zeros(2, 4), vocab, temperature=0.0)
    with pytest.raises(ValueError, match="beam_width"):
        beam_decode(model, torch.zeros(2, 4), vocab, beam_width=0)


# ----------------------------------------------------------------------------- encoding


def test_posterior_means_in_input_order(model: SentenceVAE, vocab: Vocab) -> None:
    sentences = SENTENCES + ["", "   ", "the zebra sees the cat .", "dogs"]
    mu, logvar, oov = posterior_means(model, vocab, sentences, batch_size=3)
    assert mu.shape == logvar.shape == (len(sentences), 4)
    ids, _ = sentence_ids(vocab, sentences)
    with torch.inference_mode():
        for i, row in enumerate(ids):
            m, lv = model.encode(torch.tensor([row]), torch.tensor([len(row)]))
            assert torch.allclose(mu[i], m[0], atol=1e-5), sentences[i]
            assert torch.allclose(logvar[i], lv[0], atol=1e-5)
    assert ids[6] == ids[7] == [EOS_ID]  # empty and blank sentences are just <eos>
    assert torch.equal(mu[6], mu[7])
    assert oov == [[]] * 8 + [["zebra"], []]


def test_posterior_means_max_len_and_lowercase(model: SentenceVAE, vocab: Vocab) -> None:
    mu, _, oov = posterior_means(model, vocab, ["The CAT sees the dog .", "the cat sees"], lowercase=True, max_len=3)
    assert oov == [[], []]
    assert torch.allclose(mu[0], mu[1])
    assert posterior_means(model, vocab, [])[0].shape == (0, 4)


def test_interpolation_endpoints_decode_to_endpoint_decodes(model: SentenceVAE, vocab: Vocab) -> None:
    mu, _, _ = posterior_means(model, vocab, SENTENCES[:2])
    path = latent.lerp(mu[0], mu[1], 5)  # (5, D)
    ends = greedy_decode(model, mu, vocab)
    along = greedy_decode(model, path, vocab)
    assert along.ids[0] == ends.ids[0] and along.ids[-1] == ends.ids[1]


def test_reconstruct_reports_oov(model: SentenceVAE, vocab: Vocab) -> None:
    result, oov = reconstruct(model, vocab, ["the zebra and the yak .", ""])
    assert oov == [["zebra", "and", "yak"], []]
    assert len(result.texts) == 2


# ----------------------------------------------------------------------------- a trained model


@pytest.mark.slow
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_overfit_model_reconstructs_its_training_sentences(tmp_path, rnn_type: str) -> None:
    from vae_core.runs import load_run
    from vae_core.train import train

    corpus = Corpus("tiny", TextSet(tuple(SENTENCES * 25)), TextSet(tuple(SENTENCES[:2])),
                    TextSet(tuple(SENTENCES[:2])))
    mcfg = ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=4, rnn_type=rnn_type)
    tcfg = TrainConfig(epochs=6, batch_size=6, beta=0.0, schedule="constant", lr=0.02, log_every=50)
    summary = train(tmp_path / "run", corpus, mcfg, tcfg)
    assert summary["state"] == "finished" and summary["step"] == 150
    run = load_run(tmp_path / "run")
    for strategy in ("greedy", "beam"):
        result, oov = reconstruct(run.model, run.vocab, SENTENCES, DecodeConfig(strategy=strategy))
        assert result.texts == SENTENCES
        assert oov == [[]] * len(SENTENCES)
