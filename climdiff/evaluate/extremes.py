"""Precipitation extremes and distribution: exceedance thresholds, waiting times, histograms,
wet-day frequency.

Conventions: an *exceedance* is a value strictly above the threshold; a *wet day* is a value at or
above the wet-day threshold (the ETCCDI rule RR >= 1 mm). Thresholds are in the field's units:
the default 1.0 assumes mm/day, pass 1e-3 for a field in m/day. Waiting times are in days,
measured on the time coordinate (cftime, datetime64, or the index when there is none), so a gap
in the record lengthens the waits that span it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from climdiff.evaluate.bias import sample_dims
from climdiff.evaluate.weights import area_weights


def exceedance_threshold(reference: xr.DataArray, q: float = 0.95) -> xr.DataArray:
    """The local q-quantile of each cell over time and members (dims: the spatial ones).

    Linear interpolation between order statistics (numpy's default).
    """
    return reference.quantile(q, dim=sample_dims(reference)).drop_vars("quantile")


def _days(time: xr.DataArray) -> np.ndarray:
    """Time coordinate as float days since its first value."""
    if np.issubdtype(time.dtype, np.number):
        return np.asarray(time.values, dtype=np.float64)
    return np.asarray((time - time[0]) / np.timedelta64(1, "D"), dtype=np.float64)


def _waits(mask: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Waiting times between consecutive True values along axis 0, pooled over the other axes."""
    cell, t = np.nonzero(mask.reshape(mask.shape[0], -1).T)  # sorted by cell, then by time
    same_cell = cell[1:] == cell[:-1]
    return (days[t[1:]] - days[t[:-1]])[same_cell]


def _time_series_blocks(mask: xr.DataArray) -> Iterator[np.ndarray]:
    """In-memory blocks of ``mask`` (time first), each holding whole time series of some cells."""
    data = mask.data
    if not hasattr(data, "blocks"):
        yield np.asarray(data)
        return
    data = data.rechunk({0: -1})
    for index in np.ndindex(*data.numblocks[1:]):
        yield np.asarray(data.blocks[(0, *index)].compute())


def waiting_times(field: xr.DataArray, threshold: xr.DataArray | float) -> xr.DataArray:
    """Days between consecutive exceedances at each cell, pooled over cells and members.

    Returns a 1-D array (dim ``event``): one value per pair of consecutive exceedances in one time
    series, so a series with k exceedances contributes k - 1 waits and one with none contributes
    nothing. On dask input one block of cells is in memory at a time (as booleans, whole series).
    """
    mask = (field > threshold).transpose("time", ...)
    days = _days(field["time"])
    waits = [_waits(block, days) for block in _time_series_blocks(mask)]
    pooled = np.concatenate(waits) if waits else np.empty(0)
    return xr.DataArray(pooled, dims=("event",), name="waiting_time", attrs={"units": "days"})


def value_histogram(
    field: xr.DataArray, bins: Sequence[float] | np.ndarray, area_weighted: bool = True
) -> xr.DataArray:
    """Density per bin (dims: ``bin``, coordinate the bin centre, ``bin_lower``/``bin_upper`` edges).

    density = (weight in bin) / (total weight of the finite values x bin width), so the densities
    integrate to the fraction of values inside the edges (1 when the edges cover them all, and then
    equal numpy.histogram(density=True)). Values outside the edges are not dropped from the total,
    so a run with too many values beyond the last edge is not renormalised into looking right.
    ``area_weighted`` gives each value its cell's cos(lat) weight (no effect on the square).
    """
    edges = np.asarray(bins, dtype=np.float64)
    finite = np.isfinite(field)
    if area_weighted:
        weights = (area_weights(field) * finite).broadcast_like(field).transpose(*field.dims)
    else:
        weights = finite.astype(np.float64)
    values = field.where(finite, edges[0] - 1.0).data  # non-finite values weigh nothing
    if hasattr(values, "dask"):
        # blockwise on the n-d arrays: flattening a dask array first would merge its time chunks
        # into one, and memory would grow with the run length
        counts, _ = dsa.histogram(values, bins=edges, weights=weights.data.rechunk(values.chunks))
        counts, total = dask.compute(counts, weights.data.sum())
    else:
        counts, _ = np.histogram(np.ravel(values), bins=edges, weights=np.asarray(weights.data).ravel())
        total = weights.data.sum()
    density = np.asarray(counts) / (float(total) * np.diff(edges))
    return xr.DataArray(
        density,
        dims=("bin",),
        coords={"bin": (edges[:-1] + edges[1:]) / 2, "bin_lower": ("bin", edges[:-1]), "bin_upper": ("bin", edges[1:])},
        name="density",
    )


def wet_day_frequency(field: xr.DataArray, threshold: float = 1.0) -> xr.DataArray:
    """Fraction of days (and members) with a value >= threshold, per cell (dims: the spatial ones)."""
    return (field >= threshold).mean(sample_dims(field))
