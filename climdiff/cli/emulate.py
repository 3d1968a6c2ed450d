"""`climdiff emulate`: guided autoregressive rollout into a Zarr store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from climdiff.assets import DEFAULT_MODEL, embedded_bundle, model_summaries
from climdiff.bundle import load_bundle
from climdiff.cli.common import (
    Device,
    GuidanceSigmaMax,
    GuidanceSigmaMin,
    OutPath,
    Overwrite,
    Quiet,
    Solver,
    command_line,
    with_window,
)
from climdiff.diskspace import reporting_full_disk
from climdiff.errors import ClimdiffError
from climdiff.rollout.calendar import days_in_years
from climdiff.rollout.engine import EmulateConfig, first_day
from climdiff.rollout.engine import emulate as run_emulation
from climdiff.rollout.forecast import forecast as run_forecast
from climdiff.rollout.forecast import plan_forecast
from climdiff.rollout.policy import chains_per_call, configure_sampling_threads


def _list_models(value: bool) -> None:
    """Print the embedded models, one a line, and exit (before --out is asked for)."""
    if value:
        for row in model_summaries():
            mark = " (default)" if row["default"] else ""
            dated = f", {' and '.join(row['dated'])} conditioned on the day of year" if row["dated"] else ""
            typer.echo(
                f"{row['name']}{mark}: {row['variable']} on a {row['grid']} grid, {row['calendar']} calendar, "
                f"{row['sampler']}{dated}"
            )
        raise typer.Exit()


def emulate(
    out: OutPath,
    model: Annotated[str, typer.Option(help="Name of an embedded model (shipped in the package).")] = DEFAULT_MODEL,
    checkpoint: Annotated[
        Path | None, typer.Option(help="A bundle made by `climdiff bundle` (instead of --model).")
    ] = None,
    years: Annotated[int | None, typer.Option(help="Length in calendar years (instead of --days).")] = None,
    days: Annotated[int | None, typer.Option(help="Length in days (instead of --years).")] = None,
    members: Annotated[int, typer.Option(help="Ensemble members (independent chains).")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed; member m draws from its own stream.")] = 0,
    start: Annotated[
        str | None,
        typer.Option(help="Date of the first generated day, YYYY-MM-DD (default: the day after the initial state)."),
    ] = None,
    guidance: Annotated[
        float | None, typer.Option(help="Guidance strength lambda (default: the bundle's); 0 = unguided IDM.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Sampler steps per day (default: the bundle's).")] = None,
    guidance_sigma_min: GuidanceSigmaMin = None,
    guidance_sigma_max: GuidanceSigmaMax = None,
    solver: Solver = None,
    churn: Annotated[
        float | None, typer.Option(help="EDM S_churn (default: the bundle's); 0 = a deterministic ODE.")
    ] = None,
    batch: Annotated[
        int | None, typer.Option(help="Chains sampled together (default: all members; forecasts: 64 or the members).")
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Forecast mode: a reference store made by `climdiff data`; each start is conditioned on two of its days and --days is the number of leads.",
            rich_help_panel="Forecast mode",
        ),
    ] = None,
    starts: Annotated[
        int | None,
        typer.Option(
            help="Forecast mode: number of starts, spread evenly over the reference's test split.",
            rich_help_panel="Forecast mode",
        ),
    ] = None,
    start_dates: Annotated[
        str | None,
        typer.Option(
            help="Forecast mode: comma-separated init dates YYYY-MM-DD (the last conditioning day of each start).",
            rich_help_panel="Forecast mode",
        ),
    ] = None,
    time_chunk: Annotated[int, typer.Option(help="Days per Zarr chunk (and per resume commit).")] = 365,
    means: Annotated[
        str | None,
        typer.Option(help="Also write calendar means beside the daily field: monthly, annual or monthly,annual."),
    ] = None,
    zarr_format: Annotated[int, typer.Option(help="Zarr format of the output: 3 or 2.")] = 3,
    device: Device = "cpu",
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU cores to use (default: SLURM_CPUS_PER_TASK or all). When a sampling call holds at most 16 384 grid points, each network runs on one thread and a second core runs the guidance beside the IDM; larger calls spread each operation over all the threads.",
            min=1,
        ),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    list_models: Annotated[
        bool,
        typer.Option(
            "--list-models",
            callback=_list_models,
            is_eager=True,
            help="List the embedded models (--model NAME) and exit.",
        ),
    ] = False,
) -> None:
    """Emulate: one new day per sampling call, each conditioned on the two before it.

    With --init-from, writes ensemble forecasts instead (dims init_time, lead, member, ...) for
    calibration scores. Re-running the same command after an interruption continues where it stopped.
    """
    if init_from is None and (starts is not None or start_dates is not None):
        raise ClimdiffError("--starts and --start-dates need --init-from (forecast mode)")
    if init_from is not None and (years is not None or start is not None or means):
        raise ClimdiffError(
            "forecast mode (--init-from) takes --days as the number of leads; --years, --start and --means do not apply"
        )
    if (years is None) == (days is None):
        raise ClimdiffError("give exactly one of --years and --days")
    if years is not None and years < 1:
        raise ClimdiffError(f"--years must be positive, got {years}")
    bundle = load_bundle(checkpoint if checkpoint is not None else embedded_bundle(model))
    chains = chains_per_call(members, batch, forecast=init_from is not None)
    concurrent = configure_sampling_threads(threads, chains, tuple(bundle.initial_state.shape[1:]))
    n_days = days if days is not None else days_in_years(first_day(bundle, start), years)
    sampler = with_window(
        bundle.sampler.replace(guidance=guidance, steps=steps, solver=solver, S_churn=churn),
        guidance_sigma_min,
        guidance_sigma_max,
    )
    config = EmulateConfig(
        days=n_days,
        members=members,
        seed=seed,
        start=start,
        time_chunk=time_chunk,
        sampler=sampler,
        device=device,
        zarr_format=zarr_format,
        means=tuple(m.strip() for m in (means or "").split(",") if m.strip()),
    )
    field_bytes = members * n_days * math.prod(bundle.initial_state.shape[1:]) * 4  # float32, per run or start
    if init_from is not None:
        dates = [d for d in (start_dates or "").split(",") if d.strip()]
        plan = plan_forecast(bundle, init_from, config, starts=starts, start_dates=dates or None)
        with reporting_full_disk(out, len(plan.init_dates) * field_bytes):
            done = run_forecast(
                bundle,
                init_from,
                out,
                plan,
                batch=batch,
                overwrite=overwrite,
                quiet=quiet,
                command=command_line(),
                concurrent_guide=concurrent,
            )
        typer.echo(f"wrote {done.starts} start(s) x {done.leads} leads x {done.members} member(s) to {done.path}")
        if done.redraws:
            typer.echo(f"redrawn days (failed stability check): {done.redraws}", err=True)
        if done.stopped:
            raise ClimdiffError(f"{done.stopped} forecast member(s) blew up and stopped; their later leads are NaN")
        return
    with reporting_full_disk(out, field_bytes):
        result = run_emulation(
            bundle,
            out,
            config,
            batch=batch,
            overwrite=overwrite,
            quiet=quiet,
            command=command_line(),
            concurrent_guide=concurrent,
        )
    typer.echo(f"wrote {result.members} member(s) x {result.days} days to {result.path}")
    if result.redraws:
        typer.echo(f"redrawn days (failed stability check): {result.redraws}", err=True)
    if result.stopped:
        listing = ", ".join(f"member {m} at day {d}" for m, d in result.stopped.items())
        raise ClimdiffError(
            f"{len(result.stopped)} member(s) blew up and stopped ({listing}); all days before are kept"
        )
