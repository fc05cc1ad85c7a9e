"""Latent operations as properties: endpoints, norms, which dimension moves, brute-force neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_core import latent


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_endpoints_equal_inputs(gen: torch.Generator, method: str) -> None:
    a, b = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
    path = latent.interpolate(a, b, 7, method=method)
    assert path.shape == (7, 8)
    assert path.dtype == torch.float32
    assert torch.equal(path[0], a)
    assert torch.equal(path[-1], b)


def test_lerp_is_evenly_spaced(gen: torch.Generator) -> None:
    a, b = torch.randn(5, generator=gen), torch.randn(5, generator=gen)
    path = latent.lerp(a, b, 5)
    torch.testing.assert_close(path[2], (a + b) / 2)
    steps = path[1:] - path[:-1]  # (4, D)
    torch.testing.assert_close(steps, ((b - a) / 4).expand(4, 5))


def test_slerp_keeps_norm_at_every_step(gen: torch.Generator) -> None:
    a = torch.randn(16, generator=gen)
    b = torch.randn(16, generator=gen)
    b = b / b.norm() * a.norm()  # |a| = |b|
    path = latent.slerp(a, b, 11)
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(11), rtol=1e-5, atol=1e-5)
    # ... and it does not collapse to lerp, whose midpoint is shorter
    assert latent.lerp(a, b, 11)[5].norm() < path[5].norm() - 1e-3


def test_slerp_interpolates_norm_linearly(gen: torch.Generator) -> None:
    a = torch.randn(6, generator=gen)
    b = 3.0 * torch.randn(6, generator=gen)
    path = latent.slerp(a, b, 5)
    expected = torch.linspace(float(a.norm()), float(b.norm()), 5)
    torch.testing.assert_close(path.norm(dim=1), expected, rtol=1e-5, atol=1e-5)


def test_slerp_moves_at_constant_angle(gen: torch.Generator) -> None:
    a, b = torch.randn(4, generator=gen), torch.randn(4, generator=gen)
    unit = latent.slerp(a, b, 6).double()
    unit = unit / unit.norm(dim=1, keepdim=True)
    angles = torch.arccos((unit[1:] * unit[:-1]).sum(dim=1).clamp(-1, 1))
    torch.testing.assert_close(angles, angles[0].expand(5), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]),  # parallel
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),  # identical
        ([1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]),  # anti-parallel
        ([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]),  # zero vector
    ],
)
def test_slerp_degenerate_cases_fall_back_to_lerp(a: list[float], b: list[float]) -> None:
    path = latent.slerp(a, b, 5)
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, latent.lerp(a, b, 5))


def test_interpolation_accepts_numpy() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    path = latent.slerp(a, b, 3)
    assert isinstance(path, torch.Tensor) and path.shape == (3, 2)
    torch.testing.assert_close(path[1], torch.tensor([0.5**0.5, 0.5**0.5]))


def test_float64_tensors_keep_their_dtype() -> None:
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert latent.slerp(a, b, 3).dtype == torch.float64


@pytest.mark.parametrize("steps", [1, 0, -3, 2.5, True])
def test_interpolation_rejects_bad_steps(steps: object) -> None:
    with pytest.raises(ValueError, match="steps"):
        latent.interpolate([0.0, 1.0], [1.0, 0.0], steps)  # type: ignore[arg-type]


def test_interpolation_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="method"):
        latent.interpolate([0.0], [1.0], 3, method="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        latent.lerp([0.0, 1.0], [1.0], 3)
    with pytest.raises(ValueError, match=r"\(D,\)"):
        latent.slerp(torch.zeros(2, 3), torch.zeros(2, 3), 3)


# --------------------------------------------------------------------------- traversals


def test_traversal_values_symmetric() -> None:
    values = latent.traversal_values(9, 3.0)
    assert values.shape == (9,)
    assert values[0] == -3.0 and values[-1] == 3.0 and values[4] == 0.0
    assert torch.equal(values, -values.flip(0))
    assert torch.equal(latent.traversal_values(1), torch.zeros(1))
    assert torch.equal(latent.traversal_values(4, 1.5), -latent.traversal_values(4, 1.5).flip(0))
    with pytest.raises(ValueError):
        latent.traversal_values(0)
    with pytest.raises(ValueError):
        latent.traversal_values(5, span=0.0)


def test_traversal_grid_absolute_changes_only_the_chosen_dim(gen: torch.Generator) -> None:
    z0 = torch.randn(6, generator=gen)
    values = latent.traversal_values(5, 2.0)
    dims = [4, 0, 2]
    grid = latent.traversal_grid(z0, dims, values, mode="absolute")
    assert grid.shape == (3, 5, 6)
    for row, d in enumerate(dims):
        assert torch.equal(grid[row, :, d], values)
        others = [i for i in range(6) if i != d]
        assert torch.equal(grid[row][:, others], z0[others].expand(5, 5))


def test_traversal_grid_relative_uses_posterior_std(gen: torch.Generator) -> None:
    z0 = torch.randn(4, generator=gen)
    std = torch.tensor([0.5, 2.0, 1.0, 0.1])
    values = torch.tensor([-1.0, 0.0, 2.0])
    grid = latent.traversal_grid(z0, [1, 3], values, mode="relative", posterior_std=std)
    torch.testing.assert_close(grid[0, :, 1], z0[1] + values * 2.0)
    torch.testing.assert_close(grid[1, :, 3], z0[3] + values * 0.1)
    assert torch.equal(grid[0, 1], z0)  # value 0 leaves the code unchanged
    no_std = latent.traversal_grid(z0, [1], values, mode="relative")
    torch.testing.assert_close(no_std[0, :, 1], z0[1] + values)
    assert torch.equal(no_std[0][:, [0, 2, 3]], z0[[0, 2, 3]].expand(3, 3))


def test_traversal_grid_accepts_numpy_and_rejects_bad_input() -> None:
    grid = latent.traversal_grid(np.zeros(3), [0, 1, 2], np.array([1.0, 2.0]))
    assert grid.shape == (3, 2, 3) and grid.dtype == torch.float32
    assert torch.equal(grid[2, 1], torch.tensor([0.0, 0.0, 2.0]))
    assert latent.traversal_grid(np.zeros(3), [], np.array([1.0])).shape == (0, 1, 3)
    with pytest.raises(ValueError, match="dims"):
        latent.traversal_grid(np.zeros(3), [3], np.array([1.0]))
    with pytest.raises(ValueError, match="mode"):
        latent.traversal_grid(np.zeros(3), [0], np.array([1.0]), mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        latent.traversal_grid(np.zeros(3), [0], np.array([1.0]), mode="relative", posterior_std=np.ones(2))


# --------------------------------------------------------------------------- arithmetic


def test_arithmetic() -> None:
    a, b, c = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 3.0])
    assert torch.equal(latent.arithmetic(a, b, c), torch.tensor([-0.5, 4.5]))
    assert torch.equal(latent.arithmetic(a.numpy(), b.numpy(), c.numpy()), torch.tensor([-0.5, 4.5]))
    with pytest.raises(ValueError, match="same shape"):
        latent.arithmetic(a, b, torch.zeros(3))


def test_attribute_vector_known_answer() -> None:
    codes = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0], [0.0, 4.0], [0.0, -1.0]])
    mask = np.array([True, True, False, False, False])
    # mean with = (2, 1); mean without = (0, 1)
    assert torch.equal(latent.attribute_vector(codes, mask), torch.tensor([2.0, 0.0]))
    with pytest.raises(ValueError, match="none are with"):
        latent.attribute_vector(codes, np.zeros(5, dtype=bool))
    with pytest.raises(ValueError, match="none are without"):
        latent.attribute_vector(codes, np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        latent.attribute_vector(codes, np.ones(4, dtype=bool))


def test_move_along() -> None:
    z, direction = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0])
    moved = latent.move_along(z, direction, [-1.0, 0.0, 0.5])
    assert torch.equal(moved, torch.tensor([[1.0, -1.0], [1.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError):
        latent.move_along(z, direction, [])


# --------------------------------------------------------------------------- nearest


def _brute_force(codes: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        return np.sqrt(((query[:, None, :] - codes[None, :, :]) ** 2).sum(-1))
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    cn = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    return 1.0 - qn @ cn.T


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nearest_matches_brute_force(metric: str) -> None:
    rng = np.random.default_rng(1)
    codes, query = rng.normal(size=(50, 4)), rng.normal(size=(7, 4))
    indices, distances = latent.nearest(codes, query, k=5, metric=metric)  # type: ignore[arg-type]
    assert indices.shape == distances.shape == (7, 5)
    assert indices.dtype == torch.int64
    expected = _brute_force(codes, query, metric)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(expected, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(distances.numpy(), np.sort(expected, axis=1)[:, :5], rtol=1e-5, atol=1e-6)
    assert (distances[:, 1:] >= distances[:, :-1]).all()


def test_nearest_single_query_clip_and_ties() -> None:
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    indices, distances = latent.nearest(codes, torch.tensor([1.0, 0.0]), k=10)
    assert indices.shape == (1, 4)  # k clipped to N
    assert indices[0].tolist() == [0, 2, 1, 3]  # tie between 0 and 2 broken by index
    torch.testing.assert_close(distances[0], torch.tensor([0.0, 0.0, 2.0**0.5, 2.0]))
    cos_idx, cos_dist = latent.nearest(codes, torch.tensor([2.0, 0.0]), k=2, metric="cosine")
    assert cos_idx[0].tolist() == [0, 2]
    torch.testing.assert_close(cos_dist[0], torch.zeros(2))


def test_nearest_rejects_bad_input() -> None:
    codes = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="k"):
        latent.nearest(codes, torch.zeros(2), k=0)
    with pytest.raises(ValueError, match="metric"):
        latent.nearest(codes, torch.zeros(2), metric="manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query"):
        latent.nearest(codes, torch.zeros(3))
    with pytest.raises(ValueError, match="codes"):
        latent.nearest(torch.zeros(0, 2), torch.zeros(2))
