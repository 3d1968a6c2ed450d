"""Mean-state errors: area-weighted RMSE, the per-cell long-run bias and its area-weighted mean.

Spatial dims are those of :func:`~climdiff.evaluate.weights.area_weights` ((lat, lon) or (y, x));
every other dim (member, time, ...) is a sample dim. All results stay lazy on dask input.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climdiff.evaluate.weights import area_weights


def sample_dims(field: xr.DataArray) -> list[str]:
    """The non-spatial dims of ``field`` (member, time, ...), in order."""
    spatial = area_weights(field).dims
    return [d for d in field.dims if d not in spatial]


def rmse(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """Root of the area-weighted mean squared difference over every dim (a 0-d array).

    The square is weighted in space and averaged over the other dims before the root, so this is
    one RMSE for the whole sample, not a mean of per-day RMSEs.
    """
    w = area_weights(a)
    return np.sqrt(((a - b) ** 2 * w).sum(w.dims).mean())


def bias_map(run: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Long-run mean of ``run`` minus that of ``reference`` per cell (dims: the spatial ones).

    Each is averaged over its own sample dims, so a run of 10 members x 100 years compares with a
    reference of 30 years without any alignment in time.
    """
    return run.mean(sample_dims(run)) - reference.mean(sample_dims(reference))


def mean_absolute_bias(run: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Area-weighted mean of |bias_map| (a 0-d array): biases of opposite sign do not cancel."""
    bias = bias_map(run, reference)
    w = area_weights(bias)
    return (abs(bias) * w).sum(w.dims)
