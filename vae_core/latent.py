"""Pure functions on latent vectors: interpolation, traversals, arithmetic, nearest neighbours.

Every function takes torch tensors or anything `torch.as_tensor` accepts (numpy arrays, lists).
Floating torch tensors keep their dtype and device; everything else becomes float32. Nothing here
knows about a model: callers encode sentences to codes and decode the codes these functions return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

InterpolationMethod = Literal["lerp", "slerp"]
TraversalMode = Literal["absolute", "relative"]
Metric = Literal["euclidean", "cosine"]

INTERPOLATION_METHODS = ("lerp", "slerp")
TRAVERSAL_MODES = ("absolute", "relative")
METRICS = ("euclidean", "cosine")

# slerp falls back to lerp below these: the angle is then too close to 0 or pi for sin(omega)
# to be divided by, or a vector too short to have a direction.
_PARALLEL_EPS = 1e-4  # radians
_ZERO_NORM_EPS = 1e-8
# nearest() compares at most this many (query, code) pairs at once, to bound memory.
_MAX_PAIRS_PER_CHUNK = 4_000_000


def _as_float(x: Any) -> torch.Tensor:
    """`x` as a floating tensor: floating tensors keep dtype and device, the rest become float32."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x
    return torch.as_tensor(x).to(torch.float32)


def _as_vector(x: Any, name: str) -> torch.Tensor:
    t = _as_float(x)
    if t.dim() != 1:
        raise ValueError(f"{name} must be one latent vector of shape (D,), got shape {tuple(t.shape)}")
    return t


def _same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (both endpoints are included), got {steps!r}")


# --------------------------------------------------------------------------- interpolation


def lerp(a: Any, b: Any, steps: int) -> torch.Tensor:
    """Straight line from `a` (D,) to `b` (D,) in `steps` evenly spaced points, both ends included.

    Returns (steps, D); row 0 equals `a` and row -1 equals `b` exactly.
    """
    _check_steps(steps)
    a, b = _as_vector(a, "a"), _as_vector(b, "b")
    _same_shape("a", a, "b", b)
    b = b.to(a)
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device)[:, None]  # (steps, 1)
    out = (1.0 - t) * a + t * b  # (steps, D)
    out[0], out[-1] = a, b
    return out


