"""Process-level settings every command shares: thread count and compute device.

On HPC login nodes the polite default is the allocation's CPU count (SLURM_CPUS_PER_TASK),
not every core of the node; elsewhere all cores.
"""

from __future__ import annotations

import os

import torch

from climdiff.errors import ClimdiffError


def default_threads() -> int:
    """SLURM_CPUS_PER_TASK when set to a positive integer, else the number of cores."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    return os.cpu_count() or 1


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count and return it (None: :func:`default_threads`)."""
    n = default_threads() if threads is None else threads
    if n < 1:
        raise ClimdiffError(f"--threads must be a positive integer, got {n}")
    torch.set_num_threads(n)
    return n


def resolve_device(name: str) -> torch.device:
    """Map 'auto', 'cpu', 'cuda' or 'cuda:N' to a device, refusing one that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ClimdiffError(f"unknown device {name!r} (use auto, cpu or cuda)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ClimdiffError(f"device {name!r} requested but no CUDA device is available")
    if device.type not in ("cpu", "cuda"):
        raise ClimdiffError(f"unsupported device {name!r} (use auto, cpu or cuda)")
    return device


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(name: str) -> torch.dtype:
    """Map a dtype name given on the command line to a torch dtype."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ClimdiffError(f"unsupported dtype {name!r} (use {' or '.join(DTYPES)})") from None
