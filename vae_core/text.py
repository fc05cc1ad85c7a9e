"""Word tokenizer and vocabulary with fixed special ids."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vae_core.config import TOKENIZATIONS, Tokenization

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

# Words (with inner apostrophes or dots, as in "n't", "u.s."), bracketed specials such as <unk>,
# or any single other non-space character (punctuation, emoji, symbols).
_TOKEN_RE = re.compile(r"<[a-z]+>|\w+(?:['.]\w+)*'?|'\w+|[^\w\s]", re.UNICODE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def tokenize(text: str, lowercase: bool = False, tokenization: Tokenization = "lab") -> list[str]:
    """Split text into word tokens, deterministically. Control characters are dropped.

    "lab" (the default): whitespace-separated pieces, with punctuation glued to a word split off
    ("mr." -> "mr .", "a-b" -> "a - b"; "u.s." -> "u.s ."). "whitespace": the space-separated pieces
    as given, for text that is already tokenised (Penn Treebank: "mr.", "u.s.", "a-b" stay one word).
    """
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"tokenization must be one of {', '.join(TOKENIZATIONS)}; got {tokenization!r}")
    text = _CONTROL_RE.sub(" ", text)
    if lowercase:
        text = text.lower()
    if tokenization == "whitespace":
        return text.split()
    tokens: list[str] = []
    for chunk in text.split():
        if chunk in SPECIALS:
            tokens.append(chunk)
            continue
        tokens.extend(_TOKEN_RE.findall(chunk))
    return tokens


def sentence_tokens(
    text: str, lowercase: bool = False, max_len: int | None = None, tokenization: Tokenization = "lab"
) -> tuple[list[str], bool]:
    """The tokens a run sees of one sentence, `tokenize(text, lowercase, tokenization)` cut to max_len words
    (None: all), and whether words were cut off. A run's tokenization is its vocabulary's (`Vocab.tokenization`)."""
    toks = tokenize(text, lowercase, tokenization)
    if max_len is None or len(toks) <= max_len:
        return toks, False
    return toks[:max_len], True


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens with single spaces (the inverse of tokenize on space-separated text)."""
    return " ".join(tokens)


@dataclass(frozen=True)
class Vocab:
    """Bijection between words and ids; ids 0..3 are <pad> <unk> <bos> <eos>.

    `tokenization` is the rule its words were cut by (TrainConfig.tokenization): its words only mean
    something under that rule, so every "text -> ids" path tokenises with it (`tokens`).
    """

    itos: tuple[str, ...]
    tokenization: Tokenization = "lab"

    def __post_init__(self) -> None:
        if self.tokenization not in TOKENIZATIONS:
            raise ValueError(f"vocabulary tokenization must be one of {', '.join(TOKENIZATIONS)}; "
                             f"got {self.tokenization!r}")
        if tuple(self.itos[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {self.itos[:4]}")
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("vocabulary has duplicate words")
        object.__setattr__(self, "_stoi", {w: i for i, w in enumerate(self.itos)})

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        tokenization: Tokenization = "lab",
    ) -> Vocab:
        """Vocabulary of tokenized sentences (cut by `tokenization`): most frequent first, ties alphabetical."""
        counts: Counter[str] = Counter()
        for toks in sentences:
            counts.update(toks)
        for s in SPECIALS:
            counts.pop(s, None)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(SPECIALS + tuple(words), tokenization)

    def tokens(self, text: str, lowercase: bool = False, max_len: int | None = None) -> tuple[list[str], bool]:
        """`sentence_tokens` of `text` under this vocabulary's tokenization: the words, and whether some were cut."""
        return sentence_tokens(text, lowercase, max_len, self.tokenization)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self._stoi  # type: ignore[attr-defined]

    def id(self, word: str) -> int:
        return self._stoi.get(word, UNK_ID)  # type: ignore[attr-defined]

    def encode(self, tokens: Sequence[str], add_eos: bool = True) -> list[int]:
        """Token ids, unknown words as <unk>, with <eos> appended by default."""
        ids = [self.id(t) for t in tokens]
        if add_eos:
            ids.append(EOS_ID)
        return ids

    def decode(self, ids: Iterable[int], stop_at_eos: bool = True) -> list[str]:
        """Words for ids, skipping <pad>/<bos>, stopping at <eos>."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == EOS_ID and stop_at_eos:
                break
            if i in (PAD_ID, BOS_ID, EOS_ID):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return out

    def oov(self, tokens: Sequence[str]) -> list[str]:
        """Tokens the vocabulary does not know (they would become <unk>)."""
        return [t for t in tokens if t not in self._stoi and t != UNK]  # type: ignore[attr-defined]

    def to_json(self) -> str:
        """JSON of the words in id order, and the tokenization when it is not the default "lab" (so the
        file and hash of every vocabulary written before the setting existed are unchanged)."""
        data: dict = {"itos": list(self.itos)}
        if self.tokenization != "lab":
            data["tokenization"] = self.tokenization
        return json.dumps(data, ensure_ascii=False)

    def sha256(self) -> str:
        """sha256 of `to_json` (words in id order, and a non-default tokenization): what ties weights and token
        caches to this vocabulary."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        try:
            data = json.loads(text)
            itos = data["itos"]
            tokenization = data.get("tokenization", "lab")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"vocabulary file is not valid: {e}") from e
        if not isinstance(itos, list) or not all(isinstance(w, str) for w in itos):
            raise ValueError("vocabulary file is not valid: 'itos' must be a list of strings")
        if tokenization not in TOKENIZATIONS:
            raise ValueError(f"vocabulary file is not valid: 'tokenization' must be one of "
                             f"{', '.join(TOKENIZATIONS)}")
        return cls(tuple(itos), tokenization)
