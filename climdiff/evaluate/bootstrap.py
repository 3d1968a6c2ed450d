"""Bootstrap confidence intervals for any statistic of an xarray object.

Percentile bootstrap: the statistic is recomputed on ``n_resamples`` resamples of ``data`` along
``dim`` and the interval is the (1 - confidence)/2 and (1 + confidence)/2 quantiles of those
values. With ``block`` > 1 the resamples are moving blocks (Kunsch 1989): ceil(n / block) runs of
``block`` consecutive positions, starting anywhere in 0 .. n - block, concatenated and cut to n.
Daily series are autocorrelated, and resampling single days would treat n correlated days as n
independent ones and give intervals that are too narrow; choose a block longer than the
decorrelation time (e.g. 10-30 days for daily weather, a year or more for annual means).
Deterministic for a given seed (one numpy Generator draws all indices up front).

``shift_bias`` moves the interval by the bootstrap estimate of the statistic's bias (the mean
of the resampled values minus the estimate). Statistics that resampling itself inflates, such
as the largest eigenvalues of a covariance (repeated rows lower its rank) or a mean of absolute
values, otherwise get a percentile interval lying beside their estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr


def resample_indices(n: int, n_resamples: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) positions: iid draws (block 1) or moving blocks of ``block`` positions."""
    if not 1 <= block <= n:
        raise ValueError(f"block must be between 1 and the length {n}, got {block}")
    per_resample = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(n_resamples, per_resample))
    runs = starts[:, :, None] + np.arange(block)[None, None, :]
    return runs.reshape(n_resamples, -1)[:, :n]


def _as_array(value: xr.DataArray | float) -> xr.DataArray:
    return value if isinstance(value, xr.DataArray) else xr.DataArray(value)


def bootstrap_ci(
    statistic: Callable[[xr.DataArray], xr.DataArray],
    data: xr.DataArray,
    dim: str,
    *,
    n_resamples: int = 200,
    confidence: float = 0.95,
    block: int = 1,
    seed: int = 0,
    shift_bias: bool = False,
) -> xr.Dataset:
    """``estimate`` (the statistic on ``data``), ``low`` and ``high``, each with the statistic's dims.

    ``statistic`` maps a DataArray like ``data`` to a (small) DataArray; it sees resamples in which
    the positions along ``dim`` are repeated and reordered (coordinates travel with their values).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    indices = resample_indices(data.sizes[dim], n_resamples, block, rng)
    values = xr.concat([_as_array(statistic(data.isel({dim: idx}))) for idx in indices], dim="resample")
    values = values.compute()  # the statistics are small; one pass over dask input
    alpha = (1 - confidence) / 2
    bounds = values.quantile([alpha, 1 - alpha], dim="resample")
    estimate = _as_array(statistic(data)).compute()
    if shift_bias:  # remove the bootstrap estimate of the statistic's bias, mean(resamples) - estimate
        bounds = bounds - (values.mean("resample") - estimate)
    return xr.Dataset(
        {
            "estimate": estimate,
            "low": bounds.isel(quantile=0, drop=True),
            "high": bounds.isel(quantile=1, drop=True),
        },
        attrs={"confidence": confidence, "n_resamples": n_resamples, "block": block, "seed": seed,
               "method": "percentile bootstrap" + (" (moving blocks)" if block > 1 else "")
                                 + (", shifted by the bias estimate" if shift_bias else "")},
    )
