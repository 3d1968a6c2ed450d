"""Long-run stability (the ``stability`` family): annual-mean global-mean series, its linear
drift, the seasonal cycle.

* ``annual_mean_series``: area-weighted spatial mean per day, then the mean per calendar year of
  the time coordinate's own calendar (cftime noleap, 360_day, ... or datetime64). Incomplete years
  (fewer days than that calendar's year) are dropped by default: a run ending in June would
  otherwise add a year biased by the season.
* ``linear_drift``: least-squares slope against the year, in field units per century (x 100).
* ``seasonal_cycle``: the first annual harmonic a0 + A cos(2 pi (d - d_max) / L) fitted by least
  squares to the area-mean day-of-year climatology (d = day of year, L = mean length of the
  calendar's year: 365 noleap, 360 360_day, ~365.24 standard). ``amplitude`` is A (half the
  harmonic's peak-to-trough range, field units), ``phase`` is d_max in [1, L + 1), the day of year
  of the harmonic's maximum. An unconditional emulator knows no date, so its phase may drift.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climdiff.evaluate.core import FamilyResult, Headline, Settings, headline, intervals, members_pooled
from climdiff.evaluate.sources import Source, spatial_dims
from climdiff.evaluate.weights import area_mean


def annual_mean_series(field: xr.DataArray, complete_years: bool = True) -> xr.DataArray:
    """Area-weighted mean per calendar year (dims: ``year``, plus ``member`` if present)."""
    daily = area_mean(field)
    annual = daily.groupby("time.year").mean("time")
    if complete_years:
        days = daily["time"].groupby("time.year").count()
        length = daily["time"].dt.days_in_year.groupby("time.year").max()
        annual = annual.sel(year=annual["year"].values[(days == length).values])
    return annual


def linear_drift(series: xr.DataArray, dim: str = "year") -> xr.DataArray:
    """Least-squares slope of ``series`` against its ``dim`` coordinate (in years), per 100 years.

    Other dims (e.g. member) are kept: one slope each. Lazy on dask input.
    """
    x = series[dim].astype(np.float64)
    dx = x - x.mean()
    slope = (dx * (series - series.mean(dim))).sum(dim) / (dx**2).sum()
    return 100.0 * slope


def seasonal_cycle(field: xr.DataArray) -> xr.Dataset:
    """``amplitude`` and ``phase`` (day of year of the maximum) of the first annual harmonic
    (dims: ``member`` if present, else scalars)."""
    daily = area_mean(field)
    climatology = daily.groupby("time.dayofyear").mean("time").transpose("dayofyear", ...)
    length = float(daily["time"].dt.days_in_year.mean())
    angle = 2 * np.pi * (climatology["dayofyear"].values - 1) / length
    design = np.stack([np.ones_like(angle), np.cos(angle), np.sin(angle)], axis=1)
    values = np.asarray(climatology.values, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(design, values.reshape(len(angle), -1), rcond=None)
    a, b = coef[1].reshape(values.shape[1:]), coef[2].reshape(values.shape[1:])
    peak = np.mod(np.arctan2(b, a), 2 * np.pi)
    dims = climatology.dims[1:]
    coords = {d: climatology[d] for d in dims if d in climatology.coords}
    return xr.Dataset(
        {
            "amplitude": (dims, np.hypot(a, b)),
            "phase": (dims, 1 + peak * length / (2 * np.pi), {"units": "day of year"}),
        },
        coords=coords,
        attrs={"year_length_days": length},
    )


def stability_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Annual-mean area-mean series, its linear drift per century, and the seasonal cycle's
    amplitude and phase on lat-lon data."""
    out = FamilyResult("stability")
    units = reference.field.attrs.get("units", "")
    series = {}
    for src in [reference, *runs]:
        annual = members_pooled(annual_mean_series(src.field)).compute()
        series[src.label] = {"year": annual["year"].values.tolist(), "mean": annual.values.tolist()}
        if annual.sizes["year"] >= 3:
            numbers = intervals(linear_drift, annual, "year", s)[0]
            out.headlines.append(headline("stability", "drift_per_century", src.label, numbers, units=units, ideal=0.0))
        else:
            out.notes.append(f"{src.label}: {annual.sizes['year']} complete year(s); drift needs at least 3")
        if spatial_dims(src.field) == ("lat", "lon"):
            cycle = seasonal_cycle(members_pooled(src.field)).compute()
            out.headlines += [
                Headline("stability", "seasonal_amplitude", src.label, float(cycle["amplitude"]), units=units),
                Headline("stability", "seasonal_phase", src.label, float(cycle["phase"]), units="day of year"),
            ]
    if spatial_dims(reference.field) != ("lat", "lon"):
        out.notes.append("no seasonal cycle on the square domain (statistically stationary forcing)")
    out.notes.append("drift intervals resample years as independent")
    out.plot = {"annual_mean": series, "units": units}
    return out
