"""The spherical-harmonic transform: quadrature, round trips, derivatives and the Laplacian."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from climdiff.data.sphere import SphericalHarmonics, alias_free_truncation, fejer_weights, legendre

RADIUS = 6.371e6


def random_coefficients(sht: SphericalHarmonics, seed: int = 0) -> torch.Tensor:
    """A band-limited real field's coefficients: random in the stored triangle, m = 0 real."""
    g = torch.Generator().manual_seed(seed)
    t = sht.truncation + 1
    c = torch.view_as_complex(torch.randn(t, t, 2, generator=g, dtype=torch.float64))
    c[0] = c[0].real.to(c.dtype)
    return c * sht.mask


@pytest.fixture(scope="module")
def sht() -> SphericalHarmonics:
    return SphericalHarmonics(48, 96, radius=RADIUS, lon0=1.875)


@pytest.mark.parametrize("n", [8, 31, 64])
def test_fejer_rule_is_exact_up_to_degree_n_minus_1(n: int) -> None:
    theta = (np.arange(n) + 0.5) * math.pi / n
    mu = np.cos(theta)
    w = fejer_weights(n)
    for degree in range(n):
        exact = (1 - (-1) ** (degree + 1)) / (degree + 1)
        assert w @ mu**degree == pytest.approx(exact, abs=1e-13)
    # degree n is where the rule stops being exact (a test that can fail)
    assert abs(w @ mu ** (n + 1 if n % 2 else n) - (2 / (n + 1 + (0 if n % 2 else 1)))) > 1e-8


def test_legendre_functions_are_orthonormal() -> None:
    n, t = 64, 21
    mu = np.cos((np.arange(n) + 0.5) * math.pi / n)
    p = legendre(mu, t)
    w = fejer_weights(n)
    for m in range(t + 1):
        gram = p[m, :, m:].T @ (w[:, None] * p[m, :, m:])
        np.testing.assert_allclose(gram, np.eye(t + 1 - m), atol=1e-12)


def test_round_trip_of_band_limited_fields(sht: SphericalHarmonics) -> None:
    c = random_coefficients(sht)
    field = sht.synthesis(c)
    assert field.shape == (48, 96)
    torch.testing.assert_close(sht.analysis(field), c, atol=1e-11, rtol=0)
    # and the reverse, for a field that is band-limited
    torch.testing.assert_close(sht.synthesis(sht.analysis(field)), field, atol=1e-11, rtol=0)


def test_synthesis_matches_pointwise_evaluation_with_the_longitude_offset(sht: SphericalHarmonics) -> None:
    c = random_coefficients(sht, seed=1)
    lon = 1.875 + np.arange(96) * 3.75
    torch.testing.assert_close(sht.at_points(c, *sht.point_tables(sht.lat, lon)), sht.synthesis(c), atol=1e-11, rtol=0)


def test_simple_fields_have_the_expected_coefficients() -> None:
    sht = SphericalHarmonics(32, 64)
    mu = torch.as_tensor(sht.mu)[:, None].expand(32, 64)
    c = sht.analysis(torch.ones(32, 64, dtype=torch.float64))
    assert sht.mean(c) == pytest.approx(1.0, abs=1e-14)
    c = sht.analysis(mu)  # mu = sqrt(2/3) Pbar_1^0
    assert c[0, 1].real == pytest.approx(math.sqrt(2 / 3), abs=1e-14)
    assert (c.abs() > 1e-13).sum() == 1


def test_laplacian_eigenvalues_through_gradient_and_divergence(sht: SphericalHarmonics) -> None:
    """div(grad psi) computed on the grid and projected equals -l(l+1)/a^2 psi_lm."""
    psi = random_coefficients(sht, seed=2)
    # grad psi = (1/(a cos) dpsi/dlambda, 1/a dpsi/dlat); times cos(lat): (V, -U) of the winds
    u, v = sht.winds(psi)
    lap = sht.divergence(v, -u)
    torch.testing.assert_close(lap, sht.eigenvalues * psi, atol=1e-12 * float(sht.eigenvalues.abs().max()), rtol=0)
    # the curl of the non-divergent wind is the vorticity, also -l(l+1)/a^2 psi, and its divergence is zero
    scale = float(sht.eigenvalues.abs().max())
    torch.testing.assert_close(sht.curl(u, v), sht.eigenvalues * psi, atol=1e-12 * scale, rtol=0)
    assert float(sht.divergence(u, v).abs().max()) < 1e-12 * float(sht.eigenvalues.abs().max())


def test_solid_body_rotation_winds() -> None:
    """psi = -a u0 mu gives u = u0 cos(lat), v = 0, i.e. U = u0 (1 - mu^2)."""
    sht = SphericalHarmonics(32, 64, radius=RADIUS)
    mu = torch.as_tensor(sht.mu)[:, None].expand(32, 64)
    psi = sht.analysis(-RADIUS * 10.0 * mu)
    u, v = sht.winds(psi)
    torch.testing.assert_close(u, 10.0 * (1 - mu**2), atol=1e-12, rtol=0)
    assert float(v.abs().max()) < 1e-12


def test_flux_divergence_has_zero_mean_and_parseval_holds(sht: SphericalHarmonics) -> None:
    a = sht.synthesis(random_coefficients(sht, seed=3)) ** 2
    b = sht.synthesis(random_coefficients(sht, seed=4)) * torch.as_tensor(1 - sht.mu**2)[:, None]
    assert float(sht.divergence(a, b)[0, 0].abs()) == 0.0
    f, g = random_coefficients(sht, seed=5), random_coefficients(sht, seed=6)
    product = sht.analysis(sht.synthesis(f) * sht.synthesis(g))
    assert float(sht.mean(product)) == pytest.approx(float(sht.mean_product(f, g)), rel=1e-12)


def test_alias_free_truncation_and_bad_truncations_are_refused() -> None:
    assert alias_free_truncation(64, 128) == 21
    with pytest.raises(Exception, match="does not fit"):
        SphericalHarmonics(16, 64, truncation=10)
