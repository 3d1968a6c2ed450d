"""Extremes and distribution (the ``extremes`` family): exceedance thresholds, the frequency and
persistence of exceedances, waiting times, histograms.

Conventions: an *exceedance* is a value strictly above the threshold. Waiting times are in days,
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
from climdiff.evaluate.core import FamilyResult, Settings, blocks, headline, intervals, members_pooled
from climdiff.evaluate.sources import Source, spatial_dims
from climdiff.evaluate.weights import area_mean, area_weights


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


def exceedance_summaries(field: xr.DataArray, threshold: xr.DataArray | float) -> xr.Dataset:
    """Per day, members averaged: ``today``, the area-weighted fraction of cells exceeding the
    threshold, and ``both``, the fraction exceeding it today and tomorrow (0 on the last day)."""
    exceed = field > threshold
    tomorrow = exceed & exceed.shift(time=-1, fill_value=False)
    return xr.Dataset({"today": members_pooled(area_mean(exceed)), "both": members_pooled(area_mean(tomorrow))})


def exceedance_statistics(summaries: xr.Dataset, dim: str = "time") -> xr.DataArray:
    """``frequency`` of exceedance and ``persistence``, P(exceeding tomorrow | exceeding today),
    from :func:`exceedance_summaries` or their means over blocks (dim ``quantity``)."""
    today, both = summaries["today"].mean(dim), summaries["both"].mean(dim)
    return xr.concat([today, both / today], dim="quantity").assign_coords(quantity=["frequency", "persistence"])


def whole_series(field: xr.DataArray, budget_bytes: float = 64e6) -> xr.DataArray:
    """Rechunk so each chunk holds whole time series (a local quantile needs them) of as many
    rows of cells as fit in ``budget_bytes`` (as float64), so memory does not grow with length."""
    if field.chunks is None:
        return field
    row, column = spatial_dims(field)
    per_row = 8 * field.size // field.sizes[row]
    rows = max(1, int(budget_bytes // per_row))
    return field.chunk({d: -1 for d in field.dims if d not in (row, column)} | {row: rows, column: -1})


def waiting_time_counts(field: xr.DataArray, threshold: xr.DataArray, longest: int = 100) -> np.ndarray:
    """How many waits of 1, 2, ... days (the last bin: ``longest`` or more) separate consecutive
    exceedances, counted one group of whole series at a time so memory does not grow with length."""
    whole = whole_series(field)
    row = spatial_dims(field)[0]
    edges = np.cumsum((0, *whole.chunksizes[row])) if whole.chunks else np.array([0, field.sizes[row]])
    counts = np.zeros(longest + 1, dtype=np.int64)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        part = {row: slice(int(lo), int(hi))}
        gaps = waiting_times(whole.isel(part), threshold.isel(part)).values
        counts += np.bincount(np.minimum(gaps.astype(np.int64), longest), minlength=longest + 1)
    return counts


def extremes_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Exceedances of the reference's local 95th percentile: their frequency (ideal 0.05) and
    their persistence; waiting-time distributions and value histograms as figures. (The mean
    waiting time is no extra number: for a stationary series it is 1 / frequency, Kac's lemma.)"""
    out = FamilyResult("extremes")
    ref_field = reference.field
    threshold = exceedance_threshold(whole_series(ref_field), 0.95).compute()
    low, high = dask.compute(ref_field.min(), ref_field.max())
    span = float(high - low)
    edges = np.linspace(float(low) - 0.5 * span, float(high) + 0.5 * span, 61)
    histograms, waits = {}, {}
    for src in [reference, *runs]:
        summaries = blocks(exceedance_summaries(src.field, threshold), s.block_days).compute()
        frequency, persistence = intervals(lambda d: exceedance_statistics(d, "block"), summaries, "block", s)
        out.headlines.append(headline("extremes", "exceedance_frequency_p95", src.label, frequency, ideal=0.05))
        out.headlines.append(headline("extremes", "exceedance_persistence", src.label, persistence))
        waits[src.label] = waiting_time_counts(src.field, threshold).tolist()
        histograms[src.label] = value_histogram(src.field, edges).values.tolist()
    units = ref_field.attrs.get("units", "")
    out.plot = {"edges": edges.tolist(), "histograms": histograms, "waiting_time_counts": waits, "units": units}
    return out
