"""Fitted maps (projections) of a run's codes: a per-process store in front of the run's disk cache.

`map_projection` looks a map up in a `ProjectionStore` (memory, LRU), then on disk
(`<run>/cache/projections/<key>.npz`, see subset_encodings.run_cache_dir), and only then fits it
(`projection.cached_projection`); two threads asking for the same map at once fit it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.corpus import cache_dir
from vae_core.projection import Projection, cached_projection, projection_key
from vae_core.subset_encodings import run_cache_dir, run_id


class ProjectionStore:
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


def projection_cache_dir(run_path: Path | str) -> Path:
    """Where a run's projections are cached (see subset_encodings.run_cache_dir)."""
    return run_cache_dir(run_path, "projections")


def map_key(
    run_path: Path | str, subset_id: str, method: str, n_components: int, seed: int, params: Mapping[str, Any]
) -> str:
    """The projection cache key of one map of one run's codes (vae_core.projection.projection_key)."""
    return projection_key(run_id(Path(run_path)), subset_id, method, n_components, seed, dict(params))


def disk_cached(run_path: Path | str, key: str) -> bool:
    """Whether the projection `key` is already on disk for this run."""
    return (projection_cache_dir(run_path) / f"{key}.npz").is_file()


def map_projection(
    store: ProjectionStore,
    run_path: Path | str,
    subset_id: str,
    codes: np.ndarray,
    method: str,
    n_components: int,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> tuple[Projection, str, str]:
    """The projection of codes (N, D): from `store`, else from the disk cache, else fitted and saved.

    Returns (projection, source, key) with source 'memory', 'disk' or 'fitted'.
    """
    params = dict(params or {})
    key = map_key(run_path, subset_id, method, n_components, seed, params)
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


__all__ = ["ProjectionStore", "disk_cached", "map_key", "map_projection", "projection_cache_dir"]
