"""Cached analysis of a run over a set of sentences, shared by the Latent map and Disentanglement pages.

A `Subset` is the sentences analysed (a seeded sample of the run's corpus, or an uploaded CSV) with
their label columns and a content hash (`subset_id`). Everything computed from it is cached per
process, keyed by the run's path, the weights' mtime and the subset_id: encodings and greedy
reconstructions, latent statistics, disentanglement reports, projections. Projections and encodings are
also cached on disk (`<run>/cache/projections/<key>.npz`, `<run>/cache/encodings/<key>.npz`, or a user
cache dir when the run directory is read-only), so re-opening a map never refits nor re-encodes.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ui import loaders
from ui.textdiff import escape
from vae_core.corpus import TEXT_COLUMN_GUESSES, Corpus, CorpusError, TextSet, cache_dir, parse_text
from vae_core.projection import Projection, cached_projection, projection_key
from vae_core.runs import Run

MAP_CAP = 5000  # default number of sentences on a map: UMAP of 5,000 points fits in ~10-20 s on 2 cores
MAX_SENTENCES = 20_000  # the most sentences a map or an analysis takes
MAX_LABEL_VALUES = 50  # a label column with more distinct values is free text or an id, not a factor
N_TRAVERSAL_BASES = 50  # sentences whose traversals decide which factor a dimension changes
N_PRIOR_SAMPLES = 500
PROJECTIONS_IN_MEMORY = 12  # fitted projections kept per process (a UMAP of 10k points is ~10 MB)
UPLOAD_MAX_BYTES = 20 * 1024 * 1024


# --------------------------------------------------------------------------- subsets (pure)


@dataclass(frozen=True, eq=False)
class Subset:
    """Sentences to analyse, their label columns (column -> one value each) and where each came from."""

    sentences: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]
    origin: tuple[str, ...]  # per sentence: its split ("test", "valid", ...) or the uploaded file's name
    source: str  # one line for the page: what these sentences are
    subset_id: str  # content hash: part of every cache key
    factor_names: tuple[str, ...] = ()  # label columns that are the corpus's known generative factors

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
    )


def upload_subset(data: TextSet, name: str, n: int = MAX_SENTENCES, seed: int = 0) -> Subset:
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
    )


def categorical_columns(labels: Mapping[str, Sequence[str]], max_values: int = MAX_LABEL_VALUES) -> list[str]:
    """Label columns with 2..max_values distinct values (those that can colour a map or act as factors)."""
    return [c for c, v in labels.items() if 2 <= len(set(v)) <= max_values]


def label_factors(
    labels: Mapping[str, Sequence[str]], factor_names: Sequence[str] = (), max_values: int = MAX_LABEL_VALUES
) -> tuple[np.ndarray, list[str], list[list[str]], list[str]] | None:
    """(factors (N, K) int, names, value names, skipped columns) of the label columns, or None without any.

    The built-in corpus's factors (all of synthetic.FACTORS present) are numbered in FACTORS order
    (as `vae_core.evaluate` does); other columns keep 2..max_values distinct values, numbered in
    sorted order by `disentanglement.encode_labels`; the rest are skipped.
    """
    from vae_core.synthetic import FACTORS, factor_codes

    if factor_names and tuple(factor_names) == tuple(FACTORS) and all(f in labels for f in FACTORS):
        n = len(next(iter(labels.values())))
        rows = [{f: labels[f][i] for f in FACTORS} for i in range(n)]
        try:
            return factor_codes(rows), list(FACTORS), [list(v) for v in FACTORS.values()], []
        except ValueError:
            pass  # not the built-in values after all: treat them as plain labels
    from vae_core.disentanglement import encode_labels

    keep = categorical_columns(labels, max_values)
    skipped = [c for c in labels if c not in keep]
    if not keep:
        return None
    factors, names, values = encode_labels({c: labels[c] for c in keep})
    return factors, names, values, skipped


def text_matches(sentences: Sequence[str], query: str) -> list[int]:
    """Rows whose sentence contains `query` (case-insensitive substring; whitespace runs collapsed)."""
    q = " ".join(query.split()).casefold()
    if not q:
        return []
    return [i for i, s in enumerate(sentences) if q in " ".join(s.split()).casefold()]


def csv_header(data: bytes, fmt: str = "csv") -> list[str]:
    """The header row of CSV/TSV bytes ([] when unreadable)."""
    try:
        text = data[:65536].decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data[:65536].decode("latin-1")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    for row in reader:
        if any(c.strip() for c in row):
            return [c.strip() for c in row]
    return []


# --------------------------------------------------------------------------- the run's corpus


def _mtime(run: Run) -> float:
    return loaders._weights_mtime(run.path)


@st.cache_resource(max_entries=8, show_spinner=False)
def _corpus_subset_cached(
    spec: str, text_column: str | None, corpus_seed: int, splits: tuple[str, ...], n: int, seed: int
) -> Subset:
    corpus = loaders.load_corpus_cached(spec, text_column, corpus_seed)
    return corpus_subset(corpus, splits, n, seed)


def run_corpus(run: Run) -> Corpus | None:
    """The run's corpus when it can be read here (see loaders.corpus_for_run), else None."""
    return loaders.corpus_for_run(run)


