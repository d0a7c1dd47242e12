"""Data-parallel training over several processes, as started by torchrun.

    torchrun --nproc-per-node 2 -m rnnkit train classify --train train.tsv --dev dev.tsv --out runs/x

torchrun starts N processes and tells each its RANK, LOCAL_RANK and WORLD_SIZE in the
environment. Every process builds the same model from the same seed, computes the same epoch
batch list (a function of (seed, epoch)) and trains on its own share of it (`shard`).
DistributedDataParallel averages the gradients over the processes inside `backward`, so every
optimizer step is the same on every rank and the weights stay identical. Rank 0 alone writes the
run folder and prints; the others only compute.

Two process groups: the default one carries the gradients (NCCL on CUDA, each rank on
cuda:LOCAL_RANK; gloo on CPU), and a gloo group carries the small host-side agreements (stop
now?, the epoch's loss sums, rank 0's dev report), so asking them never waits on the GPU.
Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op for one process.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

_control = None  # the gloo group for host-side values, while a session is open


def launched() -> bool:
    """True in a process that torchrun started as one of several (WORLD_SIZE > 1)."""
    return world_size() > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0: the one process that writes files and prints."""
    return rank() == 0


@contextmanager
def session(device: torch.device):
    """Join the process group when torchrun started several processes; yields this process's
    device (cuda:LOCAL_RANK on CUDA). One process: yields `device` and does nothing else.
    A group the caller already opened is used as it is and left open."""
    global _control
    if not launched():
        yield device
        return
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            from rnnkit.errors import UserError

            raise UserError(
                f"process with LOCAL_RANK {local} has no GPU of its own ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU (--nproc-per-node)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    opened = not active()
    if opened:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    _control = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
    try:
        yield device
        dist.barrier(group=_control)  # leave together: a peer's teardown must not meet work in flight
    finally:
        _control = None
        if opened:
            gc.collect()  # DDP wrappers (reducers with gloo work) must die before their process group
            dist.destroy_process_group()


def rank_seed(seed: int) -> int:
    """A seed for this rank's dropout noise: ranks see different data, and should draw
    different masks for it too, reproducibly from (seed, rank)."""
    return int(np.random.SeedSequence([seed, rank()]).generate_state(1)[0])


def shard(batches: list, rank: int, world: int) -> list:
    """This rank's share of an epoch's batches: every `world`-th one from `rank`, after dropping
    the last len % world, so that every rank takes the same number of steps (a rank with one
    step more would wait forever for the others in its gradient all-reduce). The dropped
    batches change from epoch to epoch, since the order does."""
    usable = len(batches) - len(batches) % world
    return batches[rank:usable:world]


class _Loss(nn.Module):
    """model.loss as a forward pass: DDP syncs gradients only for what runs through its own
    __call__, so the wrapper's forward must be the loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch, reduction: str):
        return self.model.loss(batch, reduction)


def loss_function(model: nn.Module, device: torch.device):
    """`(batch, reduction) -> (loss, items)`: model.loss itself for one process; with several,
    the same through DistributedDataParallel, which broadcasts rank 0's weights now and
    averages gradients in every backward."""
    if not active():
        return model.loss
    ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(_Loss(model), device_ids=ids)


def any_rank(*flags: bool) -> tuple[bool, ...]:
    """Each flag, true when it is true on any rank: every rank takes the same stop decision."""
    if not active():
        return tuple(flags)
    t = torch.tensor([float(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_control)
    return tuple(bool(v) for v in t.tolist())


def all_sum(*values: float) -> tuple[float, ...]:
    """Each value summed over the ranks, in float64 (counts stay exact below 2**53)."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, group=_control)
    return tuple(t.tolist())


def from_main(compute):
    """Rank 0's `compute()`, on every rank: one evaluation, one answer that all ranks act on."""
    if not active():
        return compute()
    box = [compute() if is_main() else None]
    dist.broadcast_object_list(box, src=0, group=_control)
    return box[0]


def gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj, group=_control)
    return out


def barrier() -> None:
    """Wait until every rank is here."""
    if active():
        dist.barrier(group=_control)


def broadcast_weights(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's `model`."""
    if not active():
        return
    with torch.no_grad():
        for t in model.state_dict().values():
            dist.broadcast(t, src=0)
