"""What the app's pages ask of a run, numpy in and numpy out: the pages never see a tensor.

Encode sentences → posterior parameters, decode codes → sentences, latent-space operations (interpolation,
traversal grids, arithmetic, attribute vectors, nearest neighbours, prior samples), generation-side analyses,
and per-dimension statistics (`LatentStats`). Codes are float32 arrays: (D,) for one code, (N, D) for many.
Everything runs under `torch.inference_mode()` and never changes the model, so one loaded `Run` can serve
every session at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vae_core import latent
from vae_core.config import DecodeConfig
from vae_core.runs import Run
from vae_core.summary import Summary

# --------------------------------------------------------------------------- encode / decode


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32, copy=False)


def _t(x: Any) -> Any:
    """An array (or list) as a float32 tensor of its own (cached arrays are read-only); tensors pass through."""
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x, dtype=np.float32))


def encode(run: Run, sentences: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Posterior means and log-variances (N, D) float32 of sentences, in input order, and each one's OOV words.

    Tokenised as the run was trained (its lowercase and max_len).
    """
    from vae_core.encoding import posterior_means

    tcfg = run.train_config
    mu, logvar, oov = posterior_means(
        run.model, run.vocab, list(sentences), lowercase=tcfg.lowercase, batch_size=batch_size, max_len=tcfg.max_len
    )
    return _np(mu), _np(logvar), oov


def decode(run: Run, z: np.ndarray, cfg: DecodeConfig = DecodeConfig()) -> list[str]:
    """Sentences for codes z (B, D) or (D,), one batched call with the strategy of cfg."""
    from vae_core.decode import decode as decode_codes

    z_t = _t(z).reshape(-1, run.model_config.latent_dim)  # (B, D)
    if z_t.size(0) == 0:
        return []
    with torch.inference_mode():
        return list(decode_codes(run.model, z_t, run.vocab, cfg).texts)


# --------------------------------------------------------------------------- latent operations (numpy wrappers)


def interpolate(a: Any, b: Any, steps: int, method: latent.InterpolationMethod = "lerp") -> np.ndarray:
    """latent.interpolate: from a (D,) to b (D,) in `steps` codes; returns (steps, D)."""
    return _np(latent.interpolate(_t(a), _t(b), steps, method))


def traversal_values(n_values: int = 9, span: float = 3.0) -> np.ndarray:
    """latent.traversal_values: (n_values,) symmetric values from -span to +span."""
    return _np(latent.traversal_values(n_values, span))


def traversal_grid(
    z0: Any, dims: Sequence[int], values: Any, mode: latent.TraversalMode = "absolute", posterior_std: Any = None
) -> np.ndarray:
    """latent.traversal_grid: z0 (D,), values (V,), posterior_std (D,) or None → (len(dims), V, D)."""
    std = None if posterior_std is None else _t(posterior_std)
    return _np(latent.traversal_grid(_t(z0), [int(d) for d in dims], _t(values), mode, std))


def arithmetic(a: Any, b: Any, c: Any) -> np.ndarray:
    """latent.arithmetic: a − b + c, all (D,) or all (N, D)."""
    return _np(latent.arithmetic(_t(a), _t(b), _t(c)))


def attribute_vector(codes: Any, mask: Any) -> np.ndarray:
    """latent.attribute_vector: mean of codes (N, D) with mask (N,) minus the rest's; returns (D,)."""
    return _np(latent.attribute_vector(_t(codes), torch.from_numpy(np.array(mask, dtype=bool))))


def move_along(z: Any, direction: Any, scales: Sequence[float]) -> np.ndarray:
    """latent.move_along: z + s·direction for each scale; z, direction (D,) → (len(scales), D)."""
    return _np(latent.move_along(_t(z), _t(direction), scales))


