"""The built-in corpus with known factors: round trip, size, vocabulary, splits, parse rejections."""

from __future__ import annotations

import numpy as np
import pytest

from vae_core import synthetic
from vae_core.corpus import Corpus
from vae_core.synthetic import (
    FACTORS,
    all_combinations,
    factor_changes,
    factor_codes,
    generate,
    parse,
    realize,
)

BASE = {
    "subject": "doctor",
    "verb": "see",
    "object": "cat",
    "adjective": "small",
    "tense": "present",
    "number": "singular",
    "polarity": "affirmative",
    "mood": "statement",
}


@pytest.fixture(scope="module")
def combos() -> list[dict[str, str]]:
    return all_combinations()


@pytest.fixture(scope="module")
def sentences(combos: list[dict[str, str]]) -> list[str]:
    return [realize(f) for f in combos]


def test_factor_table_shape() -> None:
    assert len(FACTORS) >= 6
    for name, values in FACTORS.items():
        assert 2 <= len(values) <= 10, name
        assert len(set(values)) == len(values), name
    assert set(BASE) == set(FACTORS)


def test_combinations_count_and_order(combos: list[dict[str, str]]) -> None:
    assert len(combos) == int(np.prod([len(v) for v in FACTORS.values()]))
    assert 20_000 <= len(combos) < 60_000
    assert combos[0] == {name: values[0] for name, values in FACTORS.items()}
    assert combos == all_combinations()


def test_round_trip_every_combination(combos: list[dict[str, str]], sentences: list[str]) -> None:
    for factors, sentence in zip(combos, sentences, strict=True):
        assert parse(sentence) == factors, sentence


def test_sentences_distinct_short_and_small_vocabulary(sentences: list[str]) -> None:
    assert len(set(sentences)) == len(sentences)
    lengths = [len(s.split()) for s in sentences]
    assert 4 <= min(lengths) and max(lengths) <= 15
    vocab = {token for s in sentences for token in s.split()}
    assert len(vocab) < 300
    for s in sentences:
        assert s == s.lower() and s == " ".join(s.split())
        assert s.endswith((" .", " ?"))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "the doctor sees the small cat ."),
        ({"number": "plural"}, "the doctors see the small cat ."),
        ({"tense": "past"}, "the doctor saw the small cat ."),
        ({"tense": "future"}, "the doctor will see the small cat ."),
        ({"polarity": "negative"}, "the doctor does not see the small cat ."),
        (
            {"polarity": "negative", "number": "plural", "tense": "past"},
            "the doctors did not see the small cat .",
        ),
        ({"mood": "question"}, "does the doctor see the small cat ?"),
        ({"mood": "question", "number": "plural"}, "do the doctors see the small cat ?"),
        (
            {"mood": "question", "polarity": "negative", "number": "plural", "tense": "past"},
            "did the doctors not see the small cat ?",
        ),
        (
            {
                "mood": "question",
                "polarity": "negative",
                "number": "plural",
                "tense": "future",
                "adjective": "old",
                "object": "dog",
            },
            "will the doctors not see the old dog ?",
        ),
        ({"verb": "watch"}, "the doctor watches the small cat ."),
    ],
)
def test_realize_agreement(changes: dict[str, str], expected: str) -> None:
    assert realize({**BASE, **changes}) == expected


def test_parse_tolerates_whitespace() -> None:
    assert parse("  the doctor   sees the small cat .  ") == BASE
    assert parse("the\tdoctor sees the small cat .\n") == BASE


@pytest.mark.parametrize(
    "sentence",
    [
        "",
        "   ",
        "colourless green ideas sleep furiously .",
        "the doctor sees the <unk> cat .",
        "the doctors sees the small cat .",
        "the doctor see the small cat .",
        "does the doctors see the small cat ?",
        "the doctor sees the small cat",
        "the doctor sees the small cat ?",
        "The doctor sees the small cat .",
        "the doctor sees the small cat . .",
    ],
)
def test_parse_rejects(sentence: str) -> None:
    assert parse(sentence) is None


def test_parse_rejects_unk_in_every_position() -> None:
    tokens = realize(BASE).split()
    for i in range(len(tokens)):
        assert parse(" ".join(tokens[:i] + ["<unk>"] + tokens[i + 1 :])) is None


def test_parse_returns_a_fresh_dict() -> None:
    first = parse(realize(BASE))
    assert first is not None
    first["subject"] = "mutated"
    assert parse(realize(BASE)) == BASE


@pytest.mark.parametrize(
    ("factors", "needle"),
    [
        ({**BASE, "subject": "astronaut"}, "'subject'"),
        ({**BASE, "tense": "pluperfect"}, "'pluperfect'"),
        ({k: v for k, v in BASE.items() if k != "mood"}, "'mood'"),
        ({**BASE, "colour": "blue"}, "'colour'"),
    ],
)
def test_realize_raises_on_bad_input(factors: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        realize(factors)


def test_factor_codes(combos: list[dict[str, str]]) -> None:
    codes = factor_codes(combos)
    assert codes.shape == (len(combos), len(FACTORS))
    assert np.issubdtype(codes.dtype, np.integer)
    assert codes[0].tolist() == [0] * len(FACTORS)
    assert codes[-1].tolist() == [len(v) - 1 for v in FACTORS.values()]
    for k, values in enumerate(FACTORS.values()):
        assert sorted(set(codes[:, k].tolist())) == list(range(len(values)))
    one = factor_codes([{**BASE, "verb": "call", "tense": "future"}])
    names = list(FACTORS)
    assert one[0, names.index("verb")] == FACTORS["verb"].index("call")
    assert one[0, names.index("tense")] == 2
    assert factor_codes([]).shape == (0, len(FACTORS))
    with pytest.raises(ValueError, match="'object'"):
        factor_codes([{**BASE, "object": "unicorn"}])


def test_factor_changes() -> None:
    other = {**BASE, "tense": "past", "subject": "farmer"}
    assert factor_changes(BASE, other) == ("subject", "tense")
    assert factor_changes(BASE, dict(BASE)) == ()
    assert factor_changes(None, BASE) == ()
    assert factor_changes(BASE, None) == ()
    assert factor_changes(parse(realize(BASE)), parse("the doctors see the small cat .")) == ("number",)


def test_generate_deterministic_disjoint_and_complete(sentences: list[str]) -> None:
    corpus = generate()
    assert isinstance(corpus, Corpus)
    assert corpus == generate()
    assert generate(seed=1).train.sentences != corpus.train.sentences
    assert corpus.name == "synthetic" and corpus.spec == "synthetic"
    assert corpus.factors == tuple(FACTORS)
    train, valid, test = (set(s.sentences) for s in (corpus.train, corpus.valid, corpus.test))
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert train | valid | test == set(sentences)
    n = len(sentences)
    assert len(corpus.valid) == round(0.05 * n) and len(corpus.test) == round(0.05 * n)
    for split in (corpus.train, corpus.valid, corpus.test):
        assert tuple(split.labels) == tuple(FACTORS)
        for i in (0, len(split) // 2, len(split) - 1):
            labels = {name: split.labels[name][i] for name in FACTORS}
            assert parse(split.sentences[i]) == labels


def test_generate_fractions() -> None:
    corpus = generate(seed=3, valid_fraction=0.1, test_fraction=0.0)
    assert len(corpus.test) == 0
    assert len(corpus.valid) == round(0.1 * len(synthetic.all_combinations()))
    with pytest.raises(ValueError, match="valid_fraction"):
        generate(valid_fraction=1.5)
    with pytest.raises(ValueError, match="training"):
        generate(valid_fraction=0.5, test_fraction=0.5)
