"""Issue 11's measured targets read off an evaluation: one row per target with the reference's
value, each run's value and whether it meets the target or by how much it misses.

    python benchmarks/latlon_targets.py EVALUATION_DIR [--guided LABEL] [--unguided LABEL]

EVALUATION_DIR is the output folder of `climdiff evaluate` (its results.json); the runs shown are
the labels given (default: every run of the evaluation). Every figure comes from results.json,
so each formula has its one home in its evaluate family; this script only compares:

* autocorrelation at lags 1-10 of anomalies from the reference's seasonal climatology: within
  0.05 of the reference's;
* area-mean std (of the daily area mean), wet-day frequency: within 10 % of the reference's;
* exceedance frequency of the reference's local 95th percentile: 0.05 +- 0.01;
* zonal spectrum: within 10 % of the reference's at every wavenumber carrying 1 % of its variance
  (the largest relative error over those wavenumbers);
* seasonal amplitude (within 10 %) and phase (within 10 days, around the calendar's year) of the
  northern-hemisphere mean in the first and in the last decade of a run, against the reference's
  whole record; a run shorter than 20 complete years shows its whole record instead, marked so;
* annual-mean global-mean drift: below 1 % of the reference's mean per century.

The std over cells and days together (the bias family's ``std``) is shown below the area-mean
std, since "area-mean std" may be read as either.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

YEAR_DAYS = {"360_day": 360.0, "noleap": 365.0, "365_day": 365.0, "all_leap": 366.0, "366_day": 366.0}
MEAN_YEAR_DAYS = 365.2425  # standard, gregorian, proleptic_gregorian, julian (near enough for a phase)


@dataclass(frozen=True)
class Target:
    """One row: ``metric`` of each run against the reference's ``reference_metric`` (or a fixed
    ``ideal``), with ``deviation`` returning how far a run lies from it, met at ``tolerance`` or less."""

    name: str
    metric: str
    tolerance: float
    deviation: str  # "absolute", "relative", "ideal" or "phase"
    units: str = ""
    reference_metric: str | None = None
    ideal: float | None = None
    fallback: str | None = None
    """The run's metric to show when ``metric`` is absent (a run too short for decades)."""


def seasonal_targets(span: str) -> list[Target]:
    return [
        Target(
            f"seasonal amplitude, {span} decade",
            f"seasonal_amplitude_{span}_decade",
            0.10,
            "relative",
            reference_metric="seasonal_amplitude",
            fallback="seasonal_amplitude",
        ),
        Target(
            f"seasonal phase, {span} decade",
            f"seasonal_phase_{span}_decade",
            10.0,
            "phase",
            units="days",
            reference_metric="seasonal_phase",
            fallback="seasonal_phase",
        ),
    ]


TARGETS = [
    *(Target(f"autocorrelation lag {lag}", f"autocorrelation_lag{lag}", 0.05, "absolute") for lag in range(1, 11)),
    Target("area-mean std", "area_mean_std", 0.10, "relative"),
    Target("(std over cells and days)", "std", 0.10, "relative"),
    Target("wet-day frequency", "wet_day_frequency", 0.10, "relative"),
    Target("p95 exceedance frequency", "exceedance_frequency_p95", 0.01, "ideal", ideal=0.05),
    Target("zonal spectrum, max relative error", "spectral_max_relative_error", 0.10, "ideal", ideal=0.0),
    *seasonal_targets("first"),
    *seasonal_targets("last"),
    Target("drift (% of mean per century)", "drift_percent_per_century", 1.0, "ideal", units="%", ideal=0.0),
]


def circular(difference: float, year: float) -> float:
    """``difference`` in days taken around the year, in [-year / 2, year / 2)."""
    return (difference + year / 2) % year - year / 2


def deviations(year: float) -> dict[str, Callable[[float, float], float]]:
    """How far a run's value lies from the reference's (or the ideal), in the tolerance's units."""
    return {
        "absolute": lambda run, ref: run - ref,
        "relative": lambda run, ref: run / ref - 1,
        "ideal": lambda run, ref: run - ref,
        "phase": lambda run, ref: circular(run - ref, year),
    }


def number(value: float, units: str = "") -> str:
    return f"{value:.3g}{' ' + units if units else ''}"


def verdict(target: Target, deviation: float) -> str:
    """'met' or 'missed by' the excess over the tolerance (percentage points for relative ones)."""
    excess = abs(deviation) - target.tolerance
    if excess <= 0:
        return "met"
    if target.deviation == "relative":
        return f"missed by {100 * excess:.3g} pp"
    return f"missed by {number(excess, target.units)}"


def tolerance_text(target: Target) -> str:
    if target.deviation == "relative":
        return f"within {target.tolerance:.0%}"
    if target.ideal is not None and target.ideal != 0:
        return f"{target.ideal:g} +- {target.tolerance:g}"
    if target.ideal is not None:
        return f"below {number(target.tolerance, target.units)}"
    return f"within {number(target.tolerance, target.units)}"


def table(document: dict[str, Any], runs: list[str]) -> list[str]:
    """The targets table as markdown lines."""
    values = {(e["metric"], e["source"]): e["value"] for e in document["metrics"]}
    reference = document["reference"]["label"]
    year = YEAR_DAYS.get(document["reference"].get("calendar", ""), MEAN_YEAR_DAYS)
    how_far = deviations(year)
    lines = [
        "| target | tolerance | reference | " + " | ".join(runs) + " |",
        "|---|---|---|" + "---|" * len(runs),
    ]
    for target in TARGETS:
        shown = values.get((target.reference_metric or target.metric, reference))
        goal = target.ideal if target.ideal is not None else shown
        cells = ["-" if shown is None else number(shown, target.units)]
        for run in runs:
            metric, note = target.metric, ""
            if (metric, run) not in values and target.fallback and (target.fallback, run) in values:
                metric, note = target.fallback, " (whole run)"
            value = values.get((metric, run))
            if value is None or goal is None:
                cells.append("n/a")
                continue
            deviation = how_far[target.deviation](value, goal)
            cells.append(f"{number(value, target.units)}{note}: {verdict(target, deviation)}")
        lines.append(f"| {target.name} | {tolerance_text(target)} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("evaluation", type=Path, help="output folder of `climdiff evaluate`")
    parser.add_argument("--guided", help="label of the guided run")
    parser.add_argument("--unguided", help="label of the unguided run")
    args = parser.parse_args()
    document = json.loads((args.evaluation / "results.json").read_text())
    labels = [r["label"] for r in document["runs"]]
    runs = [label for label in (args.guided, args.unguided) if label] or labels
    unknown = [label for label in runs if label not in labels]
    if unknown:
        parser.error(f"no run labelled {', '.join(unknown)} in {args.evaluation} (it has {', '.join(labels)})")
    print("\n".join(table(document, runs)))


if __name__ == "__main__":
    main()
