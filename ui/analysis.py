"""Cached analyses of a run over a set of sentences, shared by the Latent map and Disentanglement pages.

Streamlit glue only: each function is an `st.cache_*` wrapper (or a widget) over vae_core — subsets of
sentences and their label rules (`vae_core.subsets`), encodings with greedy reconstructions and their disk
cache (`vae_core.subset_encodings`), per-dimension statistics (`vae_core.explore`), disentanglement reports,
generation-side analyses and fitted maps (`vae_core.map_cache`). Everything is cached per process, keyed by
the run's path, the weights' mtime and the subset's content hash (`subset_id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from ui import loaders
from ui.textdiff import escape
from vae_core import comparison, explore, map_cache, subset_encodings, subsets
from vae_core.corpus import (
    MAX_COLUMNS,
    TEXT_COLUMN_GUESSES,
    Corpus,
    CorpusError,
    NoTextColumnError,
    TextSet,
    parse_text,
    text_encoding,
)
from vae_core.evaluate import N_PRIOR_SAMPLES, N_TRAVERSAL_BASES
from vae_core.explore import LatentStats
from vae_core.projection import Projection
from vae_core.runs import Run, read_summary
from vae_core.subset_encodings import Encoded
from vae_core.subsets import MAX_LABEL_VALUES, Subset
from vae_core.units import MIB, format_bytes

MAP_CAP = 5000  # default number of sentences on a map: UMAP of 5,000 points fits in ~10-20 s on 2 cores
MAX_SENTENCES = 20_000  # the most sentences a map or an analysis takes
PROJECTIONS_IN_MEMORY = 12  # fitted projections kept per process (a UMAP of 10k points is ~10 MB)
UPLOAD_MAX_BYTES = 20 * MIB


def _mtime(run: Run) -> float:
    return loaders._weights_mtime(run.path)


# --------------------------------------------------------------------------- the run's corpus and uploads


@st.cache_resource(max_entries=8, show_spinner=False)
def _corpus_subset_cached(
    spec: str, text_column: str | None, corpus_seed: int, splits: tuple[str, ...], n: int, seed: int
) -> Subset:
    corpus = loaders.load_corpus_cached(spec, text_column, corpus_seed)
    return subsets.corpus_subset(corpus, splits, n, seed)


def run_corpus(run: Run) -> Corpus | None:
    """The run's corpus when it can be read here (see loaders.corpus_for_run), else None."""
    return loaders.corpus_for_run(run)


def run_subset(run: Run, splits: Sequence[str], n: int, seed: int = 0) -> Subset | None:
    """Up to n sentences of `splits` of the run's corpus (cached), or None when the corpus is unavailable."""
    if run_corpus(run) is None:
        return None
    spec, text_column = loaders.corpus_spec(run)
    return _corpus_subset_cached(spec, text_column, int(run.train_config.seed), tuple(splits), int(n), int(seed))


@st.cache_resource(max_entries=8, show_spinner=False)
def _parse_upload(digest: str, fmt: str, name: str, text_column: str | None, _data: bytes) -> TextSet:
    del digest  # the key: the content hash of _data
    return parse_text(_data, fmt, name, text_column, max_bytes=UPLOAD_MAX_BYTES)


@st.cache_resource(max_entries=8, show_spinner=False)
def _file_problem(digest: str, fmt: str, name: str, _data: bytes) -> str | None:
    """What is wrong with a label file whatever its text column (binary, ragged rows, …), or None."""
    del digest  # the key: the content hash of _data
    try:
        parse_text(_data, fmt, name, None, max_bytes=UPLOAD_MAX_BYTES)
    except NoTextColumnError:
        return None
    except CorpusError as e:
        return str(e)
    return None


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
        help=f"Each label column with 2 to {MAX_LABEL_VALUES} distinct values becomes a factor: the map can colour "
        "by it and the Disentanglement page measures how the latent dimensions capture it.",
    )
    if upload is None:
        return None
    data = upload.getvalue()
    if len(data) > UPLOAD_MAX_BYTES:
        size, cap = format_bytes(len(data)), format_bytes(UPLOAD_MAX_BYTES)
        st.error(f"'{escape(upload.name)}' is {size}; the limit is {cap}.")
        return None
    fmt = "tsv" if upload.name.lower().endswith(".tsv") else "csv"
    header = subsets.csv_header(data, fmt)
    if not header:
        st.error(f"'{escape(upload.name)}' has no header row.")
        return None
    if len(header) > MAX_COLUMNS:  # refused before a column picker with that many options reaches the browser
        st.error(f"'{escape(upload.name)}' has {len(header):,} or more columns; a label file may have at most "
                 f"{MAX_COLUMNS:,} (a text column and its labels).")
        return None
    lower = [h.lower() for h in header]
    guess = next((lower.index(g) for g in TEXT_COLUMN_GUESSES if g in lower), None)  # never "the first column"
    digest = hashlib.sha256(data).hexdigest()
    if guess is None and (problem := _file_problem(digest, fmt, upload.name, data)):
        st.error(escape(problem))  # the file's own problem (binary, ragged rows) before asking for a column
        return None
    text_column = st.selectbox("Text column", header, index=guess, key=f"w_{key}_upload_text",
                               placeholder="choose the column holding the sentences")
    if text_column is None:
        st.warning(f"'{escape(upload.name)}' has no text column (columns: {escape(', '.join(header))}): "
                   "choose the column that holds the sentences.")
        return None
    if (encoding := text_encoding(data)[1]) != "UTF-8":
        st.caption(f"Read as {encoding} (from the file's byte-order mark).")
    try:
        parsed = _parse_upload(digest, fmt, upload.name, text_column, data)
    except CorpusError as e:
        st.error(escape(str(e)))
        return None
    return subsets.upload_subset(parsed, upload.name, n)


