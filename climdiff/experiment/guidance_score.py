"""The mismatch score `climdiff tune-guidance` minimises (docs/tune_guidance.md, "The score").

A candidate's short forecast ensemble (starts x members x days, from validation days) is compared
with the reference's validation split on three things the guidance strength trades against one
another:

* the autocorrelation at lags 1..10 (:func:`climdiff.evaluate.temporal.lagged_products`, anomalies
  from the overall mean, area-weighted; the chains are pooled like the members of a run);
* the standard deviation: the root of the same helper's lag-0 product (area-weighted mean square of
  the anomalies), so both numbers come from one pass;
* the forecast spread-skill ratio at leads 1..10 (:mod:`climdiff.evaluate.calibration`), whose
  ideal is 1 whatever the reference.

Each mismatch is divided by its tolerance in issue 12's acceptance targets (autocorrelation within
0.05 at every lag, std within 5 %, spread-skill within 0.9..1.1): those tolerances say how much a
unit of each mismatch matters, so weighting by their inverse squares makes the terms commensurate,
and a candidate that sits exactly at every tolerance scores 1. The score is the mean of the three
squared, scaled mismatches (lags and leads enter as root mean squares, so a long lag list does not
outweigh the std).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from climdiff.evaluate.calibration import MEMBER, ensemble_scores, spread_skill
from climdiff.evaluate.temporal import LAGS, autocorrelation_of, lagged_products

# Issue 12's acceptance tolerances, one per matched quantity (the score's unit).
TOLERANCES = {"acf": 0.05, "std": 0.05, "spread_skill": 0.10}
CALIBRATION_LEADS = 10  # spread-skill is matched at leads 1..10, as the target states


@dataclass(frozen=True)
class TemporalStatistics:
    """Autocorrelation at lags 1..10 and standard deviation of a field (physical units)."""

    acf: list[float]
    std: float


def temporal_statistics(field: xr.DataArray) -> TemporalStatistics:
    """Of ``field`` with dims ([member,] time, spatial): chains of a member dim are pooled."""
    products = lagged_products(field, LAGS).compute()
    acf = autocorrelation_of(products).values
    return TemporalStatistics([float(v) for v in acf], float(np.sqrt(products.sel(lag=0).mean("time"))))


@dataclass(frozen=True)
class CandidateStatistics:
    """What a candidate's forecast ensemble gives: its temporal statistics and its spread-skill ratio
    per lead (1..10), and how many chains stopped (blow-ups)."""

    acf: list[float]
    std: float
    spread_skill: list[float]
    stopped: int


def forecast_statistics(forecast: xr.DataArray, observed: xr.DataArray) -> CandidateStatistics:
    """``forecast`` (init_time, lead, member, spatial) against ``observed`` (init_time, lead, spatial).

    For the temporal statistics every (start, member) chain is one member of a run whose time is
    the lead; the spread-skill ratio is over starts, per lead.
    """
    starts, leads, members = (forecast.sizes[d] for d in ("init_time", "lead", MEMBER))
    spatial = forecast.dims[3:]
    chains = xr.DataArray(
        np.asarray(forecast.transpose("init_time", MEMBER, "lead", *spatial).values).reshape(
            starts * members, leads, *(forecast.sizes[d] for d in spatial)
        ),
        dims=(MEMBER, "time", *spatial),
        coords={d: forecast[d] for d in spatial},
    )
    temporal = temporal_statistics(chains)
    first = {"lead": slice(0, min(CALIBRATION_LEADS, leads))}
    scores = ensemble_scores(forecast.isel(first), observed.isel(first)).compute()
    ratio = spread_skill(scores, "init_time", members).values
    stopped = int(np.isnan(chains.isel(time=-1)).any(spatial).sum())
    return CandidateStatistics(temporal.acf, temporal.std, [float(v) for v in ratio], stopped)


def _rms(values: list[float]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def mismatch(reference: TemporalStatistics, candidate: CandidateStatistics) -> dict[str, Any]:
    """The three mismatches in tolerance units and the score (their mean square); a candidate with a
    missing number (every chain of it stopped) scores infinity."""
    terms = {
        "acf": _rms([c - r for c, r in zip(candidate.acf, reference.acf, strict=True)]) / TOLERANCES["acf"],
        "std": (candidate.std / reference.std - 1.0) / TOLERANCES["std"],
        "spread_skill": _rms([s - 1.0 for s in candidate.spread_skill]) / TOLERANCES["spread_skill"],
    }
    score = sum(t * t for t in terms.values()) / len(terms)
    return {"score": score if math.isfinite(score) else math.inf, "terms": terms, "statistics": asdict(candidate)}
