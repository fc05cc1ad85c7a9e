"""Large .txt corpora: tokenised once into memory-mapped token ids, streamed in length buckets.

A `TokenCorpus` stands for a .txt corpus (one sentence a line; a file, or a directory with
train/valid/test files) that is never held in memory as Python strings:

1. its vocabulary is built by streaming the training lines into a word Counter (the counts are
   cached, so a second run skips the pass);
2. `token_store(vocab, cfg)` tokenises every sentence once into a flat int32 array of token ids
   and an int64 offsets array, laid out train | valid | test, written next to the source as
   `.<name>.<source sha>-<vocab sha>-<settings>.tokcache/` (or under `$VAE_CACHE_DIR/tokcache`
   when the source directory is not writable). The name is keyed by the sha256 of the source and
   of the vocabulary, so a changed file or vocabulary builds a new cache and an unchanged one is
   reused as it is;
3. `TokenStore` opens those files with np.memmap: `len`, `lengths` (int32 array), `store[i]` ->
   list of ids, `collate(indices)` -> padded tensors (`corpus.collate`); `corpus.BatchPlan` cuts the
   length buckets (re-exported here).

The split of a single file, the vocabulary and the ids equal those of the in-memory path
(`corpus.load_path` + `train.build_vocab` + `corpus.encode_sentences`): both cut with
`corpus.split_marks` and tokenise with `text.sentence_tokens`, so a run trained either way is the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_core.config import Tokenization, TrainConfig
from vae_core.corpus import MAX_LINE_CHARS, BatchPlan, CorpusError, cache_dir, collate, sha256_file, split_marks
from vae_core.text import SPECIALS, Vocab, tokenize
from vae_core.textset import SPLITS

CACHE_FORMAT = 1
STREAM_THRESHOLD = 200_000  # .txt corpora with more lines than this are streamed by default
_FLUSH_IDS = 1 << 16  # token ids buffered (as a Python list) before a write: bounds the build's memory


# --------------------------------------------------------------------------- reading lines


def iter_sentences(path: Path) -> Iterator[str]:
    """Non-empty stripped lines of a UTF-8 text file, as `corpus.parse_text` would split them."""
    with open(path, "rb") as f:
        if b"\x00" in f.read(4096):
            raise CorpusError(f"{path.name} looks like a binary file, not text")
    n = 0
    try:
        with open(path, encoding="utf-8-sig") as f:
            for raw in f:
                for part in raw.splitlines():  # str.splitlines also cuts at \x1c, \x85, \u2028 ... as the reader does
                    n += 1
                    s = part.strip()
                    if not s:
                        continue
                    if len(s) > MAX_LINE_CHARS:
                        raise CorpusError(
                            f"{path.name} line {n} has {len(s):,} characters; one sentence a line is expected"
                        )
                    yield s
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path.name} is not UTF-8 text (near line {n + 1}); save it as UTF-8 and try again") from e


def count_lines(path: Path, limit: int | None = None) -> int:
    """Newline count of a file read in binary chunks (fast; an upper bound on its sentences)."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
            if limit is not None and n > limit:
                return n
    return n


# --------------------------------------------------------------------------- the token store


