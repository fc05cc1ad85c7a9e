"""Cached loaders shared by every page: runs, corpora, encodings and memoised decodes.

The model of a run is loaded once per process (`st.cache_resource`, keyed on the path and the
weights' mtime so a retrained run reloads) and shared read-only by all sessions: vae_core.explore
encodes and decodes under `torch.inference_mode()` and never changes the model. What the model
computes is memoised with `st.cache_data`, keyed on (run, codes bytes, settings). Codes are numpy
float32 arrays: the pages never see a tensor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ui import state
from ui.safe_text import code, escape
from vae_core import explore
from vae_core import runs as runs_io
from vae_core.config import DecodeConfig
from vae_core.corpus import PTB_FILES_SHA256, Corpus, CorpusError, cache_dir, load_corpus
from vae_core.explore import LatentStats
from vae_core.grammar import RUN_COPY, Grammar, GrammarError, run_corpus_spec
from vae_core.run_folders import (  # noqa: F401 - where runs live, re-exported for the pages
    available_runs,
    default_run_path,
    is_shipped,
    models_dir,
    run_label,
    runs_dir,
    unlisted_runs,
)
from vae_core.runs import Run, RunError, load_run
from vae_core.subsets import split_sample
from vae_core.summary import Summary

ENCODE_LIMIT = 2000  # sentences encoded for corpus statistics (attribute vectors, active dims)


def _weights_mtime(path: Path) -> float:
    try:
        return (Path(path) / "model.safetensors").stat().st_mtime
    except OSError:
        return 0.0


# --------------------------------------------------------------------------- the selected run


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def load_run_cached(path: str, mtime_key: float) -> Run:
    """load_run once per (path, weights mtime) per process; shared read-only by every session."""
    del mtime_key  # part of the cache key only
    return load_run(path)


def selected_run_path() -> Path | None:
    """The run chosen in the sidebar (or the default when the sidebar has not run yet)."""
    chosen = st.session_state.get(state.RUN_PATH)
    runs = available_runs()
    if chosen:
        for p in runs:
            if str(p) == chosen:
                return p
    return default_run_path()


def current_run() -> Run | None:
    """The selected run, loaded; None when there is no run at all. A bad run stops the page with its reason."""
    path = selected_run_path()
    if path is None:
        return None
    # The page (not only the router) writes `run`: query parameters set before page.run() are dropped
    # when st.navigation starts the page.
    state.set_query_params(run=path.name)
    try:
        return load_run_cached(str(path), _weights_mtime(path))
    except RunError as e:
        st.error(f"Cannot open the run **{escape(path.name)}**: {escape(e)}")
        st.stop()
    except (OSError, ValueError, RuntimeError) as e:
        st.error(f"Cannot open the run **{escape(path.name)}**: {type(e).__name__}: {escape(e)}")
        st.stop()
    return None  # unreachable: st.stop raises


def require_run() -> Run:
    """current_run(), or an explanation and st.stop() when no run exists yet."""
    run = current_run()
    if run is None:
        st.info(
            "No trained model found. Train one on the **Train** page, or from a shell: "
            "`python -m vae_core train --corpus synthetic --out runs/first`. "
            f"Shipped models live in {code(models_dir())}, your runs in {code(runs_dir())}."
        )
        st.stop()
    return run


def _file_key(path: Path) -> tuple[int, int]:
    """(mtime_ns, size) of a file, (0, 0) when there is none: a cache key that changes when the file does."""
    try:
        st_ = Path(path).stat()
    except OSError:
        return (0, 0)
    return (st_.st_mtime_ns, st_.st_size)


@st.cache_resource(max_entries=16, show_spinner=False)
def _run_grammar_cached(path: str, mtime_key: float, files_key: tuple) -> tuple[Grammar | None, str | None]:
    del files_key  # part of the cache key only: config.json and the run's grammar copy
    try:
        return explore.run_grammar(load_run_cached(path, mtime_key), strict=True), None
    except GrammarError as e:
        return None, str(e)


def run_grammar(run: Run) -> Grammar | None:
    """The factor grammar of the run's corpus (explore.run_grammar: 'synthetic' → the built-in one, a grammar
    file → the run's checked copy), loaded once per run; None for a corpus without factors. Every factor-aware
    page asks this. When the grammar cannot be used (say, the run's copy changed), the page says why."""
    key = (_file_key(run.path / "config.json"), _file_key(run.path / RUN_COPY))
    grammar, problem = _run_grammar_cached(str(run.path), _weights_mtime(run.path), key)
    if problem:
        st.warning(f"This run's factor grammar cannot be used, so no factor information is shown: {escape(problem)}")
    return grammar


# --------------------------------------------------------------------------- corpora


@st.cache_resource(max_entries=4, show_spinner="Loading the corpus…")
def load_corpus_cached(spec: str, text_column: str | None = None, seed: int = 0) -> Corpus:
    """A named corpus or a path, loaded once per process (raises CorpusError)."""
    return load_corpus(spec, text_column, seed=seed)


def _ptb_present() -> bool:
    d = cache_dir() / "ptb"
    return all((d / n).is_file() for n in PTB_FILES_SHA256)


def corpus_spec(run: Run) -> tuple[str, str | None]:
    """(spec, text column) the run's corpus is read from: its config.json's, or the run's own grammar copy
    (grammar.run_corpus_spec); '' and None when not recorded or when that copy fails its check (run_grammar
    says why)."""
    info = run.config.get("corpus") if isinstance(run.config.get("corpus"), dict) else {}
    column = info.get("text_column")
    try:
        spec = run_corpus_spec(run.path, info)
    except GrammarError:
        spec = ""
    return spec, column if isinstance(column, str) else None


def corpus_for_run(run: Run) -> Corpus | None:
    """The run's corpus when it can be read locally (no download from the app); else None."""
    spec, text_column = corpus_spec(run)
    if not spec or (spec == "ptb" and not _ptb_present()):
        return None
    from vae_core.corpus import check_run_corpus_spec
    from vae_core.jobs import data_dirs

    try:
        check_run_corpus_spec(spec, run.path, data_dirs())  # a run's file may not point outside the data folders
        return load_corpus_cached(spec, text_column, int(run.train_config.seed))
    except (CorpusError, OSError, ValueError):
        return None


def corpus_sentences(run: Run, split: str = "test", limit: int = 500) -> list[str]:
    """Up to `limit` sentences of one split of the run's corpus, in corpus order ([] if unavailable)."""
    corpus = corpus_for_run(run)
    if corpus is None:
        return []
    return list(corpus.split(split).sentences[:limit])


def corpus_sample(run: Run, split: str = "train", limit: int = ENCODE_LIMIT) -> tuple[list[str], dict[str, list[str]]]:
    """Up to `limit` sentences of a split with their label columns (seeded, evenly spread)."""
    corpus = corpus_for_run(run)
    if corpus is None:
        return [], {}
    data = split_sample(corpus.split(split), limit)
    return list(data.sentences), {c: list(v) for c, v in data.labels.items()}


# --------------------------------------------------------------------------- encoding and decoding


@st.cache_data(max_entries=256, show_spinner=False)
def _encode_cached(path: str, mtime_key: float, sentences: tuple[str, ...]):
    return explore.encode(load_run_cached(path, mtime_key), sentences)


def encode(run: Run, sentences: list[str] | tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Posterior means and log-variances (N, D) float32 of sentences, and each one's OOV words (memoised).

    The arrays are copies: a page may change them without touching the cache.
    """
    mu, logvar, oov = _encode_cached(str(run.path), _weights_mtime(run.path), tuple(sentences))
    return mu.copy(), logvar.copy(), oov


@st.cache_data(max_entries=4096, show_spinner=False)
def _decode_cached(path: str, mtime_key: float, z_bytes: bytes, shape: tuple[int, int], cfg: DecodeConfig):
    z = np.frombuffer(z_bytes, dtype=np.float32).reshape(shape)  # (B, D)
    return explore.decode(load_run_cached(path, mtime_key), z, cfg)


def decode_texts(run: Run, z: np.ndarray, cfg: DecodeConfig | None = None) -> list[str]:
    """Decoded sentences of codes z (B, D) or (D,), one batched call, memoised per (run, z, settings).

    `cfg` defaults to the sidebar's decode settings.
    """
    cfg = cfg or state.get_decode_config()
    z = np.ascontiguousarray(np.asarray(z, dtype=np.float32).reshape(-1, run.model_config.latent_dim))  # (B, D)
    if z.shape[0] == 0:
        return []
    return _decode_cached(str(run.path), _weights_mtime(run.path), z.tobytes(), tuple(z.shape), cfg)


# --------------------------------------------------------------------------- per-dimension statistics


def read_summary(path: Path) -> Summary:
    """summary.json of a run, read now and typed (an evaluation may have been written after the model loaded)."""
    return runs_io.read_summary(Path(path))


def summary_mtime(path: Path) -> float:
    """The mtime of a run's summary.json (0 when there is none): a cache key that changes with a new evaluation."""
    try:
        return (Path(path) / "summary.json").stat().st_mtime
    except OSError:
        return 0.0


DIM_STATS_SENTENCES = 500  # test sentences measured when a run has no evaluation


@st.cache_data(max_entries=32, show_spinner="Measuring the latent dimensions…")
def _dim_stats_cached(path: str, mtime_key: float, summary_key: float) -> LatentStats:
    del summary_key
    run = load_run_cached(path, mtime_key)

    def measure() -> tuple[np.ndarray, np.ndarray] | None:
        sentences, _ = corpus_sample(run, "test", DIM_STATS_SENTENCES)
        if len(sentences) < 2:
            return None
        mu, logvar, _ = _encode_cached(path, mtime_key, tuple(sentences))
        return mu, logvar

    return explore.dim_stats(read_summary(run.path), run.model_config.latent_dim, measure)


def dim_stats(run: Run) -> LatentStats:
    """KL per dimension and active dimensions (explore.dim_stats): from the evaluation in summary.json, else
    measured on up to 500 test sentences (posterior-mean variance > 0.01 = active), else from training."""
    return _dim_stats_cached(str(run.path), _weights_mtime(run.path), summary_mtime(run.path))
