"""Normalisation statistics of a stored field, computed lazily chunk by chunk (dask).

Statistics are scalar per variable over the training split (docs/architecture.md, "Conventions"), accumulated in
float64 so long runs of float32 frames lose no precision.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr


def field_statistics(path: Path, variable: str, *, start: int = 0, stop: int | None = None) -> dict[str, float]:
    """Mean, standard deviation, minimum and maximum of ``variable`` over ``time[start:stop]``."""
    ds = xr.open_zarr(str(path), consolidated=True)
    values = ds[variable].isel(time=slice(start, stop)).astype("float64")
    computed = xr.Dataset(
        {"mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max()}
    ).compute()
    return {name: float(computed[name]) for name in ("mean", "std", "min", "max")}
