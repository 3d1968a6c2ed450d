"""Networks: EDM formulas, padding by grid kind, symmetry of the U-Net, discriminator, presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from climdiff.models import (
    EDMLoss,
    EDMPrecond,
    PaddedConv2d,
    TimeDiscriminator,
    UNet,
    UNetConfig,
    build_model,
    config_for,
    count_parameters,
    disc_config,
    edm_coefficients,
    edm_loss_weight,
    idm_config,
    model_config,
    pad2d,
    vdm_config,
)

SIGMAS = [0.002, 0.05, 0.5, 1.0, 7.0, 80.0]


def randomized(model: nn.Module, seed: int = 0, scale: float = 0.2) -> nn.Module:
    """Overwrite every parameter with noise: freshly built nets have zero output layers, which
    would make symmetry and round-trip tests pass trivially."""
    gen = torch.Generator().manual_seed(seed)
    n = count_parameters(model)
    dtype = next(model.parameters()).dtype
    nn.utils.vector_to_parameters(scale * torch.randn(n, generator=gen, dtype=dtype), model.parameters())
    return model


def tiny(kind: str, padding: str = "periodic", **overrides) -> nn.Module:
    torch.manual_seed(0)
    return randomized(build_model(kind, config_for(kind, "tiny", padding=padding, **overrides)).double())


# ----------------------------------------------------------------------------- EDM formulas


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_preconditioning_coefficients_match_formulas(sigma_data: float) -> None:
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sigma_data)
    for i, s in enumerate(SIGMAS):
        assert c_skip[i].item() == pytest.approx(sigma_data**2 / (s**2 + sigma_data**2), rel=1e-12)
        assert c_out[i].item() == pytest.approx(s * sigma_data / math.sqrt(s**2 + sigma_data**2), rel=1e-12)
        assert c_in[i].item() == pytest.approx(1 / math.sqrt(s**2 + sigma_data**2), rel=1e-12)
        assert c_noise[i].item() == pytest.approx(math.log(s) / 4, rel=1e-12)


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_loss_weight_matches_formula_and_is_inverse_c_out_squared(sigma_data: float) -> None:
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    w = edm_loss_weight(sigma, sigma_data)
    expected = torch.tensor([(s**2 + sigma_data**2) / (s * sigma_data) ** 2 for s in SIGMAS], dtype=torch.float64)
    torch.testing.assert_close(w, expected, rtol=1e-12, atol=0)
    c_out = edm_coefficients(sigma, sigma_data)[1]
    torch.testing.assert_close(w, 1 / c_out**2, rtol=1e-12, atol=0)


def test_edm_loss_is_weighted_per_sample_mse_with_lognormal_sigma() -> None:
    net = tiny("idm")
    y = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    loss_fn = EDMLoss(sigma_data=0.5, P_mean=-1.2, P_std=1.2)
    loss = loss_fn(net, y, generator=torch.Generator().manual_seed(5))
    assert loss.shape == (3,)

    gen = torch.Generator().manual_seed(5)  # replay the same draws by hand
    sigma = (torch.randn(3, 1, 1, 1, generator=gen, dtype=torch.float64) * 1.2 - 1.2).exp()
    noise = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    w = (sigma**2 + 0.25) / (sigma * 0.5) ** 2
    expected = (w * (net(y + sigma * noise, sigma) - y) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)


def test_training_sigma_law_is_lognormal_and_shared_by_the_loss_and_the_training_tasks(turbulence_store) -> None:
    from climdiff.models.edm import training_sigma
    from climdiff.train.config import resolve_config
    from climdiff.train.tasks import make_task

    z = torch.randn(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    log_sigma = training_sigma(z, -1.2, 1.2).log()
    assert float(log_sigma.mean()) == pytest.approx(-1.2, abs=0.02) and float(log_sigma.std()) == pytest.approx(
        1.2, rel=0.02
    )
    drawn = EDMLoss(1.0, -1.2, 1.2).sample_sigma(3, z, torch.Generator().manual_seed(4))
    replay = torch.randn(3, 1, 1, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.equal(drawn, training_sigma(replay, -1.2, 1.2))
    task = make_task(resolve_config("idm", {}, {"preset": "tiny", "P_mean": -1.0, "P_std": 1.5}), turbulence_store)
    one = torch.randn((), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert task.sigma(torch.Generator().manual_seed(9)) == float(training_sigma(one, -1.0, 1.5))


class _Recorder(nn.Module):
    """A backbone that returns a fixed large output and remembers what it was given."""

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        self.seen = (x.clone(), c_noise.clone())
        return 100.0 * torch.ones_like(x[:, :1])


def test_denoiser_tends_to_identity_as_sigma_vanishes() -> None:
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    for net in (EDMPrecond(_Recorder(), sigma_data=0.5), tiny("idm")):
        errors = [(net(x, s) - x).abs().max().item() for s in (1e-2, 1e-4, 1e-6)]
        assert errors[0] > errors[1] > errors[2]
        assert errors[2] < 1e-3


def test_conditioning_channels_are_not_scaled_by_c_in() -> None:
    rec = _Recorder()
    net = EDMPrecond(rec, sigma_data=0.5, cond_channels=2)
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    cond = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    sigma = torch.tensor([0.1, 2.0, 30.0], dtype=torch.float64)
    net(x, sigma, cond)
    seen, c_noise = rec.seen
    c_in = 1 / (sigma**2 + 0.25).sqrt()
    torch.testing.assert_close(seen[:, :1], c_in.reshape(-1, 1, 1, 1) * x, rtol=0, atol=0)
    assert torch.equal(seen[:, 1:], cond)
    torch.testing.assert_close(c_noise, sigma.log() / 4, rtol=0, atol=0)
    with pytest.raises(ValueError, match="conditioning"):
        net(x, sigma)


def test_sigma_accepts_scalar_vector_and_4d() -> None:
    net = tiny("idm")
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    ref = net(x, torch.tensor([0.7, 0.7], dtype=torch.float64))
    assert torch.equal(net(x, 0.7), ref)
    assert torch.equal(net(x, torch.full((2, 1, 1, 1), 0.7, dtype=torch.float64)), ref)


# ----------------------------------------------------------------------------- padding


def _circular_conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross-correlation with wrap-around, written out with np.roll (independent of torch)."""
    k = w.shape[-1]
    out = np.zeros((x.shape[0], w.shape[0], *x.shape[2:]))
    for dy in range(k):
        for dx in range(k):
            shifted = np.roll(x, shift=(k // 2 - dy, k // 2 - dx), axis=(2, 3))
            out += np.einsum("oi,bihw->bohw", w[:, :, dy, dx], shifted)
    return out + b[None, :, None, None]


@pytest.mark.parametrize("kernel", [3, 5])
def test_periodic_padded_conv_is_circular_convolution(kernel: int) -> None:
    torch.manual_seed(1)
    conv = PaddedConv2d(2, 3, kernel, "periodic").double()
    x = torch.randn(2, 2, 6, 10, dtype=torch.float64)
    expected = _circular_conv_reference(x.numpy(), conv.weight.detach().numpy(), conv.bias.detach().numpy())
    np.testing.assert_allclose(conv(x).detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    circular = nn.Conv2d(2, 3, kernel, padding=kernel // 2, padding_mode="circular").double()
    circular.load_state_dict(conv.state_dict())
    torch.testing.assert_close(conv(x), circular(x))


def test_zero_padded_conv_matches_torch_default() -> None:
    conv = PaddedConv2d(2, 3, 3, "zeros").double()
    plain = nn.Conv2d(2, 3, 3, padding=1).double()
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(1, 2, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(conv(x), plain(x))


def test_latlon_padding_crosses_poles_with_180_degree_shift() -> None:
    n_lat, n_lon, p = 5, 8, 2
    x = torch.arange(n_lat * n_lon, dtype=torch.float64).reshape(1, 1, n_lat, n_lon)
    padded = pad2d(x, p, "latlon")[0, 0]
    assert padded.shape == (n_lat + 2 * p, n_lon + 2 * p)
    grid = x[0, 0]
    for j in range(-p, n_lon + p):
        col = j + p
        across = (j + n_lon // 2) % n_lon  # the meridian on the other side of the pole
        for k in range(p):  # k-th row beyond each pole is the k-th row inside it
            assert padded[p - 1 - k, col] == grid[k, across]
            assert padded[p + n_lat + k, col] == grid[n_lat - 1 - k, across]
        for i in range(n_lat):  # interior rows wrap in longitude
            assert padded[p + i, col] == grid[i, j % n_lon]


def test_latlon_padding_rejects_odd_longitudes() -> None:
    with pytest.raises(ValueError, match="even number of longitudes"):
        pad2d(torch.zeros(1, 1, 4, 7), 1, "latlon")


def test_unknown_padding_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown padding"):
        PaddedConv2d(1, 1, 3, "reflect")
    with pytest.raises(ValueError, match="unknown padding"):
        idm_config("tiny", padding="reflect")


# ----------------------------------------------------------------------------- symmetry, shapes


@pytest.mark.parametrize(
    ("padding", "shifts"),
    [("periodic", [(2, 0), (0, 4), (6, 2)]), ("latlon", [(0, 2), (0, 6)])],
)
def test_unet_commutes_with_grid_shifts(padding: str, shifts: list[tuple[int, int]]) -> None:
    """Shifts by multiples of 2**(levels-1) (= 2 for tiny): both axes on the periodic square,
    longitude only on the sphere."""
    net = tiny("idm", padding=padding)
    x = torch.randn(2, 1, 8, 12, dtype=torch.float64)
    out = net(x, 0.8)
    for shift in shifts:
        rolled = net(torch.roll(x, shift, dims=(2, 3)), 0.8)
        torch.testing.assert_close(rolled, torch.roll(out, shift, dims=(2, 3)), rtol=1e-10, atol=1e-10)


def test_periodic_discriminator_is_shift_invariant() -> None:
    disc = tiny("disc")
    x, cond = torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.randn(2, 2, 8, 8, dtype=torch.float64)
    roll = lambda t: torch.roll(t, (2, 4), dims=(2, 3))  # noqa: E731
    torch.testing.assert_close(disc(roll(x), 0.5, roll(cond)), disc(x, 0.5, cond), rtol=1e-10, atol=1e-10)


def test_zero_padding_breaks_shift_equivariance() -> None:
    """Guards the test above against passing for a trivial reason."""
    net = tiny("idm", padding="zeros")
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    assert not torch.allclose(net(torch.roll(x, 2, dims=3), 0.8), torch.roll(net(x, 0.8), 2, dims=3))


def test_unet_rejects_grids_not_divisible_by_downsampling() -> None:
    net = tiny("idm")
    with pytest.raises(ValueError, match="not divisible"):
        net(torch.randn(1, 1, 9, 8, dtype=torch.float64), 1.0)


def test_forward_is_deterministic_and_rebuild_is_reproducible() -> None:
    cfg = idm_config("tiny")
    torch.manual_seed(3)
    a = build_model("idm", cfg)
    torch.manual_seed(3)
    b = build_model("idm", cfg)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    randomized(a)
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(a(x, 0.3), a(x, 0.3))


def test_vdm_and_idm_shapes() -> None:
    x = torch.randn(2, 1, 16, 8, dtype=torch.float64)
    assert tiny("idm")(x, 1.0).shape == x.shape
    assert tiny("vdm")(x, 1.0, torch.randn(2, 2, 16, 8, dtype=torch.float64)).shape == x.shape


def test_untrained_unet_outputs_zero() -> None:
    """DDPM++ init: every residual branch and the output start at zero, so D = c_skip x at first."""
    net = build_model("idm", idm_config("tiny"))
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(net.backbone(x, torch.zeros(2)), torch.zeros_like(x))


# ----------------------------------------------------------------------------- discriminator


def test_discriminator_returns_one_logit_per_sample_with_finite_gradient() -> None:
    disc = tiny("disc")
    candidate = torch.randn(3, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    cond = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    logits = disc(candidate, torch.tensor([0.01, 1.0, 80.0], dtype=torch.float64), cond)
    assert logits.shape == (3,)
    (grad,) = torch.autograd.grad(logits.sum(), candidate)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_discriminator_sees_scaled_changes() -> None:
    """The encoder sees ((x - x^n)/sqrt(delta^2 + sigma^2), x^n, (x^n - x^{n-1})/delta) and
    c_noise = ln(sigma)/4: redoing the forward pass by hand with exactly that input reproduces
    the logits."""
    disc = tiny("disc", tendency_scale=0.2)
    x, cond = torch.randn(1, 1, 8, 8, dtype=torch.float64), torch.randn(1, 2, 8, 8, dtype=torch.float64)
    sigma, delta = 3.0, 0.2
    x_n, x_prev = cond[:, :1], cond[:, 1:]
    inputs = torch.cat([(x - x_n) / math.sqrt(delta**2 + sigma**2), x_n, (x_n - x_prev) / delta], dim=1)
    h, _ = disc.encoder(inputs, disc.embedding(torch.tensor([math.log(sigma) / 4], dtype=torch.float64)))
    pooled = torch.cat([h.mean(dim=(-2, -1)), h.std(dim=(-2, -1))], dim=1)
    manual = disc.head(pooled).squeeze(-1)
    torch.testing.assert_close(disc(x, sigma, cond), manual, rtol=1e-10, atol=1e-10)


def test_discriminator_rejects_wrong_channel_layout() -> None:
    disc = tiny("disc")
    with pytest.raises(ValueError, match="conditioning channels"):
        disc(torch.randn(1, 1, 8, 8, dtype=torch.float64), 1.0, torch.randn(1, 1, 8, 8, dtype=torch.float64))


# ----------------------------------------------------------------------------- presets


def _count(kind: str, preset: str) -> int:
    with torch.device("meta"):
        return count_parameters(build_model(kind, config_for(kind, preset)))


def test_paper_presets_match_published_parameter_counts() -> None:
    assert _count("idm", "paper") == pytest.approx(33.8e6, rel=0.05)
    assert _count("disc", "paper") == pytest.approx(1.7e6, rel=0.05)
    with torch.device("meta"):
        precip = count_parameters(build_model("idm", idm_config("paper", num_blocks=2)))
    assert precip == pytest.approx(25.7e6, rel=0.05)


def test_cpu_presets_have_their_documented_sizes() -> None:
    assert 2_000 <= _count("idm", "tiny") <= 100_000
    assert 500_000 <= _count("idm", "small") <= 2_000_000
    assert _count("disc", "small") < _count("idm", "small")


@pytest.mark.parametrize("kind", ["idm", "disc", "vdm"])
def test_model_config_round_trips_through_build_model(kind: str) -> None:
    scale = {"tendency_scale": 0.3} if kind == "disc" else {"sigma_data": 0.7}
    cfg = config_for(kind, "tiny", channels=2, padding="latlon", **scale)
    model = build_model(kind, cfg)
    assert model_config(model) == (kind, cfg)


def test_build_model_rejects_inconsistent_configurations() -> None:
    cfg = vdm_config("tiny")
    with pytest.raises(ValueError, match="conditioning"):
        build_model("idm", cfg)
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model("gan", cfg)
    with pytest.raises(TypeError):
        build_model("disc", {**disc_config("tiny"), "future_field": 1})
    with pytest.raises(ValueError, match="attention_levels"):
        UNet(UNetConfig(channel_mult=(1, 2), attention_levels=(2,)))
    assert isinstance(build_model("disc", disc_config("tiny")), TimeDiscriminator)
