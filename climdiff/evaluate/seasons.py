"""Annual harmonics: the least-squares fit of a mean plus the first annual harmonics against the
day of year, shared by the temporal family's seasonal climatology and the stability family's
seasonal cycle.

The angle of a day is w = 2 pi (d - 1) / L, with d its day of year and L the length of its own
calendar year (365 noleap, 360 360_day, 365 or 366 standard), so day 1 of every year has angle
0 and the fit is exact for any calendar the stores keep. The design's columns are 1, then
cos(k w) and sin(k w) for k = 1 .. n (dim ``term``, 2 n + 1 long).
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

CLIMATOLOGY_HARMONICS = 3
"""Harmonics of the temporal family's climatology: periods of a year, six and four months.

Three resolve a seasonal cycle that is not a sine (precipitation switches on where moisture
exceeds saturation, so a migrating rain band gives a sharp onset and, near the equator, a band
that passes twice a year), while the shortest period (122 days) stays an order of magnitude
longer than lag 10, so the fit cannot take up the day-to-day persistence it is removed from.
Fitted on N days, it removes about 7 / N of the day-to-day variance (0.5 % of a 4-year
reference) where a raw day-of-year mean of 4 years removes a quarter.
"""


def annual_harmonics(time: xr.DataArray, harmonics: int) -> xr.DataArray:
    """The design matrix (dims ``time``, ``term``) of a mean plus ``harmonics`` annual harmonics."""
    angle = 2 * np.pi * (time.dt.dayofyear.values - 1) / time.dt.days_in_year.values
    columns = [np.ones_like(angle)]
    for k in range(1, harmonics + 1):
        columns += [np.cos(k * angle), np.sin(k * angle)]
    return xr.DataArray(np.stack(columns, axis=1), dims=("time", "term"), coords={"time": time.values})


def fit_harmonics(values: xr.DataArray, harmonics: int) -> xr.DataArray:
    """Least-squares coefficients (dim ``term`` first, then the other dims of ``values``) of a mean
    plus ``harmonics`` annual harmonics along ``time``, in one pass over dask input.

    Days with a missing value anywhere (e.g. every member of a run stopped) are left out.
    """
    design = annual_harmonics(values["time"], harmonics)
    others = [d for d in values.dims if d != "time"]
    valid = values.notnull().all(others) if others else values.notnull()
    projected = xr.dot(design, values.fillna(0.0), dim="time")
    valid, projected = dask.compute(valid, projected)
    kept = design.values[valid.values]
    if np.linalg.matrix_rank(kept) < kept.shape[1]:
        raise ValueError(f"{int(valid.sum())} days cannot determine a mean and {harmonics} annual harmonic(s)")
    coefficients = np.linalg.solve(kept.T @ kept, projected.values.reshape(kept.shape[1], -1))
    return xr.DataArray(coefficients.reshape(projected.shape), dims=projected.dims, coords=projected.coords)


def harmonic_values(coefficients: xr.DataArray, time: xr.DataArray) -> xr.DataArray:
    """The fitted series on ``time`` (dims ``time`` and the coefficients' others)."""
    harmonics = (coefficients.sizes["term"] - 1) // 2
    return xr.dot(annual_harmonics(time, harmonics), coefficients, dim="term")


def first_harmonic(coefficients: xr.DataArray, year_length: float) -> tuple[xr.DataArray, xr.DataArray]:
    """Amplitude A and phase (the day of year of the maximum, in [1, L + 1)) of the first harmonic
    A cos(2 pi (d - d_max) / L) of fitted ``coefficients``."""
    a, b = coefficients.isel(term=1, drop=True), coefficients.isel(term=2, drop=True)
    peak = np.mod(np.arctan2(b, a), 2 * np.pi)
    return np.hypot(a, b), 1 + peak * year_length / (2 * np.pi)
