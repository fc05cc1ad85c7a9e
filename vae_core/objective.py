"""The β-VAE objective family, and KL schedules as pure functions of the step.

total = reconstruction + weight(step) · KL_term + tc(step) · TC        (constant/linear/sigmoid/cyclical)
total = reconstruction + γ · |KL − C(step)| + tc(step) · TC             (capacity, Burgess et al. 2018)

tc(step) is tc_weight, or 0 before tc_start and a linear rise over tc_warmup_steps after it; the TC
estimate is penalised only where it is positive (true TC is never negative).

KL_term is the KL summed over dimensions, or with free bits λ > 0 the sum over dimensions of
max(λ, batch-mean KL of that dimension) (Kingma et al. 2016). Reconstruction and KL are per
sentence, averaged over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vae_core.config import TrainConfig

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, closed form. (B, D) → (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)); broadcasts. Returns the broadcast shape."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def total_correlation(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
    bank: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Minibatch-stratified-sampling estimate of TC(z) = KL(q(z) || Π_d q(z_d)) (Chen et al. 2018).

    z, mu, logvar: (B, D) → scalar. q(z_i) = (1/N) q(z_i|x_i) + ((N−1)/N) · E_x[q(z_i|x)], the
    expectation taken over the batch's other posteriors and, when given, a `bank` (mu, logvar)
    (K, D) of recent posteriors from earlier batches (detached). The estimate of log q(z) is
    biased low by how few posteriors stand in for the N (Jensen's inequality), most where
    posteriors overlap; a bank of a few thousand shrinks that bias at a cost of B·(B+K)·D.
    """
    B = z.size(0)
    comp_mu, comp_logvar = mu, logvar
    if bank is not None and bank[0].size(0):
        comp_mu = torch.cat([mu, bank[0].to(mu.dtype)], dim=0)  # (B+K, D)
        comp_logvar = torch.cat([logvar, bank[1].to(logvar.dtype)], dim=0)
    log_qz_ij = gaussian_log_density(z.unsqueeze(1), comp_mu.unsqueeze(0), comp_logvar.unsqueeze(0))  # (B, B+K, D)
    log_w = _log_importance_weights(B, max(dataset_size, B), z.device, z.dtype, comp_mu.size(0))  # (B, B+K)
    log_qz = torch.logsumexp(log_w + log_qz_ij.sum(-1), dim=1)  # (B,)
    log_prod_qzd = torch.logsumexp(log_w.unsqueeze(-1) + log_qz_ij, dim=1).sum(-1)  # (B,)
    return (log_qz - log_prod_qzd).mean()


