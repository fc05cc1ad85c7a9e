"""Data-parallel training under torchrun: process group, batch sharding, noise, metric reduction.

`torchrun --nproc_per_node N -m vae_core train ...` starts N copies of the CLI with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set. `train()` sees WORLD_SIZE > 1 and:

- joins a process group (gloo on CPU, NCCL on CUDA; LOCAL_RANK picks the GPU);
- builds the same length-bucketed *global* batches of `batch_size` sentences on every rank (same
  seed) and gives each rank a contiguous slice of each (`shard_bounds`): a global batch of B is
  split B/N per rank, so a run's batch size means the same thing on 1 or N processes;
- weights each rank's per-sentence-mean loss by (its sentences · N / global batch), so that after
  DistributedDataParallel averages gradients over ranks the gradient is that of the mean over the
  whole global batch, also for the last, shorter batch of an epoch (a batch with fewer sentences
  than ranks is dropped);
- draws the reparameterisation noise for the whole global batch on every rank from the shared
  random stream and passes its own rows to `SentenceVAE.forward(..., noise=)`, so z for a sentence
  is the same noise a single process would have drawn for it;
- sums logged loss parts (weighted by sentences) and token counts over ranks; rank 0 validates
  and is the only one that writes files.

The training loop calls the methods of `DistContext` unconditionally: in a single process
(`SINGLE`) each is the identity or a no-op, so the loop has no distributed branches.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel job; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when train() created the process group (and so must destroy it)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # The loop's view: each method is the identity / a no-op in a single process.

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` under DistributedDataParallel (its weights stay `model`'s), or `model` itself."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def keep_batch(self, batch) -> bool:
        """Whether a global batch is trained: one smaller than the world cannot feed every rank."""
        return len(batch) >= self.world_size

    def shard(self, batch):
        """This rank's contiguous rows of a global batch (all of it in one process)."""
        if not self.active:
            return batch
        lo, hi = shard_bounds(len(batch), self)
        return batch[lo:hi]

    def noise(self, n: int, dim: int, device: torch.device) -> torch.Tensor | None:
        """This rank's rows (b, dim) of noise drawn for the whole global batch (n, dim); None in one process
        (the model draws its own, the same values)."""
        if not self.active:
            return None
        lo, hi = shard_bounds(n, self)
        return torch.randn(n, dim, device=device)[lo:hi]

    def scale_loss(self, loss: torch.Tensor, local: int, global_: int) -> torch.Tensor:
        """A rank's per-sentence-mean loss weighted so that DDP's gradient average is the global-batch mean."""
        return loss * loss_scale(local, global_, self) if self.active else loss

    def any(self, device: torch.device, flag: bool) -> bool:
        """`flag` OR-ed over ranks, so every rank takes the same branch."""
        return any_rank(self, device, flag)[0] if self.active else flag

    def global_mean(self, values: list[float], local: int, global_: int, device: torch.device) -> list[float]:
        """Means over the global batch of per-rank means over `local` sentences each ( `values` in one process)."""
        if not self.active:
            return list(values)
        return [x / global_ for x in sum_over_ranks([local * v for v in values], device)]

    def total(self, n: int, device: torch.device) -> int:
        """An integer count summed over ranks."""
        return int(round(sum_over_ranks([float(n)], device)[0])) if self.active else n

    def main_first(self, setup: Callable[[], T]) -> T:
        """`setup()` on rank 0, then on the other ranks once it has succeeded (its error is raised on every rank)."""
        if not self.active:
            return setup()
        if not self.is_main:
            share_error(self, None)  # wait until rank 0 has set the run up (and built any token cache)
            return setup()
        try:
            out = setup()
        except Exception as e:
            share_error(self, e)  # raises e here, and the same message on the other ranks
            raise
        share_error(self, None)
        return out


SINGLE = DistContext()


def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not under torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as e:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ.get('WORLD_SIZE')!r}") from e


def setup(device: str | torch.device) -> tuple[DistContext, torch.device]:
    """Join (or create) the process group torchrun describes; returns the context and this rank's device.

    CPU uses gloo; CUDA uses NCCL on GPU LOCAL_RANK (a device given as plain "cuda" becomes
    cuda:LOCAL_RANK). Other device types are refused.
    """
    import torch.distributed as dist

    world = env_world_size()
    dev = torch.device(device)
    if world <= 1:
        return SINGLE, dev
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as e:
        raise ValueError("WORLD_SIZE > 1 but RANK is not set: start distributed runs with torchrun") from e
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"distributed training runs on cpu (gloo) or cuda (nccl), not on {dev.type}")
    owns = False
    if not dist.is_initialized():
        # Long enough for rank 0 to tokenise a large corpus while the others wait (VAE_DDP_TIMEOUT_MIN).
        timeout = timedelta(minutes=float(os.environ.get("VAE_DDP_TIMEOUT_MIN", "60")))
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world, timeout=timeout)
        owns = True
    return DistContext(rank, world, local_rank, owns), dev


def teardown(ctx: DistContext, finished: bool = True) -> None:
    """Destroy the process group if `setup` created it, so that the process can exit cleanly.

    The DistributedDataParallel wrapper (its reducer holds the gloo group and its pending work) sits
    in reference cycles, so it lives until a garbage collection; left to interpreter shutdown, the
    gloo worker threads are torn down half-way and the process aborts ("terminate called without an
    active exception", exit -6) although training finished. So: collect it first, wait until every
    rank got here (`finished`: no rank is still sending; skipped after an error, where a rank may never
    come), then destroy the group while the interpreter is fully alive.
    """
    if not ctx.owns_group:
        return
    import torch.distributed as dist

    gc.collect()
    if dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
    gc.collect()


def shard_bounds(n: int, ctx: DistContext) -> tuple[int, int]:
    """[start, end) of this rank's rows in a global batch of n: contiguous, sizes differ by at most 1."""
    base, extra = divmod(n, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return start, start + base + (1 if ctx.rank < extra else 0)


def usable_batches(n_sentences: int, batch_size: int, world_size: int) -> int:
    """Batches per epoch under `bucket_batches` cut (ceil(n / B)), less a last batch with fewer sentences than ranks."""
    n_batches = -(-n_sentences // batch_size)
    rest = n_sentences % batch_size
    if world_size > 1 and 0 < rest < world_size:
        n_batches -= 1
    return n_batches


def loss_scale(local: int, global_: int, ctx: DistContext) -> float:
    """Factor on a rank's per-sentence-mean loss so that DDP's gradient average is the global-batch mean."""
    return local * ctx.world_size / global_


def any_rank(ctx: DistContext, device: torch.device, *flags: bool) -> tuple[bool, ...]:
    """Each flag OR-ed over ranks (one collective), so every rank takes the same branch."""
    import torch.distributed as dist

    t = torch.tensor([1.0 if f else 0.0 for f in flags], dtype=torch.float32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(x) for x in t.tolist())


def sum_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over ranks of a list of numbers (float64)."""
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def share_error(ctx: DistContext, error: BaseException | None) -> None:
    """Rank 0 tells every rank whether its setup failed; all raise the same message if it did."""
    import torch.distributed as dist

    box = [None if error is None else f"{type(error).__name__}: {error}"]
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    if box[0] is not None:
        raise RuntimeError(f"rank 0 failed to set up the run: {box[0]}")


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()


__all__ = [
    "DistContext",
    "SINGLE",
    "env_world_size",
    "setup",
    "teardown",
    "shard_bounds",
    "usable_batches",
    "loss_scale",
    "any_rank",
    "sum_over_ranks",
    "share_error",
    "barrier",
]
