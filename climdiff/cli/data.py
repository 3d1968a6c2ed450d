"""`climdiff data ...`: make and inspect training data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from climdiff.cli.common import (
    Device,
    Json,
    OutPath,
    Overwrite,
    Quiet,
    Threads,
    command_line,
)
from climdiff.diskspace import reporting_full_disk
from climdiff.data.info import describe_training_store
from climdiff.data.navier_stokes import TurbulenceConfig
from climdiff.data.quicklook import plot_training_store
from climdiff.data.splits import parse_split
from climdiff.data.turbulence import TurbulenceRun, generate_turbulence
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
    spinup: Annotated[float, typer.Option(help="Spin-up discarded before the first frame, in solver time units.")] = 50.0,
    dt: Annotated[float, typer.Option(help="Time step.")] = PAPER.dt,
    nu: Annotated[
        float | None,
        typer.Option(help="Hyperviscosity; default 2e-7 at 256^2, rescaled by (256/size)^(2*order)."),
    ] = None,
    hyper_order: Annotated[int, typer.Option(help="Order p of the hyperviscosity nu*(-Laplacian)^p.")] = PAPER.hyper_order,
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
    solver = TurbulenceConfig(
        size=size, nu=nu, hyper_order=hyper_order, mu=mu, dt=dt, eps=eps, kf=kf, dkf=dkf
    )
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


@app.command()
def info(
    store: Annotated[Path, typer.Argument(help="A training store made by `climdiff data`.")],
    as_json: Json = False,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG quick-look: last frame, energy budget, spectrum.")
    ] = None,
) -> None:
    """Summarise a training store: grid, frames, split, statistics and energy budget."""
    if plot is not None:
        check_parent_writable(plot)
    summary = describe_training_store(store)
    if plot is not None:
        plot_training_store(store, plot)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=str(store), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    state = "complete" if summary["complete"] else "INCOMPLETE (re-run its command to finish it)"
    table.add_row("kind", f"{summary['kind']} (format {summary['format_version']}, climdiff {summary['climdiff_version']})")
    table.add_row("status", state)
    table.add_row("frames", f"{summary['frames']} of {summary['frames_target']}")
    table.add_row("grid", " x ".join(f"{k}={v}" for k, v in summary["grid"].items()))
    if "time" in summary:
        t = summary["time"]
        table.add_row("time", f"{t['first']} .. {t['last']} ({t['calendar']})")
    if "split" in summary:
        table.add_row("split", ", ".join(f"{k} [{a}, {b})" for k, (a, b) in summary["split"].items()))
    for name, stats in summary.get("stats", {}).items():
        table.add_row(f"stats {name}", ", ".join(f"{k} {v:.4g}" for k, v in stats.items()))
    if "energy_budget" in summary:
        b = summary["energy_budget"]
        table.add_row(
            "energy budget",
            f"injection {b['injection_mean']:.4g} ± {b['injection_standard_error']:.2g} (eps {b['eps']:g}); "
            f"|residual|/eps {b['mean_abs_residual_over_eps']:.2e}; mean energy {b['energy_mean']:.4g}",
        )
    solver = summary["config"].get("solver", {})
    table.add_row("solver", ", ".join(f"{k}={v}" for k, v in solver.items()))
    run = {k: v for k, v in summary["config"].items() if k != "solver"}
    table.add_row("run", ", ".join(f"{k}={v}" for k, v in run.items()))
    Console().print(table)