def run_subset(run: Run, splits: Sequence[str], n: int, seed: int = 0) -> Subset | None:
    """Up to n sentences of `splits` of the run's corpus (cached), or None when the corpus is unavailable."""
    corpus = run_corpus(run)
    if corpus is None:
        return None
    info = run.config.get("corpus") if isinstance(run.config.get("corpus"), dict) else {}
    spec = str(info.get("spec") or "")
    return _corpus_subset_cached(
        spec, info.get("text_column"), int(run.train_config.seed), tuple(splits), int(n), int(seed)
    )


@st.cache_resource(max_entries=8, show_spinner=False)
def _parse_upload(digest: str, fmt: str, name: str, text_column: str | None, _data: bytes) -> TextSet:
    del digest  # the key: the content hash of _data
    return parse_text(_data, fmt, name, text_column, max_bytes=UPLOAD_MAX_BYTES)


def preselect_source(sources: list[str], upload: Subset | None, radio_key: str, seen_key: str) -> None:
    """Set the sentence-source radio before it is drawn: a newly uploaded file selects "upload" (once per
    file), and a choice that is no longer offered falls back to the first source."""
    if upload is not None and st.session_state.get(seen_key) != upload.subset_id:
        st.session_state[seen_key] = upload.subset_id
        st.session_state[radio_key] = "upload"
    if st.session_state.get(radio_key) not in sources:
        st.session_state[radio_key] = sources[0]


def label_upload(key: str, n: int = MAX_SENTENCES) -> Subset | None:
    """A CSV/TSV uploader (a text column + label columns); returns the parsed sentences, or None.

    Errors (no text column, bad rows, too large) are shown as a message a user can act on.
    """
    upload = st.file_uploader(
        "Your own labelled sentences (CSV or TSV: a text column and label columns)",
        type=["csv", "tsv"],
        key=f"w_{key}_upload",
        help="Each label column with 2 to 50 distinct values becomes a factor: the map can colour by it and "
        "the Disentanglement page measures how the latent dimensions capture it.",
    )
    if upload is None:
        return None
    data = upload.getvalue()
    if len(data) > UPLOAD_MAX_BYTES:
        st.error(f"'{escape(upload.name)}' is {len(data) / 1e6:.1f} MB; the limit is {UPLOAD_MAX_BYTES / 1e6:.0f} MB.")
        return None
    fmt = "tsv" if upload.name.lower().endswith(".tsv") else "csv"
    header = csv_header(data, fmt)
    if not header:
        st.error(f"'{escape(upload.name)}' has no header row.")
        return None
    lower = [h.lower() for h in header]
    guess = next((lower.index(g) for g in TEXT_COLUMN_GUESSES if g in lower), 0)
    text_column = st.selectbox("Text column", header, index=guess, key=f"w_{key}_upload_text")
    try:
        parsed = _parse_upload(hashlib.sha256(data).hexdigest(), fmt, upload.name, text_column, data)
    except CorpusError as e:
        st.error(escape(str(e)))
        return None
    return upload_subset(parsed, upload.name, n)


# --------------------------------------------------------------------------- encoding + reconstruction


@dataclass(frozen=True, eq=False)
class Encoded:
    """Posterior parameters and greedy reconstructions of a subset, row for row."""

    mu: np.ndarray  # (N, D) float32, posterior means
    logvar: np.ndarray  # (N, D) float32
    reconstructions: tuple[str, ...]  # greedy decode of each posterior mean
    correct: np.ndarray  # (N,) bool: the reconstruction equals the input, word for word (<unk> for OOV)
    lengths: np.ndarray  # (N,) int: words the model reads (after max_len)
    n_oov: np.ndarray  # (N,) int: out-of-vocabulary words


