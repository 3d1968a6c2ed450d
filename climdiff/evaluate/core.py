"""What every metric family shares: its settings, its result (headline numbers with bootstrap
intervals, and the small data its figure needs), block summaries and the interval helper.

Memory stays bounded whatever the run length: each family reduces a store, lazily with dask, to
small per-block summaries (``block_days`` consecutive days, members averaged), and every headline
number is a function of those block summaries. Its confidence interval is a BCa bootstrap over
the blocks (:mod:`climdiff.evaluate.bootstrap`). Blocks of a month or more are longer than the
decorrelation time of daily fields, so treating them as independent is fair; annual-mean drift
resamples years instead, and forecasts resample starts. The reference gets the same treatment,
so its numbers carry their own sampling uncertainty.

A family returns :class:`FamilyResult` whose content is plain JSON (it is cached on disk for
resume, and the figures are drawn from it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from climdiff.evaluate.bootstrap import bootstrap_ci

WET_DAY_THRESHOLD = 1.0  # mm/day: the ETCCDI wet-day rule RR >= 1 mm


@dataclass(frozen=True)
class Settings:
    """How the numbers are computed (recorded in results.json)."""

    block_days: int = 30
    """Consecutive days per block summary (longer than the decorrelation time)."""
    n_resamples: int = 200
    confidence: float = 0.95
    seed: int = 0
    """Of the bootstrap and of rank-histogram tie-breaking."""
    eof_samples: int = 500
    """Days per source the EOFs use, spread evenly."""
    eof_resamples: int = 30
    hovmoller_days: int = 365
    """Days of the Hovmoller diagram drawn (the distances use all days)."""
    wet_threshold: float = WET_DAY_THRESHOLD
    """Wet-day threshold in the field's units."""


@dataclass
class Headline:
    """One number of one source: the point estimate, its bootstrap interval and how it was formed."""

    family: str
    metric: str
    source: str
    value: float
    low: float | None = None
    high: float | None = None
    units: str = ""
    ideal: float | None = None
    lead: int | None = None
    interval: str | None = None


@dataclass
class FamilyResult:
    family: str
    headlines: list[Headline] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        headlines = [asdict(h) for h in self.headlines]
        return {"family": self.family, "headlines": headlines, "plot": self.plot, "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FamilyResult:
        return cls(data["family"], [Headline(**h) for h in data["headlines"]], data["plot"], data["notes"])


def members_pooled(values: xr.DataArray) -> xr.DataArray:
    """The mean over members, if there are any (a stopped member's missing days are skipped)."""
    return values.mean("member") if "member" in values.dims else values


def blocks(series: xr.DataArray | xr.Dataset, days: int) -> xr.DataArray | xr.Dataset:
    """Means over consecutive blocks of ``days`` along time (dim ``block``; a short tail is dropped,
    and a series shorter than one block is one block)."""
    days = min(days, series.sizes["time"])
    return series.coarsen(time=days, boundary="trim").mean().rename(time="block")


def map_for_plot(values: xr.DataArray) -> list:
    """A map as nested lists, rows south to north whatever the store's latitude order (the
    figures draw row 0 at the bottom)."""
    return (values.sortby("lat") if "lat" in values.dims else values).values.tolist()


Numbers = tuple[float, float | None, float | None, str | None]


def intervals(
    stat: Callable[[Any], xr.DataArray], data: Any, dim: str, s: Settings, resamples: int | None = None
) -> list[Numbers]:
    """(estimate, low, high, method) for each element of a scalar or 1-D statistic of ``data``,
    bootstrapped along ``dim`` in one pass; no interval from fewer than two samples."""
    if data.sizes[dim] < 2:
        values = np.atleast_1d(np.asarray(stat(data), dtype=float))
        return [(float(v), None, None, None) for v in values]
    ci = bootstrap_ci(stat, data, dim, n_resamples=resamples or s.n_resamples, confidence=s.confidence, seed=s.seed)
    columns = [np.atleast_1d(np.asarray(ci[k])) for k in ("estimate", "low", "high", "method")]
    return [(float(e), float(lo), float(hi), str(m)) for e, lo, hi, m in zip(*columns, strict=True)]


def headline(family: str, metric: str, source: str, numbers: Numbers, **extra: Any) -> Headline:
    value, low, high, method = numbers
    return Headline(family, metric, source, value, low, high, interval=method, **extra)
