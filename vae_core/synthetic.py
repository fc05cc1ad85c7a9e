"""The built-in English corpus with known generative factors (the text counterpart of dSprites).

Every sentence is one realization of eight factors, four of content (subject, verb, object, the
object's adjective) and four of form (tense, the subject's grammatical number, polarity, mood).
Each combination gives exactly one sentence and each sentence comes
from exactly one combination, so `parse(realize(f)) == f` for every `f`:

    subject=doctor verb=see object=cat adjective=small tense=present number=singular
    polarity=affirmative mood=statement        ->  "the doctor sees the small cat ."
    ... number=plural tense=past polarity=negative mood=question
                                               ->  "did the doctors not see the small cat ?"

6·6·6·4·3·2·2·2 = 20,736 sentences of 7 to 9 tokens over a vocabulary of 48 words. Because the
factors are known, a model trained on it can be scored for disentanglement (MIG, DCI, SAP), and
its decoded samples and interpolation paths for validity (`parse` succeeds). Nothing is
downloaded; `generate(seed)` always returns the same split.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping

import numpy as np

from vae_core.textset import Corpus, TextSet

FACTORS: dict[str, tuple[str, ...]] = {
    "subject": ("doctor", "teacher", "farmer", "student", "pilot", "singer"),
    "verb": ("see", "like", "help", "call", "watch", "follow"),
    "object": ("cat", "dog", "horse", "bird", "rabbit", "sheep"),
    "adjective": ("small", "old", "red", "happy"),
    "tense": ("past", "present", "future"),
    "number": ("singular", "plural"),
    "polarity": ("affirmative", "negative"),
    "mood": ("statement", "question"),
}

# Verb forms: (third person singular present, simple past). The base form is the factor value.
_VERB_FORMS: dict[str, tuple[str, str]] = {
    "see": ("sees", "saw"),
    "like": ("likes", "liked"),
    "help": ("helps", "helped"),
    "call": ("calls", "called"),
    "watch": ("watches", "watched"),
    "follow": ("follows", "followed"),
}

# Subject plurals (all regular here, kept as a table so an irregular noun is one line to add).
_PLURALS: dict[str, str] = {noun: noun + "s" for noun in FACTORS["subject"]}


def _check(factors: Mapping[str, str]) -> None:
    """Raise ValueError naming the first missing, unknown or invalid factor."""
    for name in factors:
        if name not in FACTORS:
            raise ValueError(f"unknown factor {name!r} (factors: {', '.join(FACTORS)})")
    for name, values in FACTORS.items():
        if name not in factors:
            raise ValueError(f"missing factor {name!r} (factors: {', '.join(FACTORS)})")
        if factors[name] not in values:
            raise ValueError(f"factor {name!r} has no value {factors[name]!r} (values: {', '.join(values)})")


def _auxiliary(tense: str, plural: bool) -> str:
    """The auxiliary used for negation and questions: do/does, did, will."""
    if tense == "present":
        return "do" if plural else "does"
    return "did" if tense == "past" else "will"


def realize(factors: Mapping[str, str]) -> str:
    """The one sentence for this combination of factor values (lower-case, space-separated tokens).

    Raises ValueError naming the factor when a factor is missing or unknown or has a bad value.
    """
    _check(factors)
    plural = factors["number"] == "plural"
    subject = ["the", _PLURALS[factors["subject"]] if plural else factors["subject"]]
    obj = ["the", factors["adjective"], factors["object"]]
    verb = factors["verb"]
    tense = factors["tense"]
    negative = factors["polarity"] == "negative"
    question = factors["mood"] == "question"

    if question:
        aux = _auxiliary(tense, plural)
        tokens = [aux, *subject, *(["not"] if negative else []), verb, *obj, "?"]
    elif negative:
        tokens = [*subject, _auxiliary(tense, plural), "not", verb, *obj, "."]
    else:
        if tense == "future":
            verb_phrase = ["will", verb]
        elif tense == "past":
            verb_phrase = [_VERB_FORMS[verb][1]]
        else:
            verb_phrase = [verb if plural else _VERB_FORMS[verb][0]]
        tokens = [*subject, *verb_phrase, *obj, "."]
    return " ".join(tokens)


def all_combinations() -> list[dict[str, str]]:
    """Every combination of factor values, in itertools.product order over FACTORS."""
    names = tuple(FACTORS)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*FACTORS.values())]


@functools.cache
def _realized() -> tuple[tuple[tuple[str, ...], str], ...]:
    """(factor values, sentence) for every combination, in all_combinations() order."""
    names = tuple(FACTORS)
    return tuple(
        (values, realize(dict(zip(names, values, strict=True)))) for values in itertools.product(*FACTORS.values())
    )


@functools.cache
def _sentence_table() -> dict[str, tuple[str, ...]]:
    """Sentence -> factor values, over every combination."""
    return {sentence: values for values, sentence in _realized()}


def parse(sentence: str) -> dict[str, str] | None:
    """The factors that realize this sentence, or None when it is not a realized sentence.

    Whitespace is normalised (runs of spaces, leading and trailing spaces); anything else must
    match exactly, so '<unk>' tokens, wrong agreement and garbage give None.
    """
    if not isinstance(sentence, str):
        return None
    values = _sentence_table().get(" ".join(sentence.split()))
    if values is None:
        return None
    return dict(zip(FACTORS, values, strict=True))


def factor_codes(factor_dicts: Iterable[Mapping[str, str]]) -> np.ndarray:
    """Factor values as indices into FACTORS[name]: int64 array of shape (N, K), K = len(FACTORS).

    Raises ValueError for a missing factor or a value not in FACTORS.
    """
    index = {name: {value: i for i, value in enumerate(values)} for name, values in FACTORS.items()}
    rows = []
    for n, factors in enumerate(factor_dicts):
        row = []
        for name, lookup in index.items():
            if name not in factors:
                raise ValueError(f"row {n} has no factor {name!r}")
            code = lookup.get(factors[name])
            if code is None:
                raise ValueError(
                    f"row {n}: factor {name!r} has no value {factors[name]!r} (values: {', '.join(FACTORS[name])})"
                )
            row.append(code)
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(FACTORS))


def factor_changes(a: Mapping[str, str] | None, b: Mapping[str, str] | None) -> tuple[str, ...]:
    """Names of the factors (in FACTORS order) whose values differ; empty if either is None."""
    if a is None or b is None:
        return ()
    return tuple(name for name in FACTORS if a.get(name) != b.get(name))


def generate(seed: int = 0, valid_fraction: float = 0.05, test_fraction: float = 0.05) -> Corpus:
    """The whole corpus, shuffled with numpy.random.default_rng(seed) and split train/valid/test.

    Valid and test take round(fraction · N) sentences each; every split has one label column per
    factor. The same seed always gives the same corpus.
    """
    for label, fraction in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {fraction}")
    realized = _realized()
    n = len(realized)
    n_valid = round(n * valid_fraction)
    n_test = round(n * test_fraction)
    if n_valid + n_test >= n:
        raise ValueError(
            f"valid_fraction + test_fraction must leave sentences for training, got {valid_fraction} + {test_fraction}"
        )
    order = np.random.default_rng(seed).permutation(n)
    names = tuple(FACTORS)

    def text_set(indices: np.ndarray) -> TextSet:
        rows = [realized[i] for i in indices.tolist()]
        return TextSet(
            sentences=tuple(sentence for _, sentence in rows),
            labels={name: tuple(values[k] for values, _ in rows) for k, name in enumerate(names)},
        )

    return Corpus(
        name="synthetic",
        train=text_set(order[n_valid + n_test :]),
        valid=text_set(order[:n_valid]),
        test=text_set(order[n_valid : n_valid + n_test]),
        factors=names,
        spec="synthetic",
    )
