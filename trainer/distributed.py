"""Scale-out training: DistributedDataParallel when torchrun starts the trainer.

torchrun starts one process per rank and tells each who it is through the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). `from_env` reads them; without
them (a plain `python -m trainer`) the run is the single process it always was: no
process group, no wrapper, nothing here is called.

How a DDP run stays the single process's run (docs/training.md, "Scale-out training"):
every rank holds the whole data set and draws the same seeded permutation per pass;
`shard` gives rank r every world-th row of it, so the ranks' k-th batches together are
the single process's k-th batch (training.batch_size is the global batch, each rank
steps batch_size / world_size rows). DDP all-reduces the gradients (the mean over ranks
of per-rank mean losses: the global batch's mean), so every rank takes the same step.
Rank 0 alone evaluates (the full validation split), fits tree learners and calibrations,
and broadcasts what it found: every rank makes the same best-epoch and early-stopping
decision by construction. Rank 0 alone writes files and prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn

from jenga_edge.contract.errors import ConfigError

T = TypeVar("T")
M = TypeVar("M", bound=nn.Module)
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank `rank` of `world_size` (1: no scale-out)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that evaluates, writes files and prints."""
        return self.rank == 0


SINGLE = Dist()


def from_env(env: Mapping[str, str] = os.environ) -> Dist:
    """The rank torchrun gave this process, or SINGLE when no launcher set WORLD_SIZE."""
    if "WORLD_SIZE" not in env:
        return SINGLE
    values = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        raw = env.get(name, "0")
        try:
            values[name] = int(raw)
        except ValueError:
            raise ConfigError(f"environment {name}={raw!r}: expected an integer (set by torchrun)") from None
    rank, world, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(
            f"environment RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}: expected 0 <= RANK < WORLD_SIZE"
        )
    if world > 1:
        missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if not env.get(n)]
        if missing:
            raise ConfigError(f"environment: WORLD_SIZE={world} but {', '.join(missing)} unset (start with torchrun)")
    return Dist(rank, world, local)


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes: the backend follows the device."""
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device, d: Dist) -> torch.device:
    """Each rank on its own GPU (LOCAL_RANK: its index on this machine); CPU ranks share the CPU."""
    if device.type != "cuda" or not d.active:
        return device
    if d.local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK {d.local_rank}: this machine has {torch.cuda.device_count()} GPU(s); "
            "start at most that many processes per node (--nproc_per_node)"
        )
    return torch.device("cuda", d.local_rank)


@contextmanager
def session(device: torch.device, d: Dist) -> Iterator[None]:
    """The process group for one run: joined on entry, left on exit. A group that already
    exists (several runs in one process, as `holdout` does) is used and left standing."""
    if not d.active or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), init_method="env://", rank=d.rank, world_size=d.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def per_rank_batch(batch_size: int, d: Dist) -> int:
    """training.batch_size is the global batch; each rank steps its share of it."""
    if batch_size % d.world_size:
        raise ConfigError(
            f"training.batch_size: {batch_size} does not divide among {d.world_size} processes; "
            f"expected a multiple of WORLD_SIZE (the global batch, split evenly so DDP's mean gradient is its mean)"
        )
    return batch_size // d.world_size


def shard(perm: torch.Tensor, d: Dist) -> torch.Tensor:
    """Rank r's rows of a permutation every rank drew alike: every world-th row from r,
    after padding (with the permutation's first rows, as DistributedSampler does) to a
    multiple of world_size so every rank steps the same number of times. Rank r's k-th
    batch of b rows is then rows [k*b*W, (k+1)*b*W) of perm with index = r mod W: the
    ranks' k-th batches are disjoint and together the single process's k-th batch."""
    if not d.active:
        return perm
    pad = -perm.numel() % d.world_size
    if pad:
        perm = torch.cat([perm, perm[:pad]])
    return perm[d.rank :: d.world_size]


def wrap(model: nn.Module, device: torch.device, d: Dist) -> nn.Module:
    """The DDP wrapper the training steps call; the bare model stays for scoring and saving.
    find_unused_parameters: a step trains one task's head, so the other heads get no
    gradient (the same ones on every rank: the schedule is seeded alike)."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def sync_batch_norm(model: M, device: torch.device) -> tuple[M, bool]:
    """(model, converted): BatchNorm layers become SyncBatchNorm on GPUs, so the statistics
    are the global batch's. torch's SyncBatchNorm needs a GPU: CPU ranks keep per-rank
    statistics (the caller warns)."""
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not has_bn or device.type != "cuda":
        return model, False
    # The layers are swapped inside `model`, which comes back (a bare BatchNorm is not a model here).
    return cast(M, nn.SyncBatchNorm.convert_sync_batchnorm(model)), True


def on_main(fn: Callable[[], T], d: Dist) -> T:
    """fn() on rank 0, its result on every rank (pickled through the process group)."""
    if not d.active:
        return fn()
    box: list[Any] = [fn() if d.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: torch.Tensor, d: Dist) -> torch.Tensor:
    """The element-wise mean across ranks (the epoch's training losses)."""
    if not d.active:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / d.world_size


def weight_share(local_sum: torch.Tensor, d: Dist) -> torch.Tensor:
    """world_size * this rank's share of the batch's weight sum (a constant, no gradient):
    a loss normalized by its own rank's weights, times this, averages over the ranks to
    the loss normalized by the whole batch's weights."""
    total = local_sum.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return d.world_size * local_sum.detach() / total


def describe(d: Dist, device: torch.device, batch_size: int) -> dict:
    """What a DDP run records in its summary (and the model's manifest)."""
    return {
        "world_size": d.world_size,
        "backend": backend_for(device),
        "global_batch_size": batch_size,
        "per_rank_batch_size": batch_size // d.world_size,
    }
