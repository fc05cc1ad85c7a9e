"""What a dimension changes on a corpus with label columns but no grammar: classifiers trained on its own text.

One TF-IDF vectoriser (word 1–2-grams) over a capped, seeded sample of the corpus's train split, and one
logistic regression per label column that `subsets.label_factors` counts as a factor. Each classifier's
accuracy and the majority-class baseline are measured on held-out sentences (the valid and test splits, which
training never sees). A `ClassifierLabeller` has the interface `validity` analyses take (`label(sentences)` →
one {factor: value} a sentence), so traversal ownership and interpolation measures work for a labelled CSV as
they do for a grammar: "a factor changed" = its predicted label changed. A classifier that does not beat its
baseline (99% Wilson lower bound of its accuracy at or below the best constant answer) is left out of the
labeller and reported as such: its labels are not measurements. Fitted objects live in this process only
(never pickled to disk).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.config import Tokenization
from vae_core.subsets import content_id, label_factors
from vae_core.text import tokenize
from vae_core.textset import Corpus, TextSet

MAX_TRAIN_ROWS = 20_000  # the built-in corpus's train split (18,662) fits whole; all 8 classifiers fit in ~2 s
MAX_HELDOUT_ROWS = 5_000  # a held-out accuracy from 5,000 sentences has a 95% interval of at most ±1.4 points
MAX_FEATURES = 20_000  # 1–2-grams kept (most frequent): bounds memory on a large corpus of real text
MIN_HELDOUT = 10  # fewer held-out sentences cannot show that a classifier beats its baseline
HELDOUT_FRACTION = 0.2  # share of train held out when the corpus has no valid or test sentences
C = 10.0  # inverse L2 strength: little regularisation, as label words are few and decisive
SEED = 0  # row sample and held-out carve-out
CACHE_ENTRIES = 8  # fitted labellers kept per process
Z_USABLE = 2.576  # 99% Wilson bound: a label the text cannot predict passes by chance about once in 200 columns


def _wilson_low(successes: int, n: int, z: float = Z_USABLE) -> float:
    if n <= 0:
        return 0.0
    p = successes / n
    denom = 1 + z * z / n
    return max(0.0, (p + z * z / (2 * n) - z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5)) / denom)


@dataclass(frozen=True)
class FactorClassifier:
    """One label column's classifier and how well it does on held-out sentences."""

    factor: str
    classes: tuple[str, ...]  # values seen in training, sorted
    accuracy: float  # held-out
    baseline: float  # held-out accuracy of always answering the train split's most common value
    accuracy_low: float  # 99% Wilson lower bound of the accuracy
    n_train: int
    n_heldout: int
    usable: bool  # accuracy_low > the best constant answer's held-out accuracy, and n_heldout >= MIN_HELDOUT
    model: Any = field(repr=False, compare=False, default=None)  # sklearn LogisticRegression (in memory only)

    @property
    def why_not(self) -> str:
        """Why the classifier is left out ('' when usable)."""
        if self.usable:
            return ""
        if self.n_heldout < MIN_HELDOUT:
            return f"only {self.n_heldout} held-out sentences (at least {MIN_HELDOUT} are needed)"
        return (f"held-out accuracy {self.accuracy:.1%} does not clearly beat the majority baseline "
                f"{self.baseline:.1%} (its 99% lower bound, {self.accuracy_low:.1%}, is not above the best constant "
                "answer)")

    def to_json(self) -> dict[str, Any]:
        return {
            "factor": self.factor, "n_values": len(self.classes), "accuracy": self.accuracy,
            "baseline": self.baseline, "accuracy_low": self.accuracy_low, "n_train": self.n_train,
            "n_heldout": self.n_heldout, "usable": self.usable, "why_not": self.why_not,
        }


