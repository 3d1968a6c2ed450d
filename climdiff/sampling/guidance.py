"""Discriminator guidance: the gradient of the discriminator's clipped logit.

The discriminator returns the logit l = log(d / (1 - d)) directly, so the guidance direction
grad_x log(d / (1 - d)) is the logit's gradient. The paper clips d to [1e-5, 1 - 1e-5], i.e.
l to +-11.5: where the discriminator is that sure, the gradient is zero (clamp's gradient), as
in the reference implementation's clip-then-log-ratio.
"""

from __future__ import annotations

import torch
from torch import nn

from climdiff.sampling.edm import Guide


def logit_gradient(
    disc: nn.Module, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, clip: float, doy: torch.Tensor | None = None
) -> torch.Tensor:
    """grad_x clamp(l(x; sigma, cond[, doy]), -clip, clip), one gradient per batch item.

    Summing the logits before differentiating is exact: each logit depends on its own item only.
    ``doy`` (the generated day's year fraction) is for a discriminator conditioned on the date.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logit = (disc(x, sigma, cond) if doy is None else disc(x, sigma, cond, doy)).clamp(-clip, clip)
        (grad,) = torch.autograd.grad(logit.sum(), x)
    return grad


def discriminator_guide(disc: nn.Module, cond: torch.Tensor, clip: float, doy: torch.Tensor | None = None) -> Guide:
    """The guide callable for :func:`~climdiff.sampling.edm.edm_sample`, conditioned on ``cond``
    (and on ``doy`` for a discriminator that takes the date)."""
    return lambda x, sigma: logit_gradient(disc, x, sigma, cond, clip, doy)
