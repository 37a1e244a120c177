"""Data-parallel runs under ``torchrun`` (docs/design.md, "Distributed").

``torchrun --nproc_per_node N -m vidnas ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`setup` joins
them into one process group (NCCL on CUDA, gloo on the CPU) and returns a
:class:`Dist`, the one object a loop asks about its rank. Without those
variables everything here is a no-op on a single process, so the same code path
serves both.

What the loops rely on:

* every rank sees a different slice of each *global* batch (``world x``
  ``batch_size`` clips drawn by the same seeded order), so a run of N processes
  at batch b sees the clips a single process at batch N*b would;
* gradients are averaged weighted by each rank's clip count
  (:meth:`Dist.loss_scale`), so an unreadable video on one rank changes the
  weighting exactly as it would in one process;
* summed metrics are all-reduced after every step, so every rank holds the same
  sums and rank 0's checkpoint is everyone's state;
* only rank 0 writes; the others wait for it where they read what it wrote
  (:meth:`Dist.main_first`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist

from vidnas.errors import ConfigError

# A rank that waits longer than this for the others (one of them died, or hangs)
# raises instead of hanging the job; torchrun then stops every process.
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size and local rank (its GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""  # the process group's, once joined ("gloo", "cpu:gloo,cuda:nccl")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    # ------------------------------------------------------------------ collectives

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (writing a split file); the others run it
        after, and read what rank 0 wrote. The block must hold no collective call."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks, in float64 (clip counts stay exact)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)  # small: gloo, on the CPU
        tdist.all_reduce(t)
        return t.tolist()

    def loss_scale(self, n_local: int) -> tuple[float, int]:
        """(scale, global clip count) for one step.

        A rank's mean loss times ``n_local * world / n_global``, averaged over ranks
        (what DDP and :meth:`average_grads` do), is the mean over the global batch,
        whatever the split of its clips between ranks.
        """
        if not self.enabled:
            return 1.0, n_local
        n_global = int(self.sum([n_local])[0])
        return (n_local * self.world / n_global if n_global else 0.0), n_global

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any (so all stop together)."""
        return bool(self.sum([float(flag)])[0]) if self.enabled else flag

    def average_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` over ranks in one flat all-reduce (the
        architecture parameters, which are not under DDP)."""
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        tdist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """Rank 0's values into every rank's ``tensors``, in place."""
        if self.enabled:
            for t in tensors:
                tdist.broadcast(t.data, src=0)

    def average(self, tensors: Iterable[torch.Tensor]) -> None:
        """The mean over ranks into every rank's floating-point ``tensors``, in place
        (BatchNorm statistics re-estimated on each rank's shard)."""
        if self.enabled:
            for t in tensors:
                if t.is_floating_point():
                    tdist.all_reduce(t.data)
                    t.data /= self.world

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]


def from_env() -> Dist:
    """The job as ``torchrun`` describes it in the environment (one process if not)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise ConfigError(f"WORLD_SIZE/RANK/LOCAL_RANK: not integers ({err})") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is not within WORLD_SIZE {world}")
    return Dist(rank, world, local)


def setup() -> Dist:
    """Join the job's process group if there is one (idempotent).

    gloo carries CPU tensors and, where CUDA exists, NCCL carries CUDA tensors (one
    group with both backends), so the group can be made before the device is known
    (a resumed run reads its config after joining). On CUDA each process takes the
    GPU of its local rank.
    """
    d = from_env()
    if not d.enabled:
        return d
    if not tdist.is_initialized():
        backend = "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(d.local_rank)
            backend = "cpu:gloo,cuda:nccl"
        tdist.init_process_group(backend, timeout=TIMEOUT)
    return dataclasses.replace(d, backend=str(tdist.get_backend()))


def shutdown() -> None:
    """Leave the process group (at the end of a command run under torchrun)."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def local_device(device: torch.device, d: Dist) -> torch.device:
    """``cuda`` becomes this process's GPU (``cuda:<local rank>``) in a job."""
    if d.enabled and device.type == "cuda" and device.index is None:
        return torch.device("cuda", d.local_rank)
    return device


def shard_batches(batches: list[list[int]], d: Dist, per_rank: int) -> list[list[int]]:
    """This rank's part of each global batch of ``world * per_rank`` indices: a
    contiguous slice, so that rank r of N sees the clips a single process would see
    at positions ``r*b .. (r+1)*b`` of the same global batch (possibly none, in the
    last batch of an evaluation pass)."""
    if not d.enabled:
        return batches
    lo = d.rank * per_rank
    return [b[lo : lo + per_rank] for b in batches]