class ClassifierLabeller:
    """Sentences → {factor: predicted value} for the usable classifiers (the `validity.Labeller` interface).

    Every sentence gets labels (`validates` is False: a classifier cannot tell a corpus sentence from another).
    """

    kind = "classifiers"
    validates = False

    def __init__(self, vectorizer: Any, classifiers: Sequence[FactorClassifier], lowercase: bool,
                 tokenization: Tokenization, max_tokens: int, skipped: Sequence[str], heldout: str) -> None:
        self._vectorizer = vectorizer
        self.classifiers = tuple(classifiers)  # all of them, usable or not
        self.lowercase = lowercase
        self.tokenization = tokenization
        self.max_tokens = max_tokens  # tokens in the longest training sentence (decoding leaves room beyond it)
        self.skipped = tuple(skipped)  # label columns that are not factors (label_factors' rule)
        self.heldout = heldout  # which sentences the accuracies were measured on
        self._usable = tuple(c for c in self.classifiers if c.usable)
        self.factors: dict[str, tuple[str, ...]] = {c.factor: c.classes for c in self._usable}

    def _features(self, sentences: Sequence[str]) -> Any:
        return self._vectorizer.transform([_normalise(s, self.lowercase, self.tokenization) for s in sentences])

    def label_with_confidence(self, sentences: Sequence[str]) -> tuple[list[dict[str, str]], list[dict[str, float]]]:
        """(labels, confidences): per sentence {factor: predicted value} and {factor: its probability}."""
        sentences = [s if isinstance(s, str) else "" for s in sentences]
        labels: list[dict[str, str]] = [{} for _ in sentences]
        confidence: list[dict[str, float]] = [{} for _ in sentences]
        if not sentences or not self._usable:
            return labels, confidence
        X = self._features(sentences)  # (N, features) sparse
        for c in self._usable:
            proba = c.model.predict_proba(X)  # (N, classes)
            best = proba.argmax(axis=1)
            for i, (k, p) in enumerate(zip(best.tolist(), proba.max(axis=1).tolist(), strict=True)):
                labels[i][c.factor] = str(c.model.classes_[k])
                confidence[i][c.factor] = float(p)
        return labels, confidence

    def label(self, sentences: Sequence[str]) -> list[dict[str, str]]:
        """Per sentence {factor: predicted value} (every sentence gets one value per usable factor)."""
        return self.label_with_confidence(sentences)[0]

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what labelled the sentences and how well each classifier does on held-out sentences."""
        return {
            "kind": self.kind,
            "method": "TF-IDF word 1–2-grams + logistic regression, trained on the corpus's train split",
            "heldout": self.heldout,
            "classifiers": [c.to_json() for c in self.classifiers],
            "factors": list(self.factors),
            "unusable": {c.factor: c.why_not for c in self.classifiers if not c.usable},
            "skipped_labels": list(self.skipped),
        }


def _normalise(sentence: str, lowercase: bool, tokenization: Tokenization) -> str:
    """The sentence as the lab's tokens (what a decoded sentence is made of), space-separated."""
    return " ".join(tokenize(sentence, lowercase=lowercase, tokenization=tokenization))


