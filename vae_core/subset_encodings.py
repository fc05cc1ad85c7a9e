"""Encodings of a subset of sentences by a run, their disk cache, and the tables and colours drawn from them.

`encode_and_reconstruct` is THE "sentences → posterior means → greedy reconstructions → exact match" of the
lab: the encoder's posterior parameters (`encoding.posterior_params`), then the greedy decode of each mean
scored against the input word for word (`metrics.greedy_reconstructions`, which `metrics.evaluate_model`
uses too). Encodings are cached on disk in `<run>/cache/encodings/<key>.npz` (or a user cache dir when the
run directory is read-only), keyed by the hash of the run's weights and the subset's content hash, so they
stay valid wherever the run is copied and are missed as soon as the weights change.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vae_core.corpus import cache_dir
from vae_core.runs import Run, atomic_write_bytes
from vae_core.subsets import Subset, categorical_columns

ENCODING_FORMAT = 1  # of the encodings .npz files; part of their key
_ENCODED_ARRAYS = ("mu", "logvar", "correct", "lengths", "n_oov")


@dataclass(frozen=True, eq=False)
class Encoded:
    """Posterior parameters and greedy reconstructions of a subset, row for row."""

    mu: np.ndarray  # (N, D) float32, posterior means
    logvar: np.ndarray  # (N, D) float32
    reconstructions: tuple[str, ...]  # greedy decode of each posterior mean
    correct: np.ndarray  # (N,) bool: the reconstruction equals the input, word for word (<unk> for OOV)
    lengths: np.ndarray  # (N,) int: words the model reads (after max_len)
    n_oov: np.ndarray  # (N,) int: out-of-vocabulary words

    @property
    def exact_match(self) -> float:
        """Share of rows reconstructed exactly (NaN for no rows)."""
        return float(np.mean(self.correct)) if len(self.correct) else float("nan")


def _freeze(enc: Encoded) -> Encoded:
    for arr in (enc.mu, enc.logvar, enc.correct, enc.lengths, enc.n_oov):
        arr.flags.writeable = False  # shared by every session through the app's caches
    return enc


def encode_and_reconstruct(run: Run, sentences: Sequence[str], batch_size: int = 512) -> Encoded:
    """Posterior means/log-variances (N, D) of sentences and their greedy reconstructions, scored (uncached)."""
    import torch

    from vae_core.encoding import posterior_params, sentence_ids
    from vae_core.metrics import greedy_reconstructions, strip_specials
    from vae_core.text import detokenize

    tcfg = run.train_config
    ids, oov = sentence_ids(run.vocab, list(sentences), tcfg.lowercase, tcfg.max_len)
    mu, logvar = posterior_params(run.model, ids, batch_size=batch_size)  # (N, D) each
    refs = [strip_specials(x) for x in ids]
    max_len = max((len(r) for r in refs), default=1) + 2
    with torch.inference_mode():
        hyps = greedy_reconstructions(run.model, run.vocab, mu, max_len=max_len, batch_size=batch_size)
    return _freeze(
        Encoded(
            mu=mu.numpy().astype(np.float32),
            logvar=logvar.numpy().astype(np.float32),
            reconstructions=tuple(detokenize(run.vocab.decode(h)) for h in hyps),
            correct=np.array([h == r for h, r in zip(hyps, refs, strict=True)], dtype=bool).reshape(len(refs)),
            lengths=np.array([len(r) for r in refs], dtype=np.int64),
            n_oov=np.array([len(o) for o in oov], dtype=np.int64),
        )
    )


def save_encoded(enc: Encoded, path: Path) -> None:
    """Write an Encoded to `path` (.npz, atomic; strings as a unicode array, so loading never unpickles)."""
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


# --------------------------------------------------------------------------- where a run's caches live


def writable_dir(path: Path) -> bool:
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
    if writable_dir(own):
        return own
    digest = hashlib.sha256(str(run_path.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / kind / f"{run_path.name}-{digest}"


@functools.lru_cache(maxsize=64)
def _weights_digest(path: str, mtime_ns: int, size: int) -> str:
    """16 hex chars of the sha256 of a weights file (memoised per path, mtime and size: hashed once)."""
    del mtime_ns, size  # part of the memo key: new weights are hashed again
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def run_id(run_path: Path | str) -> str:
    """What cache keys call a run: the hash of its weights, so a cache stays valid wherever the run is copied
    (a clone of the repository, another machine) and is missed as soon as the weights change."""
    weights = Path(run_path) / "model.safetensors"
    try:
        stat = weights.stat()
        return "weights:" + _weights_digest(str(weights.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return f"path:{Path(run_path).resolve()}"


def encoding_key(run_path: Path | str, subset_id: str) -> str:
    """Disk-cache key of one subset's encoding by one run's weights."""
    key = f"{ENCODING_FORMAT}|{run_id(Path(run_path))}|{subset_id}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


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
        from vae_core.grammar import builtin_grammar

        values = subset.factor_values  # the grammar's value order, when the subset's corpus has one
        if values is None and subset.factor_names == tuple(builtin_grammar(check=False).factors):
            values = builtin_grammar(check=False).factors
        values = values or {}
        order = list(values[choice]) if choice in subset.factor_names and choice in values else None
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


__all__ = [
    "COLOR_LENGTH",
    "COLOR_NONE",
    "COLOR_ORIGIN",
    "COLOR_RECON",
    "ENCODING_FORMAT",
    "Encoded",
    "cached_encoding",
    "color_options",
    "color_values",
    "encode_and_reconstruct",
    "encoding_key",
    "load_encoded",
    "rows_frame",
    "run_cache_dir",
    "run_id",
    "save_encoded",
    "writable_dir",
]