def slerp(a: Any, b: Any, steps: int) -> torch.Tensor:
    """Spherical interpolation from `a` (D,) to `b` (D,): returns (steps, D), both ends included.

    The direction moves along the great circle between a/|a| and b/|b| at constant angular
    speed, while the norm goes linearly from |a| to |b| (so when |a| = |b| every point has that
    norm). When a and b are (nearly) parallel or anti-parallel, or either is ~zero, the great
    circle is undefined and this returns `lerp(a, b, steps)` instead.
    """
    _check_steps(steps)
    a, b = _as_vector(a, "a"), _as_vector(b, "b")
    _same_shape("a", a, "b", b)
    b = b.to(a)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)  # the angle needs the precision
    norm_a, norm_b = a64.norm(), b64.norm()
    if norm_a < _ZERO_NORM_EPS or norm_b < _ZERO_NORM_EPS:
        return lerp(a, b, steps)
    unit_a, unit_b = a64 / norm_a, b64 / norm_b  # (D,)
    omega = torch.arccos(torch.clamp(unit_a @ unit_b, -1.0, 1.0))
    if omega < _PARALLEL_EPS or math.pi - omega < _PARALLEL_EPS:
        return lerp(a, b, steps)
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64, device=a.device)[:, None]  # (steps, 1)
    sin_omega = torch.sin(omega)
    direction = (torch.sin((1.0 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / sin_omega
    norm = (1.0 - t) * norm_a + t * norm_b  # (steps, 1)
    out = (direction * norm).to(a.dtype)  # (steps, D)
    out[0], out[-1] = a, b
    return out


def interpolate(a: Any, b: Any, steps: int, method: InterpolationMethod = "lerp") -> torch.Tensor:
    """`lerp` or `slerp` from `a` (D,) to `b` (D,) by name; returns (steps, D)."""
    if method == "lerp":
        return lerp(a, b, steps)
    if method == "slerp":
        return slerp(a, b, steps)
    raise ValueError(f"unknown interpolation method {method!r} (choose one of {', '.join(INTERPOLATION_METHODS)})")


# --------------------------------------------------------------------------- traversals


def traversal_values(n_values: int = 9, span: float = 3.0) -> torch.Tensor:
    """`n_values` evenly spaced values from -span to +span, symmetric about 0: returns (n_values,).

    With an odd `n_values` the middle value is exactly 0; `n_values=1` gives [0].
    """
    if isinstance(n_values, bool) or not isinstance(n_values, int) or n_values < 1:
        raise ValueError(f"n_values must be an integer >= 1, got {n_values!r}")
    if not math.isfinite(span) or span <= 0:
        raise ValueError(f"span must be a positive number, got {span!r}")
    if n_values == 1:
        return torch.zeros(1)
    values = torch.linspace(-span, span, n_values)
    return (values - values.flip(0)) / 2  # exact symmetry: v[i] == -v[-1 - i]


def traversal_grid(
    z0: Any,
    dims: Sequence[int],
    values: Any,
    mode: TraversalMode = "absolute",
    posterior_std: Any | None = None,
) -> torch.Tensor:
    """Codes for a traversal grid: row i varies dimension `dims[i]` over `values`, the rest stay at z0.

    z0: (D,); values: (V,); posterior_std: (D,) or None. Returns (len(dims), V, D).
    'absolute' sets z[d] = v (values are in prior standard deviations; the prior is N(0, 1)).
    'relative' sets z[d] = z0[d] + v * posterior_std[d], or z0[d] + v when `posterior_std` is None.
    """
    if mode not in TRAVERSAL_MODES:
        raise ValueError(f"unknown traversal mode {mode!r} (choose one of {', '.join(TRAVERSAL_MODES)})")
    z0 = _as_vector(z0, "z0")
    latent_dim = z0.shape[0]
    values = _as_vector(values, "values").to(z0)  # (V,)
    dims = list(dims)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < latent_dim:
            raise ValueError(f"dims must be integers in [0, {latent_dim}), got {d!r}")
    std = None
    if mode == "relative" and posterior_std is not None:
        std = _as_vector(posterior_std, "posterior_std").to(z0)
        _same_shape("posterior_std", std, "z0", z0)
    grid = z0.expand(len(dims), values.shape[0], latent_dim).clone()  # (len(dims), V, D)
    for row, d in enumerate(dims):
        if mode == "absolute":
            grid[row, :, d] = values
        else:
            grid[row, :, d] = z0[d] + values * (1.0 if std is None else std[d])
    return grid


# --------------------------------------------------------------------------- arithmetic


def arithmetic(a: Any, b: Any, c: Any) -> torch.Tensor:
    """Analogy arithmetic `a - b + c` ("a is to b as ? is to c"); all (D,) or all (N, D), same shape out."""
    a, b, c = _as_float(a), _as_float(b), _as_float(c)
    _same_shape("a", a, "b", b)
    _same_shape("a", a, "c", c)
    return a - b.to(a) + c.to(a)


def attribute_vector(codes: Any, mask: Any) -> torch.Tensor:
    """Mean of codes[mask] minus mean of codes[~mask]: the direction that adds an attribute.

    codes: (N, D); mask: (N,) bool (True = has the attribute). Returns (D,).
    """
    codes = _as_float(codes)
    if codes.dim() != 2:
        raise ValueError(f"codes must have shape (N, D), got {tuple(codes.shape)}")
    mask = torch.as_tensor(mask, device=codes.device).to(torch.bool)
    if mask.shape != codes.shape[:1]:
        raise ValueError(f"mask must have shape ({codes.shape[0]},) to match codes, got {tuple(mask.shape)}")
    n_with = int(mask.sum())
    if n_with == 0 or n_with == mask.shape[0]:
        side = "with" if n_with == 0 else "without"
        raise ValueError(f"attribute_vector needs codes both with and without the attribute; none are {side} it")
    return codes[mask].mean(dim=0) - codes[~mask].mean(dim=0)


def move_along(z: Any, direction: Any, scales: Sequence[float]) -> torch.Tensor:
    """Points `z + s * direction` for each s in `scales`; z, direction: (D,). Returns (len(scales), D).

    `direction` is used as given (not normalised), so scale 1 adds exactly one `attribute_vector`.
    """
    z, direction = _as_vector(z, "z"), _as_vector(direction, "direction")
    _same_shape("z", z, "direction", direction)
    scales_t = torch.as_tensor(list(scales), dtype=z.dtype, device=z.device)
    if scales_t.dim() != 1 or scales_t.shape[0] == 0:
        raise ValueError("scales must be a non-empty sequence of numbers")
    return z + scales_t[:, None] * direction.to(z)  # (len(scales), D)


# --------------------------------------------------------------------------- nearest neighbours


def _distances(codes: torch.Tensor, query: torch.Tensor, metric: Metric) -> torch.Tensor:
    """(Q, N) distances from each query row to each code row."""
    if metric == "euclidean":
        # Exact differences, not the |x|^2 - 2xy + |y|^2 shortcut: a point's distance to itself is 0.
        return torch.cdist(query, codes, compute_mode="donot_use_mm_for_euclid_dist")
    q = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
    c = codes / codes.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (1.0 - q @ c.T).clamp_min(0.0)  # zero vectors get cosine distance 1


def nearest(codes: Any, query: Any, k: int = 5, metric: Metric = "euclidean") -> tuple[torch.Tensor, torch.Tensor]:
    """The k codes nearest each query: returns (indices (Q, k) int64, distances (Q, k)).

    codes: (N, D); query: (D,) (then Q = 1) or (Q, D). `k` is clipped to N. Rows are sorted by
    ascending distance; equal distances keep the lower index first. 'cosine' distance is
    1 - cosine similarity (a zero vector is at distance 1 from everything).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (choose one of {', '.join(METRICS)})")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    codes = _as_float(codes)
    if codes.dim() != 2 or codes.shape[0] == 0:
        raise ValueError(f"codes must have shape (N, D) with N >= 1, got {tuple(codes.shape)}")
    query = _as_float(query).to(codes)
    if query.dim() == 1:
        query = query[None, :]  # (1, D)
    if query.dim() != 2 or query.shape[1] != codes.shape[1]:
        raise ValueError(f"query must have shape (D,) or (Q, D) with D = {codes.shape[1]}, got {tuple(query.shape)}")
    k = min(k, codes.shape[0])
    chunk = max(1, _MAX_PAIRS_PER_CHUNK // codes.shape[0])
    all_indices, all_distances = [], []
    for start in range(0, query.shape[0], chunk):
        dist = _distances(codes, query[start : start + chunk], metric)  # (q, N)
        sorted_dist, order = torch.sort(dist, dim=1, stable=True)  # stable: ties by index
        all_indices.append(order[:, :k])
        all_distances.append(sorted_dist[:, :k])
    if not all_indices:  # Q == 0
        return (
            torch.empty(0, k, dtype=torch.int64, device=codes.device),
            torch.empty(0, k, dtype=codes.dtype, device=codes.device),
        )
    return torch.cat(all_indices), torch.cat(all_distances)
