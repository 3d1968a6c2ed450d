"""Ensemble calibration: CRPS (standard and fair), spread-skill ratio, rank histograms.

* CRPS, standard (empirical-CDF) estimator: mean|X - y| - (1/2M^2) sum_ij |X_i - X_j|.
* CRPS, fair estimator: the same with 1/(2M(M-1)) over i != j; unbiased for the CRPS of the
  distribution the members are drawn from, whatever M (the standard one favours small,
  underdispersed ensembles).
* Spread-skill ratio: sqrt((M+1)/M) * spread / skill, spread = sqrt(weighted mean of the
  unbiased ensemble variance), skill = RMSE of the ensemble mean; 1 for a calibrated ensemble.
* Rank histogram: the rank of the observation among the members (0..M), ties (e.g. dry days)
  broken at random so that a calibrated ensemble gives a flat histogram.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climdiff.evaluate.weights import area_weights

MEMBER = "member"


def crps_ensemble(ensemble: xr.DataArray, observation: xr.DataArray, fair: bool = False) -> xr.DataArray:
    """CRPS per point (the member dim is reduced)."""
    m = ensemble.sizes[MEMBER]
    skill = abs(ensemble - observation).mean(MEMBER)
    pairs = abs(ensemble - ensemble.rename({MEMBER: "other"})).sum([MEMBER, "other"])
    if fair:
        if m < 2:
            raise ValueError("the fair CRPS needs at least two members")
        return skill - pairs / (2 * m * (m - 1))
    return skill - pairs / (2 * m * m)


def spread_skill_ratio(ensemble: xr.DataArray, observation: xr.DataArray) -> xr.DataArray:
    """sqrt((M+1)/M) * spread / RMSE of the ensemble mean, area-weighted, over all other dims."""
    m = ensemble.sizes[MEMBER]
    w = area_weights(observation)
    variance = ensemble.var(MEMBER, ddof=1)
    error = (ensemble.mean(MEMBER) - observation) ** 2
    spread = np.sqrt((variance * w).sum(w.dims).mean())
    skill = np.sqrt((error * w).sum(w.dims).mean())
    return np.sqrt((m + 1) / m) * spread / skill


def rank_histogram(ensemble: xr.DataArray, observation: xr.DataArray, seed: int = 0) -> xr.DataArray:
    """Counts of the observation's rank 0..M among the members, ties broken at random."""
    m = ensemble.sizes[MEMBER]
    members = np.moveaxis(np.asarray(ensemble.transpose(MEMBER, ...).values), 0, -1).reshape(-1, m)
    first = ensemble.isel({MEMBER: 0})
    obs = np.asarray(observation.broadcast_like(first).transpose(*first.dims).values).reshape(-1)
    below = (members < obs[:, None]).sum(axis=1)
    ties = (members == obs[:, None]).sum(axis=1)
    rng = np.random.default_rng(seed)
    ranks = below + np.floor(rng.random(len(obs)) * (ties + 1)).astype(int)
    counts = np.bincount(ranks, minlength=m + 1)
    return xr.DataArray(counts, dims=("rank",), coords={"rank": np.arange(m + 1)})
