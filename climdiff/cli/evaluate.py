"""`climdiff evaluate`: bias, spectra, temporal consistency, extremes, wet days, EOFs, stability and
calibration of runs against a reference, as results.json, one PNG per family and report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import dask
import typer

from climdiff.cli.common import OutPath, Overwrite, Quiet, command_line
from climdiff.evaluate.core import WET_DAY_THRESHOLD
from climdiff.evaluate.families import FAMILIES, Settings
from climdiff.evaluate.runner import evaluate as run_evaluation
from climdiff.runtime import configure_threads


def _names(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def evaluate(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Emulation stores (climdiff emulate) and/or forecast stores (emulate --init-from).", show_default=False
        ),
    ],
    reference: Annotated[
        Path,
        typer.Option(
            help="The reference: a store made by `climdiff data` (or an emulation store).", show_default=False
        ),
    ],
    out: OutPath,
    labels: Annotated[
        str | None,
        typer.Option(help="Comma-separated names of the runs in tables and plots (default: the store names)."),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated families to compute (default: all that apply): {', '.join(FAMILIES)}."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="Part of a training-data reference to compare with: all, train, validation or test.")
    ] = "all",
    block_days: Annotated[
        int, typer.Option(help="Days per bootstrap block (longer than the decorrelation time).", min=1)
    ] = 30,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples per interval.", min=10)] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of rank-histogram tie-breaking.")] = 0,
    wet_threshold: Annotated[
        float, typer.Option(help="Wet-day threshold in the field's units (wet_days family).")
    ] = WET_DAY_THRESHOLD,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Address of a running dask.distributed scheduler, e.g. tcp://host:8786 (default: local threads)."
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="Threads for the local dask computation and torch (default: SLURM_CPUS_PER_TASK, else all cores).",
            min=1,
        ),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Evaluate runs against a reference: results.json, a PNG per metric family and report.md in --out.

    Re-running the same command after an interruption reuses the families already computed.
    """
    n = configure_threads(threads)
    if scheduler is None:
        dask.config.set(scheduler="threads", num_workers=n)
    settings = Settings(block_days=block_days, n_resamples=resamples, seed=seed, wet_threshold=wet_threshold)
    done = run_evaluation(
        runs,
        reference,
        out,
        labels=_names(labels),
        metrics=_names(metrics),
        split=split,
        settings=settings,
        scheduler=scheduler,
        overwrite=overwrite,
        quiet=quiet,
        command=command_line(),
    )
    typer.echo(f"wrote {done / 'results.json'}, {done / 'report.md'} and the figures")
