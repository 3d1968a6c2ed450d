"""Area weights: cos(latitude) on latitude-longitude grids, uniform on the square domain."""

from __future__ import annotations

import numpy as np
import xarray as xr


def area_weights(field: xr.DataArray) -> xr.DataArray:
    """Weights over the spatial dims of ``field`` that sum to 1."""
    if "lat" in field.dims:
        w = np.cos(np.deg2rad(field["lat"])) * xr.ones_like(field["lon"], dtype=float)
    else:
        w = xr.ones_like(field["y"], dtype=float) * xr.ones_like(field["x"], dtype=float)
    return w / w.sum()


def area_mean(field: xr.DataArray) -> xr.DataArray:
    """The area-weighted mean over the spatial dims (the others are kept).

    A missing value makes the mean missing rather than counting as zero: a member that stopped
    must not pull a day's mean towards zero (pooling members then skips it).
    """
    w = area_weights(field)
    return (field * w).sum(w.dims, skipna=False)
