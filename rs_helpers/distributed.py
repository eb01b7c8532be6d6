"""Several processes, one result: the rank and world size a launcher gave this process.

``accelerate launch --num_processes N -m rs_helpers ...``, ``torchrun --nproc_per_node N -m
rs_helpers ...`` and SLURM jobs that call either set ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.
:func:`processes` joins the process group through accelerate's ``PartialState`` (NCCL on GPUs,
gloo on the CPU) and returns a small :class:`Processes` record that the runners use to take their
contiguous share of the work (:meth:`Processes.shard`) and to collect every share on rank 0
(:meth:`Processes.gather`). Without a launcher it is one process and every method is a no-op, so
the single-process path is the same code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

# A shard can take hours longer than another (big images, slow answers): the collective that
# gathers the results must not time out while rank 0 waits (torch's default is 10-30 minutes).
GATHER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class Processes:
    """This process's place among ``world`` cooperating processes (rank 0 reports and writes)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def bounds(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this rank's contiguous block of ``n`` items (sizes differ by <= 1).

        Contiguous, not strided, so consecutive queries on one image stay in one process and
        share its SAM embedding."""
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def shard(self, items: Sequence) -> list:
        start, stop = self.bounds(len(items))
        return list(items[start:stop])

    def gather(self, value: Any) -> list | None:
        """Every rank's ``value`` as a list in rank order on rank 0, ``None`` on the others."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, value)  # works on gloo and NCCL alike
        return out if self.main else None

    def collect(self, done: dict, new: dict) -> dict | None:
        """Rank 0: ``done`` updated with every process's ``new`` records (None on the others)."""
        parts = self.gather(new)
        if not self.main:
            return None
        for part in parts:
            done.update(part)
        return done

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def device(self, requested: str | None) -> str | None:
        """The device of this rank: ``cuda:LOCAL_RANK`` when several processes share a machine's
        GPUs (``--device cuda`` or the default there), otherwise ``requested`` unchanged."""
        if not self.distributed or requested not in (None, "cuda"):
            return requested
        import torch

        if not torch.cuda.is_available():
            return requested
        torch.cuda.set_device(self.local_rank)
        return f"cuda:{self.local_rank}"

    def label(self) -> str:
        return f"process {self.rank + 1} of {self.world}" if self.distributed else "one process"


def launched_world() -> int:
    """The world size the launcher set (1 without one)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def processes(device: str | None = None) -> Processes:
    """Join the launcher's process group (once) and say where this process stands.

    ``device`` is the ``--device`` the user asked for: ``cpu`` (or a machine without CUDA)
    uses gloo, otherwise NCCL. With no launcher this returns ``Processes()`` and imports nothing.
    """
    if launched_world() == 1:
        return Processes()
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or not torch.cuda.is_available()
    state = PartialState(cpu=cpu, timeout=GATHER_TIMEOUT)
    return Processes(rank=int(state.process_index), world=int(state.num_processes),
                     local_rank=int(state.local_process_index))


def finish() -> None:
    """Each process waits for the others, then leaves the process group. A process that exits
    while another still writes (rank 0 saving an adapter or merging a scene) would otherwise end
    with gloo's threads still running and abort (``terminate called without an active exception``)."""
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