def nearest(codes: Any, query: Any, k: int = 5, metric: latent.Metric = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """latent.nearest: (indices (Q, k) int64, distances (Q, k)) of the codes (N, D) nearest each query."""
    idx, dist = latent.nearest(_t(codes), _t(query), k=k, metric=metric)
    return idx.cpu().numpy(), _np(dist)


def prior_codes(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """n codes z ~ N(0, I): (n, latent_dim), the same for the same seed (torch's CPU generator)."""
    generator = torch.Generator().manual_seed(int(seed))
    return _np(torch.randn(n, latent_dim, generator=generator))


# --------------------------------------------------------------------------- generation-side analyses


def traversal_effects(
    run: Run, base_codes: np.ndarray, dims: Sequence[int], values: np.ndarray | None = None
) -> dict[str, Any]:
    """validity.traversal_factor_effects from base codes (M, D) along `dims` (values (V,) or the default)."""
    from vae_core.validity import traversal_factor_effects

    base = torch.from_numpy(np.array(base_codes, dtype=np.float32))
    vals = None if values is None else torch.from_numpy(np.array(values, dtype=np.float32))
    with torch.inference_mode():
        return traversal_factor_effects(run.model, run.vocab, base, dims=[int(d) for d in dims], values=vals)


def prior_validity(run: Run, n: int, seed: int = 0) -> dict[str, Any]:
    """validity.prior_sample_validity of n prior samples (greedy decodes parsed as corpus sentences)."""
    from vae_core.validity import prior_sample_validity

    with torch.inference_mode():
        return prior_sample_validity(run.model, run.vocab, n=n, seed=seed)


# --------------------------------------------------------------------------- per-dimension statistics


@dataclass(frozen=True)
class LatentStats:
    """KL per latent dimension and which dimensions are active, with where the numbers came from."""

    kl: tuple[float, ...]  # (D,) nats, mean over sentences
    active: tuple[bool, ...]  # (D,)
    source: str  # "measured", "evaluation", "corpus sample", "training" or "none"
    variances: tuple[float, ...] | None = None  # (D,) Var_x of the posterior mean, when known
    threshold: float = 0.01  # the active-unit threshold the `active` flags used (metrics.AU_THRESHOLD)
    mi: float | None = None  # I(x;z) in nats (bounded by ~log n), when measured
    n: int = 0  # sentences measured (0 when read from a file)

    @property
    def n_active(self) -> int:
        return int(sum(self.active))

    @property
    def order(self) -> list[int]:
        """Active dimensions by KL (largest first), then the inactive ones by KL."""
        return sorted(range(len(self.kl)), key=lambda d: (not self.active[d], -self.kl[d], d))

    @property
    def active_dims(self) -> list[int]:
        return [d for d in self.order if self.active[d]]

    @property
    def inactive_dims(self) -> list[int]:
        return [d for d in self.order if not self.active[d]]


def latent_stats_of(
    mu: np.ndarray, logvar: np.ndarray, seed: int = 0, with_mi: bool = True, source: str = "measured"
) -> LatentStats:
    """KL per dim, active units (Var_x μ > AU_THRESHOLD) and, with_mi, I(x;z) (seeded) of posteriors (N, D)."""
    from vae_core.metrics import AU_THRESHOLD, active_units, kl_per_dim, mutual_information_from_posteriors

    mu_t = torch.from_numpy(np.array(mu, dtype=np.float32))
    lv_t = torch.from_numpy(np.array(logvar, dtype=np.float32))
    _, variances = active_units(mu_t)
    kl = kl_per_dim(mu_t, lv_t)
    mi = None
    if with_mi:
        mi = float(mutual_information_from_posteriors(mu_t, lv_t, torch.Generator().manual_seed(seed)))
    return LatentStats(
        kl=tuple(float(x) for x in kl),
        active=tuple(bool(v > AU_THRESHOLD) for v in variances),
        source=source,
        variances=tuple(float(v) for v in variances),
        threshold=AU_THRESHOLD,
        mi=mi,
        n=int(mu_t.shape[0]),
    )


def dim_stats(
    summary: Summary, latent_dim: int, measure: Callable[[], tuple[np.ndarray, np.ndarray] | None]
) -> LatentStats:
    """Per-dimension statistics of a run: from its evaluation, else measured on codes `measure()` returns
    (posterior means and log-variances (N, D) of some sentences; None or < 2 rows when there are none),
    else from the last validation of its training, else KL 0 with every dimension active ('none')."""
    from vae_core.metrics import AU_THRESHOLD

    ev = summary.evaluation
    if ev is not None and ev.kl_per_dim is not None and ev.au_variances is not None:
        if len(ev.kl_per_dim) == latent_dim == len(ev.au_variances):
            active = tuple(v > AU_THRESHOLD for v in ev.au_variances)
            return LatentStats(ev.kl_per_dim, active, "evaluation", ev.au_variances, AU_THRESHOLD)
    codes = measure()
    if codes is not None and len(codes[0]) >= 2:
        return latent_stats_of(codes[0], codes[1], with_mi=False, source="corpus sample")
    valid = summary.valid
    if valid is not None and valid.kl_per_dim is not None and len(valid.kl_per_dim) == latent_dim:
        return LatentStats(valid.kl_per_dim, tuple(k > AU_THRESHOLD for k in valid.kl_per_dim), "training")
    return LatentStats((0.0,) * latent_dim, (True,) * latent_dim, "none")


__all__ = [
    "LatentStats",
    "arithmetic",
    "attribute_vector",
    "decode",
    "dim_stats",
    "encode",
    "interpolate",
    "latent_stats_of",
    "move_along",
    "nearest",
    "prior_codes",
    "prior_validity",
    "traversal_effects",
    "traversal_grid",
    "traversal_values",
]
