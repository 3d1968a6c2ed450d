"""How a rollout spends the machine: chains per sampling call, and CPU threads.

Both the emulation and the forecast engine take their default batch from :func:`chains_per_call`,
and the command line sets the threads from the same number, so the two never disagree.
"""

from __future__ import annotations

import math

from climdiff.errors import ClimdiffError
from climdiff.runtime import configure_threads, default_threads

# Forecast starts are batched together (a start's members alone are usually few), up to this many chains.
FORECAST_BATCH = 64
# Measured on 2 cores with the 32x32 default: one member ran 25 % faster on one thread than on
# two, eight members too; from 32 members on, threads pay (docs/benchmarks.md).
SMALL_CALL_POINTS = 16 * 32 * 32


def chains_per_call(members: int, batch: int | None, *, forecast: bool = False) -> int:
    """Chains one sampling call draws: ``batch`` (--batch, checked here), else every member of an
    emulation, or at least :data:`FORECAST_BATCH` chains of a forecast set (the member count is
    the configuration's to check, with its own message)."""
    if batch is None:
        return max(members, FORECAST_BATCH) if forecast else members
    if batch < 1:
        raise ClimdiffError(f"--batch must be positive, got {batch}")
    return batch


def configure_sampling_threads(threads: int | None, chains: int, frame_shape: tuple[int, ...]) -> bool:
    """Spend ``threads`` cores (None: all, or the Slurm allocation) on sampling calls of ``chains``
    frames of ``frame_shape``, and say whether the discriminator's guidance gets a thread of its own.

    A small call runs fastest with one intra-op thread per network, so a second core is better
    used running the guidance beside the IDM (1.3-1.4x faster per day for one member of the default,
    with identical results); a large call spreads every operation over all the threads.
    """
    small_call = chains * math.prod(frame_shape) <= SMALL_CALL_POINTS
    cores = default_threads() if threads is None else threads
    configure_threads(1 if small_call else cores)
    return small_call and cores >= 2