class PosteriorBank:
    """The last `size` posteriors (mu, logvar) seen in training, detached: more mixture components for TC.

    A ring buffer; it starts empty (also after a resume) and fills over the first size/B steps.
    """

    def __init__(self, size: int, dim: int, device=None) -> None:
        self.size, self.n, self.pos = int(size), 0, 0
        self.mu = torch.zeros(self.size, dim, device=device)
        self.logvar = torch.zeros(self.size, dim, device=device)

    def get(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored posteriors, (n, D) each."""
        return self.mu[:self.n], self.logvar[:self.n]

    def add(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        """Store a batch (B, D) of posteriors, overwriting the oldest."""
        mu, logvar = mu.detach()[-self.size:], logvar.detach()[-self.size:]
        idx = (self.pos + torch.arange(mu.size(0), device=self.mu.device)) % self.size
        self.mu[idx] = mu.to(self.mu.dtype)
        self.logvar[idx] = logvar.to(self.logvar.dtype)
        self.pos = int((self.pos + mu.size(0)) % self.size)
        self.n = min(self.size, self.n + mu.size(0))


def _log_importance_weights(batch: int, n: int, device, dtype, components: int | None = None) -> torch.Tensor:
    """log W (B, C) of minibatch stratified sampling: row i weighs the C ≥ B posteriors that estimate q(z_i).

    The first B columns are the batch (column i is row i's own posterior), any others a bank.
    q(z_i) = (1/N) q(z_i|x_i) + ((N−1)/N) · E_{other x}[q(z_i|x)], the expectation estimated by the
    C−1 other posteriors: weight 1/N on the diagonal and (N−1)/(N·(C−1)) elsewhere; each row sums
    to 1. (Chen et al.'s reference code meant this but, with a flat stride of B instead of B+1, puts
    1/N on column 0 rather than on the diagonal — reported in rtqichen/beta-tcvae PR #1 and
    YannDubs/disentangling-vae issue #58. That version overstates the TC of a perfectly factorised
    code by ~5 nats at B = 64, N = 18,662, so penalising it made models throw information away
    rather than factorise it.)
    """
    c = batch if components is None else int(components)
    if c < 2:
        return torch.zeros(batch, c, device=device, dtype=dtype)
    w = torch.full((batch, c), (n - 1) / (n * (c - 1)), device=device, dtype=dtype)
    w[:, :batch].fill_diagonal_(1.0 / n)
    return w.log()


# ----------------------------------------------------------------------------- schedules


def kl_weight(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Weight on the KL term at this step (0-based). Capacity runs weight |KL − C| by γ instead."""
    if cfg.schedule in ("constant", "capacity"):
        return cfg.beta if cfg.schedule == "constant" else 0.0
    if cfg.schedule == "linear":
        if cfg.warmup_steps == 0:
            return cfg.beta
        return cfg.beta * min(1.0, step / cfg.warmup_steps)
    if cfg.schedule == "sigmoid":
        if cfg.warmup_steps == 0:
            return cfg.beta
        # logistic centred at half the warm-up, reaching ~0.9933 of beta at warm-up end
        x = 10.0 * (step / cfg.warmup_steps - 0.5)
        return cfg.beta / (1.0 + math.exp(-x))
    if cfg.schedule == "cyclical":
        # Fu et al. 2019: M cycles over all steps; rise linearly for ratio R of each cycle, then hold
        period = max(1, total_steps) / cfg.cycles
        tau = (step % period) / period
        return cfg.beta * min(1.0, tau / cfg.cycle_ratio)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def tc_weight(step: int, cfg: TrainConfig) -> float:
    """Weight on the TC term at this step: 0 before tc_start, then linear to tc_weight over tc_warmup_steps."""
    if cfg.tc_weight == 0 or step < cfg.tc_start:
        return 0.0
    if cfg.tc_warmup_steps == 0:
        return cfg.tc_weight
    return cfg.tc_weight * min(1.0, (step - cfg.tc_start) / cfg.tc_warmup_steps)


def capacity(step: int, cfg: TrainConfig) -> float:
    """Target KL C in nats at this step: linear from 0 to capacity_max over capacity_steps."""
    if cfg.capacity_steps == 0:
        return cfg.capacity_max
    return cfg.capacity_max * min(1.0, step / cfg.capacity_steps)


# ----------------------------------------------------------------------------- loss


@dataclass
class LossParts:
    """The objective and its parts for one batch (per-sentence means)."""

    total: torch.Tensor  # scalar, what is minimised
    recon: torch.Tensor  # scalar: mean summed token NLL per sentence
    kl: torch.Tensor  # scalar: mean KL per sentence (summed over dimensions)
    kl_per_dim: torch.Tensor  # (D,) mean over the batch
    weight: float  # weight applied to the KL term (β at this step; γ for capacity)
    weighted_kl: torch.Tensor  # scalar: the KL part of total (β·KL, or γ·|KL − C|, free bits applied)
    capacity: float | None = None  # C at this step for capacity runs
    tc: torch.Tensor | None = None  # scalar TC estimate when tc_weight > 0


def beta_vae_loss(
    recon_nll: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    z: torch.Tensor,
    step: int,
    cfg: TrainConfig,
    total_steps: int,
    dataset_size: int,
    tc_bank: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LossParts:
    """The β-VAE family objective. recon_nll: (B,), mu/logvar/z: (B, D)."""
    kl_bd = gaussian_kl(mu, logvar)  # (B, D)
    kl_per_dim = kl_bd.mean(0)  # (D,)
    kl = kl_per_dim.sum()
    recon = recon_nll.mean()
    if cfg.free_bits > 0:
        kl_term = torch.clamp(kl_per_dim, min=cfg.free_bits).sum()
    else:
        kl_term = kl
    cap = None
    if cfg.schedule == "capacity":
        cap = capacity(step, cfg)
        weight = cfg.gamma
        weighted = cfg.gamma * (kl_term - cap).abs()
    else:
        weight = kl_weight(step, cfg, total_steps)
        weighted = weight * kl_term
    total = recon + weighted
    tc = None
    if cfg.tc_weight > 0:  # estimated (and logged) from the first step, weighted by tc_weight(step)
        tc = total_correlation(z, mu, logvar, dataset_size, tc_bank)
        # TC ≥ 0, but the batch estimate of log q(z) is biased low where posteriors overlap, and a
        # model rewarded for a negative estimate learns to blur its code: only a positive one counts.
        total = total + tc_weight(step, cfg) * tc.clamp_min(0.0)
    return LossParts(total, recon, kl, kl_per_dim, weight, weighted, cap, tc)
