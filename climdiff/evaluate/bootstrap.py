"""Bootstrap confidence intervals for any statistic of an xarray object, by ``scipy.stats.bootstrap``.

The samples are the positions along one dim (block summaries, years, forecast starts), resampled
as independent: each family first reduces a store to summaries of blocks longer than the
decorrelation time, so no moving-block scheme is needed here.

Method: BCa, the bias-corrected and accelerated percentile interval (Efron 1987). It corrects for
the median bias of the bootstrap distribution, which matters for statistics that resampling
inflates, such as the largest eigenvalues of a covariance (repeated rows lower its rank) or a
mean of absolute values; a plain percentile interval of those lies beside the estimate. Where BCa
cannot be formed (scipy then returns NaN: every jackknife value equal, e.g. a constant statistic,
or every resampled value on one side of the estimate), the element gets the basic (reverse
percentile) interval 2 estimate - quantiles of the same resamples. ``method`` says which.
Deterministic for a given seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import xarray as xr
from scipy import stats

BCA, BASIC = "BCa", "basic"


def _as_array(value: xr.DataArray | float) -> xr.DataArray:
    return value if isinstance(value, xr.DataArray) else xr.DataArray(value)


def bootstrap_ci(
    statistic: Callable[[xr.DataArray], xr.DataArray],
    data: xr.DataArray | xr.Dataset,
    dim: str,
    *,
    n_resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> xr.Dataset:
    """``estimate`` (the statistic on ``data``), ``low``, ``high`` and ``method`` (BCa or basic),
    each with the statistic's dims.

    ``statistic`` maps an object like ``data`` to a small DataArray; it sees resamples in which the
    positions along ``dim`` are repeated and reordered (coordinates travel with their values), and
    the jackknife's leave-one-out subsets. A statistic of several elements is bootstrapped in one
    pass (the same resamples for all). ``data`` is loaded into memory: it is meant to be small.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = data.sizes[dim]
    if n < 2:
        raise ValueError(f"a bootstrap interval needs at least two samples along {dim}, got {n}")
    data = data.compute()
    estimate = _as_array(statistic(data)).compute()

    def on_positions(positions: np.ndarray) -> np.ndarray:
        value = _as_array(statistic(data.isel({dim: positions.astype(np.int64)})))
        return np.asarray(value.transpose(*estimate.dims).values, dtype=np.float64).ravel()

    samples = (np.arange(n),)
    common = {"vectorized": False, "confidence_level": confidence}
    with warnings.catch_warnings():  # BCa's degenerate cases are handled below, element by element
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        rng = np.random.default_rng(seed)
        bca = stats.bootstrap(samples, on_positions, n_resamples=n_resamples, method=BCA, rng=rng, **common)
        low, high = np.asarray(bca.confidence_interval.low), np.asarray(bca.confidence_interval.high)
        formed = np.isfinite(low) & np.isfinite(high)
        if not formed.all():  # the same resamples (none drawn anew), basic interval
            basic = stats.bootstrap(samples, on_positions, n_resamples=0, bootstrap_result=bca, method=BASIC, **common)
            low = np.where(formed, low, basic.confidence_interval.low)
            high = np.where(formed, high, basic.confidence_interval.high)
    shape, dims = estimate.shape, estimate.dims
    return xr.Dataset(
        {
            "estimate": estimate,
            "low": (dims, low.reshape(shape)),
            "high": (dims, high.reshape(shape)),
            "method": (dims, np.where(formed, BCA, BASIC).reshape(shape)),
        },
        attrs={"confidence": confidence, "n_resamples": n_resamples, "seed": seed, "method": f"{BCA}, else {BASIC}"},
    )
