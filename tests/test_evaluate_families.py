"""Metric families (bias, zonal spectra, Hovmoller, extremes, wet days, EOFs, stability, bootstrap)
on cases with known answers and against independent implementations (scipy, numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from climdiff.evaluate.bias import area_mean_moments, bias_map, mean_absolute_bias, mean_and_std, std_of_moments
from climdiff.evaluate.bootstrap import bootstrap_ci
from climdiff.evaluate.core import Settings, map_for_plot
from climdiff.evaluate.eofs import explained_variance_of_days, gram_of_days, leading_eofs
from climdiff.evaluate.extremes import (
    exceedance_statistics,
    exceedance_summaries,
    exceedance_threshold,
    value_histogram,
    waiting_times,
)
from climdiff.evaluate.hovmoller import hovmoller, row_wasserstein
from climdiff.evaluate.sources import Source
from climdiff.evaluate.spectra import carrying_wavenumbers, spectral_max_relative_error, zonal_power_spectrum
from climdiff.evaluate.stability import (
    annual_mean_series,
    linear_drift,
    northern_hemisphere,
    seasonal_cycle,
    seasonal_headlines,
    stability_family,
)
from climdiff.evaluate.weights import area_mean
from climdiff.evaluate.wetdays import wet_day_indicators, wet_day_maps, wet_day_statistics

RNG = np.random.default_rng(1)
LAT = np.array([-75.0, -45.0, -15.0, -5.0, 5.0, 15.0, 45.0, 75.0])


def days(n: int, calendar: str = "noleap", start: str = "2001-01-01") -> xr.CFTimeIndex:
    return xr.date_range(start, periods=n, freq="D", calendar=calendar, use_cftime=True)


def latlon(values: np.ndarray, dims: tuple[str, ...], nlon: int = 12, **coords: object) -> xr.DataArray:
    lon = np.arange(nlon) * 360.0 / nlon
    return xr.DataArray(values, dims=dims, coords={"lat": LAT, "lon": lon, **coords})


def cos_weights(shape_lat_lon: tuple[int, int]) -> np.ndarray:
    return np.cos(np.deg2rad(LAT))[:, None] * np.ones(shape_lat_lon)


# --- bias ---------------------------------------------------------------------------------------


def test_area_mean_weights_by_cos_latitude_in_either_order_and_keeps_gaps() -> None:
    b = RNG.normal(size=(6, len(LAT), 12))
    field = latlon(b, ("time", "lat", "lon"))
    expected = np.average(b, axis=(1, 2), weights=np.broadcast_to(cos_weights((len(LAT), 12)), b.shape[1:]))
    np.testing.assert_allclose(area_mean(field).values, expected)
    np.testing.assert_allclose(area_mean(field.isel(lat=slice(None, None, -1))).values, expected)
    assert np.isnan(area_mean(field.where(field.time != 2)).values[2])
    flipped = field.isel(lat=slice(None, None, -1), time=0)
    assert map_for_plot(flipped) == field.isel(time=0).values.tolist()  # rows south to north


def test_mean_and_std_from_raw_moments_are_those_of_all_cell_days() -> None:
    x = RNG.normal(2.0, 3.0, size=(2, 40, 4, 5))
    field = xr.DataArray(x, dims=("member", "time", "y", "x"))
    mean, std = mean_and_std(field, field**2).values
    assert mean == pytest.approx(x.mean()) and std == pytest.approx(x.std())
    blocks = xr.Dataset({"m1": field, "m2": field**2}).mean("member").coarsen(time=10).mean()
    np.testing.assert_allclose(mean_and_std(blocks["m1"], blocks["m2"]).values, [x.mean(), x.std()])


def test_area_mean_std_is_the_spread_of_each_members_daily_area_mean() -> None:
    x = RNG.normal(2.0, 3.0, size=(2, 40, len(LAT), 12)) + RNG.normal(size=(2, 40, 1, 1))
    moments = area_mean_moments(latlon(x, ("member", "time", "lat", "lon")))
    daily = np.average(x, axis=(2, 3), weights=np.broadcast_to(cos_weights((len(LAT), 12)), x.shape[2:]))
    std = std_of_moments(moments["a1"].mean(), moments["a2"].mean())
    assert float(std) == pytest.approx(daily.std())  # each member's deviations, not those of the member mean
    assert float(std) > daily.mean(axis=0).std()


def test_bias_map_is_the_long_run_difference_and_mean_absolute_bias_weights_it() -> None:
    reference = RNG.normal(size=(20, len(LAT), 12))
    pattern = np.sin(np.deg2rad(LAT))[:, None] * np.cos(np.deg2rad(30 * np.arange(12)))[None, :] + 0.1
    # each member sees the reference days in another order: same long-run mean, plus the pattern
    members = np.stack([reference[RNG.permutation(20)] + pattern for _ in range(3)])
    run = latlon(members, ("member", "time", "lat", "lon"))
    ref = latlon(reference[:15], ("time", "lat", "lon"))  # another length: no alignment in time
    bias = bias_map(run, latlon(reference, ("time", "lat", "lon")))
    assert bias.dims == ("lat", "lon")
    np.testing.assert_allclose(bias.values, pattern, atol=1e-12)
    expected = np.average(np.abs(pattern), weights=cos_weights(pattern.shape))
    assert float(mean_absolute_bias(run, latlon(reference, ("time", "lat", "lon")))) == pytest.approx(expected)
    assert bias_map(run, ref).dims == ("lat", "lon")


# --- zonal spectrum -----------------------------------------------------------------------------


def test_zonal_spectrum_puts_a_wave_at_its_wavenumber_and_weights_latitudes() -> None:
    nlon = 16
    lon = np.deg2rad(np.arange(nlon) * 360.0 / nlon)
    amplitude = 1 + np.abs(LAT) / 30  # differs between the latitudes of a band
    wave = amplitude[:, None] * np.cos(3 * lon + 0.4)[None, :] + 2.0
    field = latlon(np.broadcast_to(wave, (4, *wave.shape)).copy(), ("time", "lat", "lon"), nlon=nlon)
    spectrum = zonal_power_spectrum(field, lat_bands=[(-90, -30), (-30, 30), (30, 90)])
    assert spectrum.dims == ("band", "wavenumber") and spectrum.sizes["wavenumber"] == nlon // 2 + 1
    for band, (lo, hi) in zip(spectrum["band"].values, [(-90, -30), (-30, 30), (30, 90)], strict=True):
        inside = (LAT >= lo) & (LAT <= hi)
        expected = np.average(amplitude[inside] ** 2 / 2, weights=np.cos(np.deg2rad(LAT[inside])))
        row = spectrum.sel(band=band)
        assert float(row.sel(wavenumber=3)) == pytest.approx(expected)
        assert float(row.sel(wavenumber=0)) == pytest.approx(4.0)
        assert float(row.drop_sel(wavenumber=[0, 3]).sum()) == pytest.approx(0, abs=1e-20)


def test_max_relative_error_counts_the_wavenumbers_carrying_one_percent_of_the_variance() -> None:
    k = np.arange(6)
    reference = xr.DataArray([9.0, 50.0, 49.5, 0.5, 0.0, 0.0], dims="wavenumber", coords={"wavenumber": k})
    assert carrying_wavenumbers(reference).values.tolist() == [False, True, True, False, False, False]
    run = reference * xr.DataArray([3.0, 1.05, 0.8, 3.0, 1.0, 1.0], dims="wavenumber", coords={"wavenumber": k})
    assert float(spectral_max_relative_error(run, reference)) == pytest.approx(0.2)  # k = 2; not k = 0 or 3
    assert float(spectral_max_relative_error(reference, reference)) == 0.0


@pytest.mark.parametrize("nlon", [12, 15])
def test_zonal_spectrum_obeys_parseval_in_each_band(nlon: int) -> None:
    values = RNG.normal(size=(2, 3, len(LAT), nlon))
    spectrum = zonal_power_spectrum(latlon(values, ("member", "time", "lat", "lon"), nlon=nlon), lat_bands=[(-20, 20)])
    inside = np.abs(LAT) <= 20
    mean_square = (values[:, :, inside] ** 2).mean(axis=(0, 1, 3))
    expected = np.average(mean_square, weights=np.cos(np.deg2rad(LAT[inside])))
    assert float(spectrum.sum()) == pytest.approx(expected)


# --- Hovmoller ----------------------------------------------------------------------------------


def test_hovmoller_averages_over_y_or_the_equatorial_band() -> None:
    g = RNG.normal(size=(5, 8))
    h = np.sin(2 * np.pi * np.arange(6) / 6)  # zero mean over y
    square = xr.DataArray(g[:, None, :] + h[None, :, None], dims=("time", "y", "x"))
    np.testing.assert_allclose(hovmoller(square).transpose("time", "x").values, g, atol=1e-12)
    field = latlon(RNG.normal(size=(5, len(LAT), 12)), ("time", "lat", "lon"))
    for band, inside in [(None, np.abs(LAT) <= 10), ((-16, 10), (LAT >= -16) & (LAT <= 10))]:
        hov = hovmoller(field, band=band)
        expected = np.average(field.values[:, inside], axis=1, weights=np.cos(np.deg2rad(LAT[inside])))
        assert hov.dims == ("time", "lon")
        np.testing.assert_allclose(hov.values, expected)


def test_row_wasserstein_matches_scipy_and_ignores_positions() -> None:
    hov = xr.DataArray(RNG.gamma(0.5, size=(2, 7, 10)), dims=("member", "time", "x"), coords={"time": days(7)})
    distance = row_wasserstein(hov)
    assert distance.dims == ("member", "time") and distance.sizes["time"] == 6
    assert list(distance["time"].values) == list(hov["time"].values[1:])
    for m in range(2):
        for t in range(6):
            expected = stats.wasserstein_distance(hov.values[m, t], hov.values[m, t + 1])
            assert float(distance[m, t]) == pytest.approx(expected)
    # a travelling wave: each row is a shift of the last, so the distributions are equal
    x = 2 * np.pi * np.arange(12) / 12
    wave = xr.DataArray(np.stack([np.cos(x - k * 2 * np.pi / 12) for k in range(5)]), dims=("time", "x"))
    np.testing.assert_allclose(row_wasserstein(wave).values, 0, atol=1e-12)
    lifted = xr.DataArray(np.stack([np.cos(x) + 0.3 * k for k in range(5)]), dims=("time", "x"))
    np.testing.assert_allclose(row_wasserstein(lifted).values, 0.3)


# --- extremes -----------------------------------------------------------------------------------


def test_exceedance_threshold_is_the_local_quantile_over_time_and_members() -> None:
    values = RNG.gamma(0.7, size=(3, 50, 2, 4))
    field = xr.DataArray(values, dims=("member", "time", "y", "x"))
    threshold = exceedance_threshold(field, q=0.9)
    assert threshold.dims == ("y", "x")
    np.testing.assert_allclose(threshold.values, np.quantile(values.reshape(150, 2, 4), 0.9, axis=0))


def test_waiting_times_by_hand() -> None:
    series = np.zeros((2, 12, 1, 3))
    series[0, [0, 3, 6, 9], 0, 0] = 5  # every 3 days: waits 3, 3, 3
    series[0, [1, 8], 0, 1] = 5  # one wait of 7
    series[1, [2, 4], 0, 0] = 5  # member 1: one wait of 2; cell 2 never exceeds
    series[1, [11], 0, 1] = 5  # a single exceedance: no wait
    field = xr.DataArray(series, dims=("member", "time", "y", "x"), coords={"time": days(12, start="2001-02-20")})
    waits = waiting_times(field, 1.0)
    assert waits.dims == ("event",) and waits.attrs["units"] == "days"
    assert sorted(waits.values) == [2, 3, 3, 3, 7]
    # a missing day in the record lengthens the wait across it (times, not positions, count)
    gappy = field.isel(time=[0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11])
    gappy = gappy.copy(data=np.delete(series, 11, axis=1))  # same exceedance positions, shifted times
    assert sorted(waiting_times(gappy, 1.0).values) == [3, 3, 3, 4, 8]
    assert waiting_times(field, 10.0).size == 0


def test_value_histogram_matches_numpy_and_keeps_out_of_range_values_in_the_total() -> None:
    values = RNG.gamma(0.8, size=(40, 3, 4))
    field = xr.DataArray(values, dims=("time", "y", "x"))
    edges = np.array([0, 0.1, 0.5, 1, 2, 4, values.max() + 1])
    density = value_histogram(field, edges)
    np.testing.assert_allclose(density.values, np.histogram(values, edges, density=True)[0])
    narrow = value_histogram(field, edges[:4])
    assert float((narrow * np.diff(edges[:4])).sum()) == pytest.approx((values < 1).mean())
    weighted = latlon(RNG.gamma(0.8, size=(10, len(LAT), 12)), ("time", "lat", "lon"))
    w = np.broadcast_to(cos_weights((len(LAT), 12)), weighted.shape)
    top = float(weighted.max()) + 1
    expected = np.histogram(weighted.values, [0, 0.5, 1, top], weights=w, density=True)[0]
    np.testing.assert_allclose(value_histogram(weighted, [0, 0.5, 1, top]).values, expected)


def test_wet_day_frequency_and_intensity_per_cell_and_area_weighted() -> None:
    values = np.zeros((2, 10, 2, 2))
    values[:, :3, 0, 0] = 1.0  # exactly at the threshold counts as wet
    values[0, :, 1, 1] = 7.0
    values[1, :5, 0, 1] = 0.999
    values[1, 0, 1, 1] = np.nan  # a missing value is neither wet nor dry
    maps = wet_day_maps(xr.DataArray(values, dims=("member", "time", "y", "x")), 1.0)
    assert maps.dims == ("quantity", "y", "x")
    np.testing.assert_allclose(maps.sel(quantity="frequency").values, [[0.3, 0.0], [0.0, 10 / 19]])
    np.testing.assert_allclose(maps.sel(quantity="intensity").values, [[1.0, np.nan], [np.nan, 7.0]])
    # area-weighted and pooled: sum(w x wet) / sum(w wet), from the daily area means
    rain = RNG.gamma(0.5, 4.0, size=(30, len(LAT), 12))
    field = latlon(rain, ("time", "lat", "lon"))
    daily = wet_day_indicators(field, 1.0).map(area_mean)
    frequency, intensity = wet_day_statistics(daily, "time").values
    w = np.broadcast_to(cos_weights((len(LAT), 12)), rain.shape)
    assert frequency == pytest.approx(np.average(rain >= 1.0, weights=w))
    assert intensity == pytest.approx(np.sum(w * rain * (rain >= 1.0)) / np.sum(w * (rain >= 1.0)))


def test_exceedance_frequency_and_persistence_by_hand() -> None:
    values = np.zeros((8, 1, 2))
    values[[1, 2, 3, 6], 0, 0] = 1.0  # three pairs of consecutive exceedances in four
    values[[0, 7], 0, 1] = 1.0  # none: day 7 has no tomorrow
    summaries = exceedance_summaries(xr.DataArray(values, dims=("time", "y", "x")), 0.5)
    frequency, persistence = exceedance_statistics(summaries).values
    assert frequency == pytest.approx(6 / 16) and persistence == pytest.approx((2 / 16) / (6 / 16))


# --- EOFs ---------------------------------------------------------------------------------------


def orthogonal_series(n: int, count: int) -> np.ndarray:
    """``count`` zero-mean, mutually orthogonal series of unit variance (independent by construction)."""
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), RNG.normal(size=(n, count))]))
    return q[:, 1:].T * np.sqrt(n)


def test_eofs_recover_two_known_orthogonal_patterns() -> None:
    n = 16
    grid = 2 * np.pi * np.arange(n) / n
    p1 = np.cos(grid)[None, :] * np.ones((n, 1))  # loadings +1 and -1 tie: first cell decides
    p2 = np.sin(2 * grid)[:, None] * np.ones((1, n))
    a, b = orthogonal_series(60, 2)
    values = 2 * a[:, None, None] * p1 + b[:, None, None] * p2 + 5.0
    result = leading_eofs(xr.DataArray(values, dims=("time", "y", "x")), n=3)
    assert result["eof"].dims == ("mode", "y", "x") and result["pcs"].dims == ("mode", "time")
    np.testing.assert_allclose(result["explained_variance"].values, [0.8, 0.2, 0], atol=1e-10)
    rms = np.sqrt(0.5)  # area-weighted rms of both patterns
    for k, (pattern, pc) in enumerate([(p1, 2 * a), (p2, b)]):
        eof = result["eof"][k].values
        sign = np.sign(np.sum(eof * pattern))
        np.testing.assert_allclose(eof, sign * pattern / rms, atol=1e-8)
        np.testing.assert_allclose(result["pcs"][k].values, sign * pc * rms, atol=1e-8)
        flat = eof.ravel()
        assert flat[np.argmax(np.abs(flat) >= np.abs(flat).max() * (1 - 1e-6))] > 0
    reconstruction = (result["pcs"][:2] * result["eof"][:2]).sum("mode")
    np.testing.assert_allclose(reconstruction.transpose("time", "y", "x").values, values - 5.0, atol=1e-8)


def test_eofs_match_the_eigenvectors_of_the_weighted_covariance() -> None:
    mixing = RNG.normal(size=(4, len(LAT) * 6))
    samples = RNG.normal(size=(2, 30, 4)) * [3, 2, 1, 0.5] @ mixing + 0.1 * RNG.normal(size=(2, 30, len(LAT) * 6))
    field = latlon(samples.reshape(2, 30, len(LAT), 6), ("member", "time", "lat", "lon"), nlon=6)
    result = leading_eofs(field, n=3)
    assert result["pcs"].dims == ("mode", "member", "time")
    w = cos_weights((len(LAT), 6)).ravel()
    w = w / w.sum()
    x = samples.reshape(60, -1)
    xw = (x - x.mean(axis=0)) * np.sqrt(w)
    eigenvalues, vectors = np.linalg.eigh(xw.T @ xw)
    order = np.argsort(eigenvalues)[::-1][:3]
    np.testing.assert_allclose(result["explained_variance"].values, eigenvalues[order] / eigenvalues.sum())
    for k, column in enumerate(order):
        v = vectors[:, column]
        v = v * np.sign(v[np.argmax(np.abs(v))])
        np.testing.assert_allclose(result["eof"][k].values.ravel(), v / np.sqrt(w), atol=1e-7)
        np.testing.assert_allclose(result["pcs"][k].values.ravel(), xw @ v, atol=1e-7)


# --- stability ----------------------------------------------------------------------------------


def test_annual_mean_series_drops_the_season_the_pattern_and_incomplete_years() -> None:
    n = 3 * 365 + 40
    time = days(n)
    doy = np.asarray(time.dayofyear)
    level = np.array([1.0, 2.5, -0.5, 9.0])[np.asarray(time.year) - 2001]
    season = np.sin(2 * np.pi * (doy - 1) / 365)  # sums to zero over a noleap year
    pattern = np.cos(np.deg2rad(30 * np.arange(12)))  # zero mean along each latitude circle
    values = (level + season)[:, None, None] + pattern[None, None, :] * np.ones((1, len(LAT), 1))
    members = np.stack([values, values + 1])
    series = annual_mean_series(latlon(members, ("member", "time", "lat", "lon"), time=time))
    assert series.dims == ("member", "year") and list(series["year"].values) == [2001, 2002, 2003]
    np.testing.assert_allclose(series.values, [[1.0, 2.5, -0.5], [2.0, 3.5, 0.5]], atol=1e-12)
    everything = annual_mean_series(latlon(values, ("time", "lat", "lon"), time=time), complete_years=False)
    assert everything.sizes["year"] == 4


def test_linear_drift_is_the_least_squares_slope_per_century() -> None:
    years = np.arange(1980, 2030)
    values = 0.02 * (years - 1980) + RNG.normal(scale=0.1, size=(2, len(years)))
    series = xr.DataArray(values, dims=("member", "year"), coords={"year": years})
    drift = linear_drift(series)
    assert drift.dims == ("member",)
    for m in range(2):
        assert float(drift[m]) == pytest.approx(100 * stats.linregress(years, values[m]).slope)


@pytest.mark.parametrize("calendar, length", [("noleap", 365), ("360_day", 360)])
def test_seasonal_cycle_amplitude_and_phase(calendar: str, length: int) -> None:
    time = days(3 * length, calendar=calendar)
    doy = np.asarray(time.dayofyear)
    peaks = [101.0, 250.5]
    members = np.stack(
        [3 + 2 * np.cos(2 * np.pi * (doy - peak) / length) + 0.5 * np.sin(4 * np.pi * doy / length) for peak in peaks]
    )
    field = np.broadcast_to(members[:, :, None, None], (2, len(doy), 2, 3))
    cycle = seasonal_cycle(xr.DataArray(field, dims=("member", "time", "y", "x"), coords={"time": time}))
    assert cycle["phase"].dims == ("member",)
    np.testing.assert_allclose(cycle["amplitude"].values, 2.0, atol=1e-9)
    np.testing.assert_allclose(cycle["phase"].values, peaks, atol=1e-7)


def seasonal_source(label: str, years: int, level, amplitude, peak, seed: int) -> Source:
    """A noleap lat-lon source in year y = 0, 1, ... (functions of the year) whose northern rows
    hold level(y) + amplitude(y) cos(2 pi (d - peak(y)) / 365) and whose southern rows the
    opposite season (the global mean has none), plus noise and a pattern with no area mean."""
    time = days(years * 365)
    year = np.asarray(time.year) - 2001
    doy = np.asarray(time.dayofyear)
    season = amplitude(year) * np.cos(2 * np.pi * (doy - peak(year)) / 365)
    noise = np.random.default_rng(seed).normal(scale=0.1, size=season.shape)
    pattern = np.cos(np.deg2rad(30 * np.arange(12)))[None, None, :] * np.ones((1, len(LAT), 1))
    values = (level(year) + noise)[:, None, None] + season[:, None, None] * np.sign(LAT)[None, :, None] + pattern
    field = latlon(values[None], ("member", "time", "lat", "lon"), time=time)
    return Source(label, Path(label), "emulation", field.assign_attrs(units="mm day-1"), "noleap")


def test_seasonal_cycle_per_decade_and_drift_in_percent_of_the_reference_mean() -> None:
    """A 24-year run whose cycle grows from 2 to 3 and moves from day 100 to day 130 after year
    12, and whose level rises by 1 per century from the reference's 5 (20 % per century)."""
    reference = seasonal_source("reference", 3, lambda y: 5.0, lambda y: 2.0, lambda y: 100.0, seed=1)
    run = seasonal_source(
        "run",
        24,
        lambda y: 5.0 + 0.01 * y,
        lambda y: np.where(y < 12, 2.0, 3.0),
        lambda y: np.where(y < 12, 100.0, 130.0),
        seed=2,
    )
    result = stability_family(reference, [run], Settings(n_resamples=100))
    found = {(h.metric, h.source): h for h in result.headlines}
    expected = {"first_decade": (2.0, 100.0), "last_decade": (3.0, 130.0)}
    for span, (amplitude, phase) in expected.items():
        for metric, truth, tolerance in (("amplitude", amplitude, 0.02), ("phase", phase, 0.5)):
            entry = found[(f"seasonal_{metric}_{span}", "run")]
            assert entry.value == pytest.approx(truth, abs=tolerance)
            assert entry.low < truth < entry.high, (span, metric)
    assert ("seasonal_amplitude_first_decade", "reference") not in found  # 3 years: the whole record only
    assert found[("seasonal_phase", "reference")].value == pytest.approx(100.0, abs=1.0)
    halves = (2.0 * np.exp(2j * np.pi * 100 / 365) + 3.0 * np.exp(2j * np.pi * 130 / 365)) / 2  # as phasors
    assert found[("seasonal_amplitude", "run")].value == pytest.approx(abs(halves), abs=0.02)
    # the noise's standard error of a 24-year slope: 100 x 0.1 / sqrt(365 x sum (y - mean y)^2) = 0.015 per century
    assert found[("drift_per_century", "run")].value == pytest.approx(1.0, abs=0.06)
    drift = found[("drift_percent_per_century", "run")]
    assert drift.units == "%" and drift.value == pytest.approx(20.0, abs=1.2)
    assert drift.low < drift.value < drift.high < drift.low + 2.4


