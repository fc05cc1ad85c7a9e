"""Text-side measures of what a model generates: diversity of prior samples and smoothness of decoded paths.

Pure functions of tokenised sentences (lists of words); nothing here touches a model.

- Self-BLEU (Zhu et al. 2018, Texygen): each sample's BLEU against all the other samples as references, averaged
  over samples. 1 = every sample repeats the others, near 0 = no shared n-grams. Texygen's `SelfBleu`:
  NLTK `sentence_bleu`, uniform weights up to n, smoothing method 1, the closest reference length for the
  brevity penalty. The BLEU formula is `vae_core.metrics.bleu_from_counts`, shared with reconstruction BLEU.
- distinct-n (Li et al. 2016): distinct n-grams over all n-grams of all samples.
- interpolation smoothness (LangSpace, `InterpolationOps.interpolation_smoothness`; the INN measure of Zhang
  et al.): for a decoded path s_0 … s_T, d(s_0, s_T) / Σ_t d(s_t, s_{t+1}). 1 = the path only ever moves towards
  its end; lower = it wanders or comes back. LangSpace's d is the word mover's distance over word2vec vectors
  (stop words removed), which needs a 3.6 GB download; here d is the word-level edit distance (Levenshtein over
  words), a metric too, so the ratio is also in [0, 1] by the triangle inequality.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from vae_core.metrics import _ngrams, bleu_from_counts

SELF_BLEU_N = 4  # Texygen reports Self-BLEU-2..5; 4 matches the reconstruction BLEU's order
INTERPOLATION_STEPS = 11  # LangSpace's linearize_interpolate(size=10): 11 points, both ends included


def self_bleu(sentences: Sequence[Sequence[str]], max_n: int = SELF_BLEU_N) -> float:
    """Mean over sentences of BLEU(sentence | all the others as references); NaN with fewer than 2 sentences.

    Multi-reference BLEU as NLTK's `sentence_bleu`: an n-gram's matches are clipped at its largest count in
    any reference, and the reference length is the one closest to the hypothesis's (the shorter on a tie).
    Linear in the total number of n-grams (each n-gram's two largest counts are kept), so 1,000 samples take
    milliseconds.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    sents = [list(s) for s in sentences]
    if len(sents) < 2:
        return math.nan
    grams = [[_ngrams(s, n) for n in range(1, max_n + 1)] for s in sents]  # [N][max_n] Counter
    best: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(max_n)]  # g -> (top, who, second)
    for i, per_order in enumerate(grams):
        for n, counter in enumerate(per_order):
            table = best[n]
            for g, c in counter.items():
                top, who, second = table.get(g, (0, -1, 0))
                if c > top:
                    table[g] = (c, i, top)
                elif c > second:
                    table[g] = (top, who, c)
    lengths = Counter(len(s) for s in sents)
    total = 0.0
    for i, s in enumerate(sents):
        matches, counts = [], []
        for n, counter in enumerate(grams[i]):
            m = 0
            for g, c in counter.items():
                top, who, second = best[n][g]
                m += min(c, second if who == i else top)
            matches.append(m)
            counts.append(max(0, len(s) - n))
        others = [ln for ln, k in lengths.items() if k - (ln == len(s)) > 0]
        ref_len = min(others, key=lambda ln: (abs(ln - len(s)), ln))
        total += bleu_from_counts(matches, counts, len(s), ref_len)
    return total / len(sents)


def distinct_n(sentences: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over the sentences (Li et al. 2016); NaN when there is no n-gram."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple] = set()
    count = 0
    for s in sentences:
        s = list(s)
        for i in range(len(s) - n + 1):
            seen.add(tuple(s[i:i + n]))
            count += 1
    return len(seen) / count if count else math.nan


def generation_diversity(sentences: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Self-BLEU (n = 2, 3, 4; 'self_bleu' is n = 4), distinct-1/2 and the share of distinct sentences."""
    sents = [list(s) for s in sentences]
    return {
        "self_bleu": self_bleu(sents, SELF_BLEU_N),
        "self_bleu_2": self_bleu(sents, 2),
        "self_bleu_3": self_bleu(sents, 3),
        "distinct_1": distinct_n(sents, 1),
        "distinct_2": distinct_n(sents, 2),
        "distinct_sentences": len({tuple(s) for s in sents}) / len(sents) if sents else math.nan,
        "n": len(sents),
    }


def word_edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (insert, delete, substitute a word: 1 each)."""
    a, b = list(a), list(b)
    previous = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        current = [i]
        for j, wb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (wa != wb)))
        previous = current
    return previous[-1]


def interpolation_smoothness(path: Sequence[Sequence[str]]) -> float:
    """LangSpace's interpolation smoothness of one decoded path (word lists s_0 … s_T), word edit distance as d:
    d(s_0, s_T) / Σ_t d(s_t, s_{t+1}) in [0, 1]; NaN when the path never changes (nothing to measure)."""
    path = [list(s) for s in path]
    if len(path) < 2:
        raise ValueError(f"a path needs at least 2 sentences, got {len(path)}")
    steps = sum(word_edit_distance(path[t], path[t + 1]) for t in range(len(path) - 1))
    return word_edit_distance(path[0], path[-1]) / steps if steps else math.nan


def path_smoothness(paths: Sequence[Sequence[Sequence[str]]]) -> dict[str, Any]:
    """Mean interpolation smoothness over paths that change ('smoothness'), with 'n_paths' and 'n_unchanged'
    (paths that decode to one sentence throughout, left out of the mean)."""
    values = [interpolation_smoothness(p) for p in paths]
    finite = [v for v in values if not math.isnan(v)]
    return {
        "smoothness": sum(finite) / len(finite) if finite else math.nan,
        "n_paths": len(values),
        "n_unchanged": len(values) - len(finite),
    }


__all__ = [
    "INTERPOLATION_STEPS",
    "SELF_BLEU_N",
    "distinct_n",
    "generation_diversity",
    "interpolation_smoothness",
    "path_smoothness",
    "self_bleu",
    "word_edit_distance",
]
