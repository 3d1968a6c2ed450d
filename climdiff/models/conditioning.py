"""How the conditioning days are stacked for the networks (VDM and discriminator).

One convention, used by training and sampling alike: newest first, ``(x^n, x^{n-1})`` along the
channel axis. Any fixed order would do, as long as the two agree; this module is where they do.
"""

from __future__ import annotations

import torch


def conditioning(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Stack x^{n-1} (``previous``) and x^n (``current``), each (B, C, H, W), to (B, 2C, H, W)."""
    return torch.cat([current, previous], dim=1)