def test_seasonal_phase_intervals_stay_whole_across_new_year() -> None:
    """A cycle peaking on day 2 has resamples peaking in late December: the interval holds day 2
    and is not the whole year."""
    run = seasonal_source("run", 6, lambda y: 5.0, lambda y: 1.0, lambda y: 2.0 + np.where(y % 2, 3.0, -3.0), seed=3)
    northern = area_mean(northern_hemisphere(run.field[0]))
    phase = next(h for h in seasonal_headlines("run", northern, Settings(), "") if "phase" in h.metric)
    assert phase.low < 2.0 < phase.high and phase.high - phase.low < 30


# --- bootstrap ----------------------------------------------------------------------------------


def mean_over(dim: str):  # noqa: ANN201 - a small statistic factory
    return lambda data: data.mean(dim)


def test_bootstrap_bca_interval_of_a_mean_has_its_nominal_coverage() -> None:
    """500 independent series of 30 gamma(4) block values, true mean 4, bootstrapped in one
    vectorised call (one statistic element per series). If the intervals cover 95 % of the time,
    the count of covering ones is binomial with standard error sqrt(0.95 * 0.05 / 500) = 0.0097;
    BCa's coverage error at n = 30 is a point or so (Efron & Tibshirani 1993, ch. 14), so 0.92 to
    0.98 allows both with three standard errors. An interval that ignored the skew or the
    sampling variance (e.g. the t quantile replaced by 1) would fall below."""
    data = xr.DataArray(np.random.default_rng(7).gamma(4.0, size=(500, 30)), dims=("series", "block"))
    interval = bootstrap_ci(mean_over("block"), data, "block", n_resamples=999, seed=1)
    assert (interval["method"] == "BCa").all()
    covered = float(((interval["low"] <= 4.0) & (4.0 <= interval["high"])).mean())
    assert 0.92 <= covered <= 0.98
    width = float((interval["high"] - interval["low"]).mean())
    assert width == pytest.approx(2 * 1.96 * 2.0 / np.sqrt(30), rel=0.1)  # sd of gamma(4) is 2


