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
