"""`climdiff data ...`: make and inspect training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from climdiff.cli.common import (
    Device,
    Json,
    OutPath,
    Overwrite,
    Quiet,
    Threads,
    command_line,
    print_summary,
)
from climdiff.data.importing.run import HOWS, ImportRun, import_store
from climdiff.data.info import describe_training_store
from climdiff.data.latlon_generator import LatLonRun, generate_latlon
from climdiff.data.moist_barotropic import YEAR_DAYS, MoistBarotropicConfig, default_steps_per_day
from climdiff.data.navier_stokes import TurbulenceConfig
from climdiff.data.quicklook import plot_training_store
from climdiff.data.splits import parse_split
from climdiff.data.turbulence import TurbulenceRun, generate_turbulence
from climdiff.diskspace import reporting_full_disk
from climdiff.resume import check_parent_writable
from climdiff.runtime import configure_threads

app = typer.Typer(help="Make and inspect training data stores.", no_args_is_help=True)
PAPER = TurbulenceConfig()


@app.command()
def turbulence(
    out: OutPath,
    size: Annotated[int, typer.Option(help="Grid points per side (even; 32, 64, 128, 256 ...).")] = PAPER.size,
    frames: Annotated[int, typer.Option(help="Saved frames ('days') to write.")] = 10_000,
    every: Annotated[int, typer.Option(help="Solver steps between saved frames.")] = 4,
    spinup: Annotated[
        float, typer.Option(help="Spin-up discarded before the first frame, in solver time units.")
    ] = 50.0,
    dt: Annotated[float, typer.Option(help="Time step.")] = PAPER.dt,
    nu: Annotated[
        float | None,
        typer.Option(help="Hyperviscosity; default 2e-7 at 256^2, rescaled by (256/size)^(2*order)."),
    ] = None,
    hyper_order: Annotated[
        int, typer.Option(help="Order p of the hyperviscosity nu*(-Laplacian)^p.")
    ] = PAPER.hyper_order,
    mu: Annotated[float, typer.Option(help="Linear drag.")] = PAPER.mu,
    eps: Annotated[float, typer.Option(help="Mean energy injection rate of the forcing.")] = PAPER.eps,
    kf: Annotated[float, typer.Option(help="Forcing wavenumber (units of the fundamental).")] = PAPER.kf,
    dkf: Annotated[float, typer.Option(help="Width of the forcing ring.")] = PAPER.dkf,
    seed: Annotated[int, typer.Option(help="Random seed of the forcing.")] = 0,
    split: Annotated[str, typer.Option(help="Train,validation,test fractions, contiguous in time.")] = "0.8,0.1,0.1",
    chunk: Annotated[int, typer.Option(help="Frames per Zarr time chunk (and per resume commit).")] = 32,
    dtype: Annotated[str, typer.Option(help="Solver precision: float64 or float32.")] = "float64",
    device: Device = "cpu",
    threads: Threads = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Run the forced 2-D turbulence solver and write a training store (resumable).

    Re-running the same command after an interruption continues where it stopped.
    """
    configure_threads(threads)
    solver = TurbulenceConfig(size=size, nu=nu, hyper_order=hyper_order, mu=mu, dt=dt, eps=eps, kf=kf, dkf=dkf)
    run = TurbulenceRun(
        solver=solver,
        frames=frames,
        every=every,
        spinup=spinup,
        seed=seed,
        split=parse_split(split),
        chunk=chunk,
        device=device,
        dtype=dtype,
    )
    with reporting_full_disk(out, frames * size * size * 4):
        generate_turbulence(out, run, overwrite=overwrite, quiet=quiet, command=command_line())
    budget = describe_training_store(out).get("energy_budget", {})
    typer.echo(
        f"wrote {frames} frames of {size}x{size} vorticity to {out}"
        + (
            f" (mean injection {budget['injection_mean']:.4g} ± {budget['injection_standard_error']:.2g}, eps {eps:g})"
            if budget
            else ""
        )
    )


