"""The EDM samplers (Karras et al. 2022) with discriminator guidance: the stochastic Heun sampler
(Algorithm 2) and DPM-Solver++(2M) (Lu et al. 2022), which needs one network call per step
instead of Heun's two.

Shaped like k-diffusion's samplers: :func:`sample_heun` and :func:`sample_dpmpp_2m` take a
denoiser, the starting ``x`` and a schedule of noise levels (built by :func:`sigma_schedule`), and
call an optional ``callback`` after every step. ``denoiser(x, sigma)`` is D(x; sigma)
(conditioning, if any, is closed over by the caller). Guidance (Kim et al. 2023; Hess et al. 2025)
is a callable too (:data:`Guide`, made by :mod:`climdiff.sampling.guidance`); it enters every
evaluation of the slope of the probability-flow ODE dx/dsigma = -sigma * score:

    slope(x, sigma) = (x - D(x; sigma)) / sigma - lambda * sigma * grad l(x; sigma),

i.e. the score (D - x)/sigma^2 plus lambda * grad l. Heun uses it in both of its stages; the
multistep solver uses the guided denoiser x - sigma * slope = D + lambda * sigma^2 * grad l, so
both integrate the same ODE. The last step of either (sigma_next = 0) is a single Euler step.

Randomness comes from one generator per batch item (ensemble member), so a member's draws do
not depend on which other members share its batch (:func:`member_noise`).

The denoiser and the guide of one slope read the same x and are independent, so the sampler asks
the guide for its term before it calls the denoiser and collects the term afterwards: a guide may
compute it on another thread meanwhile, with the same result, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from climdiff.sampling.config import SamplerConfig

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# guide(x, sigma) starts the guidance term lambda * sigma * grad l(x; sigma) and returns a callable
# that yields it, or None where guidance does not act (outside its window)
GuidanceTerm = Callable[[], torch.Tensor]
Guide = Callable[[torch.Tensor, float], GuidanceTerm | None]
# callback({"x", "i", "sigma", "sigma_hat", "denoised"}) after every step, as in k-diffusion
StepCallback = Callable[[dict[str, Any]], None]


def sigma_schedule(config: SamplerConfig, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Noise levels t_0 > ... > t_{N-1} = sigma_min, then t_N = 0 (EDM's rho schedule)."""
    n = config.steps
    i = torch.arange(n, dtype=torch.float64)
    lo, hi = config.sigma_min ** (1 / config.rho), config.sigma_max ** (1 / config.rho)
    ramp = i / (n - 1) if n > 1 else torch.zeros(1, dtype=torch.float64)
    t = (hi + ramp * (lo - hi)) ** config.rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)]).to(dtype)


def churned(t_cur: float, steps: int, s_churn: float, s_tmin: float, s_tmax: float) -> float:
    """The level t_hat = t_cur (1 + gamma) a Heun step raises its noise to before it evaluates (EDM's
    Algorithm 2: gamma = min(S_churn / N, sqrt 2 - 1) inside [S_tmin, S_tmax], else 0). One home, since
    the sampler and the cost count (``evaluation_sigmas``) must agree on it."""
    gamma = min(s_churn / steps, math.sqrt(2.0) - 1.0) if s_tmin <= t_cur <= s_tmax else 0.0
    return t_cur * (1.0 + gamma)


def evaluation_sigmas(config: SamplerConfig) -> list[float]:
    """The noise levels at which ``config``'s sampler evaluates the slope in one sample, in order:
    one network call (and one guidance term, inside the window) each. Heun: each step at t_hat =
    t_i (1 + gamma), then at t_{i+1} except on the last step (2N - 1); DPM-Solver++(2M): t_i (N)."""
    t = sigma_schedule(config).tolist()
    if config.solver == "dpmpp_2m":
        return t[:-1]
    levels = []
    for t_cur, t_next in zip(t[:-1], t[1:], strict=True):
        levels.append(churned(t_cur, config.steps, config.S_churn, config.S_tmin, config.S_tmax))
        if t_next > 0:
            levels.append(t_next)
    return levels


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


