"""Subsets of sentences to analyse (a seeded sample of a corpus, or an uploaded file) and their label rules.

A `Subset` holds sentences with their label columns and a content hash (`subset_id`) that keys every
cache built from it. `label_factors` is THE rule for which label columns are factors, used by
`vae_core eval`, the Disentanglement page and the Compare figures alike.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vae_core.corpus import Corpus, TextSet, decode_head

# A label column with more distinct values is an id or free text, not a factor. 100 (the value `vae_core eval`
# has always used, so recorded evaluations keep their meaning): a corpus's categorical columns (topics, authors,
# the built-in factors) stay under it, while ids and free text on any corpus of a few hundred rows exceed it.
MAX_LABEL_VALUES = 100


@dataclass(frozen=True, eq=False)
class Subset:
    """Sentences to analyse, their label columns (column -> one value each) and where each came from."""

    sentences: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]
    origin: tuple[str, ...]  # per sentence: its split ("test", "valid", ...) or the uploaded file's name
    source: str  # one line for the page: what these sentences are
    subset_id: str  # content hash: part of every cache key
    factor_names: tuple[str, ...] = ()  # label columns that are the corpus's known generative factors
    factor_values: Mapping[str, tuple[str, ...]] | None = None  # their values in the grammar's order, if known

    def __len__(self) -> int:
        return len(self.sentences)


def content_id(sentences: Sequence[str], labels: Mapping[str, Sequence[str]] | None = None) -> str:
    """16 hex chars of the sha256 of the sentences and label columns (order matters)."""
    h = hashlib.sha256()
    for s in sentences:
        h.update(s.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    for col in sorted(labels or {}):
        h.update(b"\x01" + col.encode("utf-8", "surrogatepass"))
        for v in (labels or {})[col]:
            h.update(str(v).encode("utf-8", "surrogatepass") + b"\x00")
    return h.hexdigest()[:16]


def subset_indices(n_total: int, n: int, seed: int = 0) -> list[int]:
    """All indices when n >= n_total, else n of them from a seeded permutation, in ascending order."""
    if n >= n_total:
        return list(range(n_total))
    return sorted(np.random.default_rng(seed).permutation(n_total)[: max(0, n)].tolist())


def corpus_subset(corpus: Corpus, splits: Sequence[str], n: int, seed: int = 0) -> Subset:
    """Up to n sentences of the corpus's `splits` (concatenated in that order; a seeded sample when more)."""
    sentences: list[str] = []
    origin: list[str] = []
    columns = list(corpus.split(splits[0]).labels) if splits else []
    labels: dict[str, list[str]] = {c: [] for c in columns}
    for split in splits:
        data = corpus.split(split)
        sentences.extend(data.sentences)
        origin.extend([split] * len(data))
        for c in columns:
            labels[c].extend(data.labels.get(c, ("",) * len(data)))
    idx = subset_indices(len(sentences), n, seed)
    picked = tuple(sentences[i] for i in idx)
    picked_labels = {c: tuple(v[i] for i in idx) for c, v in labels.items()}
    what = " + ".join(splits)
    source = f"{len(idx):,} of the {len(sentences):,} {what} sentences of the corpus '{corpus.name}'"
    return Subset(
        picked,
        picked_labels,
        tuple(origin[i] for i in idx),
        source,
        content_id(picked, picked_labels) + f"-{what.replace(' + ', '')}",
        tuple(f for f in corpus.factors if f in picked_labels),
        _grammar_values(corpus),
    )


def _grammar_values(corpus: Corpus) -> Mapping[str, tuple[str, ...]] | None:
    """The corpus grammar's factor values (`grammar.grammar_for_corpus` of its spec), or None without one."""
    from vae_core.grammar import GrammarError, grammar_for_corpus

    if not corpus.factors:
        return None
    try:
        grammar = grammar_for_corpus(corpus.spec)
    except GrammarError:
        return None
    return dict(grammar.factors) if grammar is not None and tuple(grammar.factors) == tuple(corpus.factors) else None


def upload_subset(data: TextSet, name: str, n: int, seed: int = 0) -> Subset:
    """Up to n sentences of an uploaded TextSet (a seeded sample when more), with its label columns."""
    idx = subset_indices(len(data), n, seed)
    picked = data.select(idx)
    labels = {c: tuple(v) for c, v in picked.labels.items()}
    source = f"{len(picked):,} of the {len(data):,} sentences of the uploaded file '{name}'"
    return Subset(picked.sentences, labels, (name,) * len(picked), source, content_id(picked.sentences, labels))


