"""Latent maps: shapes, seeds, placing new points, and the disk cache (which never unpickles)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from vae_core import projection
from vae_core.projection import (
    Projection,
    cached_projection,
    fit_projection,
    load_projection,
    projection_key,
    save_projection,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """OpenMP threads (t-SNE's gradient) spin badly on a shared 2-core machine: one is faster and steadier."""
    with threadpool_limits(1):
        yield


def _clustered_codes(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 codes in 4 well separated clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(4, dim))
    return (centres[np.arange(n) % 4] + rng.normal(size=(n, dim))).astype(np.float32)


# --------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("n_components", [2, 3])
def test_pca_shape_and_transform_of_training_points(n_components: int) -> None:
    codes = _clustered_codes(60)
    proj = fit_projection(codes, "pca", n_components)
    assert proj.coords.shape == (60, n_components)
    assert proj.coords.dtype == np.float32
    assert proj.placement == "reducer"
    np.testing.assert_allclose(proj.transform(codes), proj.coords, atol=1e-4)
    assert proj.transform(codes[0]).shape == (1, n_components)
    assert proj.transform(np.empty((0, 8))).shape == (0, n_components)
    assert len(proj.extras["explained_variance_ratio"]) == n_components


def test_pca_same_seed_same_coords() -> None:
    codes = _clustered_codes(40)
    np.testing.assert_array_equal(
        fit_projection(codes, "pca", 2, seed=3).coords, fit_projection(codes, "pca", 2, seed=3).coords
    )


def test_fit_rejects_bad_arguments() -> None:
    codes = _clustered_codes(10)
    with pytest.raises(ValueError, match="at least 4 codes"):
        fit_projection(codes[:3], "pca", 3)
    with pytest.raises(ValueError, match="2 or 3"):
        fit_projection(codes, "pca", 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown projection method"):
        fit_projection(codes, "isomap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_neighbours"):
        fit_projection(codes, "umap", n_neighbours=5)
    with pytest.raises(ValueError, match="2-dimensional codes"):
        fit_projection(codes[:, :2], "pca", 3)
    with pytest.raises(ValueError, match="NaN"):
        fit_projection(np.full((5, 3), np.nan), "pca")
    proj = fit_projection(codes, "pca")
    with pytest.raises(ValueError, match="dimensions"):
        proj.transform(np.zeros((2, 5)))


# --------------------------------------------------------------------------- t-SNE and the kNN fallback


def test_tsne_small_shape_and_knn_transform() -> None:
    codes = _clustered_codes(120)
    proj = fit_projection(codes, "tsne", 2, seed=0, max_iter=250)
    assert proj.coords.shape == (120, 2)
    assert proj.placement == "knn"
    # A fitted code lands exactly on its own point.
    np.testing.assert_allclose(proj.transform(codes[:10]), proj.coords[:10], atol=1e-6)
    # A new code lands inside the convex hull of its neighbours' points, near its own cluster.
    new = codes[:4] + 0.01
    placed = proj.transform(new)
    assert placed.shape == (4, 2)
    for i in range(4):
        cluster = proj.coords[np.arange(120) % 4 == i]
        assert np.linalg.norm(placed[i] - cluster.mean(0)) < np.linalg.norm(proj.coords.std(0)) * 2


def test_tsne_clips_perplexity_on_tiny_input() -> None:
    proj = fit_projection(_clustered_codes(7), "tsne", 3, max_iter=250)
    assert proj.coords.shape == (7, 3)
    assert proj.params["perplexity"] == 2.0


def test_knn_place_weights_by_inverse_distance() -> None:
    fitted = np.array([[0.0], [1.0], [10.0], [11.0], [12.0], [13.0]])
    coords = np.array([[0.0, 0.0], [3.0, 3.0], [9.0, 9.0], [9.0, 9.0], [9.0, 9.0], [9.0, 9.0]])
    placed = projection.knn_place(fitted, coords, np.array([[0.25]]), k=2)
    # distances 0.25 and 0.75 -> weights 4 and 4/3 -> (0 * 4 + 3 * 4/3) / (16/3) = 0.75
    np.testing.assert_allclose(placed, [[0.75, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(projection.knn_place(fitted, coords, np.array([[1.0]])), [[3.0, 3.0]])


# --------------------------------------------------------------------------- UMAP


@pytest.mark.slow
def test_umap_fit_transform_and_cache_round_trip(tmp_path: Path) -> None:
    codes = _clustered_codes(300, dim=16)
    proj, was_cached = cached_projection(codes, tmp_path, "umapkey", "umap", 2, seed=0, n_neighbors=10, n_epochs=30)
    assert not was_cached
    assert proj.coords.shape == (300, 2)
    assert np.isfinite(proj.coords).all()
    assert proj.placement == "reducer"
    assert proj.transform(codes[:5] + 0.01).shape == (5, 2)
    loaded, was_cached = cached_projection(codes, tmp_path, "umapkey", "umap", 2, seed=0, n_neighbors=10, n_epochs=30)
    assert was_cached
    np.testing.assert_array_equal(loaded.coords, proj.coords)
    assert loaded.reducer is None and loaded.placement == "knn"  # no pickled UMAP on disk
    np.testing.assert_allclose(loaded.transform(codes[:5]), proj.coords[:5], atol=1e-6)


@pytest.mark.slow
def test_umap_tiny_input_clips_neighbours() -> None:
    proj = fit_projection(_clustered_codes(6), "umap", 3, n_epochs=20)
    assert proj.coords.shape == (6, 3)
    assert proj.params["n_neighbors"] == 5


# --------------------------------------------------------------------------- cache


def test_cached_projection_second_call_loads(tmp_path: Path) -> None:
    codes = _clustered_codes(50)
    key = projection_key("run-a", "valid", "pca", 3, 0, {})
    first, was_cached = cached_projection(codes, tmp_path / "maps", key, "pca", 3)
    assert not was_cached
    second, was_cached = cached_projection(codes, tmp_path / "maps", key, "pca", 3)
    assert was_cached
    np.testing.assert_array_equal(second.coords, first.coords)
    # The loaded PCA is rebuilt from arrays, so it places points exactly as the fitted one.
    assert second.placement == "reducer"
    np.testing.assert_allclose(second.transform(codes[:7] * 1.5), first.transform(codes[:7] * 1.5), atol=1e-4)
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [f"{key}.json", f"{key}.npz"]
    meta = json.loads((tmp_path / "maps" / f"{key}.json").read_text())
    assert meta["method"] == "pca" and meta["n_points"] == 50


def test_loaded_tsne_projection_can_transform(tmp_path: Path) -> None:
    codes = _clustered_codes(40)
    proj = fit_projection(codes, "tsne", 2, max_iter=250, perplexity=5)
    save_projection(proj, tmp_path / "t.npz")
    loaded = load_projection(tmp_path / "t.npz")
    assert loaded.method == "tsne" and loaded.params == proj.params and loaded.seed == 0
    np.testing.assert_array_equal(loaded.fitted_codes, codes)
    np.testing.assert_allclose(loaded.transform(codes[:3] + 0.1), proj.transform(codes[:3] + 0.1))


def test_cache_refits_when_file_is_stale_or_corrupt(tmp_path: Path) -> None:
    codes = _clustered_codes(30)
    cached_projection(codes, tmp_path, "k", "pca", 2)
    proj, was_cached = cached_projection(codes[:20], tmp_path, "k", "pca", 2)  # other codes, same key
    assert not was_cached and proj.coords.shape == (20, 2)
    (tmp_path / "k.npz").write_bytes(b"not a zip file")
    proj, was_cached = cached_projection(codes, tmp_path, "k", "pca", 2)
    assert not was_cached and proj.coords.shape == (30, 2)
    assert cached_projection(codes, tmp_path, "k", "pca", 2)[1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # temp files moved or removed
    with pytest.raises(ValueError, match="cache key"):
        cached_projection(codes, tmp_path, "../escape", "pca", 2)


def test_projection_key() -> None:
    key = projection_key("run", "all", "umap", 2, 0, {"n_neighbors": 15})
    assert len(key) == 16 and int(key, 16) >= 0
    assert key == projection_key("run", "all", "umap", 2, 0, {})  # defaults spelled out or not
    assert key == projection_key("run", "all", "umap", 2, 0, {"n_neighbors": np.int64(15)})
    others = {
        projection_key("run", "all", "umap", 2, 0, {"n_neighbors": 30}),
        projection_key("run", "all", "umap", 2, 0, {"min_dist": 0.5}),
        projection_key("run", "all", "umap", 3, 0, {}),
        projection_key("run", "all", "umap", 2, 1, {}),
        projection_key("run", "train", "umap", 2, 0, {}),
        projection_key("run2", "all", "umap", 2, 0, {}),
        projection_key("run", "all", "pca", 2, 0, {}),
    }
    assert key not in others and len(others) == 7
    with pytest.raises(ValueError, match="perplexity"):
        projection_key("run", "all", "pca", 2, 0, {"perplexity": 5})


def test_load_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, coords=np.array([object()], dtype=object), fitted_codes=np.zeros((1, 2)), meta=np.array("{}"))
    with pytest.raises(ValueError, match="not a readable projection"):
        load_projection(path)
    # and the call itself says allow_pickle=False
    save_projection(fit_projection(_clustered_codes(10), "pca"), tmp_path / "ok.npz")
    seen: list[object] = []
    real_load = np.load

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    assert isinstance(load_projection(tmp_path / "ok.npz"), Projection)
    assert seen == [False]


def test_load_rejects_other_format_versions(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    save_projection(fit_projection(_clustered_codes(10), "pca"), path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "format": 99}))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="format"):
        load_projection(path)
