import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vae_core.config import DecodeConfig, ModelConfig, TrainConfig, from_dict, to_dict
from vae_core.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocab, detokenize, tokenize


def test_configs_are_frozen_and_round_trip():
    m = ModelConfig(latent_dim=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.latent_dim = 3  # type: ignore[misc]
    assert from_dict(ModelConfig, to_dict(m)) == m
    t = TrainConfig(beta=2.0, schedule="cyclical")
    assert from_dict(TrainConfig, to_dict(t)) == t
    assert dataclasses.replace(m, latent_dim=4).latent_dim == 4


@pytest.mark.parametrize(
    "cls,kw,msg",
    [
        (ModelConfig, {"latent_dim": 0}, "latent_dim"),
        (ModelConfig, {"latent_dim": 10**9}, "latent_dim"),
        (ModelConfig, {"rnn_type": "transformer"}, "rnn_type"),
        (ModelConfig, {"word_dropout": 1.5}, "word_dropout"),
        (TrainConfig, {"beta": -1}, "beta"),
        (TrainConfig, {"schedule": "weird"}, "schedule"),
        (TrainConfig, {"batch_size": 0}, "batch_size"),
        (TrainConfig, {"epochs": 2.5}, "epochs"),
        (DecodeConfig, {"strategy": "magic"}, "strategy"),
        (DecodeConfig, {"top_p": 0}, "top_p"),
    ],
)
def test_config_validation_names_the_field(cls, kw, msg):
    with pytest.raises(ValueError, match=msg):
        cls(**kw)


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown ModelConfig option"):
        from_dict(ModelConfig, {"latent": 3})


def test_tokenize_ptb_text_kept_and_punctuation_split():
    assert tokenize(" the <unk> company 's N shares fell . ") == [
        "the",
        "<unk>",
        "company",
        "'s",
        "N",
        "shares",
        "fell",
        ".",
    ]
    assert tokenize("Hello, world!") == ["Hello", ",", "world", "!"]
    assert tokenize("Hello, world!", lowercase=True) == ["hello", ",", "world", "!"]
    assert tokenize("u.s. don't") == ["u.s.", "don't"] or tokenize("u.s. don't")[0].startswith("u.s")
    assert tokenize("a\x00b\x07c") == ["a", "b", "c"]
    assert tokenize("   ") == []


def test_vocab_special_ids_caps_and_unknowns():
    sents = [["a", "b", "b", "c"], ["b", "c", "d"]]
    v = Vocab.build(sents)
    assert v.itos[:4] == SPECIALS
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert v.itos[4] == "b"  # most frequent first
    assert v.encode(["b", "zzz"]) == [v.id("b"), UNK_ID, EOS_ID]
    assert v.oov(["b", "zzz", "<unk>"]) == ["zzz"]
    assert v.decode([v.id("a"), EOS_ID, v.id("b")]) == ["a"]
    assert len(Vocab.build(sents, min_freq=2)) == 4 + 2
    assert len(Vocab.build(sents, max_size=6)) == 6


def test_vocab_json_round_trip_and_bad_json():
    v = Vocab.build([["x", "y", "é", "🙂"]])
    assert Vocab.from_json(v.to_json()) == v
    with pytest.raises(ValueError, match="vocabulary"):
        Vocab.from_json("{not json")
    with pytest.raises(ValueError):
        Vocab.from_json('{"itos": ["a", "b"]}')


@given(st.text())
def test_tokenize_never_fails_and_is_deterministic(text):
    toks = tokenize(text)
    assert toks == tokenize(text)
    assert all(t and not any(c.isspace() for c in t) for t in toks)
    assert tokenize(detokenize(toks)) == toks


@given(st.lists(st.lists(st.text(min_size=1, max_size=5).filter(lambda s: not s.isspace()), max_size=6), max_size=6))
def test_vocab_build_round_trip_on_arbitrary_unicode(sents):
    v = Vocab.build(sents)
    assert Vocab.from_json(v.to_json()) == v
    for s in sents:
        ids = v.encode(s)
        assert ids[-1] == EOS_ID
        assert all(0 <= i < len(v) for i in ids)