def test_bootstrap_is_deterministic_keeps_dims_and_gives_the_estimate() -> None:
    data = xr.DataArray(RNG.normal(size=(60, 3)), dims=("time", "station"))
    first = bootstrap_ci(mean_over("time"), data, "time", seed=3)
    again = bootstrap_ci(mean_over("time"), data, "time", seed=3)
    other = bootstrap_ci(mean_over("time"), data, "time", seed=4)
    xr.testing.assert_identical(first, again)
    assert not np.allclose(first["low"].values, other["low"].values)
    assert first["low"].dims == ("station",)
    np.testing.assert_allclose(first["estimate"].values, data.values.mean(axis=0))
    assert (first["low"] < first["estimate"]).all() and (first["estimate"] < first["high"]).all()


def test_bootstrap_falls_back_to_the_basic_interval_where_bca_cannot_be_formed() -> None:
    """A constant element has a jackknife without spread: no BCa, the basic interval is the point."""
    data = xr.DataArray(np.stack([np.full(20, 3.0), RNG.normal(size=20)], axis=1), dims=("block", "column"))
    interval = bootstrap_ci(mean_over("block"), data, "block")
    assert interval["method"].values.tolist() == ["basic", "BCa"]
    assert float(interval["low"][0]) == float(interval["high"][0]) == 3.0
    with pytest.raises(ValueError, match="at least two"):
        bootstrap_ci(mean_over("block"), data.isel(block=[0]), "block")


