"""Process-level settings every command shares: thread count and compute device.

On HPC login nodes the polite default is the allocation's CPU count (SLURM_CPUS_PER_TASK),
not every core of the node; elsewhere all cores.
"""

from __future__ import annotations

import os
import warnings

import torch

from climdiff.diskspace import human_size
from climdiff.errors import ClimdiffError


def default_threads() -> int:
    """SLURM_CPUS_PER_TASK when set to a positive integer, else the number of cores; an allocation
    larger than the cores present (a mistyped or inherited variable) is capped with a warning."""
    cores = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        if int(slurm) > cores:
            warnings.warn(
                f"SLURM_CPUS_PER_TASK={slurm} is more than the {cores} cores present; using {cores}", stacklevel=2
            )
            return cores
        return int(slurm)
    return cores


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count and return it (None: :func:`default_threads`)."""
    n = default_threads() if threads is None else threads
    if n < 1:
        raise ClimdiffError(f"--threads must be a positive integer, got {n}")
    torch.set_num_threads(n)
    return n


def available_memory() -> int | None:
    """Bytes of memory the system can give a new allocation without swapping (Linux MemAvailable),
    or None where that is not known."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def require_memory(nbytes: int, what: str) -> None:
    """Refuse, before allocating anything, work that would need more memory than is available."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise ClimdiffError(
            f"{what} needs about {human_size(nbytes)} of memory, but only {human_size(free)} is available"
        )


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