def sample_subset(subset: Subset, n: int, seed: int = 0) -> Subset:
    """The subset itself when n >= its size, else n of its rows (seeded, in order) with a new subset_id."""
    if n >= len(subset):
        return subset
    idx = subset_indices(len(subset), n, seed)
    sentences = tuple(subset.sentences[i] for i in idx)
    labels = {c: tuple(v[i] for i in idx) for c, v in subset.labels.items()}
    return Subset(
        sentences,
        labels,
        tuple(subset.origin[i] for i in idx),
        f"{len(idx):,} sampled from {subset.source}",
        content_id(sentences, labels),
        subset.factor_names,
        subset.factor_values,
    )


def split_sample(data: TextSet, limit: int, seed: int = 0) -> TextSet:
    """All of `data` when it has at most `limit` rows, else `limit` rows drawn without replacement (seeded),
    in corpus order, with their labels."""
    n = len(data)
    if n <= limit:
        return data
    return data.select(np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False)).tolist())


# --------------------------------------------------------------------------- label columns → factors


def categorical_columns(labels: Mapping[str, Sequence[str]], max_values: int = MAX_LABEL_VALUES) -> list[str]:
    """Label columns with 2..max_values distinct values (those that can colour a map or act as factors)."""
    return [c for c, v in labels.items() if 2 <= len(set(v)) <= max_values]


def label_factors(
    labels: Mapping[str, Sequence[str]], factor_names: Sequence[str] = (), max_values: int = MAX_LABEL_VALUES,
    factor_values: Mapping[str, Sequence[str]] | None = None,
) -> tuple[np.ndarray, list[str], list[list[str]], list[str]] | None:
    """(factors (N, K) int, names, value names, skipped columns) of the label columns, or None without any.

    A grammar's factors (`factor_names`, all present, with their values in order: `factor_values`, a
    grammar's `factors`; the built-in grammar's when `factor_names` are its factors) are numbered in that
    order; otherwise the columns with 2..max_values distinct values are factors, their values numbered in
    sorted order (`disentanglement.encode_labels`), and the other columns are skipped.
    """
    from vae_core.grammar import builtin_grammar, factor_codes

    if not labels:
        return None
    if factor_values is None and factor_names and tuple(factor_names) == tuple(builtin_grammar(check=False).factors):
        factor_values = builtin_grammar(check=False).factors
    known = tuple(factor_values or ())
    if factor_names and tuple(factor_names) == known and all(f in labels for f in known):
        n = len(next(iter(labels.values())))
        rows = [{f: labels[f][i] for f in known} for i in range(n)]
        try:
            return factor_codes(factor_values, rows), list(known), [list(factor_values[f]) for f in known], []
        except ValueError:
            pass  # not the grammar's values after all: treat them as plain labels
    from vae_core.disentanglement import encode_labels

    keep = categorical_columns(labels, max_values)
    skipped = [c for c in labels if c not in keep]
    if not keep:
        return None
    factors, names, values = encode_labels({c: labels[c] for c in keep})
    return factors, names, values, skipped


def label_values(labels: Mapping[str, Sequence[str]], max_values: int = MAX_LABEL_VALUES) -> dict[str, list[str]]:
    """Each factor column (see categorical_columns) with its distinct values, sorted."""
    return {c: sorted(set(labels[c])) for c in categorical_columns(labels, max_values)}


# --------------------------------------------------------------------------- sentences and uploads (pure)


def text_matches(sentences: Sequence[str], query: str) -> list[int]:
    """Rows whose sentence contains `query` (case-insensitive substring; whitespace runs collapsed)."""
    q = " ".join(query.split()).casefold()
    if not q:
        return []
    return [i for i, s in enumerate(sentences) if q in " ".join(s.split()).casefold()]


def csv_header(data: bytes, fmt: str = "csv") -> list[str]:
    """The header row of CSV/TSV bytes ([] when unreadable)."""
    decoded = decode_head(data, 65536)  # UTF-8, or UTF-16/32 with a byte-order mark, as parse_text reads it
    reader = csv.reader(io.StringIO(decoded, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    for row in reader:
        if any(c.strip() for c in row):
            return [c.strip() for c in row]
    return []


__all__ = [
    "MAX_LABEL_VALUES",
    "Subset",
    "categorical_columns",
    "content_id",
    "corpus_subset",
    "csv_header",
    "label_factors",
    "label_values",
    "sample_subset",
    "split_sample",
    "subset_indices",
    "text_matches",
    "upload_subset",
]
