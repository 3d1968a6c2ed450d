"""Metric functions on cases with known answers and against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from climdiff.evaluate.calibration import (
    crps_ensemble,
    ensemble_mean_rmse,
    ensemble_scores,
    rank_histogram,
    spread_skill,
)
from climdiff.evaluate.seasons import CLIMATOLOGY_HARMONICS
from climdiff.evaluate.spectra import radial_power, spectral_log_error
from climdiff.evaluate.temporal import (
    anomalies,
    autocorrelation,
    autocorrelation_of,
    lagged_products,
    seasonal_climatology,
)

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


LAT, LON = np.array([-20.0, -10.0, 0.0, 10.0, 20.0]), np.arange(8) * 45.0
PHI = 0.7


def seasonal_field(days: int, seed: int, start: str = "2001-01-01", shift: float = 0.0, offset: float = 0.0):
    """(time, lat, lon) on the noleap calendar: a seasonal cycle of two harmonics peaking near day
    ``150 + shift`` plus independent unit-variance AR(1) noise (coefficient PHI) in every cell."""
    rng = np.random.default_rng(seed)
    time = xr.date_range(start, periods=days, freq="D", calendar="noleap", use_cftime=True)
    angle = 2 * np.pi * (np.asarray(time.dayofyear) - 150 - shift) / 365
    season = 2.0 * np.cos(angle) + 0.8 * np.cos(2 * angle + 1.0)
    noise = np.empty((days, len(LAT), len(LON)))
    noise[0] = rng.standard_normal(noise.shape[1:])
    for t in range(1, days):
        noise[t] = PHI * noise[t - 1] + np.sqrt(1 - PHI**2) * rng.standard_normal(noise.shape[1:])
    values = 3.0 + offset + season[:, None, None] * np.cos(np.deg2rad(LAT))[None, :, None] + noise
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": time, "lat": LAT, "lon": LON})


def lag1_tolerance(days: int) -> float:
    """Four standard errors of a lag-1 sample autocorrelation of AR(1) noise pooled over the cells
    with cos(lat) weights, sqrt((1 - phi^2) / (days x effective cells)), plus the bias of removing
    a mean, (1 + 4 phi) / days (Kendall)."""
    w = np.cos(np.deg2rad(LAT))
    cells = len(LON) * w.sum() ** 2 / (w**2).sum()
    return 4 * np.sqrt((1 - PHI**2) / (days * cells)) + (1 + 4 * PHI) / days


def test_seasonal_anomalies_by_hand_in_memory_and_chunk_by_chunk() -> None:
    reference, run = seasonal_field(2 * 365, seed=1), seasonal_field(100, seed=2, start="2005-03-01", offset=1.0)
    climatology = seasonal_climatology(reference)
    assert climatology.dims == ("term", "lat", "lon") and climatology.sizes["term"] == 2 * CLIMATOLOGY_HARMONICS + 1

    def design(field: xr.DataArray) -> np.ndarray:
        angle = 2 * np.pi * (field["time"].dt.dayofyear.values - 1) / 365
        return np.stack([np.ones_like(angle)] + [f(k * angle) for k in (1, 2, 3) for f in (np.cos, np.sin)], axis=1)

    coefficients, *_ = np.linalg.lstsq(design(reference), reference.values.reshape(2 * 365, -1), rcond=None)
    departures = run.values - (design(run) @ coefficients).reshape(run.shape)
    by_hand = departures - departures.mean(axis=0)
    np.testing.assert_allclose(anomalies(run, climatology).values, by_hand, atol=1e-10)
    lazy = anomalies(run.chunk(time=30), climatology)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, by_hand, atol=1e-10)
    assert float(abs(anomalies(reference, climatology).mean("time")).max()) < 1e-10  # the fit holds the mean


def test_autocorrelation_from_the_reference_climatology_recovers_phi() -> None:
    """A 3-year reference and a 200-day run whose mean is 5 higher both read the noise's
    persistence; the run's own day-of-year mean would leave nothing to correlate."""
    reference = seasonal_field(3 * 365, seed=3)
    climatology = seasonal_climatology(reference)
    assert float(autocorrelation(reference, [1], climatology)[0]) == pytest.approx(PHI, abs=lag1_tolerance(3 * 365))
    run = seasonal_field(200, seed=4, start="2010-02-01", offset=5.0)
    assert float(autocorrelation(run, [1], climatology)[0]) == pytest.approx(PHI, abs=lag1_tolerance(200))


