"""Cached loaders shared by every page: runs, corpora, encodings and memoised decodes.

The model of a run is loaded once per process (`st.cache_resource`, keyed on the path and the
weights' mtime so a retrained run reloads) and shared read-only by all sessions: decoding and
encoding run under `torch.inference_mode()` and never change the model. What the model computes
is memoised with `st.cache_data`, keyed on (run, codes bytes, settings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ui import state
from vae_core import runs as runs_io
from vae_core.config import DecodeConfig
from vae_core.corpus import PTB_FILES_SHA256, Corpus, CorpusError, cache_dir, load_corpus
from vae_core.runs import Run, RunError, effective_state, list_runs, load_run

REPO_ROOT = Path(__file__).resolve().parent.parent
ENCODE_LIMIT = 2000  # sentences encoded for corpus statistics (attribute vectors, active dims)


# --------------------------------------------------------------------------- where runs live


def models_dir() -> Path:
    """Shipped runs: $VAE_MODELS_DIR, else <repo>/models."""
    return Path(os.environ.get("VAE_MODELS_DIR") or REPO_ROOT / "models")


def runs_dir() -> Path:
    """The user's runs: $VAE_RUNS_DIR, else <repo>/runs."""
    return Path(os.environ.get("VAE_RUNS_DIR") or REPO_ROOT / "runs")


def _loadable(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def available_runs() -> list[Path]:
    """Shipped runs first, then the user's; only directories with config.json and model.safetensors."""
    seen: set[Path] = set()
    out: list[Path] = []
    for root in (models_dir(), runs_dir()):
        for p in list_runs(root):
            key = p.resolve()
            if key not in seen and _loadable(p):
                seen.add(key)
                out.append(p)
    return out


def is_shipped(path: Path) -> bool:
    try:
        return Path(path).resolve().parent == models_dir().resolve()
    except OSError:
        return False


def default_run_path() -> Path | None:
    """models/DEFAULT (a run directory name) if it names an available run, else the first shipped, else any."""
    runs = available_runs()
    if not runs:
        return None
    default_file = models_dir() / "DEFAULT"
    if default_file.is_file():
        try:
            name = default_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        for p in runs:
            if p.name == name and is_shipped(p):
                return p
    return runs[0]


def run_label(path: Path) -> str:
    """How the picker names a run: its name, where it comes from, and its state when not finished."""
    if is_shipped(path):
        return f"{path.name} · shipped"
    s = effective_state(path)
    return f"{path.name} · {s}" if s not in ("finished", "unknown") else path.name


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
        st.error(f"Cannot open the run **{path.name}**: {e}")
        st.stop()
    except (OSError, ValueError, RuntimeError) as e:
        st.error(f"Cannot open the run **{path.name}**: {type(e).__name__}: {e}")
        st.stop()
    return None  # unreachable: st.stop raises


def require_run() -> Run:
    """current_run(), or an explanation and st.stop() when no run exists yet."""
    run = current_run()
    if run is None:
        st.info(
            "No trained model found. Train one on the **Train** page, or from a shell: "
            "`python -m vae_core train --corpus synthetic --out runs/first`. "
            f"Shipped models live in `{models_dir()}`, your runs in `{runs_dir()}`."
        )
        st.stop()
    return run


def is_synthetic(run: Run) -> bool:
    """Whether the run was trained on the built-in corpus with known factors."""
    return run.corpus_spec == "synthetic"


# --------------------------------------------------------------------------- corpora


@st.cache_resource(max_entries=4, show_spinner="Loading the corpus…")
def load_corpus_cached(spec: str, text_column: str | None = None, seed: int = 0) -> Corpus:
    """A named corpus or a path, loaded once per process (raises CorpusError)."""
    return load_corpus(spec, text_column, seed=seed)


def _ptb_present() -> bool:
    d = cache_dir() / "ptb"
    return all((d / n).is_file() for n in PTB_FILES_SHA256)


def corpus_for_run(run: Run) -> Corpus | None:
    """The run's corpus when it can be read locally (no download from the app); else None."""
    info = run.config.get("corpus") if isinstance(run.config.get("corpus"), dict) else {}
    spec = str(info.get("spec") or "")
    if not spec or (spec == "ptb" and not _ptb_present()):
        return None
    try:
        return load_corpus_cached(spec, info.get("text_column"), int(run.train_config.seed))
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
    data = corpus.split(split)
    n = len(data)
    if n > limit:
        idx = np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False)).tolist()
        data = data.select(idx)
    return list(data.sentences), {c: list(v) for c, v in data.labels.items()}


# --------------------------------------------------------------------------- encoding and decoding


@st.cache_data(max_entries=256, show_spinner=False)
def _encode_cached(path: str, mtime_key: float, sentences: tuple[str, ...]):
    from vae_core.encoding import posterior_means

    run = load_run_cached(path, mtime_key)
    mu, logvar, oov = posterior_means(
        run.model,
        run.vocab,
        list(sentences),
        lowercase=run.train_config.lowercase,
        max_len=run.train_config.max_len,
    )
    return mu.numpy(), logvar.numpy(), oov


