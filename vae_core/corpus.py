"""Corpora: readers of corpus files, splits, named corpora, where a run's corpus may be read, and batching.

The data types (TextSet, Corpus, SPLITS) live in `textset`; Corpus and TextSet are re-exported here. This module is
the one home of "sentences -> token ids" (`encode_sentences`) and of "token ids -> padded batch" (`collate`).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import unicodedata
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vae_core import synthetic
from vae_core.grammar import GrammarError, grammar_corpus, is_grammar_spec, is_shipped_spec
from vae_core.text import PAD_ID, Vocab
from vae_core.textset import Corpus, TextSet
from vae_core.units import format_bytes

# --------------------------------------------------------------------------- reading files


MAX_FILE_BYTES = 200 * 1024 * 1024  # a corpus file larger than this is refused (stream it instead)
MAX_LINE_CHARS = 100_000  # one "sentence" longer than this is not a sentence
MAX_COLUMNS = 1_000  # a CSV/JSONL corpus is a text column and a few labels; 10^6 columns cost GBs to hold
MAX_LABEL_CHARS = 1_000  # a label value is a category, not a document (pages show them in pickers and legends)
TEXT_COLUMN_GUESSES = ("text", "sentence", "sentences", "content", "review", "body")


class CorpusError(ValueError):
    """A corpus could not be read; the message says why and what to do."""


class NoTextColumnError(CorpusError):
    """A CSV/JSONL file read fine but no column is named like a text column: the user must name one."""


# Byte-order marks -> (codec, what to tell the user); UTF-32 LE's mark starts with UTF-16 LE's, so it comes first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"),
)
_NOT_TEXT = frozenset(("Cc", "Cn", "Co", "Cs"))  # control, unassigned, private use, surrogate characters


def text_encoding(data: bytes) -> tuple[str, str]:
    """(codec, name) of a text file's bytes: from its byte-order mark (UTF-8, UTF-16, UTF-32), else UTF-8.

    The one rule every reader of uploaded or corpus bytes uses (whole files and header peeks alike).
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            return codec, name
    return "utf-8-sig", "UTF-8"


def decode_head(data: bytes, n: int) -> str:
    """The first ~n bytes as text (for a header or column peek): its BOM's encoding, undecodable bytes replaced."""
    return data[:n].decode(text_encoding(data)[0], errors="replace")