def test_a_season_out_of_phase_reads_as_persistence() -> None:
    reference = seasonal_field(3 * 365, seed=5)
    climatology = seasonal_climatology(reference)
    in_phase = autocorrelation(seasonal_field(200, seed=6), [1, 10], climatology)
    shifted = autocorrelation(seasonal_field(200, seed=6, shift=365 / 2), [1, 10], climatology)
    assert float(shifted[0]) > float(in_phase[0]) + lag1_tolerance(200)
    assert float(shifted[1]) > 0.5 > float(in_phase[1])


def test_the_seasonal_climatology_needs_a_year_of_reference() -> None:
    with pytest.raises(ValueError, match="at least a year"):
        seasonal_climatology(seasonal_field(300, seed=7))


def test_autocorrelation_by_hand_and_from_block_means_of_the_same_products() -> None:
    """Lag l pairs the first T - l days with the last T - l; the mean square uses all T days;
    members and cells are averaged. Block means of the daily products give the same ratio when
    the tail has no missing products (blocks of equal length)."""
    x = RNG.normal(size=(2, 12, 3, 3))
    field = square(x, ("member", "time", "y", "x"))
    a = x - x.mean()
    by_hand = [np.mean(a[:, :-lag] * a[:, lag:]) / np.mean(a * a) for lag in (1, 3)]
    np.testing.assert_allclose(autocorrelation(field, lags=[1, 3]).values, by_hand)
    products = lagged_products(field, lags=[1, 3])
    assert products.dims == ("lag", "time") and products.sel(lag=3).isnull().sum() == 3
    blocks = products.coarsen(time=4).mean().rename(time="block")
    # the mean of block means weighs the last block's lagged mean like a full block: only lag 0 is exact
    assert float(blocks.sel(lag=0).mean()) == pytest.approx(float(np.mean(a * a)))
    assert autocorrelation_of(blocks, "block").dims == ("lag",)


def test_radial_spectrum_puts_a_mode_in_its_shell_and_obeys_parseval() -> None:
    n = 32
    x = np.arange(n) * 2 * np.pi / n
    mode = np.cos(3 * x)[None, :] * np.ones((n, 1))
    spectrum = radial_power(square(mode, ("y", "x")))
    assert spectrum.sel(wavenumber=3) == pytest.approx(0.5) and spectrum.drop_sel(wavenumber=3).sum() == pytest.approx(
        0, abs=1e-20
    )
    field = RNG.normal(size=(5, n, n))
    total = radial_power(square(field, ("time", "y", "x"))).mean("time").sum()
    # the shells up to n/2 hold everything but the corners beyond |k| = n/2
    assert 0.7 * (field**2).mean() < total <= (field**2).mean()


def test_spectral_log_error_skips_the_mean_and_empty_shells() -> None:
    k = np.arange(5)
    reference = xr.DataArray([9.0, 1.0, 0.0, 1.0, 1.0], dims=("wavenumber",), coords={"wavenumber": k})
    run = xr.DataArray([1.0, 10.0, 5.0, 0.1, 1.0], dims=("wavenumber",), coords={"wavenumber": k})
    assert float(spectral_log_error(run, reference)) == pytest.approx((1 + 1 + 0) / 3)
    assert float(spectral_log_error(reference, reference)) == 0.0


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
    assert float(spread_skill(ensemble_scores(ens, obs), "time", 5)) == pytest.approx(1.0, abs=0.03)
    narrow, obs = calibrated(5, spread=0.4)
    assert float(spread_skill(ensemble_scores(narrow, obs), "time", 5)) < 0.6


def test_ensemble_scores_are_area_means_per_sample() -> None:
    ens, obs = calibrated(3)
    scores = ensemble_scores(ens, obs)
    assert scores["crps"].dims == ("time",)
    np.testing.assert_allclose(scores["crps"].values, crps_ensemble(ens, obs).mean(["y", "x"]).values)
    np.testing.assert_allclose(scores["variance"].values, ens.values.var(axis=0, ddof=1).mean(axis=(1, 2)))
    rmse = np.sqrt(((ens.values.mean(axis=0) - obs.values) ** 2).mean())
    assert float(ensemble_mean_rmse(scores, "time")) == pytest.approx(rmse)


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
