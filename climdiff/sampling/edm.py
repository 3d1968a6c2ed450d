"""The EDM stochastic Heun sampler (Karras et al. 2022, Algorithm 2) with discriminator guidance.

A plain function over callables, as in k-diffusion and NVlabs/edm: ``denoiser(x, sigma)`` is
D(x; sigma) (conditioning, if any, is closed over by the caller) and ``guide(x, sigma)`` the
gradient of the discriminator's clipped logit (:mod:`climdiff.sampling.guidance`). Guidance
(Kim et al. 2023; Hess et al. 2025) enters the slope of BOTH Heun stages:

    slope(x, sigma) = (x - D(x; sigma)) / sigma - lambda * sigma * grad l(x; sigma),

i.e. the score (D - x)/sigma^2 plus lambda * grad l, in the probability-flow ODE
dx/dsigma = -sigma * score. The last step (sigma_next = 0) is a single Euler step. The guide is
evaluated only for sigma inside the guidance window and never when lambda = 0.

Randomness comes from one generator per batch item (ensemble member), so a member's draws do
not depend on which other members share its batch.

The denoiser and the guide of one slope read the same x and are independent: given an
``executor``, the guide runs on it while the denoiser runs on the calling thread. On a CPU with
one intra-op thread per call this puts the two networks on two cores at once; the result is the
same, bit for bit, as running them one after the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import torch

from climdiff.sampling.config import SamplerConfig

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Guide = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sigma_schedule(config: SamplerConfig, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Noise levels t_0 > ... > t_{N-1} = sigma_min, then t_N = 0 (EDM's rho schedule)."""
    n = config.steps
    i = torch.arange(n, dtype=torch.float64)
    lo, hi = config.sigma_min ** (1 / config.rho), config.sigma_max ** (1 / config.rho)
    ramp = i / (n - 1) if n > 1 else torch.zeros(1, dtype=torch.float64)
    t = (hi + ramp * (lo - hi)) ** config.rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)]).to(dtype)


def member_noise(shape: torch.Size, generators: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``shape`` (batch first), item i drawn from ``generators[i]`` on the CPU."""
    if len(generators) != shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {shape[0]}")
    draws = [torch.randn(shape[1:], generator=g, dtype=torch.float32) for g in generators]
    return torch.stack(draws).to(device=like.device, dtype=like.dtype)


def in_window(sigma: float, config: SamplerConfig) -> bool:
    """Whether guidance acts at noise level ``sigma``."""
    upper = math.inf if config.guidance_sigma_max is None else config.guidance_sigma_max
    return config.guidance > 0 and config.guidance_sigma_min <= sigma <= upper


def edm_sample(
    denoiser: Denoiser,
    shape: torch.Size | tuple[int, ...],
    generators: Sequence[torch.Generator],
    config: SamplerConfig,
    guide: Guide | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    executor: Executor | None = None,
) -> torch.Tensor:
    """Draw one sample per generator, shape ``shape`` (batch first), from noise to sigma = 0;
    ``executor``, if given, runs the guide concurrently with the denoiser."""
    shape = torch.Size(shape)
    like = torch.empty(0, device=device, dtype=dtype)
    t = sigma_schedule(config).tolist()
    gamma_max = min(config.S_churn / config.steps, math.sqrt(2.0) - 1.0)
    if guide is None and config.guidance > 0:
        raise ValueError("guidance > 0 needs a guide (the discriminator's logit gradient)")

    def slope(x: torch.Tensor, sigma: float) -> torch.Tensor:
        s = torch.full((shape[0],), sigma, device=device, dtype=dtype)
        guided = in_window(sigma, config)
        pending = executor.submit(guide, x, s) if guided and executor is not None else None  # type: ignore[arg-type]
        d = (x - denoiser(x, s)) / sigma
        if guided:
            grad = pending.result() if pending is not None else guide(x, s)  # type: ignore[misc]
            d = d - config.guidance * sigma * grad
        return d

    x = member_noise(shape, generators, like) * t[0]
    for i in range(config.steps):
        t_cur, t_next = t[i], t[i + 1]
        gamma = gamma_max if config.S_tmin <= t_cur <= config.S_tmax else 0.0
        t_hat = t_cur * (1.0 + gamma)
        if gamma > 0:
            x = x + math.sqrt(t_hat**2 - t_cur**2) * config.S_noise * member_noise(shape, generators, like)
        d_cur = slope(x, t_hat)
        x_next = x + (t_next - t_hat) * d_cur
        if t_next > 0:
            x_next = x + (t_next - t_hat) * 0.5 * (d_cur + slope(x_next, t_next))
        x = x_next
    return x