def _decode_bytes(data: bytes, source: str) -> str:
    codec, name = text_encoding(data)
    if codec == "utf-8-sig" and b"\x00" in data[:4096]:
        raise CorpusError(f"{source} looks like a binary file, not text (UTF-16 or UTF-32 text needs a "
                          "byte-order mark; or save it as UTF-8)")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{source} is not {name} text (byte {e.start}: {data[e.start:e.start + 1]!r}); "
            "save it as UTF-8 and try again"
        ) from e
    if codec == "utf-8-sig":
        return text
    head = text[:4096]
    odd = sum(1 for ch in head if ch not in "\t\n\r\f\v" and unicodedata.category(ch) in _NOT_TEXT)
    if odd > max(2, len(head) // 100):  # a binary file that happens to start like a UTF-16/32 byte-order mark
        raise CorpusError(f"{source} looks like a binary file, not text ({odd} of its first {len(head)} "
                          f"characters, read as {name}, are control or unassigned characters)")
    return text


def _check_size(nbytes: int, source: str, max_bytes: int) -> None:
    if nbytes == 0:
        raise CorpusError(f"{source} is empty")
    if nbytes > max_bytes:
        raise CorpusError(f"{source} is {format_bytes(nbytes)}; the limit is {format_bytes(max_bytes)}")


def _clean_lines(lines: list[str], source: str) -> list[str]:
    out = []
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s:
            continue
        if len(s) > MAX_LINE_CHARS:
            raise CorpusError(f"{source} line {n} has {len(s):,} characters; one sentence a line is expected")
        out.append(s)
    return out


def parse_text(
    data: bytes, fmt: str, source: str = "file", text_column: str | None = None,
    max_bytes: int = MAX_FILE_BYTES, max_rows: int | None = None,
) -> TextSet:
    """Parse the bytes of a .txt/.csv/.tsv/.jsonl corpus into a TextSet.

    `.txt`: one sentence a line. `.csv`/`.tsv`: `text_column` (or a column named like text) holds
    the sentence, every other column becomes a label column. `.jsonl`: one object a line, same rule.
    Refused early: more than MAX_COLUMNS columns, more than `max_rows` rows (None: no bound), a label
    value over MAX_LABEL_CHARS characters.
    """
    _check_size(len(data), source, max_bytes)
    text = _decode_bytes(data, source)
    fmt = fmt.lower().lstrip(".")
    if fmt == "txt":
        sents = _clean_lines(text.splitlines(), source)
        if not sents:
            raise CorpusError(f"{source} has no non-empty lines")
        _check_rows(len(sents), source, max_rows)
        return TextSet(tuple(sents))
    if fmt in ("csv", "tsv"):
        delim = "\t" if fmt == "tsv" else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        rows = []
        try:
            for r in reader:  # row by row, so a too-wide header or too many rows is refused before all are held
                if any(c.strip() for c in r):
                    _check_columns(len(r), source, f"row {reader.line_num}")
                    rows.append(r)
                    _check_rows(len(rows) - 1, source, max_rows)
        except csv.Error as e:  # e.g. a field over csv's 131,072-character limit: not a sentence
            raise CorpusError(f"{source} line {reader.line_num} cannot be read as {fmt.upper()}: {e}") from e
        if not rows:
            raise CorpusError(f"{source} has no rows")
        header = [h.strip() for h in rows[0]]
        records = []
        for n, r in enumerate(rows[1:], 2):
            if len(r) != len(header):
                raise CorpusError(f"{source} row {n} has {len(r)} fields; the header has {len(header)}")
            records.append(dict(zip(header, r, strict=True)))
        return _records_to_textset(records, header, source, text_column)
    if fmt == "jsonl":
        records = []
        header: list[str] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:  # refused whole, naming the first bad line (as a ragged CSV row is)
                raise CorpusError(
                    f"{source} line {n} is not valid JSON ({e.msg[:1].lower() + e.msg[1:]}, column {e.colno}: "
                    f"{_excerpt(line, e.colno)}); each line must be one JSON object such as "
                    '{"text": "the cat sat ."}: fix or remove that line'
                ) from e
            except RecursionError as e:  # "[[[[…" or {"a": {"a": …}}: no corpus record nests that deep
                raise CorpusError(f"{source} line {n} is nested too deeply to be a corpus record "
                                  "(one flat JSON object a line is expected)") from e
            if not isinstance(obj, dict):
                raise CorpusError(f"{source} line {n} is not a JSON object")
            _check_columns(len(obj), source, f"line {n}")
            for k in obj:
                if k not in header:
                    header.append(k)
            _check_columns(len(header), source, f"lines 1-{n}")
            records.append(obj)
            _check_rows(len(records), source, max_rows)
        return _records_to_textset(records, header, source, text_column)
    raise CorpusError(f"{source}: unsupported format {fmt!r} (use .txt, .csv, .tsv or .jsonl)")


def _excerpt(line: str, column: int, width: int = 40) -> str:
    """The part of `line` around 1-based `column`, quoted, with … where it was cut (for an error message)."""
    start = max(0, column - 1 - width // 2)
    part = line[start:start + width]
    return repr(("…" if start else "") + part + ("…" if start + width < len(line) else ""))


def _check_columns(n: int, source: str, where: str) -> None:
    if n > MAX_COLUMNS:
        raise CorpusError(f"{source} {where} has {n:,} columns; a corpus may have at most {MAX_COLUMNS:,} "
                          "(one text column and a few label columns)")


def _check_rows(n: int, source: str, max_rows: int | None) -> None:
    if max_rows is not None and n > max_rows:
        raise CorpusError(f"{source} has more than {max_rows:,} rows; upload at most {max_rows:,} "
                          "(or give a path on the server for a larger corpus)")


def _records_to_textset(
    records: list[dict], header: list[str], source: str, text_column: str | None
) -> TextSet:
    if not records:
        raise CorpusError(f"{source} has a header but no rows")
    if text_column is None:
        lower = {h.lower(): h for h in header}
        text_column = next((lower[g] for g in TEXT_COLUMN_GUESSES if g in lower), None)
        if text_column is None:
            raise NoTextColumnError(
                f"{source} has no text column (columns: {', '.join(header)}); choose the one holding the sentences"
            )
    if text_column not in header:
        raise CorpusError(f"{source} has no column {text_column!r} (columns: {', '.join(header)})")
    sents: list[str] = []
    keep: list[int] = []
    for i, rec in enumerate(records):
        s = str(rec.get(text_column) or "").strip()
        if len(s) > MAX_LINE_CHARS:
            raise CorpusError(f"{source} row {i + 2} has a text of {len(s):,} characters")
        if s:
            sents.append(s)
            keep.append(i)
    if not sents:
        raise CorpusError(f"{source}: column {text_column!r} is empty in every row")
    if all(_is_number(s) for s in sents):  # an id or a score column: never read numbers as sentences
        raise CorpusError(f"{source}: column {text_column!r} holds only numbers, not sentences (columns: "
                          f"{', '.join(header)}); choose the column that holds the sentences")
    labels = {
        c: tuple("" if records[i].get(c) is None else str(records[i].get(c)) for i in keep)
        for c in header
        if c != text_column
    }
    for c, values in labels.items():
        long = next((i for i, v in enumerate(values) if len(v) > MAX_LABEL_CHARS), None)
        if long is not None:
            raise CorpusError(f"{source}: label column {c[:60]!r} has a value of {len(values[long]):,} characters "
                              f"(row {keep[long] + 2}); a label has at most {MAX_LABEL_CHARS:,}")
    return TextSet(tuple(sents), labels)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def read_file(path: str | os.PathLike, text_column: str | None = None,
              max_bytes: int = MAX_FILE_BYTES) -> TextSet:
    """Read a corpus file (.txt, .csv, .tsv, .jsonl) into a TextSet, with a clear error if it is bad."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"no such file: {p}")
    size = p.stat().st_size
    _check_size(size, p.name, max_bytes)
    return parse_text(p.read_bytes(), p.suffix or ".txt", p.name, text_column, max_bytes)


# --------------------------------------------------------------------------- splits


def split_marks(n: int, seed: int = 0, valid_fraction: float = 0.05,
                test_fraction: float = 0.05) -> np.ndarray:
    """(n,) uint8: 0 train, 1 valid, 2 test; the deterministic cut of every corpus read from files.

    Valid and test take max(1, round(n · fraction)) sentences each of a permutation by `seed`.
    """
    if n < 3:
        raise CorpusError(f"a corpus needs at least 3 sentences to split; this one has {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, int(round(n * valid_fraction)))
    n_test = max(1, int(round(n * test_fraction)))
    marks = np.zeros(n, dtype=np.uint8)
    marks[perm[:n_valid]] = 1
    marks[perm[n_valid:n_valid + n_test]] = 2
    return marks


def split_deterministic(
    data: TextSet, valid_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0
) -> tuple[TextSet, TextSet, TextSet]:
    """Cut into train/valid/test by `split_marks` (each split keeps file order)."""
    marks = split_marks(len(data), seed, valid_fraction, test_fraction)
    return tuple(data.select(np.flatnonzero(marks == k).tolist()) for k in range(3))  # type: ignore[return-value]


def _find_split_files(directory: Path) -> dict[str, Path] | None:
    """Files named like *train*, *valid*/*dev*, *test* in a directory (PTB layout), or None."""
    files = [f for f in sorted(directory.iterdir()) if f.is_file() and f.suffix in (".txt", ".csv", ".tsv", ".jsonl")]
    found: dict[str, Path] = {}
    for f in files:
        name = f.stem.lower()
        for split, keys in (("train", ("train",)), ("valid", ("valid", "dev", "val")), ("test", ("test",))):
            if split not in found and any(k in name.split(".") or name.endswith(k) or name.startswith(k) for k in keys):
                found[split] = f
    return found if "train" in found else None


def load_path(path: str | os.PathLike, text_column: str | None = None, seed: int = 0) -> Corpus:
    """A corpus from a file (split deterministically) or a directory with train/valid/test files."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = _find_split_files(p)
        if files is None:
            raise CorpusError(
                f"directory {p} has no file named like '*train*' (.txt/.csv/.tsv/.jsonl); "
                "give a file or a directory with train/valid/test files"
            )
        train = read_file(files["train"], text_column)
        if "valid" in files and "test" in files:
            valid = read_file(files["valid"], text_column)
            test = read_file(files["test"], text_column)
        else:
            train, valid, test = split_deterministic(train, seed=seed)
        return Corpus(p.name, train, valid, test, spec=str(p.resolve()))
    if p.is_file():
        data = read_file(p, text_column)
        train, valid, test = split_deterministic(data, seed=seed)
        return Corpus(p.stem, train, valid, test, spec=str(p.resolve()))
    raise CorpusError(f"no such file or directory: {p}")


# --------------------------------------------------------------------------- named corpora

PTB_URL = "https://raw.githubusercontent.com/timbmg/RNNLM/4e5bddfd042beb3e1aa1f282954cc31567294c83/data/ptb.zip"
PTB_FILES_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}


def cache_dir() -> Path:
    """Where downloads are kept: $VAE_CACHE_DIR, else ~/.cache/vae_text_lab."""
    return Path(os.environ.get("VAE_CACHE_DIR", Path.home() / ".cache" / "vae_text_lab"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_ptb(url: str = PTB_URL, dest: Path | None = None,
                 expected: Mapping[str, str] = PTB_FILES_SHA256, timeout: float = 60.0) -> Path:
    """Download the PTB zip once, extract the three files, check each sha256; return the directory.

    Files already present with the right checksum are not downloaded again. A checksum mismatch
    deletes what was written and raises CorpusError.
    """
    import zipfile

    dest = dest or cache_dir() / "ptb"
    if all((dest / n).is_file() and sha256_file(dest / n) == h for n, h in expected.items()):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / "download.zip.part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:  # noqa: S310
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        with zipfile.ZipFile(tmp) as zf:
            for member in zf.namelist():
                base = os.path.basename(member)
                if base in expected and not member.startswith("__MACOSX"):
                    data = zf.read(member)
                    got = hashlib.sha256(data).hexdigest()
                    if got != expected[base]:
                        raise CorpusError(f"checksum mismatch for {base} from {url}: got {got}")
                    part = dest / (base + ".part")
                    part.write_bytes(data)
                    os.replace(part, dest / base)
    except CorpusError:
        for n in expected:
            (dest / n).unlink(missing_ok=True)
        raise
    except (OSError, zipfile.BadZipFile) as e:
        raise CorpusError(f"could not download PTB from {url}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    missing = [n for n in expected if not (dest / n).is_file()]
    if missing:
        raise CorpusError(f"the PTB archive from {url} lacks {', '.join(missing)}")
    return dest


def load_corpus(spec: str, text_column: str | None = None, seed: int = 0) -> Corpus:
    """Resolve a corpus spec: 'synthetic', 'ptb' (download once to the cache), 'grammar:NAME', or a path.

    A shipped grammar ('grammar:passive') or a grammar file (a path ending in .json) gives its enumerated
    corpus split with `seed`, factors as label columns (`vae_core.grammar`); a bad grammar is a CorpusError.
    """
    if spec == "synthetic":
        return synthetic.generate(seed=0)
    if is_grammar_spec(spec):
        try:
            return grammar_corpus(spec, seed=seed)
        except GrammarError as e:
            raise CorpusError(str(e)) from e
    if spec == "ptb":
        directory = download_ptb()
        c = load_path(directory, text_column, seed)
        return Corpus("ptb", c.train, c.valid, c.test, spec="ptb")
    return load_path(spec, text_column, seed)


NAMED_CORPORA = ("synthetic", "ptb")


def check_run_corpus_spec(spec: str, run_dir: str | os.PathLike, allowed_dirs: Sequence[str | os.PathLike]) -> str:
    """`spec` as a run's config.json gives it, if a run file may point there; else CorpusError.

    A run directory may come from someone else, so its corpus spec may only be a named corpus
    ("synthetic", "ptb", a shipped grammar:NAME), a path inside the run directory itself, or a path inside one of
    `allowed_dirs` (the app passes `jobs.data_dirs()`). Symlinks are followed before the check.
    """
    if not isinstance(spec, str) or not spec:
        raise CorpusError("the run records no corpus")
    if spec in NAMED_CORPORA or is_shipped_spec(spec):
        return spec
    if "\x00" in spec:
        raise CorpusError("the run's corpus path contains a NUL character")
    try:
        p = Path(spec).expanduser().resolve()
        folders = [Path(run_dir).resolve(), *(Path(d).expanduser().resolve() for d in allowed_dirs)]
    except (OSError, RuntimeError) as e:
        raise CorpusError(f"the run's corpus path {spec!r} cannot be resolved ({e})") from e
    if not any(p == d or p.is_relative_to(d) for d in folders):
        raise CorpusError(
            f"the run's corpus {p} lies outside the run directory and the data folders "
            f"({', '.join(str(d) for d in folders[1:]) or 'none configured'}); copy it into one of them "
            "or set VAE_DATA_DIRS"
        )
    return spec


# --------------------------------------------------------------------------- token ids and batches


def encode_sentences(
    sentences: Sequence[str], vocab: Vocab, max_len: int | None = None, lowercase: bool = False
) -> tuple[list[list[int]], int]:
    """Token ids of each sentence with <eos> appended, cut to max_len words (None: all); and how many were cut.

    The one "text -> ids" rule: `vocab.tokens(s, lowercase, max_len)` (`text.sentence_tokens` under the
    vocabulary's tokenization), then `vocab.encode` (unknown words -> <unk>). An empty sentence is just
    [<eos>]. `lowercase` must be the run's TrainConfig.lowercase.
    """
    out: list[list[int]] = []
    cut = 0
    for s in sentences:
        toks, was_cut = vocab.tokens(s, lowercase, max_len)
        cut += was_cut
        out.append(vocab.encode(toks))
    return out, cut


def bucket_batches(
    lengths: Sequence[int], batch_size: int, seed: int | None = None, bucket_factor: int = 50
) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding, fewer wasted RNN steps): `BatchPlan` as lists.

    With a seed: shuffle, sort within chunks of `bucket_factor` batches by length, cut into
    batches, shuffle the batches. Without: sort everything by length (deterministic eval order).
    """
    plan = BatchPlan(np.asarray(lengths, dtype=np.int64), batch_size, seed, bucket_factor)
    return [plan[j].tolist() for j in range(len(plan))]


class BatchPlan:
    """Length-bucketed batches of sentence indices, held as two numpy arrays (see `bucket_batches`).

    `plan[j]` is the j-th batch's sentence indices (an int64 array); memory is about 8 bytes per
    sentence instead of a Python list of ints. `min_size` drops batches smaller than it (DDP).
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int | None, bucket_factor: int = 50,
                 min_size: int = 1) -> None:
        lengths = np.asarray(lengths)
        n = len(lengths)
        self.batch_size = batch_size
        if seed is None:
            self.indices = np.argsort(lengths, kind="stable")
            order = np.arange(-(-n // batch_size))
        else:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(n)
            chunk = batch_size * bucket_factor
            for start in range(0, n, chunk):  # sort by length inside each chunk, in place
                part = perm[start:start + chunk]
                perm[start:start + chunk] = part[np.argsort(lengths[part], kind="stable")]
            self.indices = perm
            order = rng.permutation(-(-n // batch_size))
        sizes = np.minimum(batch_size, n - order * batch_size)
        self.order = order[sizes >= min_size]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, j: int) -> np.ndarray:
        k = int(self.order[j])
        return self.indices[k * self.batch_size:(k + 1) * self.batch_size]


def collate(ids: Sequence[Sequence[int]]):
    """Pad token-id sequences (lists or 1-d integer arrays) into a (B, T) LongTensor with <pad>, plus lengths (B,).

    T is the longest sequence (0 for an empty batch). The one padding function: training, evaluation,
    encoding and the memory-mapped token store all batch through it.
    """
    import torch

    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))  # (B,)
    tokens = np.full((len(ids), int(lengths.max()) if len(ids) else 0), PAD_ID, dtype=np.int64)  # (B, T)
    for row, x in enumerate(ids):
        tokens[row, : lengths[row]] = x
    return torch.from_numpy(tokens), torch.from_numpy(lengths)
