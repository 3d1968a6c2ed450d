"""Ensemble calibration of forecast stores (the ``calibration`` family): CRPS (standard and fair),
spread-skill ratio, RMSE of the ensemble mean, rank histograms.

* CRPS, standard (empirical-CDF) estimator: mean|X - y| - (1/2M^2) sum_ij |X_i - X_j|.
* CRPS, fair estimator: the same with 1/(2M(M-1)) over i != j; unbiased for the CRPS of the
  distribution the members are drawn from, whatever M (the standard one favours small,
  underdispersed ensembles).
* Spread-skill ratio: sqrt((M+1)/M) * spread / skill, spread = sqrt(weighted mean of the
  unbiased ensemble variance), skill = RMSE of the ensemble mean; 1 for a calibrated ensemble.
  Both means run over cells (area weights) and the averaged dim (starts), before the roots.
* Rank histogram: the rank of the observation among the members (0..M), ties (e.g. dry days)
  broken at random so that a calibrated ensemble gives a flat histogram.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climdiff.evaluate.core import FamilyResult, Settings, headline, intervals
from climdiff.evaluate.sources import Source
from climdiff.evaluate.weights import area_mean

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


def ensemble_scores(ensemble: xr.DataArray, observation: xr.DataArray) -> xr.Dataset:
    """Area means per sample (e.g. start and lead): ``crps_fair``, ``crps``, ``variance`` (the
    unbiased ensemble variance) and ``error2`` (the squared error of the ensemble mean); every
    score of this module is a function of their means over samples."""
    return xr.Dataset(
        {
            "crps_fair": area_mean(crps_ensemble(ensemble, observation, fair=True)),
            "crps": area_mean(crps_ensemble(ensemble, observation)),
            "variance": area_mean(ensemble.var(MEMBER, ddof=1)),
            "error2": area_mean((ensemble.mean(MEMBER) - observation) ** 2),
        }
    )


def spread_skill(scores: xr.Dataset, dim: str | list[str], members: int) -> xr.DataArray:
    """sqrt((M+1)/M) * spread / RMSE of the ensemble mean from :func:`ensemble_scores` averaged over ``dim``."""
    return np.sqrt((members + 1) / members * scores["variance"].mean(dim) / scores["error2"].mean(dim))


def ensemble_mean_rmse(scores: xr.Dataset, dim: str | list[str]) -> xr.DataArray:
    """RMSE of the ensemble mean from :func:`ensemble_scores` averaged over ``dim``."""
    return np.sqrt(scores["error2"].mean(dim))


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


def _verification(reference: Source, run: Source) -> tuple[xr.DataArray, xr.DataArray, int]:
    """The forecasts whose every lead the reference holds, the matching reference days, and how
    many starts were dropped."""
    valid = run.field["valid_time"].compute()
    times = {t: i for i, t in enumerate(reference.field["time"].values)}
    keep = [s for s in range(valid.sizes["init_time"]) if all(t in times for t in valid.values[s])]
    positions = np.array([[times[t] for t in valid.values[s]] for s in keep], dtype=int).reshape(len(keep), -1)
    index = xr.DataArray(positions, dims=("init_time", "lead"))
    observed = reference.field.isel(time=index)
    forecast = run.field.isel(init_time=keep)
    observed = observed.assign_coords(init_time=forecast["init_time"], lead=forecast["lead"])
    return forecast, observed.drop_vars("time", errors="ignore"), valid.sizes["init_time"] - len(keep)


def calibration_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Per lead: fair and standard CRPS, spread-skill ratio, RMSE of the ensemble mean (bootstrap
    over starts); rank histograms pooled over leads."""
    out = FamilyResult("calibration")
    curves: dict[str, dict[str, list[float | None]]] = {}
    ranks = {}
    for run in runs:
        forecast, observed, dropped = _verification(reference, run)
        if dropped:
            out.notes.append(f"{run.label}: {dropped} start(s) dropped, the reference lacks some of their valid days")
        if forecast.sizes["init_time"] == 0:
            raise ValueError(f"{run.label}: no start has all its valid days in the reference")
        if run.members < 2:
            raise ValueError(f"{run.label} has one member; calibration needs an ensemble")
        per_start = ensemble_scores(forecast, observed).compute()
        statistics = {
            "crps_fair": lambda d: d["crps_fair"].mean("init_time"),
            "crps": lambda d: d["crps"].mean("init_time"),
            "spread_skill": lambda d, m=run.members: spread_skill(d, "init_time", m),
            "rmse": lambda d: ensemble_mean_rmse(d, "init_time"),
        }
        curves[run.label] = {}
        for metric, stat in statistics.items():
            per_lead = intervals(stat, per_start, "init_time", s)
            curves[run.label][metric] = [v[0] for v in per_lead]
            ideal = 1.0 if metric == "spread_skill" else None
            for lead, value in zip(per_start["lead"].values, per_lead, strict=True):
                out.headlines.append(headline("calibration", metric, run.label, value, lead=int(lead), ideal=ideal))
        ranks[run.label] = rank_histogram(forecast.compute(), observed.compute(), seed=s.seed).values.tolist()
    out.notes.append("crps_fair: the fair (unbiased, M-independent) estimator; crps: the standard empirical-CDF one")
    leads = [int(v) for v in runs[0].field["lead"].values] if runs else []
    out.plot = {"leads": leads, "curves": curves, "rank_histograms": ranks}
    return out
