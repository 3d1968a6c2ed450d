"""Long-run stability (the ``stability`` family): annual-mean global-mean series, its linear
drift, the seasonal cycle.

* ``annual_mean_series``: area-weighted spatial mean per day, then the mean per calendar year of
  the time coordinate's own calendar (cftime noleap, 360_day, ... or datetime64). Incomplete years
  (fewer days than that calendar's year) are dropped by default: a run ending in June would
  otherwise add a year biased by the season.
* ``linear_drift``: least-squares slope against the year, in field units per century (x 100);
  ``drift_percent_per_century`` divides it by the reference's long-run area mean.
* ``seasonal_cycle``: the first annual harmonic a0 + A cos(2 pi (d - d_max) / L) fitted by least
  squares to the area-mean daily series against the day of year (:mod:`climdiff.evaluate.seasons`;
  d = day of year, L = length of the calendar's year: 365 noleap, 360 360_day, ~365.24 standard).
  ``amplitude`` is A (half the harmonic's peak-to-trough range, field units), ``phase`` is d_max
  in [1, L + 1), the day of year of the harmonic's maximum. An unconditional emulator knows no
  date, so its phase may drift.
* On lat-lon data the family takes the seasonal cycle of the *northern-hemisphere* area mean
  (latitudes above 0): a global mean can have next to none, because the hemispheres' seasons
  cancel (the generator's closed water budget keeps global precipitation at global evaporation:
  in a 4-year run the global mean's annual harmonic is 0.004-0.026 mm/day from year to year with
  a phase anywhere in the year, the northern mean's 1.15-1.20 mm/day peaking on day 201-204).
* The family fits each complete year on its own: the cycle of a span of years is the harmonic of
  the mean of their coefficients (the least-squares fit of their days together), and its interval
  resamples the years. The whole run uses its complete years (all its days if it has none); a
  run of at least 20 complete years also gets its first and its last decade. A phase interval
  is unwrapped around the estimate, so it may reach below day 1 or beyond L + 1.
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

from climdiff.evaluate.core import FamilyResult, Headline, Numbers, Settings, headline, intervals, members_pooled
from climdiff.evaluate.seasons import first_harmonic, fit_harmonics
from climdiff.evaluate.sources import Source, spatial_dims
from climdiff.evaluate.weights import area_mean

DECADE_YEARS = 10
DECADES_FROM_YEARS = 2 * DECADE_YEARS  # complete years a run needs for a first and a last decade


def annual_means(daily: xr.DataArray, complete_years: bool = True) -> xr.DataArray:
    """The mean per calendar year of a daily series (dims: ``year``, plus the others)."""
    annual = daily.groupby("time.year").mean("time")
    if complete_years:
        annual = annual.sel(year=complete(daily["time"]))
    return annual


def complete(time: xr.DataArray) -> np.ndarray:
    """The calendar years of which ``time`` holds every day."""
    days = time.groupby("time.year").count()
    length = time.dt.days_in_year.groupby("time.year").max()
    return days["year"].values[(days == length).values]


def annual_mean_series(field: xr.DataArray, complete_years: bool = True) -> xr.DataArray:
    """Area-weighted mean per calendar year (dims: ``year``, plus ``member`` if present)."""
    return annual_means(area_mean(field), complete_years)


def linear_drift(series: xr.DataArray, dim: str = "year") -> xr.DataArray:
    """Least-squares slope of ``series`` against its ``dim`` coordinate (in years), per 100 years.

    Other dims (e.g. member) are kept: one slope each. Lazy on dask input.
    """
    x = series[dim].astype(np.float64)
    dx = x - x.mean()
    slope = (dx * (series - series.mean(dim))).sum(dim) / (dx**2).sum()
    return 100.0 * slope


def year_length(time: xr.DataArray) -> float:
    """The mean length of the calendar years of ``time`` in days."""
    return float(time.dt.days_in_year.mean())


def seasonal_cycle(field: xr.DataArray) -> xr.Dataset:
    """``amplitude`` and ``phase`` (day of year of the maximum) of the first annual harmonic of the
    area mean (dims: ``member`` if present, else scalars)."""
    daily = area_mean(field)
    length = year_length(daily["time"])
    amplitude, phase = first_harmonic(fit_harmonics(daily, 1), length)
    return xr.Dataset(
        {"amplitude": amplitude, "phase": phase.assign_attrs(units="day of year")},
        attrs={"year_length_days": length},
    )


def yearly_coefficients(daily: xr.DataArray, years: np.ndarray) -> xr.DataArray:
    """The first-harmonic fit of each of ``years`` on its own days (dims: ``year``, ``term``)."""
    fits = [fit_harmonics(daily.sel(time=daily["time"].dt.year == year), 1) for year in years]
    return xr.concat(fits, dim="year").assign_coords(year=years)


def cycle_numbers(coefficients: xr.DataArray, length: float, s: Settings) -> list[Numbers]:
    """Amplitude and phase of the mean of yearly ``coefficients``, with intervals over years; the
    phase of a resample is taken within half a year of the estimate's."""
    centre = float(first_harmonic(coefficients.mean("year"), length)[1])

    def statistic(d: xr.DataArray) -> xr.DataArray:
        amplitude, phase = first_harmonic(d.mean("year"), length)
        unwrapped = centre + np.mod(phase - centre + length / 2, length) - length / 2
        return xr.concat([amplitude, unwrapped], dim="quantity")

    return intervals(statistic, coefficients, "year", s)