def encode(run: Run, sentences: list[str] | tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Posterior means and log-variances (N, D) of sentences, and each one's OOV words (memoised)."""
    mu, logvar, oov = _encode_cached(str(run.path), _weights_mtime(run.path), tuple(sentences))
    return torch.from_numpy(mu.copy()), torch.from_numpy(logvar.copy()), oov


@st.cache_data(max_entries=4096, show_spinner=False)
def _decode_cached(path: str, mtime_key: float, z_bytes: bytes, shape: tuple[int, int], cfg: DecodeConfig):
    from vae_core.decode import decode

    run = load_run_cached(path, mtime_key)
    z = torch.from_numpy(np.frombuffer(z_bytes, dtype=np.float32).reshape(shape).copy())  # (B, D)
    with torch.inference_mode():
        return list(decode(run.model, z, run.vocab, cfg).texts)


def decode_texts(run: Run, z: torch.Tensor | np.ndarray, cfg: DecodeConfig | None = None) -> list[str]:
    """Decoded sentences of codes z (B, D) or (D,), one batched call, memoised per (run, z, settings).

    `cfg` defaults to the sidebar's decode settings.
    """
    cfg = cfg or state.get_decode_config()
    z = torch.as_tensor(z, dtype=torch.float32).detach().cpu()
    if z.dim() == 1:
        z = z.unsqueeze(0)
    z = z.reshape(-1, run.model_config.latent_dim).contiguous()  # (B, D)
    if z.size(0) == 0:
        return []
    return _decode_cached(str(run.path), _weights_mtime(run.path), z.numpy().tobytes(), tuple(z.shape), cfg)


# --------------------------------------------------------------------------- per-dimension statistics


def read_summary(path: Path) -> dict:
    """summary.json of a run, read now (an evaluation may have been written after the model loaded)."""
    return runs_io.read_summary(Path(path))


@dataclass(frozen=True)
class DimStats:
    """KL per latent dimension and which dimensions are active, with where the numbers came from."""

    kl: tuple[float, ...]  # (D,) nats, mean over sentences
    active: tuple[bool, ...]  # (D,)
    source: str  # "evaluation", "corpus sample", "training" or "none"

    @property
    def order(self) -> list[int]:
        """Active dimensions by KL (largest first), then the inactive ones by KL."""
        dims = range(len(self.kl))
        return sorted(dims, key=lambda d: (not self.active[d], -self.kl[d], d))

    @property
    def active_dims(self) -> list[int]:
        return [d for d in self.order if self.active[d]]

    @property
    def inactive_dims(self) -> list[int]:
        return [d for d in self.order if not self.active[d]]


def _floats(values, dim: int) -> list[float] | None:
    if not isinstance(values, list) or len(values) != dim:
        return None
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return out if all(np.isfinite(out)) else None


@st.cache_data(max_entries=32, show_spinner="Measuring the latent dimensions…")
def _dim_stats_cached(path: str, mtime_key: float, summary_key: float) -> DimStats:
    from vae_core.metrics import AU_THRESHOLD, active_units, kl_per_dim

    del summary_key
    run = load_run_cached(path, mtime_key)
    dim = run.model_config.latent_dim
    summary = read_summary(run.path)
    ev = summary.get("eval") if isinstance(summary.get("eval"), dict) else {}
    kl = _floats(ev.get("kl_per_dim"), dim)
    var = _floats(ev.get("au_variances"), dim)
    if kl is not None and var is not None:
        return DimStats(tuple(kl), tuple(v > AU_THRESHOLD for v in var), "evaluation")
    sentences, _ = corpus_sample(run, "test", 500)
    if len(sentences) >= 2:
        mu, logvar, _ = _encode_cached(path, mtime_key, tuple(sentences))
        mu_t, lv_t = torch.from_numpy(mu), torch.from_numpy(logvar)
        _, variances = active_units(mu_t)
        kl_t = kl_per_dim(mu_t, lv_t)
        return DimStats(
            tuple(float(x) for x in kl_t), tuple(bool(v > AU_THRESHOLD) for v in variances), "corpus sample"
        )
    training = summary.get("training") if isinstance(summary.get("training"), dict) else {}
    valid = training.get("valid") if isinstance(training.get("valid"), dict) else {}
    kl = _floats(valid.get("kl_per_dim"), dim)
    if kl is not None:
        return DimStats(tuple(kl), tuple(k > AU_THRESHOLD for k in kl), "training")
    return DimStats((0.0,) * dim, (True,) * dim, "none")


def dim_stats(run: Run) -> DimStats:
    """KL per dimension and active dimensions: from the evaluation in summary.json, else measured on
    up to 500 test sentences (posterior-mean variance > 0.01 = active), else from training."""
    try:
        summary_mtime = (run.path / "summary.json").stat().st_mtime
    except OSError:
        summary_mtime = 0.0
    return _dim_stats_cached(str(run.path), _weights_mtime(run.path), summary_mtime)
