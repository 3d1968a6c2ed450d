"""`climdiff emulate`: guided autoregressive rollout into a Zarr store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from climdiff.assets import DEFAULT_MODEL, embedded_bundle
from climdiff.bundle import load_bundle
from climdiff.cli.common import Device, OutPath, Overwrite, Quiet, Threads, command_line
from climdiff.errors import ClimdiffError
from climdiff.rollout.calendar import days_in_years
from climdiff.rollout.engine import EmulateConfig, first_day
from climdiff.rollout.engine import emulate as run_emulation
from climdiff.runtime import configure_threads


def emulate(
    out: OutPath,
    model: Annotated[str, typer.Option(help="Name of an embedded model (shipped in the package).")] = DEFAULT_MODEL,
    checkpoint: Annotated[Path | None, typer.Option(help="A bundle made by `climdiff bundle` (instead of --model).")] = None,
    years: Annotated[int | None, typer.Option(help="Length in calendar years (instead of --days).")] = None,
    days: Annotated[int | None, typer.Option(help="Length in days (instead of --years).")] = None,
    members: Annotated[int, typer.Option(help="Ensemble members (independent chains).")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed; member m draws from its own stream.")] = 0,
    start: Annotated[str | None, typer.Option(help="Date of the first generated day, YYYY-MM-DD [default: the day after the initial state].")] = None,
    guidance: Annotated[float | None, typer.Option(help="Guidance strength lambda [default: the bundle's]; 0 = unguided IDM.")] = None,
    steps: Annotated[int | None, typer.Option(help="Sampler steps per day [default: the bundle's].")] = None,
    batch: Annotated[int | None, typer.Option(help="Members sampled together [default: all].")] = None,
    time_chunk: Annotated[int, typer.Option(help="Days per Zarr chunk (and per resume commit).")] = 365,
    zarr_format: Annotated[int, typer.Option(help="Zarr format of the output: 3 or 2.")] = 3,
    device: Device = "cpu",
    threads: Threads = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Emulate: one new day per sampling call, each conditioned on the two before it.

    Re-running the same command after an interruption continues where it stopped.
    """
    configure_threads(threads)
    if (years is None) == (days is None):
        raise ClimdiffError("give exactly one of --years and --days")
    if years is not None and years < 1:
        raise ClimdiffError(f"--years must be positive, got {years}")
    bundle = load_bundle(checkpoint if checkpoint is not None else embedded_bundle(model))
    n_days = days if days is not None else days_in_years(first_day(bundle, start), years)
    sampler = bundle.sampler.replace(guidance=guidance, steps=steps)
    config = EmulateConfig(days=n_days, members=members, seed=seed, start=start, time_chunk=time_chunk,
                           sampler=sampler, device=device, zarr_format=zarr_format)  # fmt: skip
    result = run_emulation(bundle, out, config, batch=batch, overwrite=overwrite, quiet=quiet, command=command_line())
    typer.echo(f"wrote {result.members} member(s) x {result.days} days to {result.path}")
    if result.redraws:
        typer.echo(f"redrawn days (failed stability check): {result.redraws}", err=True)
    if result.stopped:
        listing = ", ".join(f"member {m} at day {d}" for m, d in result.stopped.items())
        raise ClimdiffError(f"{len(result.stopped)} member(s) blew up and stopped ({listing}); all days before are kept")
