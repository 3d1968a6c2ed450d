"""Temporal consistency (the ``temporal`` family): the area-weighted autocorrelation of anomalies
at lags 1..10, and the Wasserstein-1 distance between consecutive Hovmoller rows.

Anomalies on the square domain are taken from each source's overall mean (its forcing is
statistically stationary). On lat-lon data they are taken from the *reference's* seasonal
climatology, a smooth per-cell fit of a mean plus :data:`~climdiff.evaluate.seasons.CLIMATOLOGY_HARMONICS`
annual harmonics (:mod:`climdiff.evaluate.seasons`), for the reference and every run alike, and
each source's remaining per-cell time mean is removed too. So a run of any length gets numbers
(its own day-of-year mean would be the run itself below two years), a 4-year reference keeps its
day-to-day variability (a mean of 4 samples per day of year would take a quarter of it), a mean
bias does not read as persistence, and a wrong seasonal cycle does: it is left in the anomalies
and lasts from one day to the next.

The autocorrelation at lag l is the mean over cells (area weights), members and times t of
a(t) a(t+l), divided by that of a(t)^2: the per-day area means of these products are the
summaries that blocks and bootstrap resamples average.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dask
import numpy as np
import xarray as xr

from climdiff.evaluate.bias import sample_dims
from climdiff.evaluate.core import FamilyResult, Settings, blocks, headline, intervals, members_pooled
from climdiff.evaluate.hovmoller import hovmoller, row_wasserstein
from climdiff.evaluate.seasons import CLIMATOLOGY_HARMONICS, fit_harmonics, harmonic_values
from climdiff.evaluate.sources import Source, spatial_dims
from climdiff.evaluate.weights import area_mean

LAGS = tuple(range(1, 11))
ACF_KEYS = ("acf", "acf_low", "acf_high")  # the plot's estimate, low and high per lag


def seasonal_climatology(reference: xr.DataArray, harmonics: int = CLIMATOLOGY_HARMONICS) -> xr.DataArray:
    """Per cell, the coefficients (dim ``term``) of a mean plus ``harmonics`` annual harmonics
    fitted to ``reference`` (members averaged); it must span at least a year."""
    pooled = members_pooled(reference)
    year = int(pooled["time"].dt.days_in_year.values.min())
    if pooled.sizes["time"] < year:
        raise ValueError(f"the seasonal climatology needs a reference of at least a year ({year} days)")
    return fit_harmonics(pooled, harmonics)


def _chunkwise(field: xr.DataArray, change: Callable[[xr.DataArray], xr.DataArray]) -> xr.DataArray:
    """``change`` applied chunk by chunk along time (in one go on in-memory data): a grouped or
    broadcast subtraction would build a task per day, minutes of scheduling for a few years."""
    if field.chunks is None:
        return change(field)
    return field.map_blocks(change, template=field.astype(np.float64))


def anomalies(field: xr.DataArray, climatology: xr.DataArray | None = None) -> xr.DataArray:
    """``field`` minus its overall mean (``climatology`` None), or minus the seasonal
    ``climatology`` of :func:`seasonal_climatology` and then minus the remaining per-cell mean
    over time and members (the source's own offset).

    What is subtracted is small and computed at once: left lazy, dask would keep every chunk of a
    dask-backed field in memory between computing a mean and subtracting it, so memory would
    grow with the run length; computed first, the field is streamed twice instead.
    """
    if climatology is None:
        return field - field.mean().compute()

    def departures(part: xr.DataArray) -> xr.DataArray:
        return part - harmonic_values(climatology, part["time"])

    offset = _chunkwise(field, departures).mean(sample_dims(field)).compute()
    return _chunkwise(field, lambda part: departures(part) - offset)


def lagged_products(
    field: xr.DataArray, lags: Sequence[int] = LAGS, climatology: xr.DataArray | None = None
) -> xr.DataArray:
    """Per day t: the area mean of a(t) a(t + l) for l = 0 and each lag, members averaged (dims:
    ``lag``, ``time``). The last l days have no partner at lag l and are missing there."""
    a = anomalies(field, climatology)
    products = [members_pooled(area_mean(a * a.shift(time=-lag))) for lag in (0, *lags)]
    return xr.concat(products, dim="lag").assign_coords(lag=[0, *lags])


def autocorrelation_of(products: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """The autocorrelation at each lag > 0 (dim ``lag``) from :func:`lagged_products` or from
    means of them over blocks: the mean lagged product over ``dim`` (missing values skipped)
    divided by the mean square."""
    means = products.mean(dim)
    return means.sel(lag=means["lag"] > 0) / means.sel(lag=0, drop=True)


def autocorrelation(
    field: xr.DataArray, lags: Sequence[int] = LAGS, climatology: xr.DataArray | None = None
) -> xr.DataArray:
    """Autocorrelation along ``time`` at each lag (dims: ``lag``); other dims are averaged."""
    return autocorrelation_of(lagged_products(field, lags, climatology))


def temporal_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Autocorrelation at lags 1..10 and the Wasserstein-1 distance between consecutive
    Hovmoller rows (its mean as the headline, its distribution and the diagrams as plots)."""
    out = FamilyResult("temporal")
    latlon = spatial_dims(reference.field) == ("lat", "lon")
    climatology = seasonal_climatology(reference.field) if latlon else None
    acf, w1, diagrams = {}, {}, {}
    for src in [reference, *runs]:
        if src.days <= max(LAGS):
            raise ValueError(f"{src.label} has {src.days} days; the temporal family needs more than {max(LAGS)}")
        products = blocks(lagged_products(src.field, LAGS, climatology), s.block_days)
        hov = hovmoller(src.field)
        rows = members_pooled(row_wasserstein(hov))
        first = hov.isel(member=0) if "member" in hov.dims else hov
        products, rows, first = dask.compute(products, rows, first.isel(time=slice(0, s.hovmoller_days)))
        acf[src.label] = intervals(lambda d: autocorrelation_of(d, "block"), products, "block", s)
        for lag, numbers in zip(LAGS, acf[src.label], strict=True):
            out.headlines.append(headline("temporal", f"autocorrelation_lag{lag}", src.label, numbers))
        row_blocks = blocks(rows, s.block_days) if rows.sizes["time"] >= 2 else rows.rename(time="block")
        w1_mean = intervals(lambda d: d.mean("block"), row_blocks, "block", s)[0]
        units = src.field.attrs.get("units", "")
        out.headlines.append(headline("temporal", "hovmoller_w1_mean", src.label, w1_mean, units=units))
        w1[src.label] = rows.values.tolist()
        diagrams[src.label] = first.values.tolist()
    if latlon:
        out.notes.append(
            f"autocorrelation of anomalies from the reference's seasonal climatology (a mean and "
            f"{CLIMATOLOGY_HARMONICS} annual harmonics per cell), each source's own mean offset removed; area-weighted"
        )
    else:
        out.notes.append("autocorrelation of anomalies from each source's overall mean, area-weighted")
    out.plot = {
        "lags": list(LAGS),
        **{key: {k: [v[i] for v in vals] for k, vals in acf.items()} for i, key in enumerate(ACF_KEYS)},
        "w1": w1,
        "hovmoller": diagrams,
    }
    return out
