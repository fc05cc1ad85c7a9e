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

The corpus is data: the factor grammar `vae_core/grammars/builtin.json`, run by `vae_core.grammar`.
This module keeps the names the rest of the lab has always used for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from vae_core.grammar import Grammar, builtin_grammar
from vae_core.textset import Corpus

GRAMMAR: Grammar = builtin_grammar(check=False)  # enumerated on first use (realize, parse, generate)
FACTORS: dict[str, tuple[str, ...]] = dict(GRAMMAR.factors)


def realize(factors: Mapping[str, str]) -> str:
    """The one sentence for this combination of factor values (lower-case, space-separated tokens).

    Raises ValueError naming the factor when a factor is missing or unknown or has a bad value.
    """
    return GRAMMAR.realize(factors)


def all_combinations() -> list[dict[str, str]]:
    """Every combination of factor values, in itertools.product order over FACTORS."""
    return GRAMMAR.all_combinations()


def parse(sentence: str) -> dict[str, str] | None:
    """The factors that realize this sentence, or None when it is not a realized sentence.

    Whitespace is normalised (runs of spaces, leading and trailing spaces); anything else must
    match exactly, so '<unk>' tokens, wrong agreement and garbage give None.
    """
    return GRAMMAR.parse(sentence)


def factor_codes(factor_dicts: Iterable[Mapping[str, str]]) -> np.ndarray:
    """Factor values as indices into FACTORS[name]: int64 array of shape (N, K), K = len(FACTORS).

    Raises ValueError for a missing factor or a value not in FACTORS.
    """
    return GRAMMAR.factor_codes(factor_dicts)


def factor_changes(a: Mapping[str, str] | None, b: Mapping[str, str] | None) -> tuple[str, ...]:
    """Names of the factors (in FACTORS order) whose values differ; empty if either is None."""
    return GRAMMAR.factor_changes(a, b)


def generate(seed: int = 0, valid_fraction: float = 0.05, test_fraction: float = 0.05) -> Corpus:
    """The whole corpus, shuffled with numpy.random.default_rng(seed) and split train/valid/test.

    Valid and test take round(fraction · N) sentences each; every split has one label column per
    factor. The same seed always gives the same corpus.
    """
    return GRAMMAR.generate(seed, valid_fraction, test_fraction, name="synthetic", spec="synthetic")