@app.command("import")
def import_(
    sources: Annotated[list[str], typer.Argument(help="NetCDF files or Zarr stores (globs allowed), any order.")],
    variable: Annotated[str, typer.Option("--var", help="The variable to import, as named in the files.")],
    out: OutPath,
    train: Annotated[str, typer.Option(help="Training years, e.g. 1979-2000.")],
    val: Annotated[str, typer.Option(help="Validation years, e.g. 2001-2010.")],
    test: Annotated[str, typer.Option(help="Test years, e.g. 2011-2020.")],
    how: Annotated[
        str, typer.Option(help=f"Daily aggregation: {', '.join(HOWS)} (auto: sum amounts, average rates and others).")
    ] = "auto",
    factor: Annotated[int | None, typer.Option(help="Coarsen by k x k cells (area-weighted).")] = None,
    grid: Annotated[float | None, typer.Option(help="Coarsen to cells of this many degrees (area-weighted).")] = None,
    chunk: Annotated[int, typer.Option(help="Days per Zarr time chunk (and per resume commit).")] = 32,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Import a lat-lon field from NetCDF or Zarr files into a daily training store (resumable).

    Precipitation becomes daily totals in mm day-1 with the log transform; other fields daily means.
    Re-running the same command after an interruption continues where it stopped.
    """
    run = ImportRun(tuple(sources), variable, train, val, test, how=how, factor=factor, resolution=grid, chunk=chunk)
    import_store(out, run, overwrite=overwrite, quiet=quiet, command=command_line())
    summary = describe_training_store(out)
    shape = " x ".join(f"{dim}={n}" for dim, n in summary["grid"].items())
    typer.echo(f"wrote {summary['frames']} days of {summary['variable']} ({shape}) to {out}")


@app.command()
def latlon(
    out: OutPath,
    years: Annotated[int, typer.Option(help="Years of daily data to store (365-day years).")] = 30,
    days: Annotated[
        int | None, typer.Option(help="Store this many days instead of --years (quick looks and tests).")
    ] = None,
    n_lat: Annotated[int, typer.Option(help="Output latitudes (the model runs on a grid twice as fine).")] = 32,
    n_lon: Annotated[int, typer.Option(help="Output longitudes (even).")] = 64,
    spinup_days: Annotated[int, typer.Option(help="Model days discarded before the first stored day.")] = YEAR_DAYS,
    steps_per_day: Annotated[
        int | None, typer.Option(help="Model time steps per day [default: 12 per 32 output latitudes].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the stirring and the divergent wind.")] = 0,
    split: Annotated[
        str, typer.Option(help="Train,validation,test fractions, contiguous in time, on whole years when possible.")
    ] = "0.8,0.1,0.1",
    chunk: Annotated[int, typer.Option(help="Days per Zarr time chunk (and per resume commit).")] = 73,
    threads: Threads = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Run the moist barotropic model on the sphere and write daily global precipitation (resumable).

    Re-running the same command after an interruption continues where it stopped.
    """
    configure_threads(threads)
    run = LatLonRun(
        model=MoistBarotropicConfig(
            n_lat=n_lat, n_lon=n_lon, steps_per_day=steps_per_day or default_steps_per_day(n_lat)
        ),
        days=days if days is not None else years * YEAR_DAYS,
        spinup_days=spinup_days,
        seed=seed,
        split=parse_split(split),
        chunk=chunk,
    )
    with reporting_full_disk(out, run.days * n_lat * n_lon * 4):
        generate_latlon(out, run, overwrite=overwrite, quiet=quiet, command=command_line())
    budget = describe_training_store(out).get("water_budget", {})
    typer.echo(
        f"wrote {run.days} days of {n_lat}x{n_lon} daily precipitation to {out}"
        + (
            f" (global mean {budget['precipitation_mean']:.3g} mm/day, "
            f"largest daily budget residual {budget['max_abs_residual']:.1e} mm/day)"
            if budget
            else ""
        )
    )


@app.command()
def info(
    store: Annotated[Path, typer.Argument(help="A training store made by `climdiff data`.")],
    as_json: Json = False,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG quick-look: last frame, energy budget, spectrum.")
    ] = None,
) -> None:
    """Summarise a training store: grid, frames, split, statistics and energy budget (as `climdiff info` does)."""
    if plot is not None:
        check_parent_writable(plot)
    summary = describe_training_store(store)
    if plot is not None:
        plot_training_store(store, plot)
    print_summary(str(store), summary, as_json)