def encode_and_reconstruct(run: Run, sentences: Sequence[str], batch_size: int = 512) -> Encoded:
    """Posterior means/log-variances of sentences and their greedy reconstructions (uncached)."""
    from vae_core.config import DecodeConfig
    from vae_core.decode import decode
    from vae_core.encoding import posterior_params, sentence_ids
    from vae_core.metrics import strip_specials

    tcfg = run.train_config
    ids, oov = sentence_ids(run.vocab, list(sentences), tcfg.lowercase, tcfg.max_len)
    mu, logvar = posterior_params(run.model, ids, batch_size=batch_size)  # (N, D) each
    refs = [strip_specials(x) for x in ids]
    max_len = max((len(r) for r in refs), default=1) + 2
    cfg = DecodeConfig(strategy="greedy", max_len=max(1, min(1000, max_len)))
    texts: list[str] = []
    correct = np.zeros(len(refs), dtype=bool)
    with torch.inference_mode():
        for start in range(0, len(refs), batch_size):
            res = decode(run.model, mu[start : start + batch_size], run.vocab, cfg)
            texts.extend(res.texts)
            for j, hyp in enumerate(res.ids):
                correct[start + j] = list(hyp) == refs[start + j]
    return _freeze(
        Encoded(
            mu=mu.numpy().astype(np.float32),
            logvar=logvar.numpy().astype(np.float32),
            reconstructions=tuple(texts),
            correct=correct,
            lengths=np.array([len(r) for r in refs], dtype=np.int64),
            n_oov=np.array([len(o) for o in oov], dtype=np.int64),
        )
    )


ENCODING_FORMAT = 1  # of the encodings .npz files; part of their key
_ENCODED_ARRAYS = ("mu", "logvar", "correct", "lengths", "n_oov")


def _freeze(enc: Encoded) -> Encoded:
    for arr in (enc.mu, enc.logvar, enc.correct, enc.lengths, enc.n_oov):
        arr.flags.writeable = False  # shared by every session through the cache
    return enc


