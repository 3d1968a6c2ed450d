"""Options every command shares, declared once so they read the same everywhere."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from climdiff.errors import ClimdiffError
from climdiff.sampling.config import SamplerConfig

Threads = Annotated[
    int | None,
    typer.Option(help="CPU threads for torch (default: SLURM_CPUS_PER_TASK, else all cores).", min=1),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
Overwrite = Annotated[
    bool,
    typer.Option(help="Replace an existing climdiff output (complete or made with other settings)."),
]
Device = Annotated[str, typer.Option(help="Compute device: auto, cpu, cuda or cuda:N.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
GuidanceSigmaMax = Annotated[
    str | None,
    typer.Option(
        help="Guide only at noise levels sigma up to this value, where the discriminator can tell days apart; 'all' guides at every level.",
        show_default=False,
    ),
]
GuidanceSigmaMin = Annotated[
    float | None,
    typer.Option(
        help="Guide only at noise levels sigma from this value up (DG's time_min; 0 = down to the last step).",
        show_default=False,
    ),
]
Solver = Annotated[
    str | None,
    typer.Option(
        help="ODE solver of the sampler: heun (EDM's, two network calls per step) or dpmpp_2m (DPM-Solver++(2M): one call per step, needs churn 0)."
    ),
]
OutPath = Annotated[Path, typer.Option("--out", "-o", help="Output path.", show_default=False)]


def command_line() -> str:
    """The command as typed, recorded in outputs' provenance."""
    return shlex.join(["climdiff", *sys.argv[1:]])


def numbers(text: str, flag: str, allow_all: bool = False) -> tuple[float | None, ...]:
    """``"0,7,14"`` (and ``all`` for the whole schedule where allowed) as numbers."""
    values: list[float | None] = []
    for item in (part.strip() for part in text.split(",")):
        if allow_all and item == "all":
            values.append(None)
            continue
        try:
            values.append(float(item))
        except ValueError:
            raise ClimdiffError(
                f"{flag} takes comma-separated numbers{' or all' if allow_all else ''}, got {text!r}"
            ) from None
    return tuple(values)


def with_window(sampler: SamplerConfig, lower: float | None, upper: str | None) -> SamplerConfig:
    """``sampler`` with --guidance-sigma-min and --guidance-sigma-max applied together (so that a new
    window may lie wholly outside the old one): an option not given keeps the bundle's value, and
    ``all`` as the upper end guides to the top of the schedule (which a plain None cannot say:
    ``SamplerConfig.replace`` skips None)."""
    changes: dict[str, float | None] = {} if lower is None else {"guidance_sigma_min": lower}
    if upper is not None:
        values = numbers(upper, "--guidance-sigma-max", allow_all=True)
        if len(values) != 1 or (values[0] is not None and not values[0] > 0):
            raise ClimdiffError(f"--guidance-sigma-max takes one positive noise level or all, got {upper!r}")
        changes["guidance_sigma_max"] = values[0]
    return dataclasses.replace(sampler, **changes)


def flatten(summary: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dict -> (dotted key, text) rows for a two-column table."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and len(value) > 3:
            rows += flatten(value, f"{name}.")
        elif isinstance(value, dict):
            rows.append((name, ", ".join(f"{k}={v}" for k, v in value.items())))
        elif isinstance(value, float):
            rows.append((name, f"{value:.6g}"))
        else:
            rows.append((name, str(value)))
    return rows


def print_summary(title: str, summary: dict[str, Any], as_json: bool) -> None:
    """Print a description as JSON (for scripts) or as a two-column table (for people)."""
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    unfinished = summary.get("complete") is False
    table = Table(
        title=title, show_header=False, caption="INCOMPLETE: re-run its command to finish it" if unfinished else None
    )
    table.add_column(style="bold")
    table.add_column()
    for key, text in flatten(summary):
        table.add_row(key, text)
    Console().print(table)