def seasonal_headlines(source: str, daily: xr.DataArray, s: Settings, units: str) -> list[Headline]:
    """Seasonal amplitude and phase of the whole run and, from 20 complete years on, of its first
    and its last decade."""
    length = year_length(daily["time"])
    years = complete(daily["time"])
    if len(years):
        spans = {"": yearly_coefficients(daily, years)}
        if len(years) >= DECADES_FROM_YEARS:
            spans["_first_decade"] = spans[""].isel(year=slice(0, DECADE_YEARS))
            spans["_last_decade"] = spans[""].isel(year=slice(-DECADE_YEARS, None))
        numbers = {suffix: cycle_numbers(coefficients, length, s) for suffix, coefficients in spans.items()}
    else:  # shorter than a calendar year: every day it has, no interval
        amplitude, phase = first_harmonic(fit_harmonics(daily, 1), length)
        numbers = {"": [(float(amplitude), None, None, None), (float(phase), None, None, None)]}
    out = []
    for suffix, (amplitude, phase) in numbers.items():
        out.append(headline("stability", f"seasonal_amplitude{suffix}", source, amplitude, units=units))
        out.append(headline("stability", f"seasonal_phase{suffix}", source, phase, units="day of year"))
    return out


def northern_hemisphere(field: xr.DataArray) -> xr.DataArray:
    """The rows of ``field`` north of the equator."""
    return field.sel(lat=field["lat"] > 0)


def stability_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Annual-mean area-mean series, its linear drift per century (in field units and in percent
    of the reference's mean), and on lat-lon data the seasonal cycle's amplitude and phase of the
    northern-hemisphere mean."""
    out = FamilyResult("stability")
    units = reference.field.attrs.get("units", "")
    latlon = spatial_dims(reference.field) == ("lat", "lon")
    series = {}
    reference_mean = None
    for src in [reference, *runs]:
        daily = members_pooled(area_mean(src.field))
        northern = members_pooled(area_mean(northern_hemisphere(src.field))) if latlon else None
        daily, northern = dask.compute(daily, northern)
        reference_mean = float(daily.mean()) if reference_mean is None else reference_mean
        annual = annual_means(daily)
        series[src.label] = {"year": annual["year"].values.tolist(), "mean": annual.values.tolist()}
        if annual.sizes["year"] >= 3:

            def drifts(d: xr.DataArray) -> xr.DataArray:
                drift = linear_drift(d)
                return xr.concat([drift, 100.0 * drift / reference_mean], dim="quantity")

            drift, percent = intervals(drifts, annual, "year", s)
            out.headlines.append(headline("stability", "drift_per_century", src.label, drift, units=units, ideal=0.0))
            out.headlines.append(
                headline("stability", "drift_percent_per_century", src.label, percent, units="%", ideal=0.0)
            )
        else:
            out.notes.append(f"{src.label}: {annual.sizes['year']} complete year(s); drift needs at least 3")
        if northern is not None:
            out.headlines += seasonal_headlines(src.label, northern, s, units)
    if latlon:
        out.notes.append(
            f"seasonal cycle of the northern-hemisphere mean over complete years (all days below one), intervals "
            f"resample years; first and last decade from {DECADES_FROM_YEARS} complete years on"
        )
    else:
        out.notes.append("no seasonal cycle on the square domain (statistically stationary forcing)")
    out.notes.append(
        f"drift intervals resample years as independent; % of the reference's mean {reference_mean:.4g} {units}"
    )
    out.plot = {"annual_mean": series, "units": units}
    return out
