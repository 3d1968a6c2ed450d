"""Hovmoller diagrams and the Wasserstein-1 distance between their consecutive rows.

A Hovmoller diagram keeps time and the zonal coordinate (x or lon) and averages over the other
spatial one: over every y on the square, over a latitude band on lat-lon grids (by default the
equatorial band |lat| <= 10, cos(lat)-weighted). How much one row differs from the next measures
how fast the emulated dynamics move; an emulator whose days are independent gives rows that jump.
Each row's values are treated as an empirical distribution (the positions along x are
forgotten), and W1 between two equal-size samples is mean |sorted(a) - sorted(b)|.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

EQUATORIAL_BAND = (-10.0, 10.0)


def _zonal_dim(field: xr.DataArray) -> str:
    return "lon" if "lon" in field.dims else "x"


def hovmoller(field: xr.DataArray, band: tuple[float, float] | None = None) -> xr.DataArray:
    """Average over y or over latitudes lo <= lat <= hi (dims: the others, e.g. member, time, x|lon).

    ``band`` selects by coordinate value on either grid (the index on a y without coordinate);
    None means every y on the square and :data:`EQUATORIAL_BAND` on lat-lon grids.
    """
    if "lat" in field.dims:
        lo, hi = EQUATORIAL_BAND if band is None else band
        rows = np.flatnonzero((field["lat"].values >= lo) & (field["lat"].values <= hi))
        if rows.size == 0:
            raise ValueError(f"no latitude of the grid lies in the band [{lo}, {hi}]")
        chosen = field.isel(lat=rows)
        return chosen.weighted(np.cos(np.deg2rad(chosen["lat"]))).mean("lat")
    if band is not None:
        lo, hi = band
        field = field.isel(y=np.flatnonzero((field["y"].values >= lo) & (field["y"].values <= hi)))
    return field.mean("y")


def row_wasserstein(hov: xr.DataArray) -> xr.DataArray:
    """W1 between rows t-1 and t, labelled by the later time (dims: the others, time of length T-1)."""
    zonal = _zonal_dim(hov)
    if hov.chunks is not None:
        hov = hov.chunk({zonal: -1})
    ordered = xr.apply_ufunc(
        np.sort,
        hov,
        input_core_dims=[[zonal]],
        output_core_dims=[[zonal]],
        kwargs={"axis": -1},
        dask="parallelized",
        output_dtypes=[hov.dtype],
    )
    later = ordered.isel(time=slice(1, None))
    earlier = ordered.isel(time=slice(None, -1))
    # positional difference: xarray arithmetic would align the two on their (different) times
    return abs(later.copy(data=later.data - earlier.data)).mean(zonal).rename("wasserstein")
