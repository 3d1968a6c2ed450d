"""Metric functions on cases with known answers and against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from climdiff.evaluate.calibration import (
    crps_ensemble,
    rank_histogram,
    spread_skill_ratio,
)
from climdiff.evaluate.spectra import radial_power_spectrum
from climdiff.evaluate.temporal import autocorrelation

RNG = np.random.default_rng(0)


def square(values: np.ndarray, dims: tuple[str, ...]) -> xr.DataArray:
    return xr.DataArray(values, dims=dims)


def test_autocorrelation_of_an_ar1_process_is_phi_to_the_lag() -> None:
    phi, n = 0.8, 20_000
    x = np.zeros((n, 4, 4))
    noise = RNG.normal(size=(n, 4, 4)) * np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    acf = autocorrelation(square(x, ("time", "y", "x")), lags=[1, 2, 5])
    np.testing.assert_allclose(acf.values, [phi, phi**2, phi**5], atol=0.02)


def test_radial_spectrum_puts_a_mode_in_its_shell_and_obeys_parseval() -> None:
    n = 32
    x = np.arange(n) * 2 * np.pi / n
    mode = np.cos(3 * x)[None, :] * np.ones((n, 1))
    spectrum = radial_power_spectrum(square(mode, ("y", "x")))
    assert spectrum.sel(wavenumber=3) == pytest.approx(0.5) and spectrum.drop_sel(wavenumber=3).sum() == pytest.approx(0, abs=1e-20)
    field = RNG.normal(size=(5, n, n))
    total = radial_power_spectrum(square(field, ("time", "y", "x"))).sum()
    # the shells up to n/2 hold everything but the corners beyond |k| = n/2
    assert 0.7 * (field**2).mean() < total <= (field**2).mean()


def crps_by_integration(members: np.ndarray, obs: float) -> float:
    """The CRPS integral of (F_ens(x) - H(x - obs))^2, computed numerically (independent)."""
    grid = np.linspace(min(members.min(), obs) - 1, max(members.max(), obs) + 1, 200_001)
    cdf = (members[:, None] <= grid[None, :]).mean(axis=0)
    step = (grid >= obs).astype(float)
    return float(np.trapezoid((cdf - step) ** 2, grid))


def test_crps_standard_matches_the_integral_and_fair_differs_by_the_spread_term() -> None:
    members = RNG.normal(size=7)
    obs = 0.3
    ens = xr.DataArray(members, dims=("member",))
    standard = float(crps_ensemble(ens, xr.DataArray(obs)))
    assert standard == pytest.approx(crps_by_integration(members, obs), abs=1e-4)
    fair = float(crps_ensemble(ens, xr.DataArray(obs), fair=True))
    pairs = np.abs(members[:, None] - members[None, :]).sum()
    assert standard - fair == pytest.approx(pairs / (2 * 7 * 6) - pairs / (2 * 49))
    one = xr.DataArray([1.5], dims=("member",))
    assert float(crps_ensemble(one, xr.DataArray(0.5))) == pytest.approx(1.0)


def test_fair_crps_does_not_favour_small_ensembles() -> None:
    """For members and observations from the same N(0,1), the expected fair CRPS is the CRPS of
    N(0,1) against its own draws, E|X-Y| - E|X-X'|/2 = 2/sqrt(pi) - 1/sqrt(pi), whatever M; the
    standard one is larger for small M."""
    truth = 1 / np.sqrt(np.pi)
    obs = xr.DataArray(RNG.normal(size=20_000), dims=("case",))
    for m in (2, 5):
        ens = xr.DataArray(RNG.normal(size=(m, 20_000)), dims=("member", "case"))
        assert float(crps_ensemble(ens, obs, fair=True).mean()) == pytest.approx(truth, rel=0.03)
        assert float(crps_ensemble(ens, obs).mean()) > truth * 1.05


def calibrated(m: int, spread: float = 1.0) -> tuple[xr.DataArray, xr.DataArray]:
    signal = RNG.normal(size=(400, 6, 6))
    obs = xr.DataArray(signal + RNG.normal(size=signal.shape), dims=("time", "y", "x"))
    ens = xr.DataArray(signal + spread * RNG.normal(size=(m, *signal.shape)), dims=("member", "time", "y", "x"))
    return ens, obs


def test_spread_skill_is_one_when_calibrated_and_below_when_underdispersed() -> None:
    ens, obs = calibrated(5)
    assert float(spread_skill_ratio(ens, obs)) == pytest.approx(1.0, abs=0.03)
    narrow, obs = calibrated(5, spread=0.4)
    assert float(spread_skill_ratio(narrow, obs)) < 0.6


def test_rank_histogram_is_flat_when_calibrated_and_ties_are_spread() -> None:
    ens, obs = calibrated(4)
    counts = rank_histogram(ens, obs).values
    assert counts.sum() == obs.size and counts.min() > 0.9 * counts.mean()
    narrow, obs = calibrated(4, spread=0.3)
    u_shaped = rank_histogram(narrow, obs).values
    assert u_shaped[0] + u_shaped[-1] > 2.5 * u_shaped[1:-1].mean()
    dry = xr.DataArray(np.zeros((4, 3000)), dims=("member", "day"))
    ties = rank_histogram(dry, xr.DataArray(np.zeros(3000), dims=("day",))).values
    assert ties.min() > 0.8 * ties.mean()
