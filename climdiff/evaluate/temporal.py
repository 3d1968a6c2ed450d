"""Temporal consistency (the ``temporal`` family): the area-weighted autocorrelation of anomalies
at lags 1..10, and the Wasserstein-1 distance between consecutive Hovmoller rows.

Anomalies are taken from the overall mean (square domain) or from the day-of-year climatology
(lat-lon data with a seasonal cycle). The autocorrelation at lag l is the mean over cells (area
weights), members and times t of a(t) a(t+l), divided by that of a(t)^2: the per-day area means
of these products are the summaries that blocks and bootstrap resamples average.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import dask
import numpy as np
import xarray as xr

from climdiff.evaluate.core import FamilyResult, Settings, blocks, headline, intervals, members_pooled
from climdiff.evaluate.hovmoller import hovmoller, row_wasserstein
from climdiff.evaluate.sources import Source, spatial_dims
from climdiff.evaluate.weights import area_mean

LAGS = tuple(range(1, 11))
ACF_KEYS = ("acf", "acf_low", "acf_high")  # the plot's estimate, low and high per lag
Climatology = Literal["overall", "seasonal"]


def anomalies(field: xr.DataArray, climatology: Climatology = "overall") -> xr.DataArray:
    """``field`` minus its overall mean or day-of-year climatology.

    The climatology is small and computed at once: left lazy, dask would keep every chunk of a
    dask-backed field in memory between computing the mean and subtracting it, so memory would
    grow with the run length; computed first, the field is streamed twice instead. The seasonal
    one is subtracted chunk by chunk (a grouped subtraction would build a task per day of year
    and chunk: minutes of scheduling for a few years of data).
    """
    if climatology == "overall":
        return field - field.mean().compute()
    normal = field.groupby("time.dayofyear").mean("time").compute()

    def subtract(part: xr.DataArray) -> xr.DataArray:
        return part - normal.sel(dayofyear=part["time"].dt.dayofyear).drop_vars("dayofyear")

    if field.chunks is None:
        return subtract(field)
    return field.map_blocks(subtract, template=field.astype(np.result_type(field.dtype, normal.dtype)))


def lagged_products(
    field: xr.DataArray, lags: Sequence[int] = LAGS, climatology: Climatology = "overall"
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
    field: xr.DataArray, lags: Sequence[int] = LAGS, climatology: Climatology = "overall"
) -> xr.DataArray:
    """Autocorrelation along ``time`` at each lag (dims: ``lag``); other dims are averaged."""
    return autocorrelation_of(lagged_products(field, lags, climatology))


def temporal_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Autocorrelation at lags 1..10 and the Wasserstein-1 distance between consecutive
    Hovmoller rows (its mean as the headline, its distribution and the diagrams as plots)."""
    out = FamilyResult("temporal")
    climatology: Climatology = "seasonal" if spatial_dims(reference.field) == ("lat", "lon") else "overall"
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
            if lag in (1, 5, 10):
                out.headlines.append(headline("temporal", f"autocorrelation_lag{lag}", src.label, numbers))
        row_blocks = blocks(rows, s.block_days) if rows.sizes["time"] >= 2 else rows.rename(time="block")
        w1_mean = intervals(lambda d: d.mean("block"), row_blocks, "block", s)[0]
        units = src.field.attrs.get("units", "")
        out.headlines.append(headline("temporal", "hovmoller_w1_mean", src.label, w1_mean, units=units))
        w1[src.label] = rows.values.tolist()
        diagrams[src.label] = first.values.tolist()
    out.notes.append(f"autocorrelation of anomalies from the {climatology} climatology, area-weighted")
    out.plot = {
        "lags": list(LAGS),
        **{key: {k: [v[i] for v in vals] for k, vals in acf.items()} for i, key in enumerate(ACF_KEYS)},
        "w1": w1,
        "hovmoller": diagrams,
    }
    return out
