"""Discriminator guidance: the gradient of the discriminator's clipped logit, as a sampler :data:`Guide`.

The discriminator returns the logit l = log(d / (1 - d)) directly, so the guidance direction
grad_x log(d / (1 - d)) is the logit's gradient. The paper clips d to [1e-5, 1 - 1e-5], i.e.
l to +-11.5: where the discriminator is that sure, the gradient is zero (clamp's gradient), as
in the reference implementation's clip-then-log-ratio.
"""

from __future__ import annotations

from concurrent.futures import Executor

import torch
from torch import nn

from climdiff.sampling.config import SamplerConfig
from climdiff.sampling.edm import GuidanceTerm, Guide, in_window


def logit_gradient(
    disc: nn.Module,
    x: torch.Tensor,
    sigma: torch.Tensor,
    cond: torch.Tensor,
    clip: float,
    doy: torch.Tensor | None = None,
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


def discriminator_guide(
    disc: nn.Module,
    cond: torch.Tensor,
    config: SamplerConfig,
    executor: Executor | None = None,
    doy: torch.Tensor | None = None,
) -> Guide:
    """The guide for :func:`~climdiff.sampling.edm.sample_heun`: lambda * sigma * grad l, conditioned
    on ``cond`` (and on ``doy`` for a discriminator that takes the date), inside the config's guidance
    window (never when lambda = 0).

    With an ``executor`` the term is computed there while the sampler runs the denoiser: with one
    intra-op thread each, the two networks of a step occupy two cores. The term runs with
    TorchScript's graph optimisation off on whichever thread computes it (the flag is thread-local;
    traced networks must not switch graphs, see :mod:`climdiff.rollout.steppers`).
    """

    def guide(x: torch.Tensor, sigma: float) -> GuidanceTerm | None:
        if not in_window(sigma, config):
            return None

        def term() -> torch.Tensor:
            s = torch.full((x.shape[0],), sigma, device=x.device, dtype=x.dtype)
            with torch.jit.optimized_execution(False):
                return config.guidance * sigma * logit_gradient(disc, x, s, cond, config.logit_clip, doy)

        return term if executor is None else executor.submit(term).result

    return guide
