"""Maps of many points: fit on a sample, place the rest (PCA here: fast and exact to check)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from vae_core import projection_large
from vae_core.projection import fit_projection
from vae_core.projection_large import fit_projection_sampled, sample_indices


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def _codes(n: int, dim: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)) * np.arange(1, dim + 1)).astype(np.float32)  # distinct variances


def test_small_input_is_a_plain_fit():
    codes = _codes(50)
    a = fit_projection_sampled(codes, "pca", 2, sample_size=100)
    b = fit_projection(codes, "pca", 2)
    assert np.allclose(a.coords, b.coords) and a.extras["sample_size"] == 50


def test_sample_fit_places_every_point_in_batches(monkeypatch):
    monkeypatch.setattr(projection_large, "TRANSFORM_BATCH", 300)
    codes = _codes(2000)
    seen = []
    proj = fit_projection_sampled(codes, "pca", 3, sample_size=400, seed=1, progress=lambda d, n: seen.append((d, n)))
    assert proj.coords.shape == (2000, 3) and proj.coords.dtype == np.float32
    assert seen[-1] == (2000, 2000) and len(seen) == 7
    sample = sample_indices(2000, 400, 1)
    assert len(np.unique(sample)) == 400
    fitted = fit_projection(codes[sample], "pca", 3, seed=1)
    assert np.allclose(proj.coords[sample], fitted.coords, atol=1e-5)  # fitted points keep their place
    assert np.allclose(proj.coords, fitted.reducer.transform(codes), atol=1e-4)  # the rest: the same linear map
    assert np.allclose(proj.transform(codes[:5]), proj.coords[:5], atol=1e-4)
    # PCA on a 400-point sample of a strongly anisotropic cloud finds the same axes as on all points
    full = fit_projection(codes, "pca", 3)
    for k in range(3):
        assert abs(np.corrcoef(proj.coords[:, k], full.coords[:, k])[0, 1]) > 0.99


def test_same_seed_same_map_and_bad_sample_size_refused():
    codes = _codes(600)
    a = fit_projection_sampled(codes, "pca", 2, sample_size=100, seed=4)
    b = fit_projection_sampled(codes, "pca", 2, sample_size=100, seed=4)
    assert np.array_equal(a.coords, b.coords)
    with pytest.raises(ValueError, match="sample_size"):
        fit_projection_sampled(codes, "pca", 2, sample_size=0)
