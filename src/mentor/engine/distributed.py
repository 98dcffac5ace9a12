"""Data-parallel training under ``torchrun`` (one process per device or CPU socket).

``torchrun --nproc_per_node=N -m mentor run RECIPE`` starts N processes; each reads its rank from the
environment, trains on its own shard of every batch, and after each backward pass the gradients of
the *trained* parameters are averaged across processes with one bucketed ``all_reduce`` per
optimizer group: the same update DistributedDataParallel computes, for any scheme (peers, adapters,
discriminators) without wrapping models. Frozen teachers never communicate. BatchNorm statistics
stay per process, as with DistributedDataParallel without SyncBatchNorm. Rank 0 evaluates, logs and
writes checkpoints; multi-node runs work the same way through torchrun's rendezvous.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def world() -> World:
    """The current world: initializes the process group once when launched by torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("MENTOR_BACKEND") != "gloo" else "gloo"
        dist.init_process_group(backend)
        _leave_at_exit()
    return World(dist.get_rank(), dist.get_world_size())


def average_gradients(parameters: Iterable[nn.Parameter], current: World) -> None:
    """Average the gradients of ``parameters`` over all processes (one flat all_reduce)."""
    if not current.active:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= current.size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def broadcast_parameters(modules: Iterable[nn.Module], current: World) -> None:
    """Start every process from rank 0's weights and buffers."""
    if not current.active:
        return
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_object(value: T, current: World) -> T:
    """Rank 0's ``value`` (any picklable object) on every process."""
    if not current.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(current: World) -> None:
    """Wait until every process gets here."""
    if current.active:
        dist.barrier()


def average_scalars(values: dict[str, torch.Tensor], current: World) -> dict[str, torch.Tensor]:
    """The mean over all processes of each named scalar (one all_reduce for all of them)."""
    if not current.active or not values:
        return values
    names = sorted(values)
    flat = torch.stack([torch.as_tensor(values[name], dtype=torch.float32) for name in names])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return dict(zip(names, flat / current.size, strict=True))


def shutdown() -> None:
    """Leave the process group cleanly: every rank waits for the others, then the group is destroyed
    (a rank that exits while the others still communicate would abort the run)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()



class _Exit:
    """How this process leaves the process group when the interpreter exits."""

    failed = False


def abandon() -> None:
    """This process failed: at exit it leaves without waiting for the others (torchrun stops them)."""
    _Exit.failed = True


def _leave_at_exit() -> None:
    """Shut down when the interpreter exits normally (a script that calls ``fit`` under torchrun and returns):
    gloo aborts a process whose group is torn down while a peer's connection is still open. After an
    uncaught exception or :func:`abandon` the group is left alone, so the failing rank exits at once."""
    previous = sys.excepthook

    def note_failure(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        abandon()
        previous(kind, value, trace)

    def leave() -> None:
        if not _Exit.failed:
            shutdown()

    sys.excepthook = note_failure
    atexit.register(leave)