# --- dask ---------------------------------------------------------------------------------------


def test_dask_backed_inputs_give_the_in_memory_results() -> None:
    values = RNG.gamma(0.6, size=(2, 30, len(LAT), 12))
    field = latlon(values, ("member", "time", "lat", "lon"), time=days(30))
    lazy = field.chunk({"member": 1, "time": 10, "lat": 4, "lon": 6})
    lazy_bias = mean_absolute_bias(lazy, lazy * 1.1)
    lazy_spectrum = zonal_power_spectrum(lazy)
    lazy_distance = row_wasserstein(hovmoller(lazy, band=(-50, 50)))
    assert lazy_bias.chunks is not None and lazy_spectrum.chunks is not None and lazy_distance.chunks is not None
    assert float(lazy_bias) == pytest.approx(float(mean_absolute_bias(field, field * 1.1)))
    xr.testing.assert_allclose(lazy_spectrum.compute(), zonal_power_spectrum(field))
    xr.testing.assert_allclose(lazy_distance.compute(), row_wasserstein(hovmoller(field, band=(-50, 50))))
    threshold = exceedance_threshold(field)
    np.testing.assert_allclose(exceedance_threshold(lazy).values, threshold.values)
    np.testing.assert_array_equal(
        np.sort(waiting_times(lazy, threshold).values), np.sort(waiting_times(field, threshold).values)
    )
    edges = [0, 0.2, 1, 3]
    np.testing.assert_allclose(value_histogram(lazy, edges).values, value_histogram(field, edges).values)


