"""The EDM sampler and discriminator guidance, on cases with exact answers."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from climdiff.errors import ClimdiffError
from climdiff.sampling.config import SamplerConfig
from climdiff.sampling.edm import (
    edm_sample,
    evaluation_sigmas,
    member_noise,
    sample_dpmpp_2m,
    sample_heun,
    sigma_schedule,
)
from climdiff.sampling.guidance import discriminator_guide, logit_gradient

MU, S = 0.7, 1.3  # target N(MU, S^2) per pixel


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The exact D(x; sigma) = E[x0 | x] for x0 ~ N(MU, S^2), x = x0 + sigma * n."""
    s2 = sigma.view(-1, *([1] * (x.dim() - 1))) ** 2
    return (S**2 * x + s2 * MU) / (S**2 + s2)


def generators(n: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed * 100_000 + i) for i in range(n)]


def test_schedule_follows_edm() -> None:
    cfg = SamplerConfig(steps=5, sigma_min=0.002, sigma_max=80.0, rho=7.0)
    t = sigma_schedule(cfg)
    assert len(t) == 6 and t[0] == pytest.approx(80.0) and t[4] == pytest.approx(0.002) and t[5] == 0
    i = 2
    expected = (80 ** (1 / 7) + i / 4 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert float(t[i]) == pytest.approx(expected)


@pytest.mark.parametrize(("solver", "churn"), [("heun", 0.0), ("heun", 55.0), ("dpmpp_2m", 0.0)])
def test_exact_denoiser_reproduces_the_target_distribution(solver: str, churn: float) -> None:
    cfg = SamplerConfig(steps=40, S_churn=churn, S_noise=1.0, guidance=0.0, solver=solver)
    x = edm_sample(gaussian_denoiser, (4000, 1, 2, 2), generators(4000), cfg, dtype=torch.float64)
    values = x.flatten()
    se = S / math.sqrt(values.numel())
    assert abs(float(values.mean()) - MU) < 5 * se
    assert float(values.std()) == pytest.approx(S, rel=0.03)


class LinearDisc(torch.nn.Module):
    """A 'discriminator' whose logit is k * sum(x): its guidance gradient is k everywhere."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k
        self.calls = 0

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.k * x.flatten(1).sum(1)


def test_dpmpp_2m_converges_at_second_order_to_the_exact_flow() -> None:
    """Without churn the sampler maps each start x_T to x(0) = MU + (x_T - MU) S / sqrt(S^2 +
    sigma_max^2) (the Gaussian's probability-flow ODE, solved exactly). DPM-Solver++(2M) reaches it
    at second order (the error falls about fourfold when the steps double) and, with one denoiser
    call per step, about as closely as Heun's two calls per step do."""
    x_start = member_noise(torch.Size((64, 1, 1, 1)), generators(64), torch.empty(0, dtype=torch.float64))

    def error(steps: int, solver: str) -> float:
        cfg = SamplerConfig(steps=steps, S_churn=0.0, guidance=0.0)
        sigmas = sigma_schedule(cfg)
        start = x_start * float(sigmas[0])
        exact = MU + (start - MU) * S / math.sqrt(S**2 + float(sigmas[0]) ** 2)
        if solver == "heun":
            out = sample_heun(gaussian_denoiser, start, sigmas, noise=lambda: torch.zeros_like(start))
        else:
            out = sample_dpmpp_2m(gaussian_denoiser, start, sigmas)
        return float((out - exact).abs().max())

    coarse, fine, finer = (error(n, "dpmpp_2m") for n in (20, 40, 80))
    assert coarse / fine > 3 and fine / finer > 3
    assert finer < 1.5 * error(80, "heun")


@pytest.mark.parametrize("solver", ["heun", "dpmpp_2m"])
def test_guidance_shifts_samples_as_the_ode_predicts(solver: str) -> None:
    """With a constant guidance gradient k over the whole schedule, the probability-flow ODE of
    the Gaussian, dx/dsigma = sigma (x - MU)/(S^2 + sigma^2) - lambda k sigma, integrates to
    x(0) = MU + S z + lambda k S (sqrt(S^2 + sigma_max^2) - S) for the same start: every sample
    moves by that amount in the gradient's direction and the spread is unchanged."""
    lam, k = 0.05, 0.25
    disc = LinearDisc(k)
    cfg = SamplerConfig(steps=256, S_churn=0.0, guidance=lam, logit_clip=1e9, solver=solver)
    guide = discriminator_guide(disc, torch.zeros(1), cfg)
    g = cfg.sigma_max
    gens = generators(2000, seed=1)
    guided = edm_sample(gaussian_denoiser, (2000, 1, 1, 1), gens, cfg, guide, dtype=torch.float64)
    plain = edm_sample(
        gaussian_denoiser, (2000, 1, 1, 1), generators(2000, seed=1), cfg.replace(guidance=0.0), dtype=torch.float64
    )
    shift = lam * k * S * (math.sqrt(S**2 + g**2) - S)
    # same noise: the difference is the deterministic shift alone
    torch.testing.assert_close(guided - plain, torch.full_like(plain, shift), rtol=0.01, atol=0.01 * shift)
    assert float(guided.std()) == pytest.approx(float(plain.std()), rel=1e-6)


def test_guidance_window_and_zero_lambda_skip_the_discriminator() -> None:
    disc = LinearDisc(1.0)
    cfg = SamplerConfig(steps=10, guidance=0.0)
    edm_sample(gaussian_denoiser, (3, 1, 2, 2), generators(3), cfg, discriminator_guide(disc, torch.zeros(1), cfg))
    assert disc.calls == 0
    windowed = SamplerConfig(steps=10, guidance=1.0, guidance_sigma_min=0.5, guidance_sigma_max=5.0)
    t = sigma_schedule(windowed).tolist()
    gamma = min(windowed.S_churn / windowed.steps, math.sqrt(2) - 1)
    # stage 1 at t_hat = t_i (1 + gamma), stage 2 at t_{i+1} (not on the last step)
    expected = sum(0.5 <= t[i] * (1 + gamma) <= 5.0 for i in range(10)) + sum(0.5 <= t[i + 1] <= 5.0 for i in range(9))
    guide = discriminator_guide(disc, torch.zeros(1), windowed)
    edm_sample(gaussian_denoiser, (3, 1, 2, 2), generators(3), windowed, guide)
    assert disc.calls == expected > 0


class SineDisc(torch.nn.Module):
    """A nonlinear 'discriminator' that notes which thread evaluates it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        self.threads.append(threading.current_thread().name)
        return (torch.sin(x) * sigma[:, None, None, None]).flatten(1).sum(1)


def test_guide_on_an_executor_gives_the_same_samples_from_its_thread() -> None:
    disc = SineDisc()
    cfg = SamplerConfig(steps=6, guidance=0.5)
    guide = discriminator_guide(disc, torch.zeros(1), cfg)
    alone = edm_sample(gaussian_denoiser, (3, 1, 4, 4), generators(3), cfg, guide)
    assert set(disc.threads) == {threading.current_thread().name}
    disc.threads.clear()
    with ThreadPoolExecutor(1, thread_name_prefix="guide") as pool:
        threaded = discriminator_guide(disc, torch.zeros(1), cfg, executor=pool)
        beside = edm_sample(gaussian_denoiser, (3, 1, 4, 4), generators(3), cfg, threaded)
    assert torch.equal(alone, beside)
    assert len(disc.threads) == 2 * cfg.steps - 1 and all(name.startswith("guide") for name in disc.threads)


def test_heun_takes_any_schedule_and_reports_every_step() -> None:
    """k-diffusion's shape: schedule in, x at its first level in, a callback after each step."""
    sigmas = torch.tensor([20.0, 3.0, 0.5, 0.0], dtype=torch.float64)
    gens = generators(4)
    x = member_noise(torch.Size((4, 1, 2, 2)), gens, torch.empty(0, dtype=torch.float64)) * 20.0
    seen = []
    out = sample_heun(gaussian_denoiser, x, sigmas, noise=lambda: torch.zeros_like(x), callback=seen.append)
    assert [step["i"] for step in seen] == [0, 1, 2] and [step["sigma"] for step in seen] == [20.0, 3.0, 0.5]
    assert all(step["sigma_hat"] == step["sigma"] for step in seen)  # no churn
    torch.testing.assert_close(seen[0]["denoised"], gaussian_denoiser(x, torch.full((4,), 20.0, dtype=torch.float64)))
    assert torch.equal(seen[0]["x"], x) and out.shape == x.shape and not torch.equal(out, x)
    # the config's sampler is this function on the config's schedule
    cfg = SamplerConfig(steps=5, guidance=0.0)
    via_config = edm_sample(gaussian_denoiser, (4, 1, 2, 2), generators(4), cfg, dtype=torch.float64)
    gens, like = generators(4), torch.empty(0, dtype=torch.float64)
    schedule = sigma_schedule(cfg)
    start = member_noise(torch.Size((4, 1, 2, 2)), gens, like) * float(schedule[0])
    churn = {"s_churn": cfg.S_churn, "s_tmin": cfg.S_tmin, "s_tmax": cfg.S_tmax, "s_noise": cfg.S_noise}
    direct = sample_heun(
        gaussian_denoiser, start, schedule, noise=lambda: member_noise(start.shape, gens, like), **churn
    )
    assert torch.equal(via_config, direct)


@pytest.mark.parametrize("churn", [0.0, 5.0])
def test_heun_with_a_final_euler_step_calls_the_denoiser_2n_minus_1_times(churn: float) -> None:
    calls = []

    def counting(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        calls.append(float(sigma[0]))
        return gaussian_denoiser(x, sigma)

    cfg = SamplerConfig(steps=7, guidance=0.0, S_churn=churn, S_tmin=0.05, S_tmax=10.0)
    edm_sample(counting, (2, 1, 2, 2), generators(2), cfg)
    assert len(calls) == 13 and min(calls) == pytest.approx(0.002)
    assert calls == pytest.approx(evaluation_sigmas(cfg))
    # churn raises exactly the steps whose level lies in [S_tmin, S_tmax]
    schedule = sigma_schedule(cfg).tolist()[:-1]
    in_range = sum(0.05 <= level <= 10.0 for level in schedule)
    off_schedule = sum(all(abs(call - level) > 1e-5 * level for level in schedule) for call in calls)
    assert in_range > 0 and off_schedule == (in_range if churn else 0)


def test_dpmpp_2m_calls_the_denoiser_once_per_step_and_the_guide_in_its_window() -> None:
    calls = []

    def counting(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        calls.append(float(sigma[0]))
        return gaussian_denoiser(x, sigma)

    disc = LinearDisc(1.0)
    cfg = SamplerConfig(steps=7, S_churn=0.0, guidance=1.0, guidance_sigma_max=5.0, solver="dpmpp_2m")
    seen: list[dict] = []
    edm_sample(
        counting, (2, 1, 2, 2), generators(2), cfg, discriminator_guide(disc, torch.zeros(1), cfg), callback=seen.append
    )
    t = sigma_schedule(cfg).tolist()
    assert calls == pytest.approx(t[:7]) == evaluation_sigmas(cfg) and [step["i"] for step in seen] == list(range(7))
    assert disc.calls == sum(t[i] <= 5.0 for i in range(7)) > 0


def test_a_members_draw_does_not_depend_on_its_batch() -> None:
    cfg = SamplerConfig(steps=12, guidance=0.0)
    alone = edm_sample(gaussian_denoiser, (1, 1, 4, 4), [torch.Generator().manual_seed(42)], cfg)
    others = [torch.Generator().manual_seed(s) for s in (1, 42, 7)]
    batched = edm_sample(gaussian_denoiser, (3, 1, 4, 4), others, cfg)
    assert torch.equal(batched[1:2], alone)


def test_clipped_logit_has_zero_gradient_when_saturated() -> None:
    disc = LinearDisc(10.0)
    x = torch.full((2, 1, 2, 2), 1.0)  # logit 40 > clip
    grad = logit_gradient(disc, x, torch.ones(2), torch.zeros(1), clip=11.5)
    assert torch.equal(grad, torch.zeros_like(x))
    small = logit_gradient(disc, x * 0.01, torch.ones(2), torch.zeros(1), clip=11.5)
    assert torch.allclose(small, torch.full_like(x, 10.0))


def test_guidance_needs_a_guide_and_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="needs a guide"):
        edm_sample(gaussian_denoiser, (1, 1, 2, 2), generators(1), SamplerConfig(steps=3, guidance=1.0))
    with pytest.raises(ClimdiffError, match="steps must be positive"):
        SamplerConfig(steps=0)
    with pytest.raises(ClimdiffError, match="guidance window"):
        SamplerConfig(guidance_sigma_min=2.0, guidance_sigma_max=1.0)
    with pytest.raises(ClimdiffError, match="unknown sampler solver 'euler'"):
        SamplerConfig(solver="euler")
    with pytest.raises(ClimdiffError, match="needs S_churn = 0"):
        SamplerConfig(solver="dpmpp_2m", S_churn=55.0)


def test_settings_written_before_the_solver_existed_keep_their_identity() -> None:
    heun = SamplerConfig()
    assert "solver" not in heun.to_dict() and SamplerConfig.from_dict(heun.to_dict()) == heun
    multistep = SamplerConfig(S_churn=0.0, solver="dpmpp_2m")
    assert multistep.to_dict()["solver"] == "dpmpp_2m" and SamplerConfig.from_dict(multistep.to_dict()) == multistep
