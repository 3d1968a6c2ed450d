"""Networks on the sphere: lat-lon padding, longitude equivariance, grid shapes, day-of-year conditioning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from climdiff.data.latlon import LatLonGrid
from climdiff.models import (
    PaddedConv2d,
    build_model,
    check_grid_shape,
    conditions_on_day_of_year,
    config_for,
    model_config,
    pad2d,
)
from tests.test_models import randomized, tiny


def _on_sphere(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """A smooth, asymmetric function of the point (x, y, z) on the unit sphere. Latitudes past a
    pole (|lat| > 90) land on the other meridian by the same formulas, which is what makes it an
    independent reference for the pole padding."""
    lat, lon = np.deg2rad(lat_deg)[:, None], np.deg2rad(lon_deg)[None, :]
    x, y, z = np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat) * np.ones_like(lon)
    return x + 2 * y + 3 * z + x * y - z**2 + 0.5 * x * z


@pytest.mark.parametrize("pad", [1, 2])
def test_latlon_padding_continues_the_sphere_past_the_poles_and_around_the_meridian(pad: int) -> None:
    grid = LatLonGrid(6, 12, lon0=15.0)
    values = torch.from_numpy(_on_sphere(grid.lat, grid.lon))[None, None]
    k_lat, k_lon = np.arange(-pad, grid.n_lat + pad), np.arange(-pad, grid.n_lon + pad)
    extended = _on_sphere(90.0 - (k_lat + 0.5) * grid.dlat, grid.lon0 + k_lon * grid.dlon)
    np.testing.assert_allclose(pad2d(values, pad, "latlon")[0, 0].numpy(), extended, rtol=0, atol=1e-12)


def test_pole_rows_neighbour_the_shifted_rows_not_the_other_pole() -> None:
    """A 3x3 convolution at the northernmost row sees the row across the pole 180 degrees away,
    never the southernmost row (which naive circular padding in latitude would give it)."""
    n_lat, n_lon = 6, 12
    conv = randomized(PaddedConv2d(1, 1, 3, "latlon").double())
    periodic = PaddedConv2d(1, 1, 3, "periodic").double()
    periodic.load_state_dict(conv.state_dict())
    x = torch.randn(1, 1, n_lat, n_lon, dtype=torch.float64)
    bumped_south = x.clone()
    bumped_south[..., -1, :] += 1.0
    assert torch.equal(conv(bumped_south)[..., 0, :], conv(x)[..., 0, :])
    assert not torch.allclose(periodic(bumped_south)[..., 0, :], periodic(x)[..., 0, :])  # the naive wrap

    j = 2
    bumped_north = x.clone()
    bumped_north[..., 0, j] += 1.0
    changed = (conv(bumped_north) - conv(x))[0, 0, 0].abs() > 1e-12
    across = (j + n_lon // 2) % n_lon
    expected = {(j + d) % n_lon for d in (-1, 0, 1)} | {(across + d) % n_lon for d in (-1, 0, 1)}
    assert set(np.flatnonzero(changed.numpy()).tolist()) == expected


def test_latlon_convolution_commutes_with_any_longitude_roll() -> None:
    conv = randomized(PaddedConv2d(2, 3, 5, "latlon").double())
    x = torch.randn(2, 2, 6, 10, dtype=torch.float64)
    out = conv(x)
    for shift in range(1, 10):
        rolled = conv(torch.roll(x, shift, dims=-1))
        torch.testing.assert_close(rolled, torch.roll(out, shift, dims=-1), rtol=1e-12, atol=1e-12)


def test_single_level_latlon_unet_commutes_with_any_longitude_roll() -> None:
    """No downsampling, so every cell shift is a symmetry (with levels, only multiples of
    2**(levels-1) are: :func:`tests.test_models.test_unet_commutes_with_grid_shifts`)."""
    net = tiny("idm", padding="latlon", channel_mult=(1,), attention_levels=(0,))
    x = torch.randn(2, 1, 6, 10, dtype=torch.float64)
    out = net(x, 0.8)
    for shift in (1, 3, 5, 7):
        rolled = net(torch.roll(x, shift, dims=-1), 0.8)
        torch.testing.assert_close(rolled, torch.roll(out, shift, dims=-1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["idm", "vdm", "disc"])
def test_small_preset_runs_on_a_32x64_latlon_grid_and_respects_longitude_rolls(kind: str) -> None:
    torch.manual_seed(0)
    net = randomized(build_model(kind, config_for(kind, "small", padding="latlon")).double(), scale=0.05)
    x = torch.randn(1, 1, 32, 64, dtype=torch.float64)
    cond = torch.randn(1, 2, 32, 64, dtype=torch.float64)
    roll = lambda t: torch.roll(t, 4, dims=-1)  # noqa: E731 - 2**(levels-1) = 4 cells
    args = () if kind == "idm" else (cond,)
    out = net(x, 0.5, *args)
    rolled = net(roll(x), 0.5, *(roll(c) for c in args))
    if kind == "disc":
        assert out.shape == (1,)
        torch.testing.assert_close(rolled, out, rtol=1e-9, atol=1e-9)
    else:
        assert out.shape == x.shape
        torch.testing.assert_close(rolled, roll(out), rtol=1e-9, atol=1e-9)


def test_grid_shape_check_needs_even_longitudes_at_the_coarsest_level() -> None:
    check_grid_shape((32, 64), 3, "latlon")
    check_grid_shape((180, 360), 3, "latlon")
    check_grid_shape((16, 20), 3, "periodic")  # 5 columns at the coarsest level: fine on the square
    with pytest.raises(ValueError, match="even number"):
        check_grid_shape((16, 20), 3, "latlon")
    with pytest.raises(ValueError, match="not divisible"):
        check_grid_shape((180, 360), 4, "latlon")
    net = tiny("idm", padding="latlon")
    with pytest.raises(ValueError, match="even number"):
        net(torch.randn(1, 1, 8, 6, dtype=torch.float64), 1.0)


# ----------------------------------------------------------------------------- day of year


def _inputs(kind: str) -> tuple[torch.Tensor, ...]:
    x = torch.randn(2, 1, 8, 16, dtype=torch.float64)
    return (x,) if kind == "idm" else (x, torch.randn(2, 2, 8, 16, dtype=torch.float64))


def _call(net: nn.Module, kind: str, inputs: tuple[torch.Tensor, ...], doy: torch.Tensor | None) -> torch.Tensor:
    x, *cond = inputs
    return net(x, 0.7, cond[0] if cond else None, doy)


@pytest.mark.parametrize("kind", ["idm", "vdm", "disc"])
def test_day_of_year_conditioning_changes_outputs_and_is_periodic(kind: str) -> None:
    net = tiny(kind, padding="latlon", day_of_year=True)
    inputs = _inputs(kind)
    winter = _call(net, kind, inputs, torch.tensor([0.02, 0.02], dtype=torch.float64))
    summer = _call(net, kind, inputs, torch.tensor([0.52, 0.52], dtype=torch.float64))
    assert not torch.allclose(winter, summer)
    torch.testing.assert_close(  # the year wraps: fraction 1 is fraction 0 of the next year
        _call(net, kind, inputs, torch.tensor(0.0, dtype=torch.float64)),
        _call(net, kind, inputs, torch.tensor(1.0, dtype=torch.float64)),
        rtol=1e-9,
        atol=1e-9,
    )
    per_item = _call(net, kind, inputs, torch.tensor([0.02, 0.52], dtype=torch.float64))
    torch.testing.assert_close(per_item[0], winter[0])
    torch.testing.assert_close(per_item[1], summer[1])


@pytest.mark.parametrize("kind", ["idm", "vdm", "disc"])
def test_doy_is_required_by_conditioned_models_and_refused_by_the_others(kind: str) -> None:
    inputs = _inputs(kind)
    with pytest.raises(ValueError, match="pass doy"):
        _call(tiny(kind, day_of_year=True), kind, inputs, None)
    with pytest.raises(ValueError, match="no day-of-year conditioning"):
        _call(tiny(kind), kind, inputs, torch.tensor(0.3))


@pytest.mark.parametrize("kind", ["idm", "vdm", "disc"])
def test_day_of_year_setting_round_trips_and_old_configurations_build_unconditioned(kind: str) -> None:
    cfg = config_for(kind, "tiny", padding="latlon", day_of_year=True)
    assert conditions_on_day_of_year(cfg)
    assert model_config(build_model(kind, cfg)) == (kind, cfg)
    plain = config_for(kind, "tiny")
    old = dict(plain)  # as written before the option existed
    if "backbone" in old:
        old["backbone"] = {k: v for k, v in old["backbone"].items() if k != "day_of_year"}
    else:
        del old["day_of_year"]
    assert not conditions_on_day_of_year(old)
    torch.manual_seed(5)
    a = build_model(kind, old)
    torch.manual_seed(5)
    b = build_model(kind, plain)
    assert not any("doy" in key for key in a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_guidance_hands_the_date_to_a_conditioned_discriminator() -> None:
    from climdiff.sampling.config import SamplerConfig
    from climdiff.sampling.guidance import discriminator_guide, logit_gradient

    disc = tiny("disc", padding="latlon", day_of_year=True)
    x, cond = _inputs("disc")
    config, sigma = SamplerConfig(guidance=2.0), 0.5
    s = torch.full((2,), sigma, dtype=x.dtype)
    january, july = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 0.5])
    term = discriminator_guide(disc, cond, config, doy=january)(x, sigma)
    assert term is not None
    guided = term()
    scale = config.guidance * sigma
    torch.testing.assert_close(guided, scale * logit_gradient(disc, x, s, cond, config.logit_clip, january))
    assert not torch.allclose(guided, scale * logit_gradient(disc, x, s, cond, config.logit_clip, july))
