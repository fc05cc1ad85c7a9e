"""Latent maps of 100,000+ points: fit the reducer on a random sample, place every point with it.

UMAP and t-SNE cost grows faster than linearly with the number of points (and t-SNE cannot place
new points at all), so a map of a large corpus is fitted on `sample_size` codes drawn with a
fixed seed, then every code is placed in batches: by the fitted reducer's `transform` (PCA,
UMAP) or, for t-SNE, by `projection.knn_place` against the sample. The sampled points keep their
fitted coordinates exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vae_core.projection import Method, Projection, _as_codes, fit_projection, knn_place

TRANSFORM_BATCH = 8192  # codes placed per transform call (bounds the memory of one call)
KNN_BATCH = 512  # t-SNE placement: (512 × sample) float64 distances at a time


def sample_indices(n: int, sample_size: int, seed: int = 0) -> np.ndarray:
    """The sorted rows (S,) that `fit_projection_sampled` fits for N = n codes."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(sample_size, n), replace=False))


def fit_projection_sampled(
    codes: Any,
    method: Method = "umap",
    n_components: int = 2,
    sample_size: int = 20_000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **params: Any,
) -> Projection:
    """A `method` map of all codes (N, D), fitted on at most `sample_size` of them.

    N <= sample_size is exactly `fit_projection`. Otherwise a seeded sample (without replacement)
    is fitted, and all N codes are placed in batches; `progress(done, N)` is called after each.
    Returns a Projection whose coords are (N, n_components) in input order; extras["sample_size"]
    says how many were fitted (which ones: `sample_indices(N, sample_size, seed)`).
    """
    codes = _as_codes(codes, "codes")
    n = codes.shape[0]
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 1:
        raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}")
    if n <= sample_size:
        proj = fit_projection(codes, method=method, n_components=n_components, seed=seed, **params)
        proj.extras["sample_size"] = n
        return proj
    started = time.perf_counter()
    sample = sample_indices(n, int(sample_size), seed)  # (S,)
    fitted = fit_projection(codes[sample], method=method, n_components=n_components, seed=seed, **params)
    coords = np.empty((n, n_components), dtype=np.float32)  # (N, C)
    step = TRANSFORM_BATCH if fitted.reducer is not None else KNN_BATCH
    for start in range(0, n, step):
        chunk = codes[start:start + step]  # (b, D)
        if fitted.reducer is not None:
            coords[start:start + step] = np.asarray(fitted.reducer.transform(chunk), dtype=np.float32)
        else:
            coords[start:start + step] = knn_place(fitted.fitted_codes, fitted.coords, chunk)
        if progress:
            progress(min(start + step, n), n)
    coords[sample] = fitted.coords  # the fitted points stay where the fit put them
    return Projection(
        method=fitted.method,
        n_components=fitted.n_components,
        seed=fitted.seed,
        params=fitted.params,
        coords=coords,
        fitted_codes=codes.copy(),  # all codes: knn placement of new points sees the whole map
        reducer=fitted.reducer,
        fit_seconds=time.perf_counter() - started,
        extras={**fitted.extras, "sample_size": int(sample_size)},
    )


__all__ = ["fit_projection_sampled", "sample_indices", "TRANSFORM_BATCH"]