def save_encoded(enc: Encoded, path: Path) -> None:
    """Write an Encoded to `path` (.npz, atomic; strings as a unicode array, so loading never unpickles)."""
    from vae_core.runs import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(
        buffer,
        **{name: getattr(enc, name) for name in _ENCODED_ARRAYS},
        reconstructions=np.array(list(enc.reconstructions), dtype=str),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def load_encoded(path: Path, n: int) -> Encoded | None:
    """An Encoded written by save_encoded with n rows, or None when missing, unreadable or of another size."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.array(data[name]) for name in _ENCODED_ARRAYS}
            reconstructions = tuple(str(t) for t in data["reconstructions"].tolist())
    except (OSError, ValueError, KeyError):
        return None
    if any(len(a) != n for a in arrays.values()) or len(reconstructions) != n:
        return None
    return _freeze(Encoded(reconstructions=reconstructions, **arrays))


def encoding_key(run_path: Path, subset_id: str) -> str:
    """Disk-cache key of one subset's encoding by one run's weights."""
    text = f"{ENCODING_FORMAT}|{_run_id(Path(run_path))}|{subset_id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cached_encoding(run: Run, subset_id: str, sentences: Sequence[str]) -> tuple[Encoded, bool]:
    """encode_and_reconstruct through the disk cache (<run>/cache/encodings): (encoded, was_cached)."""
    path = run_cache_dir(run.path, "encodings") / f"{encoding_key(run.path, subset_id)}.npz"
    enc = load_encoded(path, len(sentences)) if path.is_file() else None
    if enc is not None:
        return enc, True
    enc = encode_and_reconstruct(run, sentences)
    try:
        save_encoded(enc, path)
    except OSError:
        pass  # a cache that cannot be written is only slower next time
    return enc, False


@st.cache_resource(max_entries=8, show_spinner=False)
def _encoded_cached(path: str, mtime: float, subset_id: str, _sentences: tuple[str, ...]) -> Encoded:
    return cached_encoding(loaders.load_run_cached(path, mtime), subset_id, _sentences)[0]


def encode_subset(run: Run, subset: Subset) -> Encoded:
    """encode_and_reconstruct, cached per (run path, weights mtime, subset_id) in memory and on disk."""
    return _encoded_cached(str(run.path), _mtime(run), subset.subset_id, subset.sentences)


# --------------------------------------------------------------------------- map colours and tables (pure)

COLOR_NONE = "(none)"
COLOR_LENGTH = "sentence length"
COLOR_RECON = "reconstruction"
COLOR_ORIGIN = "split / source"


def color_options(subset: Subset, latent_dim: int) -> list[str]:
    """What a map can be coloured by: factor/label columns, split, length, reconstruction, each z_d."""
    options = list(categorical_columns(subset.labels))
    if len(set(subset.origin)) > 1:
        options.append(COLOR_ORIGIN)
    options += [COLOR_LENGTH, COLOR_RECON] + [f"z{d}" for d in range(latent_dim)] + [COLOR_NONE]
    return options


def color_values(choice: str, subset: Subset, enc: Encoded) -> tuple[str, list, list[str] | None]:
    """(kind, values, category order) of one colour option: kind 'categorical', 'continuous' or 'none'."""
    if choice in subset.labels:
        from vae_core.synthetic import FACTORS

        order = list(FACTORS[choice]) if choice in subset.factor_names and choice in FACTORS else None
        return "categorical", list(subset.labels[choice]), order
    if choice == COLOR_ORIGIN:
        return "categorical", list(subset.origin), None
    if choice == COLOR_LENGTH:
        return "continuous", enc.lengths.tolist(), None
    if choice == COLOR_RECON:
        return "categorical", ["correct" if c else "wrong" for c in enc.correct], ["correct", "wrong"]
    if choice.startswith("z") and choice[1:].isdigit() and int(choice[1:]) < enc.mu.shape[1]:
        return "continuous", enc.mu[:, int(choice[1:])].astype(float).tolist(), None
    return "none", [], None


def rows_frame(subset: Subset, enc: Encoded, coords: np.ndarray, rows: Sequence[int]) -> pd.DataFrame:
    """One line per row: row, sentence, reconstruction, correct, length, labels, origin, map coordinates."""
    rows = [int(r) for r in rows]
    df = pd.DataFrame(
        {
            "row": rows,
            "sentence": [subset.sentences[r] for r in rows],
            "reconstruction": [enc.reconstructions[r] for r in rows],
            "reconstructed": [bool(enc.correct[r]) for r in rows],
            "length": [int(enc.lengths[r]) for r in rows],
        }
    )
    for col, values in subset.labels.items():
        df[col] = [values[r] for r in rows]
    if len(set(subset.origin)) > 1:
        df["split"] = [subset.origin[r] for r in rows]
    coords = np.asarray(coords)
    for j, axis in enumerate("xyz"[: coords.shape[1]]):
        df[axis] = [float(coords[r, j]) for r in rows]
    return df


@st.cache_resource(max_entries=8, show_spinner=False)
def _hover_cached(path: str, mtime: float, subset_id: str, _subset: Subset, _enc: Encoded) -> tuple[str, ...]:
    from ui.map_figures import hover_lines

    del path, mtime, subset_id
    return tuple(hover_lines(_subset.sentences, _enc.reconstructions))


def hover_texts(run: Run, subset: Subset, enc: Encoded) -> tuple[str, ...]:
    """Escaped map hover text of every row (sentence, then its reconstruction), built once per run + subset."""
    return _hover_cached(str(run.path), _mtime(run), subset.subset_id, subset, enc)


# --------------------------------------------------------------------------- latent statistics


@dataclass(frozen=True)
class LatentStats:
    """KL per dimension, active units and I(x;z) measured on a subset."""

    kl: tuple[float, ...]  # (D,) nats
    variances: tuple[float, ...]  # (D,) Var_x of the posterior mean
    active: tuple[bool, ...]  # (D,) variance > AU threshold
    threshold: float
    mi: float  # I(x;z) in nats (bounded by ~log N)
    n: int

    @property
    def n_active(self) -> int:
        return int(sum(self.active))


def latent_stats_of(mu: np.ndarray, logvar: np.ndarray, seed: int = 0) -> LatentStats:
    """KL per dim, active units and MI of posterior parameters (N, D) (uncached; MI seeded)."""
    from vae_core.metrics import AU_THRESHOLD, active_units, kl_per_dim, mutual_information_from_posteriors

    mu_t, lv_t = torch.from_numpy(np.array(mu, dtype=np.float32)), torch.from_numpy(np.array(logvar, dtype=np.float32))
    _, variances = active_units(mu_t)
    kl = kl_per_dim(mu_t, lv_t)
    gen = torch.Generator().manual_seed(seed)
    mi = mutual_information_from_posteriors(mu_t, lv_t, gen)
    return LatentStats(
        kl=tuple(float(x) for x in kl),
        variances=tuple(float(v) for v in variances),
        active=tuple(bool(v > AU_THRESHOLD) for v in variances),
        threshold=AU_THRESHOLD,
        mi=float(mi),
        n=int(mu_t.shape[0]),
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _latent_stats_cached(path: str, mtime: float, subset_id: str, _enc: Encoded) -> LatentStats:
    del path, mtime, subset_id
    return latent_stats_of(_enc.mu, _enc.logvar)


def latent_stats(run: Run, subset: Subset, enc: Encoded) -> LatentStats:
    """latent_stats_of the subset's encoding, cached per (run, subset)."""
    return _latent_stats_cached(str(run.path), _mtime(run), subset.subset_id, enc)


def summary_eval(run_path: Path) -> dict:
    """summary.json['eval'] of a run, read now ({} when absent)."""
    ev = loaders.read_summary(Path(run_path)).get("eval")
    return ev if isinstance(ev, dict) else {}


# --------------------------------------------------------------------------- disentanglement


@st.cache_data(max_entries=32, show_spinner=False)
def _report_cached(
    path: str,
    mtime: float,
    subset_id: str,
    names: tuple[str, ...],
    active: tuple[bool, ...],
    seed: int,
    _codes: np.ndarray,
    _factors: np.ndarray,
) -> dict[str, Any]:
    from vae_core.disentanglement import disentanglement_report

    del path, mtime, subset_id
    return disentanglement_report(_codes, _factors, list(names), active=np.asarray(active, dtype=bool), seed=seed)


def disentanglement(
    run: Run,
    subset: Subset,
    codes: np.ndarray,
    factors: np.ndarray,
    names: Sequence[str],
    active: Sequence[bool],
    seed: int = 0,
) -> dict[str, Any]:
    """vae_core.disentanglement.disentanglement_report of codes (N, D) vs factors (N, K), cached per run + subset."""
    return _report_cached(
        str(run.path),
        _mtime(run),
        subset.subset_id,
        tuple(names),
        tuple(bool(a) for a in active),
        int(seed),
        codes,
        factors,
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _traversals_cached(path: str, mtime: float, subset_id: str, dims: tuple[int, ...], _base: np.ndarray) -> dict:
    from vae_core.factor_analysis import traversal_factor_effects

    run = loaders.load_run_cached(path, mtime)
    return traversal_factor_effects(run.model, run.vocab, torch.from_numpy(np.array(_base)), dims=list(dims))


def traversal_effects(
    run: Run, subset: Subset, enc: Encoded, dims: Sequence[int], n_bases: int = N_TRAVERSAL_BASES
) -> dict:
    """factor_analysis.traversal_factor_effects from n_bases posterior means of the subset (seeded), cached."""
    idx = subset_indices(len(subset), n_bases, seed=1)
    return _traversals_cached(
        str(run.path), _mtime(run), f"{subset.subset_id}:{n_bases}", tuple(int(d) for d in dims), enc.mu[idx]
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _prior_cached(path: str, mtime: float, n: int, seed: int) -> dict:
    from vae_core.factor_analysis import prior_sample_validity

    run = loaders.load_run_cached(path, mtime)
    return prior_sample_validity(run.model, run.vocab, n=n, seed=seed)


def prior_validity(run: Run, n: int = N_PRIOR_SAMPLES, seed: int = 0) -> dict:
    """factor_analysis.prior_sample_validity of n prior samples, cached per run."""
    return _prior_cached(str(run.path), _mtime(run), int(n), int(seed))


# --------------------------------------------------------------------------- projections


def _writable_dir(path: Path) -> bool:
    """Whether files can be created in `path` (made if missing): tried, not guessed from permissions."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True):
            pass
        return True
    except OSError:
        return False


def run_cache_dir(run_path: Path | str, kind: str) -> Path:
    """Where a run's cached `kind` ('projections', 'encodings') live: <run>/cache/<kind>, or, when the run
    directory is read-only, $VAE_CACHE_DIR (else ~/.cache/vae_text_lab)/<kind>/<run name>-<hash of its path>."""
    run_path = Path(run_path)
    own = run_path / "cache" / kind
    if _writable_dir(own):
        return own
    digest = hashlib.sha256(str(run_path.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / kind / f"{run_path.name}-{digest}"


def projection_cache_dir(run_path: Path | str) -> Path:
    """Where a run's projections are cached (see run_cache_dir)."""
    return run_cache_dir(run_path, "projections")


class _ProjectionStore:
    """Fitted projections of this process (LRU), so a rerun or a colour change never touches the disk."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, Projection] = OrderedDict()
        self.lock = threading.Lock()
        self.key_locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> Projection | None:
        with self.lock:
            proj = self.items.get(key)
            if proj is not None:
                self.items.move_to_end(key)
            return proj

    def put(self, key: str, proj: Projection) -> None:
        with self.lock:
            self.items[key] = proj
            self.items.move_to_end(key)
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)

    def key_lock(self, key: str) -> threading.Lock:
        with self.lock:
            return self.key_locks.setdefault(key, threading.Lock())


@st.cache_resource(show_spinner=False)
def _projection_store() -> _ProjectionStore:
    return _ProjectionStore(PROJECTIONS_IN_MEMORY)


@functools.lru_cache(maxsize=64)
def _weights_digest(path: str, mtime_ns: int, size: int) -> str:
    """16 hex chars of the sha256 of a weights file (memoised per path, mtime and size: hashed once)."""
    del mtime_ns, size  # part of the memo key: new weights are hashed again
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _run_id(run_path: Path) -> str:
    """What cache keys call a run: the hash of its weights, so a cache stays valid wherever the run is copied
    (a clone of the repository, another machine) and is missed as soon as the weights change."""
    weights = Path(run_path) / "model.safetensors"
    try:
        stat = weights.stat()
        return "weights:" + _weights_digest(str(weights.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return f"path:{Path(run_path).resolve()}"


def map_key(
    run_path: Path, subset_id: str, method: str, n_components: int, seed: int, params: Mapping[str, Any]
) -> str:
    """The projection cache key of one map of one run's codes (vae_core.projection.projection_key)."""
    return projection_key(_run_id(Path(run_path)), subset_id, method, n_components, seed, dict(params))


def disk_cached(run_path: Path, key: str) -> bool:
    """Whether the projection `key` is already on disk for this run."""
    return (projection_cache_dir(run_path) / f"{key}.npz").is_file()


def map_projection(
    run_path: Path,
    subset_id: str,
    codes: np.ndarray,
    method: str,
    n_components: int,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> tuple[Projection, str, str]:
    """The projection of codes (N, D): from memory, else from the disk cache, else fitted and saved.

    Returns (projection, source, key) with source 'memory', 'disk' or 'fitted'. Two sessions asking
    for the same map at once fit it once.
    """
    params = dict(params or {})
    key = map_key(run_path, subset_id, method, n_components, seed, params)
    store = _projection_store()
    proj = store.get(key)
    if proj is not None:
        return proj, "memory", key
    with store.key_lock(key):
        proj = store.get(key)
        if proj is not None:
            return proj, "memory", key
        directory = projection_cache_dir(run_path)
        try:
            proj, was_cached = cached_projection(codes, directory, key, method, n_components, seed, **params)
        except OSError:  # the directory turned read-only: keep the map in a user cache dir instead
            fallback = cache_dir() / "projections" / f"{Path(run_path).name}-{key[:8]}"
            proj, was_cached = cached_projection(codes, fallback, key, method, n_components, seed, **params)
        store.put(key, proj)
    return proj, ("disk" if was_cached else "fitted"), key


# --------------------------------------------------------------------------- comparing runs

COMPARE_SENTENCES = 1000  # test sentences measured for a run that has no evaluation in summary.json
COMPARE_COLUMNS = ("run", "β", "schedule", "active units", "KL", "MI", "MIG", "DCI-D", "SAP", "exact match", "source")


def finite_number(value: Any) -> float | None:
    """A JSON figure as a float, or None when it is missing, a bool, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def comparison_from_eval(name: str, config: Mapping[str, Any], ev: Mapping[str, Any]) -> dict[str, Any] | None:
    """A comparison row from summary.json['eval'] (None when it has no active-unit count)."""
    if finite_number(ev.get("active_units")) is None:
        return None
    train = config.get("train") if isinstance(config.get("train"), Mapping) else {}
    dis = ev.get("disentanglement") if isinstance(ev.get("disentanglement"), Mapping) else {}
    dci = dis.get("dci") if isinstance(dis.get("dci"), Mapping) else {}
    n = ev.get("n_sentences")
    return {
        "run": name,
        "β": finite_number(train.get("beta")),
        "schedule": str(train.get("schedule", "")),
        "active units": finite_number(ev.get("active_units")),
        "KL": finite_number(ev.get("kl")),
        "MI": finite_number(ev.get("mi")),
        "MIG": finite_number(dis.get("mig")),
        "DCI-D": finite_number(dci.get("disentanglement")),
        "SAP": finite_number(dis.get("sap")),
        "exact match": finite_number(ev.get("exact_match")),
        "source": f"evaluation ({n:,} {ev.get('split', '')} sentences)" if isinstance(n, int) else "evaluation",
    }


@st.cache_data(max_entries=64, show_spinner=False)
def _comparison_cached(path: str, mtime: float, summary_mtime: float, n: int) -> dict[str, Any]:
    del summary_mtime  # cache key only: a new evaluation gives a new row
    run = loaders.load_run_cached(path, mtime)
    row = comparison_from_eval(run.name, run.config, summary_eval(run.path))
    if row is not None:
        return row
    train = run.config.get("train") if isinstance(run.config.get("train"), Mapping) else {}
    row = {c: None for c in COMPARE_COLUMNS}
    row.update({"run": run.name, "β": finite_number(train.get("beta")), "schedule": str(train.get("schedule", ""))})
    subset = run_subset(run, ("test",), n)
    if subset is None or len(subset) < 10:
        row["source"] = "no evaluation, corpus not available here"
        return row
    enc = encode_subset(run, subset)
    stats = latent_stats_of(enc.mu, enc.logvar)
    row.update(
        {
            "active units": float(stats.n_active),
            "KL": float(sum(stats.kl)),
            "MI": stats.mi,
            "exact match": float(np.mean(enc.correct)),
            "source": f"measured on {len(subset):,} test sentences",
        }
    )
    labelled = label_factors(subset.labels, subset.factor_names)
    if labelled is not None:
        from vae_core.disentanglement import disentanglement_report

        factors, names, _, _ = labelled
        report = disentanglement_report(enc.mu, factors, names, active=np.asarray(stats.active), seed=0)
        row.update(
            {
                "MIG": finite_number(report["mig"]),
                "DCI-D": finite_number(report["dci"]["disentanglement"]),
                "SAP": finite_number(report["sap"]),
            }
        )
    return row


def comparison_row(run_path: Path, n: int = COMPARE_SENTENCES) -> dict[str, Any]:
    """One run's AU, KL, MI, MIG, DCI-D, SAP and exact match, with β and schedule: from its evaluation in
    summary.json when there is one, else measured on up to n test sentences (cached; 'source' says which)."""
    run_path = Path(run_path)
    try:
        summary_mtime = (run_path / "summary.json").stat().st_mtime
    except OSError:
        summary_mtime = 0.0
    return _comparison_cached(str(run_path), loaders._weights_mtime(run_path), summary_mtime, int(n))


__all__ = [
    "COMPARE_COLUMNS",
    "Encoded",
    "LatentStats",
    "Subset",
    "categorical_columns",
    "color_options",
    "color_values",
    "comparison_row",
    "content_id",
    "corpus_subset",
    "csv_header",
    "disentanglement",
    "disk_cached",
    "encode_and_reconstruct",
    "encode_subset",
    "hover_texts",
    "label_factors",
    "label_upload",
    "latent_stats",
    "latent_stats_of",
    "map_key",
    "map_projection",
    "prior_validity",
    "projection_cache_dir",
    "rows_frame",
    "run_cache_dir",
    "run_subset",
    "cached_encoding",
    "load_encoded",
    "save_encoded",
    "sample_subset",
    "subset_indices",
    "summary_eval",
    "text_matches",
    "traversal_effects",
    "upload_subset",
]