class TokenStore:
    """Token-id lists (each ending with <eos>) in one flat array: ids[offsets[i]:offsets[i + 1]].

    ids: (total tokens,) int32, offsets: (n + 1,) int64, usually np.memmap views of a cache.
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, truncated: int = 0) -> None:
        self.ids = ids
        self.offsets = offsets
        self.truncated = truncated
        self._lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """(n,) int32 number of ids of each sentence (computed once, 4 bytes a sentence)."""
        if self._lengths is None:
            self._lengths = np.diff(self.offsets).astype(np.int32)
        return self._lengths

    def __getitem__(self, i: int) -> list[int]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sentence {i} of {n}")
        i %= n
        return self.ids[int(self.offsets[i]):int(self.offsets[i + 1])].tolist()

    def collate(self, indices: Sequence[int]):
        """Padded (B, T) LongTensor (<pad> = 0) and lengths (B,) of these sentences, by `corpus.collate`."""
        return collate([self.ids[int(self.offsets[i]):int(self.offsets[i + 1])] for i in indices])

    def view(self, start: int, end: int, truncated: int = 0) -> TokenStore:
        """Sentences start..end-1 as a store (no copy)."""
        return TokenStore(self.ids, self.offsets[start:end + 1], truncated)


# --------------------------------------------------------------------------- the corpus


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_FILE_SHA: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> sha256: hash a big file once a process


def _file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _FILE_SHA:
        _FILE_SHA[key] = sha256_file(path)
    return _FILE_SHA[key]


def _writable_dir(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


@dataclass(frozen=True)
class TokenCorpus:
    """A .txt corpus read by streaming: `sources` maps a split (or None: cut deterministically) to a file.

    `name`, `spec` and `factors` mean what they mean on `corpus.Corpus`; `seed` is the split seed.
    """

    name: str
    spec: str
    sources: tuple[tuple[str | None, Path], ...]
    seed: int = 0
    factors: tuple[str, ...] = ()

    @classmethod
    def from_path(cls, path: str | os.PathLike, seed: int = 0, spec: str | None = None,
                  name: str | None = None) -> TokenCorpus:
        """A .txt file (split 90/5/5 with `seed`), or a directory with *train* (and *valid*, *test*) .txt files."""
        from vae_core.corpus import _find_split_files

        p = Path(path).expanduser()
        if p.is_dir():
            files = _find_split_files(p)
            if files is None:
                raise CorpusError(f"directory {p} has no file named like '*train*.txt'")
            sources = (tuple((s, files[s]) for s in SPLITS) if "valid" in files and "test" in files
                       else ((None, files["train"]),))
        elif p.is_file():
            sources = ((None, p),)
        else:
            raise CorpusError(f"no such file or directory: {p}")
        for _, f in sources:
            if f.suffix.lower() != ".txt":
                raise CorpusError(f"{f.name}: streamed corpora must be .txt files (one sentence a line)")
        return cls(name or (p.name if p.is_dir() else p.stem), spec or str(p.resolve()), sources, seed)

    # ----------------------------------------------------------------- identity and cache places

    def source_sha256(self) -> str:
        """sha256 over the source files' names (by split) and contents."""
        h = hashlib.sha256()
        for split, f in self.sources:
            h.update(f"{split}:{_file_sha256(f)}\n".encode())
        return h.hexdigest()

    def _cache_root(self) -> Path:
        home = self.sources[0][1].parent
        if _writable_dir(home):
            return home
        root = cache_dir() / "tokcache"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _stem(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.sources[0][1].name)

    # ----------------------------------------------------------------- the pass over lines

    def _lines(self) -> Iterator[tuple[int, str]]:
        """(split index 0/1/2, sentence) over all sources, in file order."""
        for split, f in self.sources:
            if split is not None:
                k = SPLITS.index(split)
                for s in iter_sentences(f):
                    yield k, s
                continue
            n = sum(1 for _ in iter_sentences(f))
            marks = split_marks(n, self.seed)
            for i, s in enumerate(iter_sentences(f)):
                yield int(marks[i]), s

    def word_counts(self, lowercase: bool, source_sha: str | None = None,
                    tokenization: Tokenization = "lab") -> Counter[str]:
        """Word counts of the training split (streamed; cached as JSON next to the token caches)."""
        source_sha = source_sha or self.source_sha256()
        rule = [] if tokenization == "lab" else [tokenization]  # the default keeps the caches' old names
        key = _sha(json.dumps([CACHE_FORMAT, source_sha, lowercase, self.seed, *rule]))[:16]
        path = self._cache_root() / f".{self._stem()}.{key}.counts.json"
        if path.is_file():
            try:
                return Counter(json.loads(path.read_text(encoding="utf-8"))["counts"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # unreadable: count again and overwrite
        counts: Counter[str] = Counter()
        for k, s in self._lines():
            if k == 0:
                counts.update(tokenize(s, lowercase, tokenization))
        from vae_core.runs import write_json

        write_json(path, {"format": CACHE_FORMAT, "source_sha256": source_sha, "counts": dict(counts)})
        return counts

    def build_vocab(self, tcfg: TrainConfig) -> Vocab:
        """The vocabulary `train.build_vocab` would build from the training split, without holding its sentences."""
        return _vocab_from_counts(self.word_counts(tcfg.lowercase, tokenization=tcfg.tokenization), tcfg)

    def cache_path(self, vocab: Vocab, tcfg: TrainConfig, source_sha: str | None = None) -> Path:
        """Where the token cache for this source, vocabulary and tokenisation lives."""
        src = source_sha or self.source_sha256()
        voc = vocab.sha256()
        settings = _sha(json.dumps([CACHE_FORMAT, tcfg.max_len, tcfg.lowercase, self.seed,
                                    [s for s, _ in self.sources]]))
        return self._cache_root() / f".{self._stem()}.{src[:16]}-{voc[:16]}-{settings[:8]}.tokcache"

    def token_store(self, vocab: Vocab, tcfg: TrainConfig) -> TokenStore:
        """All sentences as token ids (train | valid | test), built once and then memory-mapped."""
        path = self.cache_path(vocab, tcfg)
        if not (path / "meta.json").is_file():
            self._build(path, vocab, tcfg)
        return open_store(path)

    def _build(self, path: Path, vocab: Vocab, tcfg: TrainConfig) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".part", dir=path.parent))
        try:
            streams = [_IdStream(tmp / f"ids.{k}") for k in range(3)]
            cut = [0, 0, 0]
            for k, s in self._lines():
                toks, was_cut = vocab.tokens(s, tcfg.lowercase, tcfg.max_len)  # as corpus.encode_sentences
                cut[k] += was_cut
                streams[k].add(vocab.encode(toks))
            for st in streams:
                st.close()
            counts = [st.n for st in streams]
            if counts[0] == 0:
                raise CorpusError(f"{self.name}: the training split is empty")
            with open(tmp / "ids.int32", "wb") as out:  # train | valid | test
                for k in range(3):
                    with open(tmp / f"ids.{k}", "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
                    (tmp / f"ids.{k}").unlink()
            n_tokens = 0
            with open(tmp / "offsets.int64", "wb") as out:
                out.write(np.zeros(1, dtype=np.int64).tobytes())
                for st in streams:
                    for lens in st.iter_lengths():
                        ends = n_tokens + np.cumsum(lens, dtype=np.int64)
                        out.write(ends.tobytes())
                        n_tokens = int(ends[-1]) if len(ends) else n_tokens
                    st.remove()
            bounds, start = {}, 0
            for split, c in zip(SPLITS, counts, strict=True):
                bounds[split] = [start, start + c]
                start += c
            meta = {
                "format": CACHE_FORMAT, "n_sentences": start, "n_tokens": n_tokens, "splits": bounds,
                "truncated": dict(zip(SPLITS, cut, strict=True)), "max_len": tcfg.max_len,
                "lowercase": tcfg.lowercase, "vocab_size": len(vocab), "vocab_sha256": vocab.sha256(),
                "sources": [[s, str(f)] for s, f in self.sources],
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            try:
                os.rename(tmp, path)
            except OSError:
                if not (path / "meta.json").is_file():  # not a concurrent build of the same cache
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _vocab_from_counts(counts: Counter[str], tcfg: TrainConfig) -> Vocab:
    """`Vocab.build` on counts: most frequent first, ties alphabetical, min_freq and max_vocab applied."""
    words = sorted((w for w, c in counts.items() if c >= tcfg.min_freq and w not in SPECIALS),
                   key=lambda w: (-counts[w], w))
    words = words[: max(0, tcfg.max_vocab - len(SPECIALS))]
    return Vocab(SPECIALS + tuple(words), tcfg.tokenization)


class _IdStream:
    """Appends token-id lists to a raw int32 file and their lengths to a raw int32 side file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lens_path = path.with_suffix(path.suffix + ".len")
        self._ids = open(path, "wb")
        self._lens = open(self.lens_path, "wb")
        self._buf: list[int] = []
        self._len_buf: list[int] = []
        self.n = 0

    def add(self, ids: list[int]) -> None:
        self._buf.extend(ids)
        self._len_buf.append(len(ids))
        self.n += 1
        if len(self._buf) >= _FLUSH_IDS:
            self._flush()

    def _flush(self) -> None:
        self._ids.write(np.asarray(self._buf, dtype=np.int32).tobytes())
        self._lens.write(np.asarray(self._len_buf, dtype=np.int32).tobytes())
        self._buf, self._len_buf = [], []

    def close(self) -> None:
        self._flush()
        self._ids.close()
        self._lens.close()

    def iter_lengths(self, chunk: int = 1 << 16) -> Iterator[np.ndarray]:
        with open(self.lens_path, "rb") as f:
            while data := f.read(4 * chunk):
                yield np.frombuffer(data, dtype=np.int32)

    def remove(self) -> None:
        self.lens_path.unlink(missing_ok=True)


def open_store(path: Path) -> TokenStore:
    """The whole store of a cache directory; `split_stores` cuts it into train/valid/test."""
    meta = read_meta(path)
    ids = np.memmap(path / "ids.int32", dtype=np.int32, mode="r", shape=(meta["n_tokens"],)) \
        if meta["n_tokens"] else np.zeros(0, dtype=np.int32)
    offsets = np.memmap(path / "offsets.int64", dtype=np.int64, mode="r", shape=(meta["n_sentences"] + 1,))
    store = TokenStore(ids, offsets)
    store.meta = meta  # type: ignore[attr-defined]
    return store


def read_meta(path: Path) -> dict:
    try:
        meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorpusError(f"token cache {path} is unreadable ({e}); delete it to rebuild") from e
    if meta.get("format") != CACHE_FORMAT:
        raise CorpusError(f"token cache {path} has format {meta.get('format')}; delete it to rebuild")
    return meta


def split_stores(store: TokenStore) -> dict[str, TokenStore]:
    """train/valid/test views of a store opened by `open_store`."""
    meta = store.meta  # type: ignore[attr-defined]
    return {s: store.view(a, b, meta["truncated"][s]) for s, (a, b) in meta["splits"].items()}


def wants_stream(spec: str, threshold: int = STREAM_THRESHOLD) -> bool:
    """True for a .txt corpus path (file or split directory) with more than `threshold` lines."""
    from vae_core.corpus import MAX_FILE_BYTES, _find_split_files

    if spec in ("synthetic", "ptb"):
        return False
    p = Path(spec).expanduser()
    if p.is_dir():
        files = _find_split_files(p)
        if not files or files["train"].suffix.lower() != ".txt":
            return False
        p = files["train"]
    if not p.is_file() or p.suffix.lower() != ".txt":
        return False
    return p.stat().st_size > MAX_FILE_BYTES or count_lines(p, limit=threshold) > threshold


__all__ = [
    "TokenCorpus",
    "TokenStore",
    "BatchPlan",
    "open_store",
    "split_stores",
    "split_marks",
    "iter_sentences",
    "wants_stream",
    "STREAM_THRESHOLD",
]