def _seeded(n: int, k: int, seed: int) -> np.ndarray:
    """All of range(n) when k >= n, else k of them (seeded), ascending."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _heldout(corpus: Corpus, seed: int) -> tuple[TextSet, TextSet, str]:
    """(train, held-out, what the held-out sentences are): valid + test, or a seeded share of train."""
    parts = [(name, corpus.split(name)) for name in ("valid", "test") if len(corpus.split(name))]
    if parts:
        sentences = tuple(s for _, p in parts for s in p.sentences)
        columns = set(corpus.train.labels)
        labels = {c: tuple(v for _, p in parts for v in p.labels.get(c, ("",) * len(p))) for c in columns}
        return corpus.train, TextSet(sentences, labels), " + ".join(name for name, _ in parts) + " splits"
    n = len(corpus.train)
    order = np.random.default_rng(seed).permutation(n)
    k = round(n * HELDOUT_FRACTION)
    held, train = np.sort(order[:k]), np.sort(order[k:])
    return (corpus.train.select(train.tolist()), corpus.train.select(held.tolist()),
            f"{HELDOUT_FRACTION:.0%} of the train split held out")


def train_labeller(
    corpus: Corpus, lowercase: bool = False, tokenization: Tokenization = "lab", max_rows: int = MAX_TRAIN_ROWS,
    max_features: int = MAX_FEATURES, seed: int = SEED,
) -> ClassifierLabeller | None:
    """Classifiers for the corpus's factor-like label columns (`subsets.label_factors`), or None without any.

    Trained on at most `max_rows` train sentences (seeded sample), measured on at most MAX_HELDOUT_ROWS
    held-out ones. Sentences are tokenised as the run was (`lowercase`, `tokenization`). Cached per process
    by the corpus's content and these settings.
    """
    key = "|".join((content_id(corpus.train.sentences, corpus.train.labels),
                    content_id(corpus.valid.sentences + corpus.test.sentences), str(lowercase), tokenization,
                    str(max_rows), str(max_features), str(seed), ",".join(corpus.factors)))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    labeller = _train(corpus, lowercase, tokenization, max_rows, max_features, seed)
    with _LOCK:
        _CACHE[key] = labeller
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return labeller


def _train(corpus: Corpus, lowercase: bool, tokenization: Tokenization, max_rows: int, max_features: int,
           seed: int) -> ClassifierLabeller | None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, held, heldout_name = _heldout(corpus, seed)
    known = tuple(corpus.factors) if corpus.factors and all(f in train.labels for f in corpus.factors) else ()
    labelled = label_factors(train.labels, known)
    if labelled is None or len(train) < 2:
        return None
    _, names, _, skipped = labelled
    rows = _seeded(len(train), max_rows, seed)
    held_rows = _seeded(len(held), MAX_HELDOUT_ROWS, seed + 1)
    texts = [_normalise(train.sentences[i], lowercase, tokenization) for i in rows.tolist()]
    held_texts = [_normalise(held.sentences[i], lowercase, tokenization) for i in held_rows.tolist()]
    vectorizer = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False, ngram_range=(1, 2),
                                 max_features=max_features, sublinear_tf=True)
    X = vectorizer.fit_transform(texts)  # (n_train, features) sparse
    X_held = vectorizer.transform(held_texts) if held_texts else None  # (n_held, features)
    classifiers = []
    for name in names:
        y = np.array([str(train.labels[name][i]) for i in rows.tolist()], dtype=object)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:  # the sample kept one value only: nothing to learn
            continue
        model = LogisticRegression(C=C, max_iter=1000, random_state=seed).fit(X, y)
        truth = held.labels.get(name, ())
        y_held = np.array([str(truth[i]) for i in held_rows.tolist()], dtype=object) if len(truth) else np.array([])
        n_held = int(y_held.size)
        correct = int((model.predict(X_held) == y_held).sum()) if n_held else 0
        majority = classes[int(np.argmax(counts))]
        base = float((y_held == majority).mean()) if n_held else 0.0
        acc = correct / n_held if n_held else 0.0
        low = _wilson_low(correct, n_held)
        best_constant = float(np.unique(y_held, return_counts=True)[1].max() / n_held) if n_held else 1.0
        classifiers.append(FactorClassifier(
            name, tuple(str(c) for c in model.classes_), acc, base, low, int(rows.size), n_held,
            n_held >= MIN_HELDOUT and low > max(base, best_constant), model,
        ))
    if not classifiers:
        return None
    max_tokens = max((len(t.split()) for t in texts), default=1)
    return ClassifierLabeller(vectorizer, classifiers, lowercase, tokenization, max_tokens, skipped, heldout_name)


def corpus_labeller(
    spec: str, text_column: str | None = None, seed: int = 0, lowercase: bool = False,
    tokenization: Tokenization = "lab",
) -> ClassifierLabeller | None:
    """`train_labeller` on the corpus a spec names (a labelled CSV/TSV/JSONL, a folder of splits), loaded with the
    run's split `seed`; None for a grammar corpus (its parser labels exactly) or a corpus without label columns.

    The caller checks a spec that comes from a run file first (`corpus.check_run_corpus_spec`). Cached per
    process by the spec, the file's size and modification time, and the settings (CorpusError when unreadable).
    """
    from vae_core.grammar import is_grammar_spec

    if not spec or is_grammar_spec(spec) or spec == "ptb":
        return None
    try:
        st = Path(spec).expanduser().stat()
        stamp = f"{st.st_mtime_ns}:{st.st_size}"
    except OSError:
        stamp = ""
    key = hashlib.sha256(repr((os.fspath(spec), text_column, seed, lowercase, tokenization, stamp)).encode())
    key_text = "spec:" + key.hexdigest()
    with _LOCK:
        if key_text in _CACHE:
            _CACHE.move_to_end(key_text)
            return _CACHE[key_text]
    from vae_core.corpus import load_corpus

    corpus = load_corpus(spec, text_column, seed=seed)
    labeller = train_labeller(corpus, lowercase=lowercase, tokenization=tokenization)
    with _LOCK:
        _CACHE[key_text] = labeller
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return labeller


def accuracy_rows(description: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per classifier of `ClassifierLabeller.describe()` (factor, accuracy, baseline, held-out, used)."""
    return [
        {"factor": c["factor"], "values": c["n_values"], "held-out accuracy": c["accuracy"],
         "majority baseline": c["baseline"], "held-out sentences": c["n_heldout"], "used": c["usable"]}
        for c in description.get("classifiers", ())
    ]


def ownership_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per dimension of a `validity.traversal_factor_effects` report: top label, change rate, and per
    factor the sole share (changing steps where only that factor's label changes)."""
    factors = list(report.get("labeller", {}).get("factors", ()))
    return [
        {"dim": f"z{s['dim']}", "top label": s["top_factor"] or "—", "change rate": round(s["change_rate"], 3),
         **{f: round(s["sole_share"].get(f, 0.0), 3) for f in factors}}
        for s in report.get("per_dim", ())
    ]


_LOCK = threading.Lock()
_CACHE: OrderedDict[str, ClassifierLabeller | None] = OrderedDict()


__all__ = [
    "ClassifierLabeller",
    "FactorClassifier",
    "MAX_FEATURES",
    "MAX_TRAIN_ROWS",
    "accuracy_rows",
    "corpus_labeller",
    "ownership_rows",
    "train_labeller",
]
