"""2-D and 3-D maps of posterior means (PCA, t-SNE, UMAP) that can place new points, with a disk cache.

A `Projection` holds the map's coordinates and, where possible, a fitted reducer that places new
codes without refitting (PCA, UMAP). t-SNE has no such reducer, and a projection loaded from disk
has none for UMAP (a fitted UMAP object can only be stored by pickling, which loading must never
do). Those place new points with `knn_place`: the inverse-distance-weighted mean of the map
coordinates of the 5 nearest fitted codes in latent space. So the app can always place a sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vae_core.latent import nearest

Method = Literal["pca", "tsne", "umap"]
Placement = Literal["reducer", "knn"]

METHODS = ("pca", "tsne", "umap")
N_COMPONENTS = (2, 3)

# Parameters each method accepts, with their defaults (a key built from fewer parameters
# than these names the same projection as one that spells the defaults out).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "pca": {},
    "tsne": {
        "perplexity": 30.0,  # clipped to (N - 1) / 3 on small N: t-SNE uses 3 x perplexity neighbours
        "init": "pca",  # reproducible and keeps more global structure than 'random'
        "learning_rate": "auto",  # N / early_exaggeration / 4, the sklearn default
        "max_iter": 1000,
        "metric": "euclidean",
    },
    "umap": {
        "n_neighbors": 15,  # clipped to N - 1 on small inputs
        "min_dist": 0.1,
        "metric": "euclidean",
        "n_epochs": None,  # None: umap picks 500 below 10,000 points, 200 above
    },
}

KNN_K = 5  # neighbours averaged by knn_place
FORMAT_VERSION = 1  # of the .npz cache files; part of every cache key


class LinearMap:
    """A fitted linear projection `(x - mean) @ components.T`: PCA without sklearn, rebuilt from arrays.

    mean: (D,); components: (n_components, D).
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.components = np.asarray(components, dtype=np.float64)

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """codes: (M, D) -> (M, n_components)."""
        return (np.asarray(codes, dtype=np.float64) - self.mean) @ self.components.T


@dataclass(eq=False)
class Projection:
    """A fitted map of N latent codes to `n_components` dimensions.

    coords: (N, n_components) float32, one row per fitted code; fitted_codes: (N, D) float32,
    kept so that `knn_place` works; params: the parameters actually used (after clipping to N).
    reducer: an object with `.transform` (sklearn PCA, umap.UMAP, LinearMap) or None.
    """

    method: Method
    n_components: int
    seed: int
    params: dict[str, Any]
    coords: np.ndarray
    fitted_codes: np.ndarray
    reducer: Any = None
    fit_seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. PCA explained variance

    @property
    def placement(self) -> Placement:
        """How `transform` places new points: 'reducer' (the fitted model) or 'knn' (approximate)."""
        return "reducer" if self.reducer is not None else "knn"

    def transform(self, new_codes: Any) -> np.ndarray:
        """Place new codes (M, D) or (D,) on the map without refitting: returns (M, n_components) float32."""
        codes = _as_codes(new_codes, "new_codes", allow_vector=True)
        if codes.shape[1] != self.fitted_codes.shape[1]:
            raise ValueError(
                f"new codes have {codes.shape[1]} dimensions, the projection was fitted on {self.fitted_codes.shape[1]}"
            )
        if codes.shape[0] == 0:
            return np.empty((0, self.n_components), dtype=np.float32)
        if self.reducer is not None:
            return np.asarray(self.reducer.transform(codes), dtype=np.float32)
        return knn_place(self.fitted_codes, self.coords, codes)