def test_explained_variance_of_resampled_days_from_one_gram_matrix_equals_that_of_their_eofs() -> None:
    rng = np.random.default_rng(3)
    for samples in (30, 80):  # fewer and more samples than cells
        field = xr.DataArray(rng.standard_normal((samples, 6, 8)) + 2.0, dims=("time", "y", "x"))
        gram = gram_of_days(field)
        everything = explained_variance_of_days(gram, np.arange(samples), 4)
        np.testing.assert_allclose(everything.values, leading_eofs(field, 4)["explained_variance"].values, rtol=1e-10)
        days = rng.integers(0, samples, size=samples)  # a resample: days repeated and reordered
        resampled = leading_eofs(field.isel(time=days), 4)["explained_variance"].values
        np.testing.assert_allclose(explained_variance_of_days(gram, days, 4).values, resampled, rtol=1e-9)


def test_a_statistic_every_resample_inflates_gets_the_basic_interval_below_it() -> None:
    """The largest eigenvalue share of white noise: resamples repeat rows, which lowers the rank
    and inflates it, so every resampled value lies above the estimate and BCa's bias correction
    is infinite. The basic interval reflects the resamples about the estimate: it lies below,
    since the estimate is itself inflated by about as much, and here holds the population value
    (1/36: the covariance is the identity)."""
    field = xr.DataArray(np.random.default_rng(0).standard_normal((200, 6, 6)), dims=("time", "y", "x"))
    gram, days = gram_of_days(field), xr.DataArray(np.arange(200), dims="time")

    def largest_share(d: xr.DataArray) -> xr.DataArray:
        return explained_variance_of_days(gram, d.values, 1).isel(mode=0)

    interval = bootstrap_ci(largest_share, days, "time", n_resamples=100)
    assert str(interval["method"].values) == "basic"
    assert float(interval["low"]) < 1 / 36 < float(interval["high"]) < float(interval["estimate"])
