"""Options every command shares, declared once so they read the same everywhere."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

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
OutPath = Annotated[Path, typer.Option("--out", "-o", help="Output path.", show_default=False)]


def command_line() -> str:
    """The command as typed, recorded in outputs' provenance."""
    return shlex.join(["climdiff", *sys.argv[1:]])
