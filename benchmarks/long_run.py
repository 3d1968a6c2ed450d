"""Stability of a long emulation (a century run): the field's yearly statistics and their trends.

    python benchmarks/long_run.py run.zarr [--reference data.zarr]

Per complete calendar year of the run (members pooled; area-weighted on lat-lon grids): the mean,
the std over cells and days around that year's mean, and the largest |value|. Printed: the
first and the last decade (or the first and last year, in runs of fewer than 20 years), the range
over all years, and the linear trend of each per century (`climdiff evaluate`'s drift formula);
then the run's redrawn days and stopped members (from the store), and whether every value is
finite. With ``--reference`` (a data store) the mean of its complete years is shown beside, as
the yardstick for the levels.

`climdiff evaluate --metrics stability` gives the annual-mean drift with intervals; this script
adds the spread and the extremes per year, which are what blows up first in an unstable emulator.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import xarray as xr

from climdiff.evaluate.sources import open_source
from climdiff.evaluate.stability import linear_drift
from climdiff.evaluate.weights import area_mean
from climdiff.rollout.info import describe_rollout_store
from climdiff.zarr_io import EMULATION_KIND, TRAINING_KIND

DECADE = 10


def yearly(field: xr.DataArray) -> xr.Dataset:
    """Mean, std around the year's mean and max |value| per complete calendar year (members
    pooled; a stopped member's missing days are skipped)."""
    time = field["time"]
    days = time.groupby("time.year").count()
    complete = np.flatnonzero((days >= time.dt.days_in_year.groupby("time.year").max()).values)
    first = area_mean(field).groupby("time.year").mean(...)
    second = area_mean(field**2).groupby("time.year").mean(...)
    stats = xr.Dataset(
        {
            "mean": first,
            "std": np.sqrt(np.maximum(second - first**2, 0.0)),
            "max_abs": abs(field).groupby("time.year").max(...),
        }
    )
    return stats.isel(year=complete).compute()


def span(stats: xr.Dataset, years: slice) -> xr.Dataset:
    return stats.isel(year=years).mean("year")


def report(stats: xr.Dataset, reference: xr.Dataset | None) -> list[str]:
    n = stats.sizes["year"]
    if n == 0:
        return ["no complete calendar year in the run"]
    head, tail = (slice(0, DECADE), slice(n - DECADE, n)) if n >= 2 * DECADE else (slice(0, 1), slice(n - 1, n))
    label = "decade" if n >= 2 * DECADE else "year"
    columns = ["mean", "std", "max_abs"]
    lines = [f"{n} complete years ({int(stats.year[0])}-{int(stats.year[-1])})", ""]
    lines += ["| statistic | first " + label + " | last " + label + " | range over years | trend per century |"]
    lines += ["|---|---|---|---|---|"]
    first, last = span(stats, head), span(stats, tail)
    for name in columns:
        values = stats[name]
        trend = float(linear_drift(values)) if n >= 3 else math.nan
        lines.append(
            f"| {name} | {float(first[name]):.4g} | {float(last[name]):.4g} | "
            f"{float(values.min()):.4g} to {float(values.max()):.4g} | {trend:+.3g} |"
        )
    if reference is not None and reference.sizes["year"]:
        ref = reference.mean("year")
        levels = ", ".join(f"{name} {float(ref[name]):.4g}" for name in columns)
        lines += ["", f"reference, mean of its {reference.sizes['year']} complete years: {levels}"]
    elif reference is not None:
        lines += ["", "reference: no complete calendar year"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an emulation store (climdiff emulate)")
    parser.add_argument("--reference", type=Path, default=None, help="a data store, for the levels")
    args = parser.parse_args()
    run = open_source(args.run, "run", allowed=(EMULATION_KIND,)).field
    reference = None
    if args.reference is not None:
        reference = yearly(open_source(args.reference, "reference", allowed=(TRAINING_KIND,)).field)
    for line in report(yearly(run), reference):
        print(line)
    info = describe_rollout_store(args.run)
    finite = bool(np.isfinite(run).all().compute())
    print(
        f"\nredrawn days: {info['redraws']}; stopped members: {info['stopped_members']}; every value finite: {finite}"
    )


if __name__ == "__main__":
    main()
