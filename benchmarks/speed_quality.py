"""Speed at equal quality (issue 12, point 5): cost per simulated day of a bundle's sampler settings
against the quality they reach, scored on the calibration targets of issue 12's point 4.

    python benchmarks/speed_quality.py --checkpoint vdm.bundle --data turb32.zarr \
        --work sq-work --config steps=20 --config steps=12 --config steps=8

Each ``--config`` is a comma-separated list of SamplerConfig changes to the bundle's settings
(as in ``benchmarks/sampler_quality.py``). For each, in ``WORK/<config>/``: a long rollout
(``--members`` x ``--days``), a forecast set (``--starts`` x ``--forecast-members`` x ``--leads``)
from the data's test split, and ``climdiff evaluate`` of both against the test split, as
``climdiff experiment compare`` does. Every output is a climdiff store or evaluation, so an
interrupted benchmark continues where it stopped; complete ones are kept.

The cost is the wall time per day of a fresh 1-member run of ``--cost-days`` days on one thread
(the unit of "100 years of one member"), measured anew each time the script runs. The table
gives, per setting: seconds per day and hours per 100 years, then the point-4 figures (std
relative to the reference's, the largest |acf - reference acf| over lags 1-10, the exceedance
frequency of the reference's local 95th percentile, the spread-skill range over the leads, the
mean absolute bias of the mean map), the long run's members that blew up and stopped (a setting
with any meets no target), and how many of the targets are met: four, and a fifth with
``--mab-limit`` (point 4's "mean absolute bias no worse than the VDM's" needs the VDM's figure).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import zarr
from sampler_quality import parse_changes  # this folder is on the path of a script run from it

from climdiff.bundle import Bundle, load_bundle
from climdiff.evaluate.core import Settings
from climdiff.evaluate.runner import evaluate, read_evaluation_header
from climdiff.resume import is_complete
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.forecast import forecast, plan_forecast
from climdiff.sampling.config import SamplerConfig
from climdiff.zarr_io import read_header, store_meta

LAGS = range(1, 11)


def cost_per_day(bundle: Bundle, sampler: SamplerConfig, days: int) -> float:
    """Seconds per day of a fresh 1-member run on one thread (the networks' tracing included, as
    a user's run pays it)."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        emulate(bundle, Path(tmp) / "run.zarr", EmulateConfig(days=days, sampler=sampler), quiet=True)
        return (time.perf_counter() - t0) / days


def stopped_members(store: Path) -> int:
    """Members of a finished rollout that blew up and stopped."""
    return int(store_meta(zarr.open_group(str(store), mode="r").attrs)["stopped_members"])


def run_setting(bundle: Bundle, sampler: SamplerConfig, data: Path, folder: Path, args: argparse.Namespace) -> int:
    """The long rollout, the forecast set and their evaluations of one setting (resumable); returns
    the long rollout's stopped members. When every member blew up there is nothing to score, and
    neither the forecasts nor the evaluations are made."""
    folder.mkdir(parents=True, exist_ok=True)
    long, fc = folder / "long.zarr", folder / "forecast.zarr"
    torch.set_num_threads(args.threads)
    if not is_complete(read_header(long)):
        config = EmulateConfig(days=args.days, members=args.members, sampler=sampler, time_chunk=73)
        emulate(bundle, long, config, quiet=args.quiet)
    stopped = stopped_members(long)
    if stopped == args.members:
        return stopped
    if not is_complete(read_header(fc)):
        rollout = EmulateConfig(days=args.leads, members=args.forecast_members, sampler=sampler, time_chunk=73)
        plan = plan_forecast(bundle, data, rollout, starts=args.starts, start_dates=None)
        forecast(bundle, data, fc, plan, quiet=args.quiet)
    settings = Settings(block_days=args.block_days, n_resamples=args.resamples, seed=0)
    for name, store, metrics in (
        ("climate", long, ["bias", "temporal", "extremes"]),
        ("forecasts", fc, ["calibration"]),
    ):
        if not is_complete(read_evaluation_header(folder / name)):
            evaluate(
                [store],
                data,
                folder / name,
                labels=["run"],
                metrics=metrics,
                split="test",
                settings=settings,
                quiet=args.quiet,
            )
    return stopped


def figures(folder: Path) -> dict[str, Any]:
    """The point-4 figures of one setting, read from its evaluations' results.json."""
    values: dict[tuple[str, str, Any], float] = {}
    reference = ""
    for name in ("climate", "forecasts"):
        document = json.loads((folder / name / "results.json").read_text())
        reference = document["reference"]["label"] if name == "climate" else reference
        for entry in document["metrics"]:
            values[(entry["metric"], entry["source"], entry.get("lead"))] = entry["value"]

    def value(metric: str, source: str = "run", lead: Any = None) -> float:
        found = values[(metric, source, lead)]  # None where every block was NaN (members stopped)
        return math.nan if found is None else found

    leads = sorted(lead for metric, source, lead in values if metric == "spread_skill" and source == "run")
    spread_skill = [value("spread_skill", lead=lead) for lead in leads]
    return {
        "std_relative": value("std") / value("std", reference) - 1,
        "acf_max_error": max(
            abs(value(f"autocorrelation_lag{k}") - value(f"autocorrelation_lag{k}", reference)) for k in LAGS
        ),
        "exceedance": value("exceedance_frequency_p95"),
        "spread_skill": (min(spread_skill), max(spread_skill)),
        "mab": value("mean_absolute_bias"),
    }


NOT_SCORED = {
    "std_relative": math.nan,
    "acf_max_error": math.nan,
    "exceedance": math.nan,
    "spread_skill": (math.nan, math.nan),
    "mab": math.nan,
}


def cell(value: float, spec: str, units: str = "") -> str:
    """A table cell; '-' for a figure that could not be scored."""
    return "-" if math.isnan(value) else f"{value:{spec}}{units}"


def targets_met(f: dict[str, Any], mab_limit: float | None) -> tuple[int, int]:
    """(met, counted) of point 4's targets."""
    if f["stopped"]:
        return 0, 4 + (mab_limit is not None)
    checks = [
        abs(f["std_relative"]) <= 0.05,
        f["acf_max_error"] <= 0.05,
        abs(f["exceedance"] - 0.05) <= 0.01,
        0.9 <= f["spread_skill"][0] and f["spread_skill"][1] <= 1.1,
    ]
    if mab_limit is not None:
        checks.append(f["mab"] <= mab_limit)
    return sum(checks), len(checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a bundle (guided, unguided or VDM)")
    parser.add_argument("--data", type=Path, required=True, help="the training store the bundle was made from")
    parser.add_argument("--work", type=Path, required=True, help="folder for the runs and evaluations (resumable)")
    parser.add_argument("--config", action="append", default=[], help="e.g. steps=10,S_churn=0")
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--forecast-members", type=int, default=5)
    parser.add_argument("--leads", type=int, default=10)
    parser.add_argument("--block-days", type=int, default=30)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--cost-days", type=int, default=100)
    parser.add_argument("--mab-limit", type=float, default=None, help="the VDM's mean absolute bias (point 4)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the rollouts (the cost uses one)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    bundle = load_bundle(args.checkpoint)
    rows = []
    for text in args.config or [""]:
        sampler = bundle.sampler.replace(**parse_changes(text))
        folder = args.work / (text.replace(",", "_").replace("=", "") or "bundle")
        stopped = run_setting(bundle, sampler, args.data, folder, args)
        found = {**(figures(folder) if stopped < args.members else NOT_SCORED), "stopped": stopped}
        rows.append((text or "bundle settings", cost_per_day(bundle, sampler, args.cost_days), found))
    print(
        "| setting | s/day | h/100 y | std | max acf error (1-10) | p95 exceedance | spread-skill | MAB | stopped | met |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for text, per_day, f in rows:
        met, counted = targets_met(f, args.mab_limit)
        lo, hi = f["spread_skill"]
        figures_cells = [
            cell(100 * f["std_relative"], "+.1f", " %"),
            cell(f["acf_max_error"], ".3f"),
            cell(f["exceedance"], ".3f"),
            "-" if math.isnan(lo) else f"{lo:.2f}-{hi:.2f}",
            cell(f["mab"], ".3f"),
        ]
        print(
            f"| {text} | {per_day:.3f} | {per_day * 36500 / 3600:.2f} | "
            + " | ".join(figures_cells)
            + f" | {f['stopped']} | {met}/{counted} |"
        )


if __name__ == "__main__":
    main()