# --------------------------------------------------------------------------- encodings and statistics


@st.cache_resource(max_entries=8, show_spinner=False)
def _encoded_cached(path: str, mtime: float, subset_id: str, _sentences: tuple[str, ...]) -> Encoded:
    return subset_encodings.cached_encoding(loaders.load_run_cached(path, mtime), subset_id, _sentences)[0]


def encode_subset(run: Run, subset: Subset) -> Encoded:
    """encode_and_reconstruct, cached per (run path, weights mtime, subset_id) in memory and on disk."""
    return _encoded_cached(str(run.path), _mtime(run), subset.subset_id, subset.sentences)


@st.cache_resource(max_entries=8, show_spinner=False)
def _hover_cached(path: str, mtime: float, subset_id: str, _subset: Subset, _enc: Encoded) -> tuple[str, ...]:
    from ui.map_figures import hover_lines

    del path, mtime, subset_id
    return tuple(hover_lines(_subset.sentences, _enc.reconstructions))


def hover_texts(run: Run, subset: Subset, enc: Encoded) -> tuple[str, ...]:
    """Escaped map hover text of every row (sentence, then its reconstruction), built once per run + subset."""
    return _hover_cached(str(run.path), _mtime(run), subset.subset_id, subset, enc)


@st.cache_data(max_entries=32, show_spinner=False)
def _latent_stats_cached(path: str, mtime: float, subset_id: str, _enc: Encoded) -> LatentStats:
    del path, mtime, subset_id
    return explore.latent_stats_of(_enc.mu, _enc.logvar)


def latent_stats(run: Run, subset: Subset, enc: Encoded) -> LatentStats:
    """explore.latent_stats_of the subset's encoding (KL, AU, MI), cached per (run, subset)."""
    return _latent_stats_cached(str(run.path), _mtime(run), subset.subset_id, enc)


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
    convention: str = "lab",
) -> dict[str, Any]:
    from vae_core.disentanglement import disentanglement_report

    del path, mtime, subset_id
    return disentanglement_report(_codes, _factors, list(names), active=np.asarray(active, dtype=bool), seed=seed,
                                  convention=convention)


