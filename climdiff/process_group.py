"""torchrun integration shared by training and rollout: one process per rank, gloo on CPU, nccl on GPU.

A plain ``climdiff train ...`` or ``climdiff emulate ...`` is a world of one; ``torchrun
--nproc_per_node N -m climdiff train ...`` (or ``torchrun ... $(which climdiff) emulate ...``)
runs N ranks. Training gives each rank an equal contiguous share of every global batch
(DistributedDataParallel); emulation gives each rank its own members. Both stages join the
process group here, so rollout never imports the training package (docs/architecture.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from climdiff.errors import ClimdiffError


@dataclass(frozen=True)
class World:
    """This process's place among the torchrun processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def mean(self, value: float, device: torch.device) -> float:
        """Average of a scalar over ranks."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t) / self.size


def init_world(device: torch.device) -> World:
    """Join the process group torchrun set up (environment variables), or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    return World(rank=rank, size=size, local_rank=local_rank)


def local_device(device: torch.device, world: World) -> torch.device:
    """On GPUs each rank uses the device of its local rank."""
    if device.type == "cuda" and world.size > 1:
        return torch.device("cuda", world.local_rank)
    return device


def check_batch(batch_size: int, world: World) -> int:
    """Per-rank batch size; the global batch must split evenly."""
    if batch_size % world.size:
        raise ClimdiffError(f"batch size {batch_size} does not split evenly over {world.size} processes")
    return batch_size // world.size


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
