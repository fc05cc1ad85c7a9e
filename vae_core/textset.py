"""The data types of a corpus: a split's sentences with aligned label columns (TextSet), and a named
corpus of three splits (Corpus). Readers (`corpus`) and the built-in corpus (`synthetic`) both build them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TextSet:
    """Sentences of one split, with label columns aligned to them (column -> one value each)."""

    sentences: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for col, values in self.labels.items():
            if len(values) != len(self.sentences):
                raise ValueError(
                    f"label column {col!r} has {len(values)} values for {len(self.sentences)} sentences"
                )

    def __len__(self) -> int:
        return len(self.sentences)

    def select(self, indices: Sequence[int]) -> TextSet:
        """The sentences (and labels) at these indices, in this order."""
        idx = list(indices)
        return TextSet(
            tuple(self.sentences[i] for i in idx),
            {c: tuple(v[i] for i in idx) for c, v in self.labels.items()},
        )


@dataclass(frozen=True)
class Corpus:
    """A named corpus with train/valid/test splits.

    `factors` names the label columns that are known generative factors (the built-in corpus);
    other label columns are plain labels. `spec` is how to load it again ("synthetic", "ptb",
    or a path). `truncated` counts sentences cut to the max length when read.
    """

    name: str
    train: TextSet
    valid: TextSet
    test: TextSet
    factors: tuple[str, ...] = ()
    spec: str = ""
    truncated: int = 0

    def split(self, name: str) -> TextSet:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        return getattr(self, name)

    @property
    def label_columns(self) -> tuple[str, ...]:
        return tuple(self.train.labels)