def _slope(denoiser: Denoiser, guide: Guide | None, x: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The guided slope dx/dsigma at (x, sigma), and the unguided D(x; sigma) beside it."""
    term = guide(x, sigma) if guide is not None else None
    denoised = denoiser(x, torch.full((x.shape[0],), sigma, device=x.device, dtype=x.dtype))
    d = (x - denoised) / sigma
    return (d if term is None else d - term()), denoised


def sample_heun(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise: Callable[[], torch.Tensor],
    guide: Guide | None = None,
    callback: StepCallback | None = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Integrate ``x`` (noise at ``sigmas[0]``) down the schedule ``sigmas`` (ending in 0).

    ``noise()`` returns fresh standard normal noise like ``x`` for the churn (the caller decides
    whose generators draw it); ``guide``, if given, adds its term to every slope it acts at.
    """
    t = sigmas.tolist()
    steps = len(t) - 1
    for i in range(steps):
        t_cur, t_next = t[i], t[i + 1]
        t_hat = churned(t_cur, steps, s_churn, s_tmin, s_tmax)
        if t_hat > t_cur:
            x = x + math.sqrt(t_hat**2 - t_cur**2) * s_noise * noise()
        d_cur, denoised = _slope(denoiser, guide, x, t_hat)
        x_next = x + (t_next - t_hat) * d_cur
        if t_next > 0:
            x_next = x + (t_next - t_hat) * 0.5 * (d_cur + _slope(denoiser, guide, x_next, t_next)[0])
        if callback is not None:
            callback({"x": x, "i": i, "sigma": t_cur, "sigma_hat": t_hat, "denoised": denoised})
        x = x_next
    return x


def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    guide: Guide | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): integrate ``x`` down ``sigmas`` (ending in 0) with one denoiser call per step.

    In log noise level lambda = -log sigma the ODE is linear in x and the solver integrates that
    part exactly; the (guided) denoised estimate is extrapolated linearly from this step's and the
    last step's. The first step, without a history, is first order (DDIM); the last one (to
    sigma = 0) returns the denoised estimate, as Heun's final Euler step does. Deterministic: the
    EDM churn has no place in a multistep history, so a config with S_churn > 0 refuses this solver.
    """
    t = sigmas.tolist()
    previous: tuple[torch.Tensor, float] | None = None  # last step's guided denoised and its step length h
    for i in range(len(t) - 1):
        t_cur, t_next = t[i], t[i + 1]
        d, denoised = _slope(denoiser, guide, x, t_cur)
        guided = x - t_cur * d
        if callback is not None:
            callback({"x": x, "i": i, "sigma": t_cur, "sigma_hat": t_cur, "denoised": denoised})
        if t_next == 0:
            x = guided
            break
        h = math.log(t_cur / t_next)
        estimate = guided
        if previous is not None:
            half_ratio = 0.5 * h / previous[1]  # 1 / (2 r), r = h_last / h
            estimate = (1 + half_ratio) * guided - half_ratio * previous[0]
        x = (t_next / t_cur) * x - math.expm1(-h) * estimate
        previous = (guided, h)
    return x


def edm_sample(
    denoiser: Denoiser,
    shape: torch.Size | tuple[int, ...],
    generators: Sequence[torch.Generator],
    config: SamplerConfig,
    guide: Guide | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """One sample per generator, shape ``shape`` (batch first): ``config``'s solver
    (:func:`sample_heun` or :func:`sample_dpmpp_2m`) with the schedule, churn and per-member noise
    that ``config`` and ``generators`` describe."""
    if guide is None and config.guidance > 0:
        raise ValueError("guidance > 0 needs a guide (the discriminator's logit gradient)")
    shape = torch.Size(shape)
    like = torch.empty(0, device=device, dtype=dtype)
    sigmas = sigma_schedule(config)
    x = member_noise(shape, generators, like) * float(sigmas[0])
    if config.solver == "dpmpp_2m":
        return sample_dpmpp_2m(denoiser, x, sigmas, guide=guide, callback=callback)
    return sample_heun(
        denoiser,
        x,
        sigmas,
        noise=lambda: member_noise(shape, generators, like),
        guide=guide,
        callback=callback,
        s_churn=config.S_churn,
        s_tmin=config.S_tmin,
        s_tmax=config.S_tmax,
        s_noise=config.S_noise,
    )
