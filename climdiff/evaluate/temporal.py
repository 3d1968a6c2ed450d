"""Temporal consistency: the area-weighted autocorrelation of anomalies at lags 1..10.

Anomalies are taken from the overall mean (square domain) or from the day-of-year climatology
(lat-lon data with a seasonal cycle), then standardised; the autocorrelation at lag l is the
weighted mean over cells and times of a(t) a(t+l), divided by that of a(t)^2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import xarray as xr

from climdiff.evaluate.weights import area_weights


def anomalies(field: xr.DataArray, climatology: Literal["overall", "seasonal"] = "overall") -> xr.DataArray:
    """``field`` minus its overall mean or day-of-year climatology.

    The climatology is small and computed at once: left lazy, dask would keep every chunk of a
    dask-backed field in memory between computing the mean and subtracting it, so memory would
    grow with the run length; computed first, the field is streamed twice instead.
    """
    if climatology == "seasonal":
        groups = field.groupby("time.dayofyear")
        return groups - groups.mean("time").compute()
    return field - field.mean().compute()


def autocorrelation(
    field: xr.DataArray,
    lags: Sequence[int] = tuple(range(1, 11)),
    climatology: Literal["overall", "seasonal"] = "overall",
) -> xr.DataArray:
    """Autocorrelation along ``time`` at each lag (dims: ``lag``); other dims are averaged."""
    a = anomalies(field, climatology)
    w = area_weights(field)
    variance = (a**2 * w).sum(w.dims).mean()
    values = []
    for lag in lags:
        product = a.isel(time=slice(None, -lag)).data * a.isel(time=slice(lag, None)).data
        lagged = a.isel(time=slice(None, -lag)).copy(data=product)
        values.append((lagged * w).sum(w.dims).mean() / variance)
    return xr.concat(values, dim="lag").assign_coords(lag=list(lags))
