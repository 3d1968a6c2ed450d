"""`climdiff experiment compare`: the paper's comparison of the guided IDM, the unguided IDM and
the VDM under one protocol, resumable stage by stage (docs/experiment.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import dask
import typer

from climdiff.cli.common import Device, OutPath, Overwrite, Quiet, Solver, command_line
from climdiff.experiment.protocol import resolve_protocol
from climdiff.experiment.stages import run_compare
from climdiff.runtime import configure_threads

app = typer.Typer(
    help="Studies that chain training, emulation and evaluation.", no_args_is_help=True, add_completion=False
)


def _option(text: str) -> typer.models.OptionInfo:
    """An option without a shown default (the preset decides it)."""
    return typer.Option(help=text, show_default=False)


@app.command()
def compare(
    data: Annotated[Path, typer.Option(help="Training store made by `climdiff data`.", show_default=False)],
    out: OutPath,
    preset: Annotated[
        str, typer.Option(help="Protocol: tiny (tests, about a minute) or small (issue 12's CPU protocol).")
    ] = "small",
    idm: Annotated[Path | None, _option("A finished IDM training run to use instead of training one.")] = None,
    disc: Annotated[Path | None, _option("A finished discriminator training run to use.")] = None,
    vdm: Annotated[Path | None, _option("A finished VDM training run to use.")] = None,
    train_steps: Annotated[int | None, _option("Optimiser steps of each of the three models.")] = None,
    sampler_steps: Annotated[int | None, _option("Sampler steps per day.")] = None,
    guidance: Annotated[float | None, _option("Guidance strength lambda of the guided method.")] = None,
    guidance_sigma_max: Annotated[float | None, _option("Guide only up to this noise level.")] = None,
    churn: Annotated[
        float | None, _option("Sampler S_churn of all three methods (default 55; the lat-lon default uses 0).")
    ] = None,
    solver: Solver = None,
    long_years: Annotated[int | None, _option("Length of the long runs in years (small: 10).")] = None,
    long_days: Annotated[int | None, _option("Length of the long runs in days (instead of years).")] = None,
    long_members: Annotated[int | None, _option("Members of each method's long run (small: 4).")] = None,
    century_years: Annotated[int | None, _option("Length of the century runs in years (small: 100).")] = None,
    century_days: Annotated[int | None, _option("Length of the century runs in days.")] = None,
    century_members: Annotated[
        int | None, _option("Members of the guided and VDM century runs (small: 2; 0 skips them).")
    ] = None,
    starts: Annotated[int | None, _option("Forecast starts, spread over the test split (small: 20).")] = None,
    members: Annotated[int | None, _option("Members of each forecast (small: 10).")] = None,
    leads: Annotated[int | None, _option("Forecast leads in days (small: 10).")] = None,
    block_days: Annotated[int | None, _option("Days per bootstrap block of the evaluation (small: 30).")] = None,
    resamples: Annotated[int | None, _option("Bootstrap resamples per interval (small: 200).")] = None,
    time_chunk: Annotated[int | None, _option("Days per Zarr chunk (and resume commit) of the rollouts.")] = None,
    metrics: Annotated[
        str | None, _option("Comma-separated metric families of the long runs' evaluation (default: all that apply).")
    ] = None,
    seed: Annotated[int | None, _option("Seed of training, rollouts and bootstrap (default 0).")] = None,
    until: Annotated[
        str | None, _option("Stop after this stage (e.g. train-vdm, rollout-guided); re-run without it to go on.")
    ] = None,
    device: Device = "cpu",
    threads: Annotated[
        int | None, typer.Option(help="CPU threads (default: SLURM_CPUS_PER_TASK, else all cores).", min=1)
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Train IDM, discriminator and VDM (or take trained runs), bundle guided, unguided and VDM,
    run forecasts, long and century runs from the test split, evaluate them against it, and write
    OUT/report.md and OUT/results.json. Re-running the same command continues where it stopped."""
    overrides = {
        "train_steps": train_steps,
        "sampler_steps": sampler_steps,
        "guidance": guidance,
        "guidance_sigma_max": guidance_sigma_max,
        "churn": churn,
        "solver": solver,
        "long_years": long_years,
        "long_days": long_days,
        "long_members": long_members,
        "century_years": century_years,
        "century_days": century_days,
        "century_members": century_members,
        "starts": starts,
        "members": members,
        "leads": leads,
        "block_days": block_days,
        "resamples": resamples,
        "time_chunk": time_chunk,
        "climate_metrics": [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        "seed": seed,
        "device": device,
    }
    protocol = resolve_protocol(preset, overrides, {"idm": idm, "disc": disc, "vdm": vdm})
    dask.config.set(scheduler="threads", num_workers=configure_threads(threads))
    complete = run_compare(
        protocol, data, out, threads=threads, overwrite=overwrite, quiet=quiet, command=command_line(), until=until
    )
    typer.echo(f"wrote {out / 'report.md'} and {out / 'results.json'}" if complete else f"stopped after {until}")