def disentanglement(
    run: Run,
    subset: Subset,
    codes: np.ndarray,
    factors: np.ndarray,
    names: Sequence[str],
    active: Sequence[bool],
    seed: int = 0,
    convention: str = "lab",
) -> dict[str, Any]:
    """vae_core.disentanglement.disentanglement_report of codes (N, D) vs factors (N, K) under a metric
    convention, cached per run + subset + convention."""
    return _report_cached(
        str(run.path), _mtime(run), subset.subset_id, tuple(names), tuple(bool(a) for a in active), int(seed), codes,
        factors, str(convention),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _traversals_cached(path: str, mtime: float, key: str, dims: tuple[int, ...], _base: np.ndarray) -> dict:
    del key
    return explore.traversal_effects(loaders.load_run_cached(path, mtime), _base, dims)


def traversal_effects(
    run: Run, subset: Subset, enc: Encoded, dims: Sequence[int], n_bases: int = N_TRAVERSAL_BASES
) -> dict:
    """explore.traversal_effects from n_bases posterior means of the subset (seeded), cached."""
    idx = subsets.subset_indices(len(subset), n_bases, seed=1)
    return _traversals_cached(
        str(run.path), _mtime(run), f"{subset.subset_id}:{n_bases}", tuple(int(d) for d in dims), enc.mu[idx]
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _prior_cached(path: str, mtime: float, n: int, seed: int) -> dict:
    return explore.prior_validity(loaders.load_run_cached(path, mtime), n=n, seed=seed)


def prior_validity(run: Run, n: int = N_PRIOR_SAMPLES, seed: int = 0) -> dict:
    """explore.prior_validity of n prior samples, cached per run."""
    return _prior_cached(str(run.path), _mtime(run), int(n), int(seed))


# --------------------------------------------------------------------------- maps


@st.cache_resource(show_spinner=False)
def _projection_store() -> map_cache.ProjectionStore:
    return map_cache.ProjectionStore(PROJECTIONS_IN_MEMORY)


def map_projection(
    run_path: Path,
    subset_id: str,
    codes: np.ndarray,
    method: str,
    n_components: int,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> tuple[Projection, str, str]:
    """map_cache.map_projection through this process's store: (projection, 'memory'|'disk'|'fitted', key)."""
    return map_cache.map_projection(_projection_store(), run_path, subset_id, codes, method, n_components, seed, params)


# --------------------------------------------------------------------------- comparing runs


@st.cache_data(max_entries=64, show_spinner=False)
def _comparison_cached(path: str, mtime: float, summary_mtime: float, n: int) -> dict[str, Any]:
    del summary_mtime  # cache key only: a new evaluation gives a new row
    run = loaders.load_run_cached(path, mtime)
    row = comparison.comparison_from_eval(run.name, run.config, read_summary(run.path).evaluation)
    if row is not None:
        return row
    subset = run_subset(run, ("test",), n)
    if subset is None or len(subset) < 10:
        return comparison.empty_comparison(run.name, run.config, "no evaluation, corpus not available here")
    return comparison.measure_comparison(run.name, run.config, subset, encode_subset(run, subset))


def comparison_row(run_path: Path, n: int = comparison.COMPARE_SENTENCES) -> dict[str, Any]:
    """One run's AU, KL, MI, MIG, DCI-D, SAP and exact match, with β and schedule: from its evaluation in
    summary.json when there is one, else measured on up to n test sentences (cached; 'source' says which)."""
    run_path = Path(run_path)
    return _comparison_cached(str(run_path), loaders._weights_mtime(run_path), loaders.summary_mtime(run_path), int(n))


# --------------------------------------------------------------------------- Interpolation's per-run parts
# Computed once per run and process, not on every widget change (issue 20: Interpolation took 15 s to open).

PATH_MAP_SENTENCES = 500  # test sentences whose codes are drawn under an interpolation path


@st.cache_resource(max_entries=8, show_spinner="Encoding test sentences for the map…")
def _path_background_cached(path: str, mtime: float) -> Projection | None:
    run = loaders.load_run_cached(path, mtime)
    sample, _ = loaders.corpus_sample(run, "test", PATH_MAP_SENTENCES)
    if len(sample) < 3 or run.model_config.latent_dim < 2:
        return None
    from vae_core.projection import fit_projection

    return fit_projection(explore.encode(run, sample)[0], "pca", 2)


def path_background(run: Run) -> Projection | None:
    """A 2-D PCA of PATH_MAP_SENTENCES test sentences' codes to draw a path over (None without a corpus), cached."""
    return _path_background_cached(str(run.path), _mtime(run))


@st.cache_data(max_entries=16, show_spinner="Encoding training sentences for the attribute vectors…")
def _attribute_codes_cached(path: str, mtime: float) -> tuple[np.ndarray, dict[str, list[str]]]:
    run = loaders.load_run_cached(path, mtime)
    sample, labels = loaders.corpus_sample(run, "train", loaders.ENCODE_LIMIT)
    if not sample:
        return np.zeros((0, run.model_config.latent_dim), dtype=np.float32), {}
    return explore.encode(run, sample)[0], labels


@st.cache_data(max_entries=64, show_spinner=False)
def _attribute_direction_cached(path: str, mtime: float, column: str, value: str) -> tuple[np.ndarray, int, int]:
    codes, labels = _attribute_codes_cached(path, mtime)
    mask = np.array([v == value for v in labels[column]])
    return explore.attribute_vector(codes, mask), int(mask.sum()), len(mask)


def attribute_direction(run: Run, column: str, value: str) -> tuple[np.ndarray, int, int]:
    """explore.attribute_vector of `column` = `value` over attribute_codes: (direction (D,), n with it, n), cached.

    ValueError (not cached) when the value has no sentences or all of them.
    """
    direction, n_with, n = _attribute_direction_cached(str(run.path), _mtime(run), column, value)
    return direction.copy(), n_with, n


__all__ = [
    "MAP_CAP",
    "MAX_SENTENCES",
    "UPLOAD_MAX_BYTES",
    "attribute_direction",
    "comparison_row",
    "disentanglement",
    "encode_subset",
    "hover_texts",
    "label_upload",
    "latent_stats",
    "map_projection",
    "path_background",
    "preselect_source",
    "prior_validity",
    "run_corpus",
    "run_subset",
    "traversal_effects",
]
