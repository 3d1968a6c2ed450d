"""Independent random streams keyed by integers (seed, member, step, ...).

Every stochastic part of climdiff draws from a CPU generator derived from a tuple of keys, so
a draw depends only on what it belongs to, never on batch layout, rank or resume.
"""

from __future__ import annotations

import numpy as np
import torch


def keyed_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from ``keys`` through numpy's SeedSequence (well mixed, 63 bits)."""
    state = np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