def knn_place(fitted_codes: np.ndarray, coords: np.ndarray, new_codes: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Approximate map position of new codes: inverse-distance-weighted mean of their k nearest fitted points.

    fitted_codes: (N, D); coords: (N, C); new_codes: (M, D). Returns (M, C) float32. Neighbours are
    found by Euclidean distance in latent space; a new code equal to a fitted one lands on its point.
    """
    indices, distances = nearest(
        torch.as_tensor(fitted_codes, dtype=torch.float64),
        torch.as_tensor(new_codes, dtype=torch.float64),
        k=k,
        metric="euclidean",
    )
    indices, distances = indices.numpy(), distances.numpy()  # (M, k)
    exact = distances <= 1e-12
    weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), 1.0 / np.maximum(distances, 1e-12))
    weights /= weights.sum(axis=1, keepdims=True)
    neighbour_coords = np.asarray(coords, dtype=np.float64)[indices]  # (M, k, C)
    return np.einsum("mk,mkc->mc", weights, neighbour_coords).astype(np.float32)


# --------------------------------------------------------------------------- fitting


def _as_codes(codes: Any, name: str, allow_vector: bool = False) -> np.ndarray:
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    array = np.asarray(codes, dtype=np.float32)
    if allow_vector and array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def resolve_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The method's defaults updated with `params`; ValueError on an unknown method or parameter."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r} (choose one of {', '.join(METHODS)})")
    allowed = DEFAULT_PARAMS[method]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) or "none"
        raise ValueError(f"{method} does not take parameter(s) {', '.join(unknown)} (accepted: {accepted})")
    return {**allowed, **params}


def _check_shape_args(method: str, n_components: int, seed: int) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r} (choose one of {', '.join(METHODS)})")
    if n_components not in N_COMPONENTS or isinstance(n_components, bool):
        raise ValueError(f"n_components must be 2 or 3, got {n_components!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def fit_projection(
    codes: Any, method: Method = "umap", n_components: int = 2, seed: int = 0, **params: Any
) -> Projection:
    """Fit a `method` map of codes (N, D) to `n_components` (2 or 3) dimensions, seeded by `seed`.

    params: UMAP n_neighbors=15, min_dist=0.1, metric='euclidean', n_epochs=None; t-SNE
    perplexity=30, init='pca', learning_rate='auto', max_iter=1000, metric='euclidean'; PCA none.
    Neighbourhood sizes are clipped on small N (see `DEFAULT_PARAMS`). Needs N > n_components and
    D >= n_components. Returns a Projection whose coords are (N, n_components).
    """
    _check_shape_args(method, n_components, seed)
    resolved = resolve_params(method, params)
    codes = _as_codes(codes, "codes").copy()  # kept for knn_place: the caller may reuse its array
    n_points, latent_dim = codes.shape
    if n_points < n_components + 1:
        raise ValueError(f"a {n_components}-D {method} map needs at least {n_components + 1} codes, got {n_points}")
    if latent_dim < n_components:
        raise ValueError(f"cannot map {latent_dim}-dimensional codes to {n_components} dimensions")
    seed = int(seed)
    started = time.perf_counter()
    extras: dict[str, Any] = {}
    if method == "pca":
        from sklearn.decomposition import PCA

        reducer: Any = PCA(n_components=n_components, random_state=seed)
        coords = reducer.fit_transform(codes)
        extras["explained_variance_ratio"] = [float(v) for v in reducer.explained_variance_ratio_]
    elif method == "tsne":
        from sklearn.manifold import TSNE

        resolved["perplexity"] = float(min(resolved["perplexity"], max(1.0, (n_points - 1) / 3)))
        tsne = TSNE(n_components=n_components, random_state=seed, **resolved)
        coords = tsne.fit_transform(codes)
        reducer = None  # t-SNE cannot place new points: knn_place does
    else:
        import umap  # slow first import (numba): only when a UMAP map is asked for

        resolved["n_neighbors"] = int(max(2, min(resolved["n_neighbors"], n_points - 1)))
        # random_state makes UMAP single-threaded; n_jobs=1 says so and silences its warning.
        reducer = umap.UMAP(n_components=n_components, random_state=seed, n_jobs=1, **resolved)
        coords = reducer.fit_transform(codes)
    return Projection(
        method=method,
        n_components=n_components,
        seed=seed,
        params=resolved,
        coords=np.asarray(coords, dtype=np.float32),
        fitted_codes=codes,
        reducer=reducer,
        fit_seconds=time.perf_counter() - started,
        extras=extras,
    )


# --------------------------------------------------------------------------- disk cache


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} value {value!r} in a projection key")


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=False)


def projection_key(
    run_id: str, subset_id: str, method: Method, n_components: int, seed: int, params: dict[str, Any]
) -> str:
    """Cache key for one map of one run's codes: 16 hex chars of the sha256 of canonical JSON.

    Defaults are filled in first, so omitted parameters and spelled-out defaults give the same key.
    """
    _check_shape_args(method, n_components, seed)
    spec = {
        "format": FORMAT_VERSION,
        "run": str(run_id),
        "subset": str(subset_id),
        "method": method,
        "n_components": int(n_components),
        "seed": int(seed),
        "params": resolve_params(method, dict(params)),
    }
    try:
        text = _canonical_json(spec)
    except (TypeError, ValueError) as err:
        raise ValueError(f"projection parameters must be JSON values: {err}") from None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _metadata(proj: Projection) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "method": proj.method,
        "n_components": int(proj.n_components),
        "seed": int(proj.seed),
        "params": proj.params,
        "n_points": int(proj.coords.shape[0]),
        "latent_dim": int(proj.fitted_codes.shape[1]),
        "fit_seconds": float(proj.fit_seconds),
        "extras": proj.extras,
    }


def _atomic_write(path: Path, write: Any) -> None:
    """Call write(file) on a temporary file beside `path`, then move it into place in one step."""
    from vae_core.runs import temp_beside

    path.parent.mkdir(parents=True, exist_ok=True)
    with temp_beside(path) as tmp, open(tmp, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())


def save_projection(proj: Projection, path: Path | str) -> None:
    """Write `proj` to `path` (.npz: coords, fitted codes, metadata) and a readable `path`.json beside it.

    Both writes are atomic. The reducer is stored only when it is linear (PCA: mean and components);
    a UMAP reducer is dropped, so the loaded projection places new points with `knn_place`.
    """
    path = Path(path)
    meta_text = _canonical_json(_metadata(proj))
    arrays: dict[str, np.ndarray] = {
        "coords": np.asarray(proj.coords, dtype=np.float32),
        "fitted_codes": np.asarray(proj.fitted_codes, dtype=np.float32),
        "meta": np.array(meta_text),  # a unicode scalar: loads without pickle
    }
    linear = proj.reducer if isinstance(proj.reducer, LinearMap) else None
    if linear is None and proj.method == "pca" and proj.reducer is not None:
        linear = LinearMap(proj.reducer.mean_, proj.reducer.components_)
    if linear is not None:
        arrays["linear_mean"] = linear.mean
        arrays["linear_components"] = linear.components
    _atomic_write(path.with_suffix(".json"), lambda f: f.write(json.dumps(json.loads(meta_text), indent=2).encode()))
    _atomic_write(path, lambda f: np.savez(f, **arrays))


def load_projection(path: Path | str) -> Projection:
    """Read a projection written by `save_projection` (never unpickles: allow_pickle=False).

    Raises ValueError when the file is not a readable projection of this format.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            coords = np.asarray(data["coords"], dtype=np.float32)
            fitted_codes = np.asarray(data["fitted_codes"], dtype=np.float32)
            linear = LinearMap(data["linear_mean"], data["linear_components"]) if "linear_mean" in data.files else None
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable projection file: {err}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} has projection format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    n_components = meta["n_components"]
    if coords.ndim != 2 or coords.shape[1] != n_components or fitted_codes.shape[0] != coords.shape[0]:
        raise ValueError(f"{path} has inconsistent arrays: coords {coords.shape}, codes {fitted_codes.shape}")
    return Projection(
        method=meta["method"],
        n_components=n_components,
        seed=meta["seed"],
        params=meta["params"],
        coords=coords,
        fitted_codes=fitted_codes,
        reducer=linear,
        fit_seconds=float(meta.get("fit_seconds", 0.0)),
        extras=meta.get("extras", {}),
    )


def cached_projection(
    codes: Any,
    cache_dir: Path | str,
    key: str,
    method: Method = "umap",
    n_components: int = 2,
    seed: int = 0,
    **params: Any,
) -> tuple[Projection, bool]:
    """Load `cache_dir/<key>.npz` if it holds a projection of codes this shape, else fit and save it.

    codes: (N, D). Returns (projection, was_cached). A missing, unreadable or mismatched cache file
    is refitted and overwritten. The key (see `projection_key`) must name the codes and parameters.
    """
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ValueError(f"cache key must be letters, digits, '-' or '_', got {key!r}")
    codes = _as_codes(codes, "codes")
    path = Path(cache_dir) / f"{key}.npz"
    if path.exists():
        try:
            proj = load_projection(path)
        except ValueError:
            proj = None  # unreadable: refit below and overwrite
        if (
            proj is not None
            and proj.fitted_codes.shape == codes.shape
            and proj.method == method
            and proj.n_components == n_components
        ):
            return proj, True
    proj = fit_projection(codes, method=method, n_components=n_components, seed=seed, **params)
    save_projection(proj, path)
    return proj, False
